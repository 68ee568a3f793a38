"""``otelperf report``: the command-line glue (flags, sources, output); the only part of the
report that writes files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TextIO

from otelperf.config import resolve
from otelperf.errors import UserError
from otelperf.generate.promql import duration_seconds
from otelperf.generate.rules import load_config
from otelperf.parsing import parse_float, parse_int
from otelperf.report.build import build_report
from otelperf.report.model import CSV_TABLES, ReportData, Source, TimelinePoint, resource_limits
from otelperf.report.rendering import Report
from otelperf.report.sources.endpoint import totals_from_url
from otelperf.report.sources.fetch import MAX_TIMEOUT_SECONDS, reason
from otelperf.report.sources.prometheus import (
    parse_job,
    parse_time,
    parse_window,
    timeline_from_prometheus,
    totals_from_prometheus,
)
from otelperf.thresholds import Thresholds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``otelperf report`` (docs/report.md)."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--url", help="an otelperf /metrics endpoint: totals since it started")
    src.add_argument(
        "--prometheus",
        metavar="URL",
        help="a Prometheus server (http://HOST:9090): figures over --window",
    )
    parser.add_argument(
        "--window",
        default="1h",
        help="with --prometheus: the window, a Prometheus duration (default 1h)",
    )
    parser.add_argument(
        "--job", default=None, help="with --prometheus: only this scrape job (default: all jobs)"
    )
    parser.add_argument(
        "--at",
        default=None,
        metavar="TIME",
        help="with --prometheus: end of the window, Unix seconds or RFC 3339 (default: now)",
    )
    parser.add_argument(
        "--format",
        default="text",
        choices=("text", "json", "csv", "html"),
        help="text tables (default), the JSON contract, CSV, or one self-contained HTML page "
        "(needs --out)",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="PATH",
        help="with --format csv: write one file per table into the directory PATH; with "
        "--format html: write the page to the file PATH",
    )
    parser.add_argument(
        "--top",
        default="10",
        metavar="N",
        help="rows per table (bottlenecks: per root); 0 = all (default 10)",
    )
    parser.add_argument(
        "--timeout", default="10", metavar="SECONDS", help="HTTP timeout per request (default 10)"
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a rules config (YAML or TOML, as for otelperf rules): its thresholds drive the "
        "warnings",
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Build the report from ``--url`` or ``--prometheus`` and print or write it."""
    out = out or sys.stdout
    top = parse_int(args.top, "--top", low=0)
    timeout = parse_float(args.timeout, "--timeout", low=0.001, high=MAX_TIMEOUT_SECONDS)
    if args.out is not None and args.format not in ("csv", "html"):
        raise UserError("--out is only for --format csv (a directory) or --format html (a "
                        "file); json and text go to stdout")  # fmt: skip
    if args.format == "html" and args.out is None:
        raise UserError("--format html needs --out FILE: the page is written to a file")
    job = parse_job(args.job)
    if args.out is not None:
        check_path(args.out, "--out")
    if args.format == "html":
        check_writable_file(args.out, "--out")
    # Read before any request: a bad file is a mistake to report without waiting on a network.
    thresholds = load_thresholds(args.config) if args.config is not None else None
    timeline: list[TimelinePoint] = []
    if args.url is not None:
        for opt in ("job", "at"):
            if getattr(args, opt) is not None:
                raise UserError(f"--{opt} only applies to --prometheus, not to --url")
        totals = totals_from_url(args.url, timeout)
        source = Source("url", args.url, data_seconds=totals.seconds)
    else:
        window = parse_window(args.window)
        at = parse_time(args.at) if args.at is not None else time.time()
        totals = totals_from_prometheus(args.prometheus, window, job, at, timeout)
        source = Source("prometheus", args.prometheus, window, job, at,
                        window_seconds=float(duration_seconds(window)),
                        data_seconds=totals.seconds)  # fmt: skip
        if args.format == "html":  # only the page draws it: the other formats skip the queries
            timeline = timeline_from_prometheus(args.prometheus, window, job, at, timeout)
    # The health thresholds of this environment (OTELPERF_HEALTH_*), as /health would use them.
    limits = resource_limits(resolve(start_server=False))
    report = build_report(
        totals,
        source,
        top=top or None,
        resource_limits=limits,
        thresholds=thresholds,
        timeline=timeline,
    )

    if args.format == "json":
        out.write(report.to_json())
    elif args.format == "html":
        path = write_html(report, args.out)
        print(f"wrote {shown(path)} (html)", file=out)
    elif args.format == "csv":
        if args.out is None:
            out.write(report.to_csv("operations"))
        else:
            for name, path in write_csv(report, args.out).items():
                print(f"wrote {shown(path)} ({name})", file=out)
    else:
        out.write(report.to_text(color=_use_color(out)))
    return 0


def load_thresholds(path: str) -> Thresholds:
    """The ``thresholds:`` of a rules config file, the one ``otelperf rules --config`` reads.

    A missing or invalid file raises ConfigError naming the file (and the key).
    """
    return load_config(path).thresholds


def write_csv(report: ReportData, directory: str) -> dict[str, str]:
    """Write one ``<table>.csv`` per table into ``directory``; returns table -> path."""
    try:
        os.makedirs(directory, exist_ok=True)
    except (OSError, ValueError) as exc:  # ValueError: a name the file system cannot encode
        raise UserError(
            f"--out={directory!r}: cannot create the directory ({reason(exc)})"
        ) from None
    paths: dict[str, str] = {}
    for name in CSV_TABLES:
        path = os.path.join(directory, f"{name}.csv")
        try:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(report.to_csv(name))
        except OSError as exc:
            raise UserError(f"--out={directory!r}: cannot write {path!r} ({reason(exc)})") from None
        paths[name] = path
    return paths


def write_html(report: Report, path: str) -> str:
    """Write the report's HTML page to ``path`` (UTF-8); a failure is a UserError naming it."""
    page = report.to_html()
    try:
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(page)
    except (OSError, ValueError) as exc:
        raise UserError(f"--out={path!r}: cannot write the page ({reason(exc)})") from None
    return path


def check_writable_file(path: str, what: str) -> str:
    """``path`` if a file can be written there (its directory exists and is writable, and it
    is not a directory), checked before any request; else a UserError naming ``what``."""
    if os.path.isdir(path):
        raise UserError(f"{what}={path!r} is a directory; --format html writes one file")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"{what}={path!r}: cannot write the page (no directory {directory!r})")
    if not os.access(directory, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UserError(f"{what}={path!r}: cannot write the page (permission denied)")
    return path


def check_path(path: str, what: str) -> str:
    """``path`` if the file system can encode it (checked before any request); else a
    UserError naming ``what``."""
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise UserError(f"{what}={path!r} is not a usable path (not encodable as a file "
                        "name)") from None  # fmt: skip
    if "\0" in path:
        raise UserError(f"{what}={path!r} is not a usable path (a NUL character)")
    return path


def shown(path: str) -> str:
    r"""``path`` printable on any stream: an undecodable byte of a file name (a lone surrogate
    here) shown as its escape instead of failing the write.

    >>> shown("out/\udcff.csv")
    'out/\\udcff.csv'
    """
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


def _use_color(stream: TextIO) -> bool:
    # https://no-color.org: colours only on a terminal, and never when NO_COLOR is set.
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
