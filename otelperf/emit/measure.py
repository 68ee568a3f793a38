"""measure(): one callable that is a decorator and a context manager emitting a span and metrics.

The decorator forms are otelperf.emit.wrappers; the context-manager form is :class:`Measure`.
Both share a :class:`~otelperf.emit.wrappers.Site` per name, so the stats lookup is done once
per name and pipeline, not per call.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

from otelperf.emit.checks import show
from otelperf.emit.operation import Operation
from otelperf.emit.pipeline import STATE
from otelperf.emit.wrappers import Site, decorate

F = TypeVar("F", bound=Callable[..., Any])


# ``with measure("parse")`` makes a new object per block; sharing its Site across blocks keeps
# the name's binding (stats lookup) from being redone on every call. Bounded: names past the
# cap get a fresh, unshared site (correct, just not cached).
_SITES_MAX = 1024
_sites: dict[tuple[str, bool], Site] = {}


def _site_for(name: str, memory: bool) -> Site:
    key = (name, memory)
    site = _sites.get(key)
    if site is None:
        site = Site(name, memory)
        if len(_sites) < _SITES_MAX:
            _sites[key] = site
    return site


class Measure:
    """What ``measure("name")`` returns: a decorator and a (sync or async) context manager."""

    __slots__ = ("_op", "_site")

    def __init__(self, name: str, memory: bool) -> None:
        self._site = _site_for(name, memory)
        self._op: Operation | None = None

    @property
    def name(self) -> str:
        return self._site.name

    def __call__(self, func: F) -> F:
        wrapped: F = decorate(func, self._site)
        return wrapped

    def _enter(self, cpu: bool) -> Operation:
        if self._op is not None:
            raise RuntimeError(
                f"measure({show(self._site.name)}) is already in use as a context manager; "
                "write `with measure(...)` once per block instead of reusing one object"
            )
        site = self._site
        stats = site.stats if site.gen == STATE.gen else site.bind()
        if stats is None:
            op = Operation(site.name)
            op._failed = True
        else:
            op = stats.pipeline.start(stats, site.name, cpu, site.memory)
        self._op = op
        return op

    def _exit(self, exc: BaseException | None) -> None:
        op = self._op
        self._op = None
        if op is not None and not op._failed:
            op._stats.pipeline.finish(op, exc)

    def __enter__(self) -> Operation:
        return self._enter(True)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(ev)

    async def __aenter__(self) -> Operation:
        # Thread CPU time cannot be attributed across awaits (other tasks run on the same
        # thread in between), so async operations report no CPU rather than a wrong figure.
        return self._enter(False)

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(ev)


@overload
def measure(name_or_func: F, /) -> F: ...
@overload
def measure(name_or_func: str | None = None, /, *, track_memory: bool = False) -> Measure: ...


def measure(name_or_func: Any = None, /, *, track_memory: bool = False) -> Any:
    """Measure an operation: a span named after it plus one duration observation per call.

    Use it as a bare decorator (operation name = ``module.qualname``), a named decorator, or a
    sync or async context manager whose handle counts throughput::

        @measure
        def handle(request): ...

        @measure("download")
        async def download(url): ...

        with measure("parse") as op:
            rows = parse(data)
            op.add_items(len(rows))
            op.add_bytes(len(data))

    ``track_memory=True`` also records the resident-memory change (one RSS read at each end).
    """
    if not isinstance(track_memory, bool):
        raise TypeError(f"measure(track_memory={show(track_memory)}): must be True or False")
    if isinstance(name_or_func, str):
        if not name_or_func.strip():
            raise ValueError("measure(name=''): the operation name must be a non-empty string")
        return Measure(name_or_func, track_memory)
    if name_or_func is None:
        raise TypeError("measure() needs an operation name, e.g. measure('parse')")
    if isinstance(name_or_func, (staticmethod, classmethod)):
        inner = name_or_func.__func__
        return decorate(name_or_func, Site(_qualified(inner), track_memory))
    if callable(name_or_func) and not isinstance(name_or_func, type):
        return decorate(name_or_func, Site(_qualified(name_or_func), track_memory))
    raise TypeError(
        f"measure({show(name_or_func)}): expected an operation name (str) or a function, "
        f"got {type(name_or_func).__name__}"
    )


def _qualified(func: Any) -> str:
    module = getattr(func, "__module__", None) or "__main__"
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{module}.{qual}"
