"""``otelperf rules``: write the rule files, or with ``--check`` compare them.

The generating is :func:`otelperf.generate.rules.render_files`; the writing and comparing is
:mod:`otelperf.generate.files`, shared with ``otelperf dashboards``.
"""

from __future__ import annotations

import argparse
import sys

from otelperf.generate import files
from otelperf.generate.rules import DEFAULT_OUT, RulesConfig, load_config, render_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``otelperf rules``."""
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="rules config, YAML or TOML (default: built-in defaults; "
                        "see docs/alerting.md)")  # fmt: skip
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"directory for the rule files (default {DEFAULT_OUT}/)")  # fmt: skip
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files in --out differ from the "
                        "generated ones")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """``otelperf rules``: write (or, with --check, compare) the rule files."""
    cfg = load_config(args.config) if args.config else RulesConfig()
    generated = render_files(cfg)
    names = ", ".join(sorted(generated))
    if args.check:
        found = files.compare(args.out, generated)
        if found.stale:
            print(
                "otelperf rules: stale or missing: " + ", ".join(map(str, found.stale))
                + " (regenerate with: otelperf rules"
                + (f" --config {args.config}" if args.config else "")
                + f" --out {args.out})",
                file=sys.stderr,
            )  # fmt: skip
            return 1
        print(f"otelperf rules: {names} in {files.output_dir(args.out)} are up to date")
        return 0
    files.write(args.out, generated)
    print(f"otelperf rules: wrote {names} to {files.output_dir(args.out)}")
    return 0
