"""The rule generator: config loading, the committed files, promtool, and the name table."""

from __future__ import annotations

import dataclasses
import doctest
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import otelperf.generate.rules as rules
from otelperf import _names
from otelperf.cli import main
from otelperf.errors import ConfigError
from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parent.parent
ALERT_RULES = ROOT / "alert_rules"
RUNBOOKS = ROOT / "docs" / "runbooks.md"


def _all_rules(files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for data in files.values() for g in data["groups"] for r in g["rules"]]


def _alert_rules(files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in _all_rules(files) if "alert" in r]


def exposed_names() -> set[str]:
    """Every series name the library (or Prometheus itself) exposes, from the name table."""
    names: set[str] = {_names.UP, _names.ALERTS, _names.PROCESS_RESIDENT_MEMORY}
    for m in (*_names.OTEL_METRICS, *_names.PROCESS_METRICS):
        names.update(m.series)
    names.update(r.name for r in _names.RECORDINGS)
    return names


# --- generator output ------------------------------------------------------------------------


def test_docstring_examples() -> None:
    result = doctest.testmod(rules, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8
    assert result.failed == 0


def test_every_alert_name_is_generated_with_the_contract_fields() -> None:
    alerts = _alert_rules(rules.build_rules())
    assert {a["alert"] for a in alerts} == set(rules.ALERT_NAMES)
    assert len(rules.ALERT_NAMES) == 25
    for a in alerts:
        assert sorted(a) == ["alert", "annotations", "expr", "for", "labels"], a["alert"]
        assert sorted(a["annotations"]) == ["description", "runbook_url", "summary"]
        assert a["labels"]["severity"] in ("critical", "warning", "info")
        assert "{{" not in a["annotations"]["summary"], "summary must be static"
        assert "{{ $value" in a["annotations"]["description"], a["alert"]
        anchor = a["alert"].lower()
        assert a["annotations"]["runbook_url"] == (
            f"https://github.com/otelperf/otelperf/blob/main/docs/runbooks.md#{anchor}"
        )


def test_severities_and_for_durations_are_the_documented_defaults() -> None:
    got = sorted(
        (a["alert"], a["labels"]["severity"], a["for"]) for a in _alert_rules(rules.build_rules())
    )
    assert got == sorted(
        [
            ("OtelperfOperationErrorRateHigh", "warning", "5m"),
            ("OtelperfOperationErrorRateHigh", "critical", "5m"),
            ("OtelperfOperationSlow", "warning", "10m"),
            ("OtelperfOperationLatencyRegression", "warning", "15m"),
            ("OtelperfOperationErrorBudgetBurn", "critical", "2m"),
            ("OtelperfOperationErrorBudgetBurn", "warning", "15m"),
            ("OtelperfOperationLatencyBudgetBurn", "critical", "2m"),
            ("OtelperfOperationLatencyBudgetBurn", "warning", "15m"),
            ("OtelperfApiSpendIncrease", "warning", "30m"),
            ("OtelperfApiSlow", "warning", "10m"),
            ("OtelperfFileDescriptorsHigh", "warning", "10m"),
            ("OtelperfTargetAbsent", "critical", "10m"),
            ("OtelperfInternalErrors", "warning", "5m"),
            ("OtelperfOperationLatencyAnomaly", "warning", "15m"),
            ("OtelperfThroughputLow", "warning", "15m"),
            ("OtelperfBottleneckDominant", "info", "30m"),
            ("OtelperfBottleneckShift", "warning", "30m"),
            ("OtelperfCacheHitRateLow", "warning", "15m"),
            ("OtelperfApiErrorRateHigh", "warning", "5m"),
            ("OtelperfApiCostBudgetExceeded", "warning", "15m"),
            ("OtelperfProcessMemoryHigh", "warning", "10m"),
            ("OtelperfMemoryLeakSuspected", "warning", "30m"),
            ("OtelperfHostCpuHigh", "warning", "10m"),
            ("OtelperfHostMemoryHigh", "warning", "10m"),
            ("OtelperfDiskAlmostFull", "critical", "10m"),
            ("OtelperfDiskAlmostFull", "warning", "1h"),
            ("OtelperfTargetDown", "critical", "2m"),
            ("OtelperfSpansDropped", "warning", "5m"),
            ("OtelperfMetricsCardinalityOverflow", "warning", "5m"),
        ]
    )


def test_the_two_disk_almost_full_rules_have_their_own_for() -> None:
    """The 6 h predict_linear warning waits longer than the 90 % critical; a config's
    for.OtelperfDiskAlmostFull still sets both."""

    def disk(cfg: Any = None) -> dict[str, str]:
        files = rules.build_rules(cfg)
        rs = [a for a in _alert_rules(files) if a["alert"] == "OtelperfDiskAlmostFull"]
        return {a["labels"]["severity"]: a["for"] for a in rs}

    assert disk() == {"critical": "10m", "warning": "1h"}
    assert rules.DEFAULT_FOR["OtelperfDiskAlmostFull"] == "10m"
    overridden = rules.config_from_mapping({"for": {"OtelperfDiskAlmostFull": "20m"}})
    assert disk(overridden) == {"critical": "20m", "warning": "20m"}
    # set to the listed default, it is still a setting: both rules wait 10m
    explicit = rules.config_from_mapping({"for": {"OtelperfDiskAlmostFull": "10m"}})
    assert disk(explicit) == {"critical": "10m", "warning": "10m"}
    # another alert's setting leaves both disk rules their own
    other = rules.config_from_mapping({"for": {"OtelperfTargetDown": "2m"}})
    assert disk(other) == {"critical": "10m", "warning": "1h"}


def test_recording_rules_are_exactly_the_name_table_ones() -> None:
    recorded = [r["record"] for r in _all_rules(rules.build_rules()) if "record" in r]
    assert sorted(recorded) == sorted(r.name for r in _names.RECORDINGS)
    for name in recorded:
        # level:metric:operations
        assert re.fullmatch(r"otelperf:[a-z0-9_]+:[a-z0-9_]+", name), name


def test_every_queried_metric_is_one_the_library_exposes() -> None:
    exposed = exposed_names()
    queried: set[str] = set()
    for r in _all_rules(rules.build_rules()):
        names = rules.metric_names(r["expr"])
        assert names, r
        assert names <= exposed, (r.get("alert") or r.get("record"), names - exposed)
        queried |= names
    # Every otelperf series an alert needs is read somewhere (spot-check of the tokenizer too).
    for name in (
        "otelperf_operation_duration_seconds_bucket",
        "otelperf_operation_duration_seconds_count",
        "otelperf_operation_in_flight",
        "otelperf_critical_path_seconds_total",
        "otelperf_roots_total",
        "otelperf_cache_requests_total",
        "otelperf_api_cost_usd_total",
        "otelperf_processor_dropped_spans_total",
        "otelperf_cardinality_overflow_total",
        "process_resident_memory_bytes",
        "system_filesystem_utilization",
        "up",
    ):
        assert name in queried, name


def test_metric_name_tokenizer() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (job, operation, le) (rate(a_bucket{x="rate(b)"}[5m])))'
        " and on(job, operation) (c:d:e * 60 >= 1) or f offset 1d > bool 2"
    )
    assert rules.metric_names(expr) == {"a_bucket", "c:d:e", "f"}
    assert rules.metric_names("predict_linear(m[1h], 4 * 3600) > 2 * m") == {"m"}


def test_no_ratio_without_a_traffic_guard() -> None:
    # Every ratio alert divides nothing itself (the recordings do, by "> 0"-filtered
    # denominators) and carries an "and on(...)" minimum-traffic guard.
    by_name = {a["alert"]: a["expr"] for a in _alert_rules(rules.build_rules())}
    for name in (
        "OtelperfOperationErrorRateHigh",
        "OtelperfOperationSlow",
        "OtelperfOperationLatencyAnomaly",
        "OtelperfCacheHitRateLow",
        "OtelperfApiErrorRateHigh",
    ):
        assert re.search(r"and on\([a-z_, ]+\) \(\S+ \* 60 >= 1\)", by_name[name]), name
    for name in ("OtelperfBottleneckDominant", "OtelperfBottleneckShift"):
        assert (
            "on(job, root_operation) (sum by (job, root_operation) (rate(otelperf_roots_total["
            in (by_name[name])
        ), name
    assert by_name["OtelperfBottleneckShift"].count("* 60 >= 1)") == 2  # now and a day earlier
    for r in _all_rules(rules.build_rules()):
        if " / " in r["expr"]:
            assert re.search(r" / (on\([a-z_, ]+\) (group_left\(\) )?)?\(.* > 0\)", r["expr"]), r


def test_render_is_deterministic_yaml() -> None:
    texts = rules.render_files()
    assert texts == rules.render_files()
    for name, text in texts.items():
        assert text.endswith("\n") and not text.endswith("\n\n"), name
        assert yaml.safe_load(text) == rules.build_rules()[name]
        assert "\n  rules:\n  - " in text  # two-space indent
        assert all(len(line) < 1000 for line in text.splitlines())


# --- config ----------------------------------------------------------------------------------


def test_config_from_yaml_and_toml_files(tmp_path: Path) -> None:
    yml = tmp_path / "rules.yml"
    yml.write_text(
        'job_selector: job="checkout"\n'
        "rate_window: 1m\n"
        "evaluation_interval: 15s\n"
        "min_requests_per_minute: 6\n"
        "runbook_url: https://wiki.example/runbooks/{alertname}\n"
        "thresholds:\n  operation_slow_p95_seconds: 2.5\n  api_daily_budget_usd: 40\n"
        "for:\n  OtelperfOperationSlow: 3m\n"
        "operations:\n  parse:\n    operation_slow_p95_seconds: 10\n",
        encoding="utf-8",
    )
    toml = tmp_path / "rules.toml"
    toml.write_text(
        "job_selector = 'job=\"checkout\"'\n"
        'rate_window = "1m"\n'
        'evaluation_interval = "15s"\n'
        "min_requests_per_minute = 6\n"
        'runbook_url = "https://wiki.example/runbooks/{alertname}"\n'
        "[thresholds]\noperation_slow_p95_seconds = 2.5\napi_daily_budget_usd = 40\n"
        '[for]\nOtelperfOperationSlow = "3m"\n'
        "[operations.parse]\noperation_slow_p95_seconds = 10\n",
        encoding="utf-8",
    )
    from_yaml, from_toml = rules.load_config(yml), rules.load_config(toml)
    assert from_yaml == from_toml
    assert from_yaml.thresholds.operation_slow_p95_seconds == 2.5
    assert from_yaml.thresholds.api_daily_budget_usd == 40.0
    assert from_yaml.for_["OtelperfOperationSlow"] == "3m"
    assert from_yaml.for_["OtelperfTargetDown"] == "2m"  # untouched keys keep their default
    assert from_yaml.operations == {"parse": {"operation_slow_p95_seconds": 10.0}}

    files = rules.build_rules(from_yaml)
    assert {g["interval"] for d in files.values() for g in d["groups"]} == {"15s"}
    recording = {r["record"]: r["expr"] for r in _all_rules(files) if "record" in r}
    assert recording["otelperf:operation_requests:rate"] == (
        'sum by (job, operation) (rate(otelperf_operation_duration_seconds_count{job="checkout"}'
        "[1m]))"
    )
    assert recording["otelperf:operation_errors:rate"] == (
        "sum by (job, operation) (rate(otelperf_operation_duration_seconds_count"
        '{job="checkout", outcome="error"}[1m]))'
    )
    slow = [a for a in _alert_rules(files) if a["alert"] == "OtelperfOperationSlow"]
    assert [(a["expr"], a["for"]) for a in slow] == [
        (
            'otelperf:operation_duration_seconds:p95{operation!~"parse"} > 2.5 and '
            "on(job, operation) (otelperf:operation_requests:rate * 60 >= 6)",
            "3m",
        ),
        (
            'otelperf:operation_duration_seconds:p95{operation="parse"} > 10 and '
            "on(job, operation) (otelperf:operation_requests:rate * 60 >= 6)",
            "3m",
        ),
    ]
    assert slow[1]["annotations"]["description"].endswith("over the last 1m (threshold 10s).")
    assert slow[0]["annotations"]["runbook_url"] == (
        "https://wiki.example/runbooks/OtelperfOperationSlow"
    )
    budget = [a for a in _alert_rules(files) if a["alert"] == "OtelperfApiCostBudgetExceeded"]
    assert budget[0]["expr"] == (
        "otelperf:api_cost_usd:projected_today > 40 or otelperf:api_cost_usd:spent_today > 40"
    )


def test_override_of_an_operation_with_regex_characters_is_escaped(tmp_path: Path) -> None:
    cfg = rules.config_from_mapping(
        {"operations": {"db.query": {"operation_error_ratio_critical": 0.5}}}
    )
    crit = [
        (a["expr"], a["labels"])
        for a in _alert_rules(rules.build_rules(cfg))
        if a["alert"] == "OtelperfOperationErrorRateHigh" and a["labels"]["severity"] == "critical"
    ]
    guard = (
        "and on(job, operation) (otelperf:operation_errors:rate * 300 >= 5) "
        "and on(job, operation) (otelperf:operation_requests:rate * 60 >= 1)"
    )
    assert crit == [
        (
            'otelperf:operation_errors:ratio_rate{operation!~"db\\\\.query"} > 0.1 and '
            'on(job, operation) (otelperf:operation_errors:ratio_lower_bound{operation!~"db'
            '\\\\.query"} > 0.1) ' + guard,
            {"severity": "critical"},
        ),
        (
            'otelperf:operation_errors:ratio_rate{operation="db.query"} > 0.5 and '
            'on(job, operation) (otelperf:operation_errors:ratio_lower_bound{operation="db.query"}'
            " > 0.5) " + guard,
            {"severity": "critical", "operation": "db.query"},
        ),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rate_windw": "5m"}, "(top level): unknown key 'rate_windw'"),
        ({"rate_window": "5 minutes"}, "rate_window='5 minutes' is not a Prometheus duration"),
        ({"rate_window": 5}, "rate_window=5 is not a Prometheus duration"),
        ({"evaluation_interval": "0"}, "evaluation_interval='0' is not a Prometheus duration"),
        ({"thresholds": {"api_error_ratio": 1.5}}, "thresholds.api_error_ratio=1.5 is out of"),
        ({"thresholds": {"api_daily_budget_usd": -1}}, "thresholds.api_daily_budget_usd=-1 is"),
        ({"thresholds": {"cache_hit_ratio_min": "high"}}, "thresholds.cache_hit_ratio_min='high'"),
        ({"thresholds": {"cache_hitratio": 0.5}}, "thresholds: unknown key 'cache_hitratio'"),
        ({"thresholds": [1, 2]}, "thresholds must be a table/mapping, not list"),
        ({"for": {"OtelperfNope": "5m"}}, "for: unknown key 'OtelperfNope'"),
        ({"for": {"OtelperfTargetDown": "soon"}}, "for.OtelperfTargetDown='soon' is not a"),
        ({"operations": {"parse": {"api_error_ratio": 0.1}}}, "operations.parse: unknown key"),
        (
            {"operations": {"parse": {"operation_slow_p95_seconds": True}}},
            "operations.parse.operation_slow_p95_seconds=True is not a number",
        ),
        ({"operations": {'a"b': {}}}, "operations: 'a\"b' is not a usable operation name"),
        ({"job_selector": "job=checkout"}, "job_selector='job=checkout' is not a comma-separated"),
        ({"runbook_url": "https://x/{name}"}, "runbook_url='https://x/{name}': only the"),
        ({"min_requests_per_minute": None}, "min_requests_per_minute=None is not a number"),
        ([1], "(top level) must be a table/mapping, not list"),
    ],
)
def test_invalid_config_names_the_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        rules.config_from_mapping(data, "my.yml")
    assert str(err.value).startswith("my.yml: ")
    assert message in str(err.value)


def test_valid_job_selectors() -> None:
    for sel in ('job="a"', 'job=~"a|b", env!="dev"', 'job="a,b"', 'x!~"\\"q\\""'):
        assert rules.config_from_mapping({"job_selector": sel}).job_selector == sel


def test_empty_config_file_means_defaults(tmp_path: Path) -> None:
    p = tmp_path / "empty.yml"
    p.write_text("# nothing to change\n", encoding="utf-8")
    assert rules.load_config(p) == rules.RulesConfig()


def test_unreadable_and_malformed_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--config .*missing\.yml: cannot read it"):
        rules.load_config(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("thresholds: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yml: not valid YAML: "):
        rules.load_config(bad)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("rate_window = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML: "):
        rules.load_config(bad_toml)


# --- CLI and the committed files --------------------------------------------------------------


def test_committed_rule_files_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--check", "--out", str(ALERT_RULES)]) == 0
    assert "are up to date" in capsys.readouterr().out


def test_check_exits_1_on_stale_or_missing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rules"
    assert main(["rules", "--check", "--out", str(out)]) == 1
    assert "stale or missing" in capsys.readouterr().err
    assert main(["rules", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["alerts.yml", "recording.yml"]
    assert main(["rules", "--check", "--out", str(out)]) == 0
    alerts = out / "alerts.yml"
    alerts.write_text(alerts.read_text().replace("> 0.05", "> 0.5"), encoding="utf-8")
    capsys.readouterr()
    assert main(["rules", "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(alerts) in err and "recording.yml" not in err


def test_cli_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "r.yml"
    cfg.write_text("thresholds:\n  host_cpu_utilization: 80\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "otelperf.cli", "rules", "--config", str(cfg), "--out",
         str(tmp_path / "o")],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == (
        f"otelperf rules: error: {cfg}: thresholds.host_cpu_utilization=80 is out of range: "
        "it must be a number between 0 and 1\n"
    )
    assert not (tmp_path / "o").exists()


# --- promtool ---------------------------------------------------------------------------------


def test_promtool_check_rules_on_committed_files() -> None:
    promtool = require_binary("promtool")
    files = sorted(str(p) for p in ALERT_RULES.glob("*.yml"))
    assert [Path(f).name for f in files] == ["alerts.yml", "recording.yml"]
    proc = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 29 rules found" in proc.stdout
    assert "SUCCESS: 41 rules found" in proc.stdout


def test_promtool_check_rules_on_a_customised_config(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    cfg = rules.config_from_mapping(
        {
            "job_selector": 'job=~"api|worker"',
            "evaluation_interval": "1s",
            "rate_window": "10s",
            "operations": {
                "db.query": dict.fromkeys(rules.OPERATION_OVERRIDABLE, 0.5),
                "parse": {"throughput_min_items_per_second": 10},
            },
        }
    )
    for name, text in rules.render_files(cfg).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "alerts.yml"), str(tmp_path / "recording.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # 29 default alerts + db.query x 4 thresholds + parse x 1
    assert "SUCCESS: 34 rules found" in proc.stdout


def test_promtool_unit_tests() -> None:
    promtool = require_binary("promtool")
    tests = sorted(str(p) for p in (ALERT_RULES / "tests").glob("*.yml"))
    assert [Path(t).name for t in tests] == [
        "bottlenecks.yml", "cache_and_apis.yml", "healthy.yml", "operations.yml",
        "operations_daily.yml", "pipeline.yml", "resources.yml", "scenarios_dependencies.yml",
        "scenarios_errors.yml", "scenarios_latency.yml", "scenarios_pipeline.yml",
        "scenarios_resources.yml", "scenarios_throughput.yml",
    ]  # fmt: skip
    proc = subprocess.run(
        [promtool, "test", "rules", *tests], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(tests)


def test_promtool_tests_cover_every_alert_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in (ALERT_RULES / "tests").glob("*.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["tests"]:
            # The generated scenarios also check that an alert never fired over a whole run.
            for e in case.get("promql_expr_test", []):
                m = re.match(r'max_over_time\(ALERTS\{alertstate="firing",alertname="(\w+)"',
                             e["expr"])  # fmt: skip
                if m and e["exp_samples"] == []:
                    quiet.add(m.group(1))
            for t in case.get("alert_rule_test", []):
                (fired if t["exp_alerts"] else quiet).add(t["alertname"])
                for exp in t["exp_alerts"]:
                    assert sorted(exp["exp_annotations"]) == ["description", "runbook_url",
                                                              "summary"]  # fmt: skip
                    assert "severity" in exp["exp_labels"]
    assert fired == set(rules.ALERT_NAMES)
    assert quiet == set(rules.ALERT_NAMES)


def test_a_mutated_threshold_breaks_the_promtool_tests(tmp_path: Path) -> None:
    # The promtool tests are not vacuous: with a 50 % warning threshold the error-rate case fails.
    promtool = require_binary("promtool")
    cfg = dataclasses.replace(
        rules.RulesConfig(),
        thresholds=dataclasses.replace(rules.Thresholds(), operation_error_ratio_warning=0.5),
    )
    for name, text in rules.render_files(cfg).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    test_file = tmp_path / "tests" / "operations.yml"
    test_file.write_text((ALERT_RULES / "tests" / "operations.yml").read_text(), encoding="utf-8")
    proc = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 1
    assert "OtelperfOperationErrorRateHigh" in proc.stdout + proc.stderr


# --- runbooks ---------------------------------------------------------------------------------


def _github_anchor(heading: str) -> str:
    # GitHub: lowercase, drop punctuation except - and _, spaces become -.
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_alert_has_a_runbook_section_with_the_three_parts() -> None:
    text = RUNBOOKS.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    by_anchor = {_github_anchor(s.splitlines()[0]): s for s in sections}
    for name in rules.ALERT_NAMES:
        anchor = rules.runbook_anchor(name)
        assert anchor in by_anchor, f"docs/runbooks.md has no '## {name}' section"
        body = by_anchor[anchor]
        for part in ("**Meaning.**", "**Confirm.**", "**Act.**"):
            assert part in body, (name, part)


def test_alerting_doc_lists_every_key_and_alert() -> None:
    doc = (ROOT / "docs" / "alerting.md").read_text(encoding="utf-8")
    for f in dataclasses.fields(rules.Thresholds):
        assert f"| `{f.name}` | `{rules.number(f.default)}`" in doc, f.name
    for f in dataclasses.fields(rules.RulesConfig):
        if f.name == "for_set":  # which names `for` set: no key of its own
            continue
        key = f.name.rstrip("_")
        assert f"| `{key}" in doc, key
    for name, duration in rules.DEFAULT_FOR.items():
        assert f"{name} `{duration}`" in doc.replace("\n", " "), name
    for rec in _names.RECORDINGS:
        assert f"| `{rec.name}` |" in doc, rec.name
