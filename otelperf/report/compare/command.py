"""``otelperf compare``: the command-line glue (flags, the two sides, output, exit status).

Exit status: 1 when any operation regressed (a CI gate), 0 otherwise; bad input is a one-line
error and status 2 (``otelperf.cli`` prints :class:`~otelperf.errors.UserError`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from otelperf.errors import UserError
from otelperf.parsing import parse_float
from otelperf.report.command import check_path, shown
from otelperf.report.compare.inputs import parse_range, side_from_file, side_from_prometheus
from otelperf.report.compare.model import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_CALLS,
    DEFAULT_MIN_EFFECT,
    Settings,
    Side,
    compare,
)
from otelperf.report.compare.text import to_text
from otelperf.report.sources.fetch import MAX_TIMEOUT_SECONDS, reason
from otelperf.report.sources.prometheus import PrometheusClient, parse_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``otelperf compare`` (docs/compare.md)."""
    parser.add_argument(
        "reports",
        nargs="*",
        metavar="REPORT.json",
        help="BASELINE.json CANDIDATE.json: two `otelperf report --format json` files",
    )
    parser.add_argument(
        "--prometheus", metavar="URL", help="compare two windows of a Prometheus server instead"
    )
    parser.add_argument(
        "--job", default=None, help="with --prometheus: only this scrape job (default: all jobs)"
    )
    for side in ("baseline", "candidate"):
        parser.add_argument(
            f"--{side}",
            metavar="START..END",
            help=f"with --prometheus: the {side} period, RFC 3339 times or Unix seconds",
        )
    parser.add_argument(
        "--alpha",
        default=str(DEFAULT_ALPHA),
        help=f"significance level, Holm-adjusted over all tests (default {DEFAULT_ALPHA})",
    )
    parser.add_argument(
        "--min-effect",
        default=str(DEFAULT_MIN_EFFECT),
        metavar="FRACTION",
        help="smallest change that counts: 0.1 = 10 %% slower/faster or more/fewer errors "
        f"(default {DEFAULT_MIN_EFFECT})",
    )
    parser.add_argument(
        "--min-calls",
        default=str(DEFAULT_MIN_CALLS),
        metavar="N",
        help=f"calls a side needed to test an operation (default {DEFAULT_MIN_CALLS})",
    )
    parser.add_argument(
        "--format",
        default="text",
        choices=("text", "json", "csv"),
        help="text table (default), the JSON contract, or CSV",
    )
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="with --format csv: write DIR/operations.csv"
    )
    parser.add_argument(
        "--timeout", default="10", metavar="SECONDS", help="HTTP timeout per request (default 10)"
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """``--alpha``, ``--min-effect`` and ``--min-calls`` checked."""
    alpha = parse_float(args.alpha, "--alpha", low=0.0, high=1.0)
    if not 0 < alpha < 1:
        raise UserError(f"--alpha={args.alpha!r} must be between 0 and 1 (exclusive), e.g. 0.05")
    min_effect = parse_float(args.min_effect, "--min-effect", low=0.0, high=1.0)
    if min_effect >= 1:
        raise UserError(f"--min-effect={args.min_effect!r} must be below 1 (0.1 = 10 %)")
    min_calls = parse_float(args.min_calls, "--min-calls", low=1.0)
    return Settings(alpha, min_effect, min_calls)


def sides(args: argparse.Namespace) -> tuple[Side, Side]:
    """The baseline and the candidate, from two files or two Prometheus windows."""
    timeout = parse_float(args.timeout, "--timeout", low=0.001, high=MAX_TIMEOUT_SECONDS)
    if args.prometheus is None:
        for opt in ("job", "baseline", "candidate"):
            if getattr(args, opt) is not None:
                raise UserError(f"--{opt} only applies to --prometheus, not to report files")
        if len(args.reports) != 2:
            raise UserError(
                f"give two report files (BASELINE.json CANDIDATE.json) or --prometheus URL; "
                f"got {len(args.reports)} file(s)"
            )
        return side_from_file(args.reports[0], "BASELINE"), side_from_file(
            args.reports[1], "CANDIDATE"
        )
    if args.reports:
        raise UserError(f"give either report files or --prometheus, not both ({args.reports[0]})")
    for opt in ("baseline", "candidate"):
        if getattr(args, opt) is None:
            raise UserError(f"--prometheus needs --{opt} START..END")
    b_start, b_end = parse_range(args.baseline, "--baseline")
    c_start, c_end = parse_range(args.candidate, "--candidate")
    job = parse_job(args.job)
    client = PrometheusClient(args.prometheus, timeout)
    return (
        side_from_prometheus(client, job, b_start, b_end, "--baseline"),
        side_from_prometheus(client, job, c_start, c_end, "--candidate"),
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Compare, print or write the result; 1 if anything regressed, else 0."""
    out = out or sys.stdout
    if args.out is not None and args.format != "csv":
        raise UserError("--out is only for --format csv (json and text go to stdout)")
    if args.out is not None:
        check_path(args.out, "--out")
    settings = settings_from(args)
    baseline, candidate = sides(args)
    result = compare(baseline, candidate, settings)
    if args.format == "json":
        out.write(result.to_json())
    elif args.format == "csv":
        if args.out is None:
            out.write(result.to_csv())
        else:
            path = write_csv(result.to_csv(), args.out)
            print(f"wrote {shown(path)} (operations)", file=out)
    else:
        out.write(to_text(result, color=_use_color(out)))
    return 1 if result.regressed else 0


def write_csv(text: str, directory: str) -> str:
    """Write ``operations.csv`` into ``directory`` (created if needed); returns its path."""
    path = os.path.join(directory, "operations.csv")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except (OSError, ValueError) as exc:  # ValueError: a name the file system cannot encode
        raise UserError(f"--out={directory!r}: cannot write {path!r} ({reason(exc)})") from None
    return path


def _use_color(stream: TextIO) -> bool:
    # https://no-color.org: colours only on a terminal, and never when NO_COLOR is set.
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
