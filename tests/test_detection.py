"""Issue 15's detection rules: the SLO config, the significance bound, the generated scenarios.

``tests/test_rules.py`` runs every promtool file (the generated ``scenarios_*.yml`` among them)
and checks every alert has a firing and a quiet case; here: the scenario files are what the
generator makes, the Wilson bound in PromQL is the textbook one, the scenarios fail against
the old rule forms, and the ``slos`` config is validated key by key.
"""

from __future__ import annotations

import dataclasses
import math
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import otelperf.generate.rules as rules
from otelperf.errors import ConfigError
from tests import scenarios, scenarios_catalog
from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "alert_rules" / "tests"


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    """The test file without the annotations promtool filled in (the generator's own part)."""
    for group in data["tests"]:
        for t in group["alert_rule_test"]:
            for e in t["exp_alerts"]:
                e["exp_annotations"] = {}
    return data


@pytest.mark.parametrize("name", sorted(scenarios_catalog.FILES))
def test_scenario_files_are_what_the_generator_makes(name: str) -> None:
    """Like ``otelperf rules --check``: regenerate with ``python -m tests.scenarios``."""
    _, build = scenarios_catalog.FILES[name]
    made = scenarios.render(build(random.Random(f"{scenarios.SEED}:{name}")))
    committed = yaml.safe_load((TESTS / name).read_text(encoding="utf-8"))
    # Every firing case carries the three annotations, taken from promtool.
    for group in committed["tests"]:
        for t in group["alert_rule_test"]:
            for e in t["exp_alerts"]:
                assert sorted(e["exp_annotations"]) == ["description", "runbook_url", "summary"]
    assert _strip(committed) == made, f"stale: regenerate with python -m tests.scenarios ({name})"


def test_noise_helpers_are_seeded_and_plausible() -> None:
    rng = random.Random(1)
    draws = [scenarios.poisson(rng, 3) for _ in range(20000)]
    assert abs(sum(draws) / len(draws) - 3) < 0.05
    assert abs(sum((d - 3) ** 2 for d in draws) / len(draws) - 3) < 0.15  # variance = mean
    big = [scenarios.poisson(rng, 5000) for _ in range(2000)]
    assert abs(sum(big) / len(big) - 5000) < 10
    errs = [scenarios.binomial(rng, 60, 0.01) for _ in range(20000)]
    assert abs(sum(errs) / len(errs) - 0.6) < 0.03
    assert scenarios.daily(120, 0.1, 1.0) == pytest.approx(0.1)  # 02:00: the trough
    assert scenarios.daily(840, 0.1, 1.0) == pytest.approx(1.0)  # 14:00: the peak
    assert scenarios.duration(2 * 1440 + 45) == "2d45m"
    first = scenarios_catalog.errors(random.Random("x"))[0].series
    assert first == scenarios_catalog.errors(random.Random("x"))[0].series


def test_histogram_counters_are_cumulative_and_consistent() -> None:
    g = scenarios.Group("g", 3)
    h = scenarios.Histogram("d", {"job": "j", "instance": "i", "operation": "o"})
    rng = random.Random(2)
    for n in (50, 0, 70):
        h.minute(rng, n, n // 10, 0.1, 0.5)
    h.write(g)
    count = g.series['d_count{job="j",instance="i",operation="o",outcome="success",error_type=""}']
    inf = g.series['d_bucket{job="j",instance="i",operation="o",outcome="success",'
                   'error_type="",le="+Inf"}']  # fmt: skip
    assert count == inf == [45.0, 45.0, 108.0]
    buckets = sorted(
        (float(k.split('le="')[1].rstrip('"}')), v[-1])
        for k, v in g.series.items()
        if "_bucket" in k and "success" in k and "+Inf" not in k
    )
    assert [c for _, c in buckets] == sorted(c for _, c in buckets)  # cumulative in le
    assert 5.0 in [b for b, _ in buckets]  # the SLO boundary is always written


def _wilson(errors: int, n: int, z: float) -> float:
    p = errors / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def test_the_wilson_lower_bound_in_promql_is_the_textbook_one(tmp_path: Path) -> None:
    """15 calls and 2 errors in five minutes: 13 % observed, 2.1 % lower bound at z = 3."""
    promtool = require_binary("promtool")
    for name, text in rules.render_files().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    op = 'job="j",instance="i",operation="o"'
    lower = "otelperf:operation_errors:ratio_lower_bound"
    bound = _wilson(2, 15, 3.0)
    assert bound == pytest.approx(0.0214, abs=1e-4)
    test = {
        "rule_files": ["recording.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'otelperf_operation_duration_seconds_count{{{op},outcome="success"}}',
                 "values": "0+2.6x10"},
                {"series": f'otelperf_operation_duration_seconds_count{{{op},outcome="error"}}',
                 "values": "0+0.4x10"},
            ],
            "promql_expr_test": [{
                "expr": f"abs({lower} - {bound!r}) < bool 1e-12",
                "eval_time": "10m",
                "exp_samples": [{"labels": '{job="j",operation="o"}', "value": 1}],
            }],
        }],
    }  # fmt: skip
    path = tmp_path / "wilson.yml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    proc = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_low_volume_scenario_fires_without_the_significance_guards(tmp_path: Path) -> None:
    """Not vacuous: with z = 0 and no minimum of errors (the old rule's form), 3 calls a minute
    at a steady 1 % fires OtelperfOperationErrorRateHigh, and the scenario file fails."""
    promtool = require_binary("promtool")
    loose = dataclasses.replace(
        rules.Thresholds(), ratio_confidence_z=0.0, operation_error_min_errors=0.0
    )
    cfg = dataclasses.replace(rules.RulesConfig(), thresholds=loose)
    for name, text in rules.render_files(cfg).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    test = tmp_path / "tests" / "scenarios_errors.yml"
    test.write_text((TESTS / "scenarios_errors.yml").read_text(encoding="utf-8"))
    proc = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert 'operation="lowvol"' in proc.stdout + proc.stderr


# --- the slos config ---------------------------------------------------------------------------


def test_slos_defaults_and_per_operation_objectives() -> None:
    cfg = rules.config_from_mapping(
        {
            "slos": {
                "default": {"availability": 0.995},
                "GET /items/{item_id}": {
                    "availability": 0.999, "latency_seconds": 0.5, "latency_target": 0.99,
                },
                "export": {"latency_seconds": 30},
            }
        }
    )  # fmt: skip
    assert cfg.slos == {
        "default": {"availability": 0.995, "latency_seconds": 5.0, "latency_target": 0.95},
        "GET /items/{item_id}": {
            "availability": 0.999, "latency_seconds": 0.5, "latency_target": 0.99,
        },
        "export": {"availability": 0.995, "latency_seconds": 30.0, "latency_target": 0.95},
    }  # fmt: skip
    files = rules.build_rules(cfg)
    burns = [r for g in files["alerts.yml"]["groups"] for r in g["rules"]
             if r["alert"] == "OtelperfOperationErrorBudgetBurn"]  # fmt: skip
    assert [(r["labels"].get("operation"), r["labels"]["severity"]) for r in burns] == [
        (None, "critical"), ("GET /items/{item_id}", "critical"), ("export", "critical"),
        (None, "warning"), ("GET /items/{item_id}", "warning"), ("export", "warning"),
    ]  # fmt: skip
    page = burns[1]["expr"]
    # 1 / (1 - 0.999) = 1000: the ratio times 1000 is the burn rate.
    assert page.startswith(
        '(otelperf:operation_errors:ratio_rate1h{operation="GET /items/{item_id}"} * 1000 > 14.4 '
        'and otelperf:operation_errors:ratio_rate5m{operation="GET /items/{item_id}"} * 1000 > '
        "14.4 and on(job, operation) (sum by (job, operation) (increase("
    )
    # The default rule leaves the named operations out (RE2-escaped), in every selector.
    excluded = 'operation!~"GET \\\\/items\\\\/\\\\{item\\\\_id\\\\}|export"'
    assert burns[0]["expr"].count(excluded) == 6
    recording = {r["record"]: r["expr"] for r in files["recording.yml"]["groups"][0]["rules"]}
    slow = recording["otelperf:operation_latency_slow:ratio_rate1h"]
    assert 'le=~"0\\\\.5|5(\\\\.0)?|30(\\\\.0)?"' in slow


def test_slos_config_promtool_loads(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    cfg = rules.config_from_mapping(
        {"job_selector": 'job="api"',
         "slos": {"a.b": {"latency_seconds": 0.25}, "c": {"availability": 0.9999}}}
    )  # fmt: skip
    for name, text in rules.render_files(cfg).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "alerts.yml"), str(tmp_path / "recording.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The job selector's absent() covers a job never seen.
    assert 'absent(up{job="api"})' in (tmp_path / "alerts.yml").read_text()


@pytest.mark.parametrize(
    ("slos", "message"),
    [
        ([1], "slos must be a table/mapping, not list"),
        ({"default": {"availability": 1}}, "slos.default.availability=1 is out of range"),
        ({"op": {"availability": 0}}, "slos.op.availability=0 is out of range"),
        ({"op": {"latency_target": 1.5}}, "slos.op.latency_target=1.5 is out of range"),
        ({"op": {"latency_seconds": 0}}, "slos.op.latency_seconds=0 is out of range"),
        ({"op": {"latency_seconds": "fast"}}, "slos.op.latency_seconds='fast' is not a number"),
        ({"op": {"latency_seconds": 100000}}, "slos.op.latency_seconds=100000 is out of range"),
        ({"op": {"availabilty": 0.99}}, "slos.op: unknown key 'availabilty'"),
        ({"op": [0.99]}, "slos.op must be a table/mapping, not list"),
        ({'a"b': {}}, "slos: 'a\"b' is not a usable operation name"),
    ],
)
def test_bad_slos_name_the_key(slos: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        rules.config_from_mapping({"slos": slos}, "r.yml")
    assert str(err.value).startswith("r.yml: ")
    assert message in str(err.value)
