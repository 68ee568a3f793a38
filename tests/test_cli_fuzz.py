"""The ``otelperf`` command under arbitrary arguments (issue 14, defect 10): whatever the flags
hold (any text, lone surrogates from undecodable bytes, huge or non-finite numbers, malformed
URLs), every subcommand exits 0, 1 or 2 and never prints a traceback; a status 2 from otelperf
itself is exactly one line naming the problem.

``report`` and ``compare`` run for real against a loaded otelperf /metrics endpoint, a real
Prometheus scraping it, and closed ports on 127.0.0.1; ``rules`` and ``dashboards`` write into
temporary directories; ``demo`` only has its flags checked (``demo.options``), its service is
never started.  A few cases also run as ``python -m otelperf.cli`` with raw bytes in argv, so
nothing escapes to the real stderr either.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import demo
from otelperf.cli import build_parser, main
from otelperf.emit import prices
from otelperf.errors import ConfigError, UserError
from otelperf.report import from_registry
from tests.test_report_cli import run_workload
from tests.test_report_prometheus import start_prometheus, stop

pytestmark = pytest.mark.integration


def fuzz(examples: int) -> settings:
    """Hypothesis settings of these tests: no per-example deadline (real network and files)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A loaded otelperf endpoint, a real Prometheus scraping it, a closed port, two report
    files, and a scratch directory the commands run in."""
    tmp = tmp_path_factory.mktemp("fuzz")
    t = otelperf.configure(service_name="fuzz-test", prometheus_port=0,
                           registry=CollectorRegistry(), set_global=False)  # fmt: skip
    proc = None
    cwd = os.getcwd()
    try:
        run_workload(t)
        target = t.metrics_url.split("/")[2]  # type: ignore[union-attr]
        proc, prom, _ = start_prometheus(tmp, target)
        report = tmp / "report.json"
        report.write_text(from_registry(t.registry).to_json(), encoding="utf-8")
        scratch = tmp / "scratch"
        scratch.mkdir()
        os.chdir(scratch)  # a relative --out lands here, not in the repository
        yield {
            "metrics": t.metrics_url,
            "prom": prom,
            "closed": f"http://127.0.0.1:{_closed_port()}",
            "report": str(report),
            "scratch": scratch,
        }
    finally:
        os.chdir(cwd)
        if proc is not None:
            stop(proc)
        t.shutdown()
        prices.clear_prices()


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> int:
    """main() in-process: the status, with the stderr contract checked."""
    command = argv[0]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusal: usage, then one error line, status 2
        err = capsys.readouterr().err
        assert exc.code == 2, (argv, err)
        assert "Traceback" not in err
        assert err.splitlines()[-1].startswith(f"otelperf {command}: error: "), err
        event("exit 2: argparse")
        return 2
    _, err = capsys.readouterr()
    assert code in (0, 1, 2), (argv, code)
    assert "Traceback" not in err, err
    if code == 2:
        assert err.startswith(f"otelperf {command}: error: ") and err.count("\n") == 1, (argv, err)
    # What the examples reached (pytest --hypothesis-show-statistics): exits, kinds of error.
    event(f"exit {code}" + (f": {err.split('error: ', 1)[1][:22]}" if code == 2 else ""))
    return code


# --- values ----------------------------------------------------------------------------------

SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
TEXT = st.one_of(
    st.text(max_size=30),
    SURROGATES,
    st.text(st.characters(exclude_categories=()), max_size=30),  # surrogates and controls too
    st.builds(lambda a, b: a + b, st.text(max_size=10), SURROGATES),
)
NUMBER = st.one_of(
    st.sampled_from(["0", "-1", "1e10", "1e300", "-1e300", "nan", "inf", "-inf", "1e-320",
                     "0x10", "1_000", "", " ", "1" + "0" * 5000, "0.5", "2", "30"]),
    st.floats().map(repr),
    st.integers().map(str),
    st.integers(10**15, 10**400).map(str),
    TEXT,
)  # fmt: skip
TIME = st.one_of(
    NUMBER,
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
                     "2026-11-30T10:00:00Z", "1970-01-01T00:00:00Z", "253402300799"]),
)  # fmt: skip
DURATION = st.one_of(
    st.sampled_from(["5m", "1h", "1500ms", "0s", "292y", "293y", "7d"]),
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 10**30),
              st.sampled_from(["y", "w", "d", "h", "m", "s", "ms"])),
    TEXT,
)  # fmt: skip
RANGE = st.one_of(
    st.builds(lambda a, b: f"{a}..{b}", TIME, TIME),
    st.sampled_from(["1764496800..1764500400", "0..1e300", "1..inf", "nan..1", "2..1", ".."]),
    TEXT,
)  # fmt: skip
# Where a URL points: filled in from the fixture (real endpoints, a closed port) or malformed.
URL = st.one_of(
    st.sampled_from(["{metrics}", "{prom}", "{closed}", "{closed}/metrics", "{prom}/x"]),
    st.sampled_from(["http://[::1/metrics", "http://127.0.0.1:99999/", "http://127.0.0.1:x/",
                     "http:///metrics", "localhost:9464", "ftp://127.0.0.1/", "http://",
                     "https://127.0.0.1:1/", "http://127.0.0.1:1/m\u00e9trics", "http://[::1]:1/",
                     "http://127.0.0.1:1/a\nb", "http://127.0.0.1:1/\udcff"]),
    st.builds(lambda t: "http://127.0.0.1:1/" + t, TEXT),
    TEXT,
)  # fmt: skip
FORMAT = st.one_of(st.sampled_from(["text", "json", "csv"]), st.just("csv"), TEXT)
TIMEOUT = st.one_of(st.sampled_from(["5", "0.5", "1e10", "0", "-1", "nan", "inf"]), NUMBER)


def mostly(valid: list[str], hostile: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A flag's value: often a valid one, so that one hostile flag among valid ones is common
    (the first refused flag ends a run and hides the others)."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), hostile)


JOB = "otelperf-report-test"  # the job start_prometheus scrapes


def _fill(value: str, w: dict[str, Any]) -> str:
    for key in ("metrics", "prom", "closed"):
        value = value.replace("{" + key + "}", w[key])
    return value


def _argv(flags: dict[str, Any], w: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for flag, value in flags.items():
        if value is True:
            argv.append(flag)
        else:
            # The --flag=value spelling: a value starting with "-" is still the flag's value.
            argv.append(f"{flag}={_fill(value, w)}")
    return argv


def _out(w: dict[str, Any], name: str) -> str:
    # Under the scratch directory, a fresh directory per example; the name fuzzed (surrogates,
    # 300 characters, slashes).
    return str(w["scratch"] / uuid.uuid4().hex / name) if name else ""


def _file(w: dict[str, Any], content: str) -> str:
    path = w["scratch"] / f"{uuid.uuid4().hex}.in"
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return str(path)


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=15,
)  # fmt: skip

# --- report ----------------------------------------------------------------------------------


@fuzz(150)
@given(
    source=st.sampled_from(["--url"] * 4 + ["--prometheus"] * 4 + ["both", "neither"]),
    url=mostly(["{metrics}", "{prom}"], URL),
    flags=st.fixed_dictionaries(
        {},
        optional={
            "--window": mostly(["5m", "1h"], DURATION), "--job": mostly([JOB], TEXT),
            "--at": mostly(["1764496800", "2026-11-30T10:00:00Z"], TIME), "--format": FORMAT,
            "--top": mostly(["0", "3"], NUMBER), "--timeout": mostly(["5"], TIMEOUT),
        },
    ),
    out=st.one_of(st.none(), st.none(), st.none(), TEXT, st.text(min_size=256, max_size=300)),
    config=st.one_of(st.none(), TEXT, JSONISH.map(json.dumps), st.just("thresholds: {a: 1}")),
)  # fmt: skip
def test_report_any_flags(world, capsys, source, url, flags, out, config):
    argv = ["report"]
    if source in ("--url", "both"):
        argv.append(f"--url={_fill(url.replace('{prom}', '{metrics}'), world)}")
    if source in ("--prometheus", "both"):
        argv.append(f"--prometheus={_fill(url.replace('{metrics}', '{prom}'), world)}")
    if source in ("--url", "both"):  # flags of --prometheus only: one hostile flag is enough
        flags = {k: v for k, v in flags.items() if k not in ("--job", "--at", "--window")}
    argv += _argv(flags, world)
    if out is not None:
        argv.append(f"--out={_out(world, out)}")
    if config is not None:
        argv.append(f"--config={_file(world, config)}")
    run(capsys, argv)


# --- compare ---------------------------------------------------------------------------------


@fuzz(150)
@given(
    files=st.one_of(
        st.just(["{report}", "{report}"]),
        st.lists(
            st.one_of(st.just("{report}"), TEXT, JSONISH.map(lambda d: "json:" + json.dumps(d))),
            min_size=2, max_size=2,
        ),
        st.lists(st.just("{report}"), max_size=3),
    ),
    prometheus=st.one_of(st.none(), st.none(), mostly(["{prom}"], URL)),
    flags=st.fixed_dictionaries(
        {},
        optional={
            "--baseline": mostly(["1764496800..1764500400"], RANGE),
            "--candidate": mostly(["1764500400..1764504000"], RANGE),
            "--job": mostly([JOB], TEXT), "--alpha": mostly(["0.05"], NUMBER),
            "--min-effect": mostly(["0.1"], NUMBER), "--min-calls": mostly(["1", "30"], NUMBER),
            "--format": FORMAT, "--timeout": mostly(["5"], TIMEOUT),
        },
    ),
    out=st.one_of(st.none(), st.none(), TEXT),
)  # fmt: skip
def test_compare_any_flags(world, capsys, files, prometheus, flags, out):
    argv = ["compare"]
    for f in files:
        if f == "{report}":
            argv.append(world["report"])
        elif f.startswith("json:"):
            argv.append(_file(world, f[5:]))
        else:
            argv.append(f"./{f}")  # a path, never taken for a flag
    if prometheus is not None:
        argv = [
            "compare",
            f"--prometheus={_fill(prometheus.replace('{metrics}', '{prom}'), world)}",
        ]
    else:  # flags of --prometheus only: one hostile flag is enough
        flags = {k: v for k, v in flags.items() if k not in ("--job", "--baseline", "--candidate")}
    argv += _argv(flags, world)
    if out is not None:
        argv.append(f"--out={_out(world, out)}")
    run(capsys, argv)


# --- rules and dashboards --------------------------------------------------------------------


@fuzz(30)
@given(
    out=st.one_of(TEXT, st.text(min_size=256, max_size=300)),
    config=st.one_of(st.none(), TEXT, JSONISH.map(json.dumps)),
    check=st.booleans(),
)
def test_rules_any_flags(world, capsys, out, config, check):
    argv = ["rules", f"--out={_out(world, out)}"]
    if config is not None:
        argv.append(f"--config={_file(world, config)}")
    if check:
        argv.append("--check")
    run(capsys, argv)


@fuzz(15)
@given(out=st.one_of(TEXT, st.text(min_size=256, max_size=300)), check=st.booleans())
def test_dashboards_any_flags(world, capsys, out, check):
    argv = ["dashboards", f"--out={_out(world, out)}", *(["--check"] if check else [])]
    run(capsys, argv)


# --- demo: the flags only --------------------------------------------------------------------


@fuzz(200)
@given(
    flags=st.fixed_dictionaries(
        {},
        optional={
            "--host": TEXT, "--port": NUMBER, "--duration": NUMBER, "--error-rate": NUMBER,
            "--slow": st.one_of(st.sampled_from(["parse", "store", "handle_order"]), TEXT),
            "--fault-seconds": NUMBER, "--workers": NUMBER, "--summary-interval": NUMBER,
            "--service-name": TEXT,
        },
    )
)  # fmt: skip
def test_demo_flags_are_checked_before_anything_starts(flags):
    args = build_parser().parse_args(["demo", *(f"{k}={v}" for k, v in flags.items())])
    try:
        opts = demo.options(args)
    except (ConfigError, UserError) as exc:
        message = str(exc)
        assert message and "\n" not in message
        return
    assert 0 <= opts.cfg.error_rate <= 1 and 1 <= opts.cfg.workers <= 256
    assert opts.port is None or 0 <= opts.port <= 65535
    for seconds in (opts.duration, opts.cfg.fault_seconds, opts.interval):
        assert seconds is None or 0 <= seconds <= demo.MAX_SECONDS


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "-1"], "--duration='-1' is out of range"),
        (["--error-rate", "2"], "--error-rate='2' is out of range"),
        (["--port", "70000"], "--port=70000 is out of range"),
        (["--duration", "1e300"], "--duration='1e300' is out of range"),
        (["--summary-interval", "inf"], "--summary-interval='inf' is out of range"),
        (["--host", "\udcff"], "--host='\\udcff' is not valid text"),
        (["--service-name", " "], "--service-name=' ' must be non-empty printable text"),
    ],
)
def test_demo_bad_flags_are_one_line_exit_2_without_starting(argv, message, capsys):
    assert main(["demo", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing served: the demo prints its URL first when it starts
    assert err == f"otelperf demo: error: {err.split('error: ', 1)[1]}" and err.count("\n") == 1
    assert message in err


# --- the real process, raw bytes in argv -----------------------------------------------------


def _cli(*argv: str | bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "otelperf.cli", *argv],
        capture_output=True, timeout=60, cwd=cwd, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--url", "http://[::1/metrics"],
        ["report", "--url", "{closed}", "--timeout", "1e10"],
        ["report", "--prometheus", "{prom}", "--at", "1e300"],
        ["report", "--prometheus", "{prom}", "--window", "999999999999y"],
        ["report", "--prometheus", "{prom}", "--job", b"\xff"],
        ["report", "--url", b"http://127.0.0.1:1/\xff"],
        ["report", "--url", "{metrics}", "--format", "csv", "--out", b"/proc/\xff/x"],
        ["compare", "--prometheus", "{prom}", "--baseline", "0..1e300", "--candidate", "1..2"],
        ["compare", "--prometheus", "{prom}", "--baseline", "1..2", "--candidate", "1..2",
         "--job", b"\xfe"],
        ["compare", b"\xff.json", "b.json"],
        ["rules", "--config", b"\xff.yml"],
        ["demo", "--host", b"\xff", "--duration", "0"],
        ["demo", "--port", "70000"],
    ],
)  # fmt: skip
def test_the_real_command_prints_one_line_never_a_traceback(world, argv):
    args = [_fill(a, world).encode() if isinstance(a, str) else a for a in argv]
    p = _cli(*args, cwd=world["scratch"])
    assert p.returncode == 2, p.stderr
    assert b"Traceback" not in p.stderr
    assert p.stderr.startswith(f"otelperf {argv[0]}: error: ".encode()), p.stderr
    assert p.stderr.count(b"\n") == 1, p.stderr
    assert p.stdout == b""


def test_a_file_name_with_undecodable_bytes_is_shown_escaped(world):
    """Two valid reports whose names are not UTF-8: the comparison runs and prints the names
    escaped (writing them raw to a UTF-8 stdout failed)."""
    scratch = world["scratch"]
    report = Path(world["report"]).read_bytes()
    for name in (b"before-\xff.json", b"after-\xfe.json"):
        with open(os.path.join(os.fsencode(scratch), name), "wb") as fh:
            fh.write(report)
    p = _cli("compare", b"before-\xff.json", b"after-\xfe.json", cwd=scratch)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert b"before-\\udcff.json" in p.stdout and b"after-\\udcfe.json" in p.stdout
