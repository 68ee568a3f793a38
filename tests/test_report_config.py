"""One rules config drives the alerts and the report: ``otelperf report --config FILE`` and
``build_report(thresholds=...)`` judge by the thresholds ``otelperf rules --config FILE`` reads.

The figure: a cache at 85 % hits, which passes the default ``cache_hit_ratio_min`` (0.6) and
fails a config that raises it to 0.9.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from otelperf import _names as N
from otelperf.cli import main
from otelperf.report import Totals, build_report, from_registry
from otelperf.report.command import load_thresholds
from otelperf.thresholds import Thresholds
from tests.test_report_cli import assert_one_line_error, run_cli, static_server

__all__ = ["static_server"]  # the fixture, imported to be used here

HITS, MISSES = 85.0, 15.0
EXPOSITION = (
    f"# TYPE {N.CACHE_REQUESTS.prom} counter\n"
    f'{N.CACHE_REQUESTS.prom}{{{N.CACHE}="sessions",{N.RESULT}="{N.RESULT_HIT}"}} {HITS}\n'
    f'{N.CACHE_REQUESTS.prom}{{{N.CACHE}="sessions",{N.RESULT}="{N.RESULT_MISS}"}} {MISSES}\n'
).encode()
WARNING = {
    "kind": "cache_hit_ratio", "subject": "sessions", "value": 0.85, "threshold": 0.9,
    "message": "cache sessions hits 85.0 % of lookups (85 hits, 15 misses)",
}  # fmt: skip


def totals() -> Totals:
    return Totals(cache_requests={("sessions", N.RESULT_HIT): HITS,
                                  ("sessions", N.RESULT_MISS): MISSES})  # fmt: skip


@pytest.fixture
def raised(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text("thresholds:\n  cache_hit_ratio_min: 0.9\n", encoding="utf-8")
    return path


def test_build_report_judges_by_the_given_thresholds(raised: Path) -> None:
    assert build_report(totals()).warnings == ()
    strict = dataclasses.replace(Thresholds(), cache_hit_ratio_min=0.9)
    report = build_report(totals(), thresholds=strict)
    assert [dataclasses.asdict(w) for w in report.warnings] == [WARNING]
    assert [r.kind for r in report.recommendations] == ["cache"]
    # The same thresholds as read from the rules config file.
    assert build_report(totals(), thresholds=load_thresholds(str(raised))) == report


def test_from_registry_takes_thresholds() -> None:
    registry = CollectorRegistry()
    c = Counter(N.CACHE_REQUESTS.prom.removesuffix("_total"), "lookups", [N.CACHE, N.RESULT],
                registry=registry)  # fmt: skip
    c.labels("sessions", N.RESULT_HIT).inc(HITS)
    c.labels("sessions", N.RESULT_MISS).inc(MISSES)
    assert from_registry(registry).warnings == ()
    strict = Thresholds(cache_hit_ratio_min=0.9)
    assert [w.kind for w in from_registry(registry, thresholds=strict).warnings] == [
        "cache_hit_ratio"
    ]


def report_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["report", *args, "--format", "json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_cli_config_raises_the_cache_threshold(
    static_server: Any, raised: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    static_server.body = EXPOSITION
    url = static_server.url + "/metrics"
    assert report_json(capsys, "--url", url)["warnings"] == []
    assert report_json(capsys, "--url", url, "--config", str(raised))["warnings"] == [WARNING]
    # The text report warns (and would paint the ratio) by the same threshold.
    assert main(["report", "--url", url, "--config", str(raised)]) == 0
    assert "! " + WARNING["message"] in capsys.readouterr().out


def test_cli_config_in_toml(
    static_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    static_server.body = EXPOSITION
    path = tmp_path / "rules.toml"
    path.write_text("[thresholds]\ncache_hit_ratio_min = 0.9\n", encoding="utf-8")
    doc = report_json(capsys, "--url", static_server.url + "/metrics", "--config", str(path))
    assert doc["warnings"] == [WARNING]


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (None, ["--config", "missing.yml", "cannot read it"]),
        ("thresholds: [1, 2\n", ["rules.yml", "not valid YAML"]),
        ("thresholds:\n  cache_hit_ratio_minimum: 0.9\n",
         ["rules.yml", "thresholds", "unknown key 'cache_hit_ratio_minimum'"]),
        ("thresholds:\n  cache_hit_ratio_min: 1.5\n",
         ["rules.yml", "thresholds.cache_hit_ratio_min=1.5 is out of range"]),
    ],
)  # fmt: skip
def test_bad_config_is_one_line_exit_2(
    static_server: Any, tmp_path: Path, content: str | None, fragments: list[str]
) -> None:
    static_server.body = EXPOSITION
    path = tmp_path / ("missing.yml" if content is None else "rules.yml")
    if content is not None:
        path.write_text(content, encoding="utf-8")
    p = run_cli("--url", static_server.url + "/metrics", "--config", str(path))
    assert_one_line_error(p, *fragments)
