"""Where a report's figures come from, each reduced to the same :class:`Totals`.

:mod:`~otelperf.report.sources.endpoint`: a registry of this process or a scraped /metrics
page, totals since the process started; :mod:`~otelperf.report.sources.prometheus`: a
Prometheus server over a window, across instances.  :mod:`~otelperf.report.sources.series` is
the one mapping of metrics to :class:`Totals` fields they share.
"""
