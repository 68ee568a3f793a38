"""The record of one running operation (:class:`Operation`) and of one operation name
(:class:`OpStats`).

Both are plain slotted records: the pipeline (otelperf.emit.pipeline) and the wrappers read and
write their underscore fields directly, because a property or method per field would be a call
per measured operation.  The fields are shared within otelperf.emit and nowhere else.
"""

from __future__ import annotations

from contextvars import Token
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from otelperf import _names as N
from otelperf._core.labels import safe_label
from otelperf.emit.checks import MAX_COUNT
from otelperf.parsing import show

if TYPE_CHECKING:
    from otelperf.emit.pipeline import Pipeline

MAX_ERROR_TYPES = 50  # distinct error_type values per operation before __overflow__


class OpStats:
    """Per-operation state of one pipeline: frozen attributes and running totals."""

    __slots__ = (
        "bytes",
        "cpu_ns",
        "error_attrs",
        "in_flight",
        "items",
        "label",
        "ok_attrs",
        "op_attrs",
        "overflow",
        "pipeline",
    )  # fmt: skip

    def __init__(self, label: str, pipeline: Pipeline, overflow: bool = False) -> None:
        # Made once per distinct name: the label value is made exposition-safe here.
        label = safe_label(label)
        self.label = label
        self.pipeline = pipeline
        self.op_attrs = {N.OPERATION: label}
        # error_type is omitted on success (as OTel's error.type is); the Prometheus exporter
        # back-fills it with "", and one attribute fewer is measurably cheaper per record().
        self.ok_attrs = {N.OPERATION: label, N.OUTCOME: N.OUTCOME_SUCCESS}
        self.error_attrs: dict[str, dict[str, str]] = {}
        self.in_flight = 0
        self.items = 0
        self.bytes = 0
        self.cpu_ns = 0
        self.overflow = overflow

    def attrs_for_error(self, error_type: str) -> dict[str, str]:
        attrs = self.error_attrs.get(error_type)
        if attrs is None:
            if len(self.error_attrs) >= MAX_ERROR_TYPES:
                error_type = N.OVERFLOW
                attrs = self.error_attrs.get(error_type)
            if attrs is None:
                attrs = {
                    N.OPERATION: self.label,
                    N.OUTCOME: N.OUTCOME_ERROR,
                    N.ERROR_TYPE: safe_label(error_type),
                }
                self.error_attrs[error_type] = attrs
        return attrs


class Operation:
    """Handle of one running operation: ``with measure("parse") as op: op.add_items(3)``."""

    __slots__ = (
        "_bytes",
        "_cpu0",
        "_cpu_acc",
        "_done",
        "_elapsed",
        "_failed",
        "_items",
        "_rss0",
        "_span",
        "_stats",
        "_t0",
        "_token",
        "name",
    )  # fmt: skip

    _stats: OpStats

    def __init__(self, name: str) -> None:
        self.name = name
        self._span: Span = trace.INVALID_SPAN
        self._token: Token[otel_context.Context] | None = None
        self._t0 = 0
        self._cpu0 = -1
        self._cpu_acc = 0
        self._elapsed = 0
        self._rss0 = -1
        self._items = 0
        self._bytes = 0
        self._failed = False
        self._done = False

    def add_items(self, n: int) -> None:
        """Count ``n`` items (rows, records, messages) processed by this operation.

        >>> with measure("parse") as op:
        ...     op.add_items(3)
        """
        if type(n) is not int or n < 0 or n > MAX_COUNT:
            raise bad_count("add_items", n)
        self._items += n

    def add_bytes(self, n: int) -> None:
        """Count ``n`` bytes processed by this operation.

        >>> with measure("download") as op:
        ...     op.add_bytes(1024)
        """
        if type(n) is not int or n < 0 or n > MAX_COUNT:
            raise bad_count("add_bytes", n)
        self._bytes += n

    def set_attribute(self, key: str, value: Any) -> None:
        """Set an attribute on this operation's span (not a metric label: no cardinality cost).

        >>> with measure("query") as op:
        ...     op.set_attribute("db.table", "orders")
        """
        if not isinstance(key, str) or not key:
            raise TypeError(f"set_attribute(key={show(key)}): key must be a non-empty string")
        self._span.set_attribute(key, value)

    @property
    def span(self) -> Span:
        """The OTel span of this operation."""
        return self._span


def bad_count(method: str, n: object) -> Exception:
    """The error add_items/add_bytes raise for ``n`` (an int below 0, or not an int)."""
    if isinstance(n, int) and not isinstance(n, bool):
        return ValueError(f"{method}(n={show(n)}): n must be between 0 and 2**63 - 1")
    return TypeError(f"{method}(n={show(n)}): n must be an int, got {type(n).__name__}")
