"""The ``otelperf`` command.  Each subcommand lives in its own module with two functions:
``add_arguments(parser)`` and ``run(args) -> int``; user mistakes become one-line errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from otelperf.errors import ConfigError, UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("otelperf.demo", "run a simulated service that serves /metrics"),
    "run": ("otelperf.run", "run a Python batch job measured; report and push when it ends"),
    "report": ("otelperf.report.command", "summarise performance from /metrics or Prometheus"),
    "compare": (
        "otelperf.report.compare.command",
        "did it get worse: two periods or two reports, tested per operation",
    ),
    "rules": (
        "otelperf.generate.rules.command",
        "generate Prometheus alerting and recording rules",
    ),
    "dashboards": (
        "otelperf.generate.dashboards.command",
        "generate the Grafana dashboards (dashboards/*.json)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otelperf",
        description="Performance monitoring for Python services on OpenTelemetry and Prometheus.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def one_line(message: str) -> str:
    """``message`` as one printable line whatever the input it quotes held: a newline, a
    terminal escape or a lone surrogate (an undecodable byte of an argument, which would fail
    the write itself) is shown as its Python escape (``\\n``, ``\\x1b``, ``\\udcff``).
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otelperf`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except (UserError, ConfigError) as exc:
        print(one_line(f"otelperf {args.command}: error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
