"""``otelperf run -- PROGRAM``: a Python batch job, measured, reported and pushed when it ends.

The program runs in this process, the way ``python script.py`` / ``python -m module`` would run
it (``sys.argv``, ``sys.path[0]`` and ``__main__`` as Python sets them), after otelperf was set
up the way zero-code start does it: ``opentelemetry-instrument``'s own initialisation when
opentelemetry-instrumentation is installed (distro, configurator, every installed
instrumentor), else :func:`otelperf.configure` from the variables.  Running in-process rather
than re-executing keeps the end in our hands: whether the program returns, raises, calls
``sys.exit()``, or gets SIGTERM or SIGINT, the final report and push happen, and the exit
status is the program's own (128 + the signal's number after a signal, as a shell shows it).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import runpy
import shutil
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from otelperf import telemetry
from otelperf.errors import ConfigError, UserError
from otelperf.parsing import REPORT_FORMATS, format_for_file, parse_http_url

USAGE_HINT = "give the program after --: otelperf run -- job.py [ARGS] or -- -m package.module"
_PYTHON = re.compile(r"python(\d+(\.\d+)?)?(\.exe)?$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "otelperf run [options] -- (script.py | -m module) [ARGS ...]"
    parser.add_argument(
        "--report",
        choices=REPORT_FORMATS,
        help="the final report when the program ends: text or json (to stderr, or "
        "--report-file), html (needs --report-file), none (default: what --report-file's "
        "name says, .json, .html, else text)",
    )
    parser.add_argument("--report-file", metavar="PATH", help="write the final report here")
    parser.add_argument(
        "--push-gateway",
        metavar="URL",
        help="push the final metrics to this Prometheus Pushgateway (job + instance group)",
    )
    parser.add_argument(
        "--job",
        metavar="NAME",
        help="the Pushgateway's job label (default: the service name: OTEL_SERVICE_NAME, "
        "else the script's or module's name)",
    )
    parser.add_argument(
        "program",
        nargs=argparse.REMAINDER,
        metavar="-- PROGRAM",
        help="a Python script or -m module, and its arguments",
    )


def run(args: argparse.Namespace) -> int:
    program = Program.parse(args.program)
    overrides = _settings_from_flags(args, program)
    with _environment(overrides):
        t = _set_up()
    return program.run(t)


class Program:
    """What to run: a script path or a module name, and its arguments."""

    def __init__(self, script: str | None, module: str | None, argv: list[str]) -> None:
        self.script = script
        self.module = module
        self.argv = argv

    @property
    def name(self) -> str:
        """The default service name: the module's, or the script's file name without .py."""
        return self.module if self.module is not None else Path(self.script or "").stem

    @classmethod
    def parse(cls, words: list[str]) -> Program:
        words = words[1:] if words[:1] == ["--"] else list(words)
        if words and (_PYTHON.match(os.path.basename(words[0])) or words[0] == sys.executable):
            words = words[1:]  # `otelperf run -- python job.py`: this interpreter runs it
        if not words:
            raise UserError(f"no program to run: {USAGE_HINT}")
        first, rest = words[0], words[1:]
        if first == "-m":
            if not rest:
                raise UserError(f"-m needs a module name: {USAGE_HINT}")
            return cls(None, _module(rest[0]), rest[1:])
        if first.startswith("-"):
            raise UserError(f"{first!r} is not supported: {USAGE_HINT}")
        return cls(_script(first), None, rest)

    def run(self, t: telemetry.Telemetry) -> int:
        """Run the program to its end, finish (report, push), and return its exit status."""
        status = 0
        try:
            self._start()
        except SystemExit as exc:
            status = _status(exc.code)
        except KeyboardInterrupt:
            status = 128 + signal.SIGINT
        except BaseException as exc:
            # the traceback Python would have printed: from the program's frames on
            tb = _program_frames(exc.__traceback__)
            sys.excepthook(type(exc), exc.with_traceback(tb), tb)
            status = 1
        finally:
            _flush_std()
            t.finish()
        sig = t.exit_signal
        return 128 + sig if sig is not None else status

    def _start(self) -> None:
        if self.module is not None:
            sys.argv = [self.module, *self.argv]  # runpy puts the module's path in argv[0]
            sys.path[0] = os.getcwd()  # as `python -m` does
            runpy.run_module(self.module, run_name="__main__", alter_sys=True)
        else:
            assert self.script is not None
            sys.argv = [self.script, *self.argv]
            sys.path[0] = os.path.dirname(os.path.abspath(self.script))  # as `python x.py`
            runpy.run_path(self.script, run_name="__main__")


def _module(name: str) -> str:
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise UserError(f"no module named {name!r} (from -m {name})")
    return name


def _script(word: str) -> str:
    if os.path.exists(word):
        if os.path.isdir(word) and not os.path.exists(os.path.join(word, "__main__.py")):
            raise UserError(f"{word!r} is a directory without a __main__.py")
        return word
    found = shutil.which(word)
    if found is None:
        raise UserError(f"no such script: {word!r}")
    if not _is_python(found):
        raise UserError(f"{word!r} ({found}) is not a Python program: {USAGE_HINT}")
    return found  # a console script (its shebang runs Python)


def _is_python(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            first = f.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def _settings_from_flags(args: argparse.Namespace, program: Program) -> dict[str, str]:
    """The flags as the variables configure() reads (checked here, so errors name flags)."""
    if args.report == "html" and not args.report_file:
        raise UserError("--report html writes a page: give --report-file PATH")
    fmt = args.report
    if fmt is None:
        fmt = format_for_file(args.report_file) if args.report_file else "text"
    out = {"OTELPERF_REPORT": fmt}
    if args.report_file:
        parent = os.path.dirname(os.path.abspath(args.report_file))
        if not os.path.isdir(parent):
            raise UserError(f"--report-file {args.report_file!r}: no such directory {parent!r}")
        if os.path.isdir(args.report_file):
            raise UserError(f"--report-file {args.report_file!r} is a directory")
        out["OTELPERF_REPORT_FILE"] = args.report_file
    if args.push_gateway is not None:
        try:
            out["OTELPERF_PUSHGATEWAY_URL"] = parse_http_url(args.push_gateway, "--push-gateway")
        except ConfigError as exc:
            raise UserError(str(exc)) from None
    if args.job is not None:
        if not args.job.strip():
            raise UserError("--job must be a non-empty name")
        out["OTELPERF_PUSHGATEWAY_JOB"] = args.job
    if not os.environ.get("OTEL_SERVICE_NAME", "").strip():
        out["OTEL_SERVICE_NAME"] = program.name
    return out


@contextmanager
def _environment(overrides: Mapping[str, str]) -> Iterator[None]:
    # Only for the set-up: the program's own child processes see the variables as they were
    # (a child that calls configure() must not report and push for the parent).
    before = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _set_up() -> telemetry.Telemetry:
    initialize = _zero_code_initialize()
    if initialize is not None:
        initialize()  # logs and swallows its own failures, as opentelemetry-instrument does
    current = telemetry.current()  # set up from the variables above
    if current is None:
        current = telemetry.configure()  # a ConfigError names the variable at fault
        current.mark_auto()  # the program's own configure() calls attach to it, as zero-code
    return current


def _zero_code_initialize() -> Callable[[], None] | None:
    try:
        from opentelemetry.instrumentation.auto_instrumentation import initialize
    except ImportError:  # opentelemetry-instrumentation is optional
        return None
    return initialize


def _program_frames(tb: TracebackType | None) -> TracebackType | None:
    # drop this module's and runpy's frames from the top of the traceback
    ours = (os.path.abspath(__file__), os.path.abspath(runpy.__file__ or ""))
    while tb is not None and (
        os.path.abspath(tb.tb_frame.f_code.co_filename) in ours
        or tb.tb_frame.f_code.co_filename.startswith("<frozen runpy")
    ):
        tb = tb.tb_next
    return tb


def _status(code: object) -> int:
    # SystemExit's code as the interpreter turns it into an exit status
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing to save
            pass
