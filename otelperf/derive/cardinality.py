"""Series bounds: otelperf's caps bind before the OTel SDK's cardinality limit.

The SDK folds an instrument's series past its limit (2,000 by default) into
``otel_metric_overflow="true"`` without a word; otelperf's own caps count their overflow in
``otelperf_cardinality_overflow_total``.  The views here lift the SDK's limit above the most
series otelperf's caps allow, for otelperf's meters only.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics.view import View

from otelperf import _names as N
from otelperf.derive.instruments import METER_NAME as PROCESSOR_METER_NAME
from otelperf.derive.totals import PAIRS_PER_OPERATION
from otelperf.emit.operation import MAX_ERROR_TYPES


def series_bound(max_operations: int) -> int:
    """The most series any otelperf instrument can have under otelperf's own caps.

    The widest is a per-(operation, outcome, error_type) histogram: ``max_operations`` names
    plus ``__overflow__``, each with success and up to MAX_ERROR_TYPES error types plus their
    ``__overflow__``; the (root, operation) pairs (PAIRS_PER_OPERATION per name), the caches
    (two results for 2 * max_operations names) and the API tables are all narrower.

    >>> series_bound(1000)
    52104
    """
    return (max_operations + 2) * max(MAX_ERROR_TYPES + 2, PAIRS_PER_OPERATION + 2, 4)


def cardinality_views(max_operations: int) -> list[View]:
    """Views lifting the OTel SDK's cardinality limit (2,000 series per instrument by default,
    past which it folds series into ``otel_metric_overflow="true"`` silently) above what
    otelperf's caps allow, for otelperf's meters only: otelperf's caps, which count their
    overflow in ``otelperf_cardinality_overflow_total``, always bind first.  configure() gives
    them to the MeterProvider it creates; give them to your own (``MeterProvider(views=...)``)
    when otelperf records into it.

    >>> len(cardinality_views(1000))
    3
    """
    limit = series_bound(max_operations)
    return [
        View(meter_name=meter, aggregation_cardinality_limit=limit)
        for meter in (N.METER_NAME, PROCESSOR_METER_NAME, N.RESOURCES_METER_NAME)
    ]
