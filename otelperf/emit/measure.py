"""measure(): one callable that is a decorator and a context manager emitting a span and metrics.

The decorator forms are otelperf.emit.wrappers; the context-manager form is :class:`Measure`.
Both share a :class:`~otelperf.emit.wrappers.Site` per name, so the stats lookup is done once
per name and pipeline, not per call.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

from otelperf.emit import progress
from otelperf.emit.operation import Operation
from otelperf.emit.pipeline import STATE
from otelperf.emit.wrappers import Site, count_calls, decorate
from otelperf.parsing import show

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


class ProgressMeasure(Measure):
    """``measure(name, expected_items=N)``: a :class:`Measure` whose stage is drawn live on a
    terminal (otelperf.emit.progress).  A separate class so that plain measure() objects carry
    no progress state and no check per call."""

    __slots__ = ("_expected", "_stage")

    def __init__(self, name: str, memory: bool, expected: int) -> None:
        super().__init__(name, memory)
        self._expected = expected
        self._stage: progress.Stage | None = None

    def __call__(self, func: F) -> F:
        wrapped: F = count_calls(decorate(func, self._site), self.name, self._expected)
        return wrapped

    def _begin(self, op: Operation) -> Operation:
        if self._stage is None:  # a reused object raised in _enter already
            self._stage = progress.begin(self.name, self._expected, op)
        return op

    def _end(self, exc: BaseException | None) -> None:
        stage = self._stage
        if stage is not None:
            self._stage = None
            progress.end(stage, progress.status_of(exc))

    def __enter__(self) -> Operation:
        return self._begin(self._enter(True))

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(ev)
        self._end(ev)

    async def __aenter__(self) -> Operation:
        return self._begin(self._enter(False))

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(ev)
        self._end(ev)


@overload
def measure(name_or_func: F, /) -> F: ...
@overload
def measure(
    name_or_func: str | None = None,
    /,
    *,
    track_memory: bool = False,
    expected_items: int | None = None,
) -> Measure: ...


def measure(
    name_or_func: Any = None, /, *, track_memory: bool = False, expected_items: Any = None
) -> Any:
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

    ``expected_items=N`` declares that the stage will process N items in total: while it runs,
    a line on stderr shows items done / N, the rate and an ETA, only when stderr is a terminal
    (docs/progress.md; ``OTELPERF_PROGRESS=off`` turns it off).  A ``with`` block's items are
    the ones ``op.add_items()`` counts; a decorated function counts one item per call (a
    generator, one per item it yields)::

        with measure("load", expected_items=len(rows)) as op:
            for row in rows:
                load(row)
                op.add_items(1)
    """
    if not isinstance(track_memory, bool):
        raise TypeError(f"measure(track_memory={show(track_memory)}): must be True or False")
    if expected_items is not None:
        return _with_progress(name_or_func, track_memory, progress.check_expected(expected_items))
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


def _with_progress(name_or_func: Any, track_memory: bool, expected: int) -> Any:
    # Off the plain path: measure() without expected_items never comes here.
    if isinstance(name_or_func, str) or name_or_func is None:
        plain = measure(name_or_func, track_memory=track_memory)
        return ProgressMeasure(plain.name, track_memory, expected)
    wrapped = measure(name_or_func, track_memory=track_memory)
    inner = getattr(name_or_func, "__func__", name_or_func)
    return count_calls(wrapped, _qualified(inner), expected)


def _qualified(func: Any) -> str:
    module = getattr(func, "__module__", None) or "__main__"
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{module}.{qual}"
