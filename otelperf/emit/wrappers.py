"""The wrappers measure() puts around sync, async, generator and async-generator functions.

A decorated function binds its operation's stats on first call and rebinds only when
configure() replaces the pipeline (``Site.gen`` against ``STATE.gen``): one integer compare per
call decides it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any

from otelperf.emit.operation import OpStats
from otelperf.emit.pipeline import STATE, current_pipeline, resume, suspend
from otelperf.emit.progress import Runs
from otelperf.parsing import show

Wrap = Callable[[Any, Any], Any]  # (function, what it needs) -> the wrapper


class Site:
    """One decorated function or measure(name) object: its name and its bound stats."""

    __slots__ = ("gen", "memory", "name", "stats")

    def __init__(self, name: str, memory: bool) -> None:
        self.name = name
        self.memory = memory
        self.gen = -1
        self.stats: OpStats | None = None

    def bind(self) -> OpStats | None:
        """Look the stats up in the current pipeline (None: otelperf is disabled)."""
        p = current_pipeline()
        gen = STATE.gen
        self.stats = p.stats(self.name) if p.enabled else None
        self.gen = gen
        return self.stats


def decorate(func: Any, site: Site) -> Any:
    """Wrap ``func`` (sync, async, generator or async generator; static/classmethods too)."""
    if not isinstance(func, (staticmethod, classmethod)) and not callable(func):
        raise TypeError(f"measure() can only decorate a callable, got {show(func)}")
    return by_kind(func, site, _wrap_async_gen, _wrap_gen, _wrap_async, _wrap_sync)


def by_kind(func: Any, arg: Any, async_gen: Wrap, gen: Wrap, coro: Wrap, plain: Wrap) -> Any:
    """``func`` wrapped by the wrapper for its kind, given ``arg``; a staticmethod or
    classmethod is unwrapped, its function wrapped, and rewrapped."""
    if isinstance(func, (staticmethod, classmethod)):
        return type(func)(by_kind(func.__func__, arg, async_gen, gen, coro, plain))
    if inspect.isasyncgenfunction(func):
        return async_gen(func, arg)
    if inspect.isgeneratorfunction(func):
        return gen(func, arg)
    if inspect.iscoroutinefunction(func):
        return coro(func, arg)
    return plain(func, arg)


def _wrap_sync(func: Callable[..., Any], site: Site) -> Callable[..., Any]:
    name = site.name
    memory = site.memory

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stats = site.stats if site.gen == STATE.gen else site.bind()
        if stats is None:
            return func(*args, **kwargs)
        p = stats.pipeline
        op = p.start(stats, name, True, memory)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            p.finish(op, exc)
            raise
        p.finish(op, None)
        return result

    return wrapper


def _wrap_async(func: Callable[..., Awaitable[Any]], site: Site) -> Callable[..., Any]:
    name = site.name
    memory = site.memory

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        stats = site.stats if site.gen == STATE.gen else site.bind()
        if stats is None:
            return await func(*args, **kwargs)
        p = stats.pipeline
        op = p.start(stats, name, False, memory)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            p.finish(op, exc)
            raise
        p.finish(op, None)
        return result

    return wrapper


def _wrap_gen(func: Callable[..., Generator[Any, Any, Any]], site: Site) -> Callable[..., Any]:
    name = site.name
    memory = site.memory

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        stats = site.stats if site.gen == STATE.gen else site.bind()
        if stats is None:
            return (yield from func(*args, **kwargs))
        p = stats.pipeline
        op = p.start(stats, name, True, memory)
        cpu = op._cpu0 >= 0
        ok = not op._failed
        # The operation runs from the first next() until exhaustion or close(); the wall time
        # includes the consumer's time between items (the generator is open), CPU only counts
        # the generator's own steps, and the span is current only while the body runs.
        gen = func(*args, **kwargs)
        send: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                try:
                    item = gen.send(send) if thrown is None else gen.throw(thrown)
                except StopIteration as stop:
                    if ok:
                        p.finish(op, None)
                    return stop.value
                if ok:
                    suspend(op)
                try:
                    send = yield item
                    thrown = None
                except GeneratorExit:
                    gen.close()
                    if ok:
                        p.finish(op, None)
                    raise
                except BaseException as exc:  # thrown in by the consumer: pass it on
                    thrown = exc
                    send = None
                if ok:
                    resume(op, cpu)
        except BaseException as exc:
            # Also a GeneratorExit the body raised itself (not one close() threw in, which
            # finished above): the operation ends here either way, or its span would stay open
            # and current.  finish() is idempotent.
            if ok:
                p.finish(op, exc)
            raise

    return wrapper


def _wrap_async_gen(
    func: Callable[..., AsyncGenerator[Any, Any]], site: Site
) -> Callable[..., Any]:
    name = site.name
    memory = site.memory

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        stats = site.stats if site.gen == STATE.gen else site.bind()
        agen = func(*args, **kwargs)
        if stats is None:
            async for item in agen:
                yield item
            return
        p = stats.pipeline
        op = p.start(stats, name, False, memory)
        ok = not op._failed
        send: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                try:
                    if thrown is None:
                        item = await agen.asend(send)
                    else:
                        item = await agen.athrow(thrown)
                except StopAsyncIteration:
                    if ok:
                        p.finish(op, None)
                    return
                if ok:
                    suspend(op)
                try:
                    send = yield item
                    thrown = None
                except GeneratorExit:
                    await agen.aclose()
                    if ok:
                        p.finish(op, None)
                    raise
                except BaseException as exc:
                    thrown = exc
                    send = None
                if ok:
                    resume(op, False)
        except BaseException as exc:
            # Also a GeneratorExit the body raised itself: see _wrap_gen.
            if ok:
                p.finish(op, exc)
            raise

    return wrapper


# -- the stages of measure(name, expected_items=N): outside measure's wrappers, so that a
# plain decorated function has no progress work at all --------------------------------------


def count_calls(func: Any, name: str, expected: int) -> Any:
    """Wrap a measured function so that its calls (or a generator's items) advance the stage
    ``measure(name, expected_items=expected)`` declared (otelperf.emit.progress)."""
    runs = Runs(name, expected)
    return by_kind(func, runs, _count_async_gen, _count_gen, _count_async, _count_sync)


def _count_sync(func: Callable[..., Any], runs: Runs) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if runs.off:
            return func(*args, **kwargs)
        try:
            return func(*args, **kwargs)
        finally:
            runs.count(1)

    return wrapper


def _count_async(func: Callable[..., Awaitable[Any]], runs: Runs) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if runs.off:
            return await func(*args, **kwargs)
        try:
            return await func(*args, **kwargs)
        finally:
            runs.count(1)

    return wrapper


def _count_gen(func: Callable[..., Generator[Any, Any, Any]], runs: Runs) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        gen = func(*args, **kwargs)
        if runs.off:
            return (yield from gen)
        # yield from, counting each item: send() and throw() reach the measured generator.
        send: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                item = gen.send(send) if thrown is None else gen.throw(thrown)
            except StopIteration as stop:
                return stop.value
            runs.count(1)
            try:
                send = yield item
                thrown = None
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:  # thrown in by the consumer: pass it on
                thrown = exc
                send = None

    return wrapper


def _count_async_gen(
    func: Callable[..., AsyncGenerator[Any, Any]], runs: Runs
) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen = func(*args, **kwargs)
        send: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                if thrown is None:
                    item = await agen.asend(send)
                else:
                    item = await agen.athrow(thrown)
            except StopAsyncIteration:
                return
            if not runs.off:
                runs.count(1)
            try:
                send = yield item
                thrown = None
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as exc:
                thrown = exc
                send = None

    return wrapper
