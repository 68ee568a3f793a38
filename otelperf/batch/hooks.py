"""When the last act runs: at interpreter exit, and on SIGTERM.

Python runs ``atexit`` functions when the program returns, calls ``sys.exit()``, or ends with
an uncaught exception (KeyboardInterrupt included), but not when SIGTERM's default action kills
it.  So, when nothing else handles SIGTERM, :class:`ExitHooks` turns it into ``SystemExit(143)``
(128 + the signal number, what a shell reports for a SIGTERM death): the program unwinds, its
``finally`` blocks and measured operations end, and the atexit function finishes.  A program
that installs its own SIGTERM handler keeps it (a server's graceful shutdown); ours is only
installed over the default action, from the main thread.

Only the process that set otelperf up finishes: a forked child (a gunicorn worker, a
multiprocessing worker) inherits the hooks but neither reports nor pushes for the parent.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any

from otelperf import _names as N
from otelperf.batch.finish import ExitPlan, Finisher, flush_providers
from otelperf.config import Settings


def arm(
    settings: Settings,
    registry: Any,
    tracer_provider: Any,
    meter_provider: Any,
    build_report: Callable[[tuple[Any, ...]], Any],
) -> ExitHooks | None:
    """The exit hooks ``settings`` ask for (a report or a push at exit), None when none.
    ``build_report(timeline)`` builds the final report; for an HTML page a timeline recorder
    samples throughput from now on."""
    if not settings.finishes_at_exit or settings.disabled:
        return None
    plan = ExitPlan.from_settings(settings)
    timeline = None
    if plan.report == "html":
        from otelperf.report.timeline import TimelineRecorder  # the report: only when asked

        meter = meter_provider.get_meter(N.METER_NAME)
        timeline = TimelineRecorder(registry, meter=meter).start()
    flush = partial(flush_providers, tracer_provider, meter_provider)
    return ExitHooks(Finisher(plan, registry, flush, build_report, timeline=timeline))


class ExitHooks:
    """``finisher.finish()`` at interpreter exit and on SIGTERM, in the arming process only."""

    def __init__(self, finisher: Finisher) -> None:
        self.finisher = finisher
        self.signum: int | None = None  # the signal that ended the program, if one did
        self._pid = os.getpid()
        self._handler_installed = False
        atexit.register(self._at_exit)
        on_main = threading.current_thread() is threading.main_thread()
        if on_main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self._on_sigterm)
            self._handler_installed = True

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked child: what the default would have done
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self.signum is not None or self.finisher.done:
            return  # already ending: let the finish complete (it is bounded)
        self.signum = signum
        raise SystemExit(128 + signum)

    def _at_exit(self) -> None:
        if os.getpid() == self._pid:
            self.finisher.finish()

    def finish(self) -> None:
        """Finish now (``otelperf run`` when the program returned, ``Telemetry.shutdown()``)."""
        if os.getpid() == self._pid:
            self.finisher.finish()

    def disarm(self) -> None:
        """Forget the hooks: the atexit function, and our SIGTERM handler if still in place."""
        atexit.unregister(self._at_exit)
        on_main = threading.current_thread() is threading.main_thread()
        if self._handler_installed and on_main:
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._handler_installed = False
