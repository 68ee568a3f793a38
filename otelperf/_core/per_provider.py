"""One set of instruments per meter provider, shared by every otelperf object that records there.

The OTel SDK keeps the first instrument of a name on a meter and drops a later duplicate's
callbacks.  So when otelperf is configured, shut down and configured again on a provider it does
not own (the application's), the new pipeline, processor or resource monitor must reuse the
instruments of the first and point their callbacks at itself: that is what this holds.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from otelperf._core import fork

T = TypeVar("T")


class PerProvider(Generic[T]):
    """``get(provider, *args)`` returns the one ``factory(provider, *args)`` made for that
    provider (the arguments of the first call win).

    Providers are held weakly; one that refuses weak references is held strongly (rare: the
    SDK's and the API's providers all accept them).

    >>> from opentelemetry.sdk.metrics import MeterProvider
    >>> holder = PerProvider(lambda mp: object())
    >>> mp = MeterProvider()
    >>> holder.get(mp) is holder.get(mp)
    True
    """

    def __init__(self, factory: Callable[..., T]) -> None:
        self._factory = factory
        self._weak: weakref.WeakKeyDictionary[Any, T] = weakref.WeakKeyDictionary()
        self._strong: dict[int, tuple[Any, T]] = {}
        self._lock = threading.Lock()
        fork.on_fork(self.after_fork)

    def get(self, provider: Any, *args: Any) -> T:
        with self._lock:
            try:
                found = self._weak.get(provider)
            except TypeError:
                entry = self._strong.get(id(provider))
                found = entry[1] if entry is not None else None
            if found is None:
                found = self._factory(provider, *args)
                try:
                    self._weak[provider] = found
                except TypeError:
                    self._strong[id(provider)] = (provider, found)
            return found

    def after_fork(self) -> None:
        # A lock held by another thread at fork() time would never be released in the child.
        self._lock = threading.Lock()
