"""A process's last act: flush, write the final report, push the final metrics.

A batch job is gone before Prometheus scrapes it, so whatever it measured must leave with it
(docs/batch.md): the report goes to stderr or a file, the registry to a Pushgateway, and OTLP
readers are flushed (their exporter pushes).  :class:`Finisher` does it once, whichever comes
first: the program returning (``otelperf run``), ``Telemetry.shutdown()``, interpreter exit, or
SIGTERM.  Nothing here may change how the program exits: every failure is reported on stderr
and swallowed.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from otelperf._core import sdk_compat
from otelperf._core.warn import log
from otelperf.config import Settings
from otelperf.expose.push import PushFailed, push_registry

if TYPE_CHECKING:  # the report is imported only by a process that writes one
    from otelperf.report.timeline import TimelineRecorder


@dataclass(frozen=True)
class ExitPlan:
    """What to do at exit, from the settings (``report_at_exit``, ``report_file``,
    ``push_gateway_url``, ``push_job``)."""

    report: str  # text | json | html | none
    report_file: str | None
    push_gateway_url: str | None
    job: str
    instance: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ExitPlan:
        return cls(
            report=settings.report_at_exit,
            report_file=settings.report_file,
            push_gateway_url=settings.push_gateway_url,
            job=settings.push_job or settings.service_name,
            instance=socket.gethostname(),
        )


_RENDERERS = {"text": "to_text", "json": "to_json", "html": "to_html"}  # Report's methods


class Finisher:
    """Runs :meth:`finish` once; ``flush`` flushes the providers (OTLP exporters push then),
    ``build_report`` builds the final report from the registry, given the points of
    ``timeline`` (a started recorder, for the HTML page's throughput over the run)."""

    def __init__(
        self,
        plan: ExitPlan,
        registry: Any,
        flush: Callable[[], None],
        build_report: Callable[[tuple[Any, ...]], Any],
        stderr: Callable[[], IO[str]] = lambda: sys.stderr,
        timeline: TimelineRecorder | None = None,
    ) -> None:
        self.plan = plan
        self._registry = registry
        self._flush = flush
        self._build_report = build_report
        self._stderr = stderr
        self._lock = threading.Lock()
        self._done = False
        self.timeline = timeline  # started: the HTML page draws throughput over the run

    @property
    def done(self) -> bool:
        return self._done

    def finish(self) -> None:
        """Flush, report, push; the first call does it, later calls return at once."""
        with self._lock:
            if self._done:
                return
            self._done = True
        points: tuple[Any, ...] = ()
        if self.timeline is not None:
            self.timeline.stop()
            points = tuple(self.timeline.points())
        self._step("flushing the providers", self._flush)
        if self.plan.report != "none":
            self._step("writing the report", lambda: self._write_report(points))
        if self.plan.push_gateway_url is not None:
            self._step("pushing the metrics", self._push)

    def _write_report(self, points: tuple[Any, ...]) -> None:
        report = self._build_report(points)
        text = getattr(report, _RENDERERS[self.plan.report])()
        text = text if text.endswith("\n") else text + "\n"
        if self.plan.report_file is None:
            out = self._stderr()
            out.write(text)
            out.flush()
            return
        with open(self.plan.report_file, "w", encoding="utf-8") as f:
            f.write(text)

    def _push(self) -> None:
        assert self.plan.push_gateway_url is not None
        push_registry(self.plan.push_gateway_url, self._registry,
                      job=self.plan.job, instance=self.plan.instance)  # fmt: skip

    def _step(self, what: str, step: Callable[[], None]) -> None:
        try:
            step()
        except PushFailed as exc:
            self._say(f"otelperf: {exc}")
        except Exception as exc:  # the program's exit status is not otelperf's to change
            self._say(f"otelperf: {what} at exit failed: {type(exc).__name__}: {exc}")

    def _say(self, line: str) -> None:
        try:
            out = self._stderr()
            out.write(line + "\n")
            out.flush()
        except Exception:  # stderr closed: nothing left to tell
            pass


def flush_providers(tracer_provider: Any, meter_provider: Any) -> None:
    """Flush both providers, the application's own too: their OTLP exporters push on flush.
    A PrometheusMetricReader is left out (``sdk_compat.flush_push_readers``); a failure is
    logged, never raised."""
    steps = (
        ("tracer provider", tracer_provider, lambda: tracer_provider.force_flush()),
        ("meter provider", meter_provider, lambda: sdk_compat.flush_push_readers(meter_provider)),
    )
    for what, provider, flush in steps:
        if provider is None or not hasattr(provider, "force_flush"):
            continue
        try:
            flush()
        except Exception as exc:  # a flush failure must not break the exit
            log.warning("otelperf: flushing the %s failed: %s", what, exc)
