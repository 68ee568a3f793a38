"""Where span-less records go: the registry that lets emit reach derive without importing it.

``record_cache()`` and ``record_api_call()`` (otelperf.emit) have no span for the processor to
see, so they record straight into the *active* sink: the processor ``configure()`` installed
or, without configure(), the most recently created processor still running.  The processor
(otelperf.derive) registers itself here; emit only looks the sink up.  ``api_call()`` also finds
here the tracer provider configure() set up, so its CLIENT spans reach that processor.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

from opentelemetry import trace

from otelperf import _names as N
from otelperf._core import fork
from otelperf._core.selfmetrics import Tally


class Sink(Protocol):
    """What a span-less record needs from the processor."""

    @property
    def errors(self) -> Tally: ...

    def count_cache(self, cache: str, hit: bool) -> None: ...

    def count_api(
        self,
        api: str,
        model: str,
        error: bool,
        duration: float | None,
        input_tokens: int,
        output_tokens: int,
        cost: float | None,
        cached_input_tokens: int,
        reasoning_tokens: int,
    ) -> None: ...


_lock = threading.Lock()
_configured: Sink | None = None
_live: list[weakref.ref[Sink]] = []  # weak: a dropped processor is no sink
_tracer_provider: Any = None


def _after_fork() -> None:
    # A thread of the parent may have held the lock at fork(); the child starts with a fresh one.
    global _lock
    _lock = threading.Lock()


fork.on_fork(_after_fork)


def register(sink: Sink) -> None:
    """A processor started: it receives records while it is the newest one running."""
    with _lock:
        _live[:] = [r for r in _live if r() is not None]
        _live.append(weakref.ref(sink))


def unregister(sink: Sink) -> None:
    """A processor shut down: no more records for it."""
    global _configured
    with _lock:
        _live[:] = [r for r in _live if r() is not None and r() is not sink]
        if _configured is sink:
            _configured = None


def set_configured(sink: Sink | None) -> None:
    """The processor configure() attached: it receives records whichever is newest."""
    global _configured
    with _lock:
        _configured = sink


def active() -> Sink | None:
    """The sink record_cache() and record_api_call() record into (None: they drop).

    >>> active() is None or hasattr(active(), "count_cache")
    True
    """
    p = _configured
    if p is not None:
        return p
    for ref in reversed(_live):
        live = ref()
        if live is not None:
            return live
    return None


def set_tracer_provider(tp: Any) -> None:
    """The tracer provider configure() set up (None: the global one)."""
    global _tracer_provider
    _tracer_provider = tp


def tracer() -> trace.Tracer:
    """otelperf's tracer on configure()'s provider, else on the global one."""
    tp = _tracer_provider
    if tp is not None:
        return tp.get_tracer(N.TRACER_NAME)  # type: ignore[no-any-return]
    return trace.get_tracer(N.TRACER_NAME)
