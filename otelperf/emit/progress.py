"""Live progress of long stages on a terminal: ``measure("load", expected_items=N)``.

A stage that declares its total gets one line on stderr, redrawn in place by one daemon thread
(at most every :data:`INTERVAL` seconds): its name, items done / N, the percentage, the rate,
the time elapsed and an ETA.  When the stage ends, a final line with the totals and a newline
is written (by the thread that ended it, so the application's next output comes after it).

Only a person at a terminal wants this: nothing is drawn unless stderr is a TTY, so CI logs,
pipes and files never see an escape code, and ``OTELPERF_PROGRESS=off`` turns it off on a
terminal too.  ``measure()`` without ``expected_items`` never reaches this module, so the
ordinary hot path pays nothing for it.

What counts as an item (docs/progress.md):

- a ``with measure(..., expected_items=N) as op`` block is one stage run; its items are the
  ones ``op.add_items()`` counts, read live;
- a function decorated with ``measure(..., expected_items=N)`` is a stage across its calls:
  each call that returns or raises counts as one item (a decorated function has no handle to
  add items to), and a decorated generator counts each item it yields.  The run ends with its
  final line when N items are done; the next call starts a new run.  A run still short of N
  when the process exits gets a final line marked ``stopped``.

Robustness: everything runs under one lock; at most :data:`MAX_STAGES` stages are tracked (the
least recently started one is forgotten, without a final line, to make room); ended stages are
forgotten; a fork() leaves the child with no stages and no thread (it starts its own on its
first stage); a failure here is caught, counted in ``otelperf_internal_errors_total
{component="progress"}`` and turns drawing off, never raising into the application.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import Any

from otelperf._core import fork
from otelperf._core.warn import Once
from otelperf.emit.checks import MAX_COUNT
from otelperf.emit.operation import Operation
from otelperf.emit.pipeline import INTERRUPTIONS, STATE
from otelperf.errors import ConfigError
from otelperf.parsing import show

ENV = "OTELPERF_PROGRESS"
COMPONENT = "progress"
INTERVAL = 0.25  # seconds between redraws: smooth enough to read, ~4 writes a second at most
MAX_STAGES = 64  # stages tracked at once
MIN_RATE_SECONDS = 0.2  # a live rate (and an ETA) is shown once the stage has run this long
NAME_WIDTH = 60  # characters of a stage name shown
_AUTO = frozenset({"", "auto"})
_OFF = frozenset({"off", "0", "false", "no"})
_CLEAR = "\r\x1b[2K"  # back to the line's start, erase it


def check_expected(value: object) -> int:
    """``expected_items``: an int from 1 to 2**63 - 1 (not a bool), else an error naming it.

    >>> check_expected(1000)
    1000
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"measure(expected_items={show(value)}): expected_items must be an int, "
            f"got {type(value).__name__}"
        )
    if value < 1 or value > MAX_COUNT:
        raise ValueError(
            f"measure(expected_items={show(value)}): expected_items must be between 1 and "
            "2**63 - 1 (the number of items the stage will process)"
        )
    return value


def setting_error(raw: str) -> str:
    """The message for an invalid ``OTELPERF_PROGRESS`` value."""
    return f"{ENV}={show(raw)} is not valid: use auto (the default) or off"


def read_setting(environ: Any = os.environ) -> bool:
    """``OTELPERF_PROGRESS``: True for ``auto`` (or unset), False for ``off``/``0``/``false``/
    ``no``; anything else raises ConfigError naming the variable.

    >>> read_setting({"OTELPERF_PROGRESS": "off"})
    False
    """
    raw = environ.get(ENV)
    value = "" if raw is None else raw.strip().lower()
    if value in _AUTO:
        return True
    if value in _OFF:
        return False
    raise ConfigError(setting_error(raw))


def _stderr_is_tty() -> bool:
    stream = sys.stderr
    try:
        return stream is not None and bool(stream.isatty())
    except Exception:  # a closed or replaced stream: no terminal to draw on
        return False


def wanted() -> bool:
    """Whether a stage starting now should be drawn.

    The variable is read here, when a stage with expected_items starts, not in configure():
    measure() works without configure(), and a bad value must not stop the application (the
    documented message is logged once on the "otelperf" logger and progress stays off).
    """
    try:
        on = read_setting()
    except ValueError as exc:
        _warned.warn(("setting", str(exc)), "otelperf: %s; live progress is off", exc)
        return False
    return on and not _broken and _stderr_is_tty()


# -- lines -------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``4.2s`` under a minute, ``m:ss`` under an hour, else ``h:mm:ss``.

    >>> duration(4.25), duration(75), duration(3725)
    ('4.2s', '1:15', '1:02:05')
    """
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _figures(done: int, expected: int, elapsed: float) -> tuple[str, float]:
    rate = done / elapsed if elapsed > 0 else 0.0
    return f"{done}/{expected} items ({100.0 * done / expected:.1f}%)", rate


def live_line(name: str, done: int, expected: int, elapsed: float) -> str:
    """What the terminal shows while a stage runs.

    >>> live_line("load", 500, 1000, 2.0)
    'load: 500/1000 items (50.0%) | 250.0 items/s | elapsed 2.0s | ETA 2.0s'
    """
    counts, rate = _figures(done, expected, elapsed)
    if elapsed < MIN_RATE_SECONDS:
        # The first moments say nothing about the rate (1 item in 0.1 ms is not 10,000/s).
        return f"{name}: {counts} | ? items/s | elapsed {duration(elapsed)} | ETA ?"
    if done >= expected:
        eta = duration(0)
    elif rate > 0:
        eta = duration((expected - done) / rate)
    else:
        eta = "?"
    return f"{name}: {counts} | {rate:.1f} items/s | elapsed {duration(elapsed)} | ETA {eta}"


def final_line(name: str, done: int, expected: int, elapsed: float, status: str) -> str:
    """The line left on the terminal when a stage ends.

    >>> final_line("load", 1000, 1000, 4.0, "done")
    'load: done, 1000/1000 items (100.0%) in 4.0s | 250.0 items/s'
    """
    counts, rate = _figures(done, expected, elapsed)
    return f"{name}: {status}, {counts} in {duration(elapsed)} | {rate:.1f} items/s"


def _printable(name: str) -> str:
    # A name with a newline or an escape sequence would break the line being redrawn.
    text = "".join(c if c.isprintable() else "?" for c in name[: NAME_WIDTH + 1])
    return text if len(text) <= NAME_WIDTH else text[: NAME_WIDTH - 3] + "..."


def status_of(exc: BaseException | None) -> str:
    """``done``, ``interrupted`` (cancelled, Ctrl-C, exit) or ``failed (ErrorType)``."""
    if exc is None:
        return "done"
    if isinstance(exc, INTERRUPTIONS):
        return "interrupted"
    return f"failed ({type(exc).__name__})"


# -- the tracked stages ------------------------------------------------------------------------


class Stage:
    """One run of a stage: its total, the items done so far and when it started."""

    __slots__ = ("alive", "done", "expected", "name", "op", "t0")

    def __init__(self, name: str, expected: int, op: Operation | None) -> None:
        self.name = _printable(name)
        self.expected = expected
        self.op = op  # a with-block's handle: its items are read live
        self.done = 0
        self.t0 = time.monotonic()
        self.alive = True

    def items(self) -> int:
        op = self.op
        return op._items if op is not None else self.done


_lock = threading.Lock()
_runs_lock = threading.Lock()  # taken before _lock, never inside it
_stages: dict[int, Stage] = {}  # id(stage) -> stage, in the order they started
_wake = threading.Event()
_thread: threading.Thread | None = None
_drawn = False  # a live line is on the terminal now (no newline after it yet)
_broken = False  # a write failed: drawing stays off in this process
_exit_hooked = False
_warned = Once()


def begin(name: str, expected: int, op: Operation | None = None) -> Stage | None:
    """Start tracking a stage run (None: nothing is drawn, see :func:`wanted`)."""
    if not wanted():
        return None
    try:
        stage = Stage(name, expected, op)
        with _lock:
            while len(_stages) >= MAX_STAGES:
                _stages.pop(next(iter(_stages))).alive = False
            _stages[id(stage)] = stage
            _start_thread()
            _wake.set()
        return stage
    except Exception as exc:
        _failed(exc)
        return None


def end(stage: Stage, status: str) -> None:
    """End a stage run: its final line (with a newline), and it is forgotten."""
    global _drawn
    try:
        with _lock:
            if _stages.pop(id(stage), None) is None:
                return  # forgotten already (the cap, a fork, or process exit)
            stage.alive = False
            line = final_line(
                stage.name, stage.items(), stage.expected, time.monotonic() - stage.t0, status
            )
            # Erase only our own live line: text the application left without a newline stays.
            _write((_CLEAR if _drawn else "") + line + "\n")
            _drawn = False
    except Exception as exc:
        _failed(exc)


def add(stage: Stage, n: int) -> bool:
    """Count ``n`` items of a decorated stage's run; True once the run is complete (it ended)."""
    with _lock:
        stage.done += n
        complete = stage.done >= stage.expected
    if complete:
        end(stage, "done")
    return complete


def _write(text: str) -> None:
    # Called with _lock held, so a redraw never lands between a final line and its newline.
    global _broken
    stream = sys.stderr
    if stream is None or _broken or not _stderr_is_tty():
        return  # the application redirected stderr since the stage started: nothing for logs
    try:
        stream.write(text)
        stream.flush()
    except Exception:
        _broken = True  # a terminal that went away: stop rather than fail 4 times a second
        raise


def _draw() -> None:
    global _drawn
    stage = next(reversed(_stages.values()))  # the most recently started run
    line = live_line(stage.name, stage.items(), stage.expected, time.monotonic() - stage.t0)
    if len(_stages) > 1:
        line += f" | +{len(_stages) - 1} more"
    try:
        width = os.get_terminal_size(sys.stderr.fileno()).columns
    except Exception:
        width = 0
    if width <= 0:  # a terminal that reports no size (a bare pty)
        width = 80
    # A line longer than the terminal wraps, and "\r" would then redraw only its last part.
    _write(_CLEAR + line[: max(width - 1, 10)])
    _drawn = True


def _loop() -> None:
    while True:
        _wake.wait()
        try:
            with _lock:
                if not _stages or _broken:
                    _wake.clear()
                    continue
                _draw()
        except Exception as exc:
            _failed(exc)
        time.sleep(INTERVAL)


def _start_thread() -> None:
    # With _lock held.  One thread per process, started on the first stage drawn.
    global _thread, _exit_hooked
    if _thread is not None and _thread.is_alive():
        return
    _thread = threading.Thread(target=_loop, name="otelperf-progress", daemon=True)
    _thread.start()
    if not _exit_hooked:
        _exit_hooked = True
        atexit.register(_at_exit)


def _at_exit() -> None:
    # A decorated stage still short of its total: leave its final line, not a half-drawn one.
    for stage in list(_stages.values()):
        end(stage, "stopped")


def _failed(exc: BaseException) -> None:
    global _broken
    _broken = True
    p = STATE.pipeline
    if p is not None:
        p.errors.error(COMPONENT, exc)
    else:
        _warned.warn(("failed", type(exc)), "otelperf: live progress failed (%r); it is off", exc)


_held_over_fork = False


def _before_fork() -> None:
    # Hold the lock across fork() so that the drawing thread is never half-way through a write
    # (holding stderr's buffer lock) when the child is made.  Bounded: a fork from a signal
    # handler that interrupted this module must not wait forever.
    global _held_over_fork
    _held_over_fork = _lock.acquire(timeout=1.0)


def _after_fork_in_parent() -> None:
    global _held_over_fork
    if _held_over_fork:
        _held_over_fork = False
        _lock.release()


def _after_fork() -> None:
    # The drawing thread does not survive fork(), and the parent's stages are not the child's.
    global _lock, _runs_lock, _wake, _thread, _drawn, _held_over_fork
    _held_over_fork = False
    _lock = threading.Lock()
    _runs_lock = threading.Lock()
    for stage in _stages.values():
        stage.alive = False
    _stages.clear()
    _wake = threading.Event()
    _thread = None
    _drawn = False


fork.on_fork(_after_fork)
fork.around_fork(_before_fork, _after_fork_in_parent)


# -- decorated stages --------------------------------------------------------------------------


class Runs:
    """The runs of one decorated stage: the current one, started by the first call after the
    last one completed.  ``off`` remembers that this process draws nothing, so a call then
    costs one attribute read.  Several threads' calls add to the same run."""

    __slots__ = ("current", "expected", "name", "off")

    def __init__(self, name: str, expected: int) -> None:
        self.name = name
        self.expected = expected
        self.current: Stage | None = None
        self.off = False

    def count(self, n: int) -> None:
        try:
            stage = self.current
            if stage is None or not stage.alive:
                with _runs_lock:  # two threads finding no run start one between them
                    stage = self.current
                    if stage is None or not stage.alive:
                        stage = self.current = begin(self.name, self.expected)
                if stage is None:
                    self.off = True
                    return
            if add(stage, n):
                self.current = None
        except Exception as exc:
            _failed(exc)
