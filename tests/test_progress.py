"""measure(name, expected_items=N): live progress on a real pseudo-terminal, and nothing elsewhere.

Each program runs in a subprocess whose stderr is the slave end of a pty (a terminal, as a
person's) or a pipe (as CI's); the master side is read and replayed through a small terminal
model (carriage return, erase line, newline), so the tests assert what a person would see.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time

import pytest

from otelperf import ConfigError, measure
from otelperf.emit import progress
from otelperf.emit.measure import Measure, ProgressMeasure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A stage of 1000 items over ~1.2 s, held at 500 for 0.8 s (about three redraws show it).
STAGE = """
import sys, time
from otelperf import measure
with measure("load", expected_items=1000) as op:
    for _ in range(4):
        op.add_items(125)
        time.sleep(0.1)
    time.sleep(0.8)
    for _ in range(4):
        op.add_items(125)
        time.sleep(0.05)
print("items", op._items)
"""

LIVE = re.compile(
    r"load: (\d+)/1000 items \((\d+\.\d)%\) \| (\d+\.\d) items/s \| elapsed (\d+\.\d)s"
    r" \| ETA (\d+\.\d)s"
)
FINAL = re.compile(r"load: done, 1000/1000 items \(100\.0%\) in (\d+\.\d)s \| (\d+\.\d) items/s")


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != progress.ENV}
    out.update(extra)
    return out


def run_on_pty(code: str, **extra: str) -> tuple[int, str, str]:
    """Run ``code`` with stderr on a 120x40 pty: (status, what the pty received, stdout)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env(**extra),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    received = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every slave end is closed, the program has exited
                break
            if not chunk:
                break
            received += chunk
    finally:
        os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    return proc.wait(timeout=30), received.decode(), out


def run_on_pipe(code: str, **extra: str) -> tuple[int, bytes, str]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env(**extra),
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )  # fmt: skip
    return proc.returncode, proc.stderr, proc.stdout.decode()


def screen(raw: str) -> list[str]:
    """What a terminal shows after ``raw`` (the pty turns "\\n" into "\\r\\n")."""
    assert "\x1b" not in raw.replace("\x1b[2K", ""), "only the erase-line escape is used"
    lines = [""]
    col = 0
    i = 0
    while i < len(raw):
        if raw.startswith("\x1b[2K", i):
            lines[-1] = ""
            i += 4
            continue
        c = raw[i]
        if c == "\r":
            col = 0
        elif c == "\n":
            lines.append("")
            col = 0
        else:
            line = lines[-1].ljust(col)
            lines[-1] = line[:col] + c + line[col + 1 :]
            col += 1
        i += 1
    return lines


def frames(raw: str) -> list[str]:
    """Every line drawn: the text after each "\\r\\x1b[2K"."""
    return [f.split("\r")[0] for f in raw.split("\r\x1b[2K")[1:]]


def test_a_with_block_shows_counts_percentage_rate_elapsed_eta_and_a_final_line() -> None:
    status, raw, out = run_on_pty(STAGE + "print('after the stage', file=sys.stderr)\n")
    assert status == 0
    assert out == "items 1000\n"
    live = [m for f in frames(raw) if (m := LIVE.fullmatch(f))]
    assert len(live) >= 3, raw  # redrawn in place as the count moves
    held = [m for m in live if m.group(1) == "500"]
    assert held, raw
    for m in held:
        rate, elapsed, eta = float(m.group(3)), float(m.group(4)), float(m.group(5))
        assert m.group(2) == "50.0"
        assert 0.35 <= elapsed <= 3.0
        assert rate == pytest.approx(500 / elapsed, rel=0.2)
        assert eta == pytest.approx(500 / rate, abs=0.051)  # the remaining 500 at that rate
    # Redrawn at most ~4 times a second: ~1.4 s of stage, so at most a handful of lines.
    assert len(frames(raw)) <= 12, raw
    # What the person sees at the end: the final line, then the program's next output.
    shown = screen(raw)
    assert shown[-1] == ""
    assert shown[-2] == "after the stage"
    final = FINAL.fullmatch(shown[-3])
    assert final, shown
    total = float(final.group(1))
    assert 1.0 <= total <= 5.0
    assert float(final.group(2)) == pytest.approx(1000 / total, rel=0.1)
    assert len(shown) == 3, shown  # no live line left behind


DECORATED = """
import asyncio, sys, time
from otelperf import measure

@measure("rows", expected_items=8)
def handle(i):
    time.sleep(0.03)
    if i == 3:
        raise KeyError(i)  # a call that raises still counts as one processed item
    return i

@measure("read", expected_items=5)
def read():
    for i in range(5):
        time.sleep(0.03)
        yield i

@measure("fetch", expected_items=3)
async def fetch(i):
    await asyncio.sleep(0.03)
    return i

for i in range(8):
    try:
        handle(i)
    except KeyError:
        pass
print("handle", handle(8))  # a ninth call starts a new run, stopped at exit
print("read", list(read()))

async def main():
    return [await fetch(i) for i in range(3)]

print("fetched", asyncio.run(main()))

@measure("stream", expected_items=3)
async def stream():
    for i in range(3):
        await asyncio.sleep(0.02)
        yield i

async def consume():
    async with measure("aload", expected_items=4) as op:
        for _ in range(4):
            await asyncio.sleep(0.02)
            op.add_items(1)
    return [i async for i in stream()]

print("streamed", asyncio.run(consume()))
try:
    with measure("parse", expected_items=1000) as op:
        op.add_items(300)
        raise ValueError("bad row")
except ValueError:
    pass
print("end")
"""


def test_decorated_functions_generators_and_coroutines_count_per_call_and_per_item() -> None:
    status, raw, out = run_on_pty(DECORATED)
    assert status == 0, raw
    assert out == "handle 8\nread [0, 1, 2, 3, 4]\nfetched [0, 1, 2]\nstreamed [0, 1, 2]\nend\n"
    finals = [line for line in screen(raw) if line]
    shapes = [re.sub(r"in \d+\.\ds \| \d+\.\d items/s$", "in T | R items/s", f) for f in finals]
    assert shapes == [
        "rows: done, 8/8 items (100.0%) in T | R items/s",
        "read: done, 5/5 items (100.0%) in T | R items/s",
        "fetch: done, 3/3 items (100.0%) in T | R items/s",
        "aload: done, 4/4 items (100.0%) in T | R items/s",
        "stream: done, 3/3 items (100.0%) in T | R items/s",
        "parse: failed (ValueError), 300/1000 items (30.0%) in T | R items/s",
        "rows: stopped, 1/8 items (12.5%) in T | R items/s",  # the ninth call's run, at exit
    ], raw


def test_stderr_not_a_terminal_gets_nothing_and_no_thread_starts() -> None:
    code = STAGE + (
        "import threading\n"
        "print('threads', sorted(t.name for t in threading.enumerate()))\n"
    )  # fmt: skip
    status, err, out = run_on_pipe(code)
    assert status == 0
    assert err == b""
    assert out == "items 1000\nthreads ['MainThread']\n"


SHORT = """
import threading, time
from otelperf import measure
with measure("load", expected_items=10) as op:
    for _ in range(3):
        op.add_items(2)
        time.sleep(0.15)
print(op._items, sorted(t.name for t in threading.enumerate()))
"""


@pytest.mark.parametrize("value", ["off", "0", "false", " OFF "])
def test_off_turns_it_off_on_a_terminal(value: str) -> None:
    status, raw, out = run_on_pty(SHORT, OTELPERF_PROGRESS=value)
    assert status == 0
    assert raw == ""
    assert out == "6 ['MainThread']\n"


def test_auto_is_the_default_spelled_out() -> None:
    status, raw, out = run_on_pty(SHORT, OTELPERF_PROGRESS="auto")
    assert status == 0
    assert out == "6 ['MainThread', 'otelperf-progress']\n"
    assert screen(raw)[0].startswith("load: done, 6/10 items (60.0%) in ")
    assert screen(raw)[1:] == [""]


def test_an_invalid_variable_is_named_once_and_the_application_runs_on() -> None:
    status, raw, out = run_on_pty(SHORT + SHORT, OTELPERF_PROGRESS="maybe")
    assert status == 0
    assert out == "6 ['MainThread']\n" * 2
    assert screen(raw) == [
        "otelperf: OTELPERF_PROGRESS='maybe' is not valid: use auto (the default) or off; "
        "live progress is off",
        "",
    ]


def test_read_setting_is_the_strict_check() -> None:
    assert progress.read_setting({}) is True
    assert progress.read_setting({"OTELPERF_PROGRESS": ""}) is True
    assert progress.read_setting({"OTELPERF_PROGRESS": "Auto"}) is True
    for off in ("off", "0", "false", "no"):
        assert progress.read_setting({"OTELPERF_PROGRESS": off}) is False
    for bad in ("on", "1", "true", "maybe"):
        with pytest.raises(ConfigError) as err:
            progress.read_setting({"OTELPERF_PROGRESS": bad})
        assert str(err.value) == (
            f"OTELPERF_PROGRESS={bad!r} is not valid: use auto (the default) or off"
        )


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "measure(expected_items=0): expected_items must be between 1 and "
                        "2**63 - 1 (the number of items the stage will process)"),
        (-5, ValueError, "measure(expected_items=-5): expected_items must be between 1 and "
                         "2**63 - 1 (the number of items the stage will process)"),
        (2**63, ValueError, "measure(expected_items=9223372036854775808): expected_items must "
                            "be between 1 and 2**63 - 1 (the number of items the stage will "
                            "process)"),
        (True, TypeError, "measure(expected_items=True): expected_items must be an int, got bool"),
        (1.5, TypeError, "measure(expected_items=1.5): expected_items must be an int, got float"),
        ("10", TypeError, "measure(expected_items='10'): expected_items must be an int, got str"),
        ([], TypeError, "measure(expected_items=[]): expected_items must be an int, got list"),
    ],
)  # fmt: skip
def test_bad_expected_items_raise_naming_the_argument(
    value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as err:
        measure("load", expected_items=value)  # type: ignore[arg-type]
    assert str(err.value) == message


def test_without_expected_items_measure_is_the_plain_object_and_wrapper() -> None:
    assert type(measure("load")) is Measure
    assert type(measure("load", expected_items=None)) is Measure
    assert type(measure("load", expected_items=3)) is ProgressMeasure

    def body() -> int:
        return 1

    plain = measure("plain")(body)
    assert plain.__wrapped__ is body  # measure's own wrapper, nothing around it
    counted = measure("counted", expected_items=2)(body)
    assert counted.__wrapped__.__wrapped__ is body
    assert counted() == 1


def test_a_stage_with_expected_items_still_records_its_metrics() -> None:
    code = """
    from prometheus_client import CollectorRegistry, generate_latest
    import otelperf
    registry = CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=registry, set_global=False)
    with otelperf.measure("load", expected_items=10) as op:
        op.add_items(7)

    @otelperf.measure("row", expected_items=4)
    def row():
        pass

    for _ in range(5):
        row()
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith(("otelperf_operation_items_total{",
                            "otelperf_operation_duration_seconds_count{")):
            print(line)
    t.shutdown()
    """
    status, raw, out = run_on_pty(code)
    assert status == 0, raw
    assert sorted(out.splitlines()) == [
        'otelperf_operation_duration_seconds_count{operation="load",outcome="success"} 1.0',
        'otelperf_operation_duration_seconds_count{operation="row",outcome="success"} 5.0',
        'otelperf_operation_items_total{operation="load"} 7.0',
    ]
    finals = [line.split(" in ")[0] for line in screen(raw) if line]
    assert finals == [
        "load: done, 7/10 items (70.0%)",
        "row: done, 4/4 items (100.0%)",
        "row: stopped, 1/4 items (25.0%)",
    ]


def test_a_terminal_that_fails_is_counted_and_never_reaches_the_application() -> None:
    code = """
    import io, sys, time
    from prometheus_client import CollectorRegistry, generate_latest
    import otelperf
    registry = CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=registry, set_global=False)

    class Failing(io.TextIOBase):
        # The application's own stderr wrapper, still a terminal, whose writes now fail.
        def isatty(self):
            return True

        def fileno(self):
            return 2

        def write(self, text):
            raise OSError(5, "Input/output error")

    with otelperf.measure("load", expected_items=10) as op:
        op.add_items(1)
        time.sleep(0.3)
        sys.stderr = Failing()
        time.sleep(0.6)
        op.add_items(9)
    sys.stderr = sys.__stderr__
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith(("otelperf_internal_errors_total{",
                            "otelperf_operation_items_total{")):
            print(line)
    with otelperf.measure("load", expected_items=10) as op:  # drawing stays off, no error
        op.add_items(10)
    print("ok", op._items)
    t.shutdown()
    """
    status, raw, out = run_on_pty(code)
    assert status == 0
    assert sorted(out.splitlines()) == [
        "ok 10",
        'otelperf_internal_errors_total{component="progress"} 1.0',
        'otelperf_operation_items_total{operation="load"} 10.0',
    ]
    # What the terminal got before it went away: the live line, and no final line.
    shown = screen(raw)
    assert len(shown) == 1, shown
    assert re.fullmatch(
        r"load: 1/10 items \(10\.0%\) \| (\?|\d+\.\d) items/s \| elapsed \d\.\ds \| ETA \S+",
        shown[0],
    ), shown


def test_a_forked_child_draws_its_own_stages_with_its_own_thread() -> None:
    code = """
    import os, threading, time
    from otelperf import measure
    with measure("parent", expected_items=4) as op:
        op.add_items(1)
        time.sleep(0.3)
        pid = os.fork()
        if pid == 0:
            names = sorted(t.name for t in threading.enumerate())
            with measure("child", expected_items=2) as cop:
                cop.add_items(2)
                time.sleep(0.3)
            names2 = sorted(t.name for t in threading.enumerate())
            print("child", names, names2, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        op.add_items(3)
    print("parent done", flush=True)
    """
    status, raw, out = run_on_pty(code)
    assert status == 0, raw
    assert out == ("child ['MainThread'] ['MainThread', 'otelperf-progress']\nparent done\n")
    finals = [line.split(" in ")[0] for line in screen(raw) if " in " in line]
    assert finals == ["child: done, 2/2 items (100.0%)", "parent: done, 4/4 items (100.0%)"]


def test_lines_and_durations() -> None:
    assert progress.live_line("load", 0, 1000, 0.0) == (
        "load: 0/1000 items (0.0%) | ? items/s | elapsed 0.0s | ETA ?"
    )
    assert progress.live_line("load", 1, 1000, 0.0001) == (
        "load: 1/1000 items (0.1%) | ? items/s | elapsed 0.0s | ETA ?"
    )
    assert progress.live_line("load", 0, 1000, 0.5) == (
        "load: 0/1000 items (0.0%) | 0.0 items/s | elapsed 0.5s | ETA ?"
    )
    assert progress.live_line("load", 1200, 1000, 2.0) == (
        "load: 1200/1000 items (120.0%) | 600.0 items/s | elapsed 2.0s | ETA 0.0s"
    )
    assert progress.live_line("load", 1, 3600, 1.0).endswith("ETA 59:59")
    assert progress.duration(7322.9) == "2:02:02"
    assert progress.status_of(None) == "done"
    assert progress.status_of(KeyboardInterrupt()) == "interrupted"
    assert progress.status_of(OSError("x")) == "failed (OSError)"
    stage = progress.Stage("a\nb\x1b[31m" + "x" * 100, 5, None)
    assert stage.name == "a?b?[31m" + "x" * 49 + "..."
    assert len(stage.name) == progress.NAME_WIDTH


def test_stderr_redirected_while_a_stage_runs_gets_nothing_more() -> None:
    code = """
    import os, time
    from otelperf import measure
    with measure("load", expected_items=10) as op:
        op.add_items(1)
        time.sleep(0.3)
        r, w = os.pipe()
        os.dup2(w, 2)  # now a pipe, as `2> log` would make it
        time.sleep(0.6)
        op.add_items(9)
    os.close(w)
    os.close(2)
    print("pipe got", repr(os.read(r, 65536)))
    """
    status, raw, out = run_on_pty(code)
    assert status == 0
    assert out == "pipe got b''\n"
    shown = screen(raw)
    assert len(shown) == 1 and shown[0].startswith("load: 1/10 items (10.0%) | "), shown


def test_nested_stages_draw_the_newest_with_a_count_of_the_others() -> None:
    code = """
    import time
    from otelperf import measure
    with measure("job", expected_items=2) as job:
        with measure("load", expected_items=4) as op:
            op.add_items(1)
            time.sleep(0.6)
            op.add_items(3)
        job.add_items(1)
        time.sleep(0.6)
        job.add_items(1)
    """
    status, raw, _out = run_on_pty(code)
    assert status == 0, raw
    drawn = frames(raw)
    assert any(f.startswith("load: 1/4 items (25.0%) | ") and f.endswith(" | +1 more")
               for f in drawn), drawn  # fmt: skip
    assert any(f.startswith("job: 1/2 items (50.0%) | ") and "more" not in f for f in drawn)
    finals = [line.split(" in ")[0] for line in screen(raw) if line]
    assert finals == ["load: done, 4/4 items (100.0%)", "job: done, 2/2 items (100.0%)"]


def test_at_most_max_stages_are_tracked_the_oldest_forgotten() -> None:
    code = """
    from contextlib import ExitStack
    from otelperf import measure
    from otelperf.emit import progress
    with ExitStack() as stack:
        for i in range(progress.MAX_STAGES + 6):
            stack.enter_context(measure(f"s{i}", expected_items=1)).add_items(1)
        print("tracked", len(progress._stages), flush=True)
    print("after", len(progress._stages))
    """
    status, raw, out = run_on_pty(code)
    assert status == 0, raw
    assert out == "tracked 64\nafter 0\n"
    finals = [line.split(",")[0] for line in screen(raw) if line]
    # Closed newest first; s0 to s5 were forgotten to make room and get no final line.
    assert finals == [f"s{i}: done" for i in range(69, 5, -1)]


def test_calls_from_several_threads_make_one_run_with_an_exact_total() -> None:
    code = """
    import threading, time
    from otelperf import measure

    @measure("rows", expected_items=400)
    def handle():
        time.sleep(0.001)

    def work():
        for _ in range(100):
            handle()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("ok")
    """
    status, raw, out = run_on_pty(code)
    assert status == 0, raw
    assert out == "ok\n"
    finals = [line.split(" in ")[0] for line in screen(raw) if line]
    assert finals == ["rows: done, 400/400 items (100.0%)"]
