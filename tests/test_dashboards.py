"""Structure of the generated Grafana dashboards (no Grafana, no Prometheus needed).

The queries themselves are proven against a real Prometheus in test_dashboard_queries.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import otelperf.generate.dashboards as D
from otelperf import _names as N
from otelperf.cli import main
from otelperf.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
BUILTIN_VARS = {"__rate_interval", "__interval", "__range", "__interval_ms", "__range_s"}
UIDS = {
    "overview.json": "otelperf-overview",
    "bottlenecks.json": "otelperf-bottlenecks",
    "cache-apis.json": "otelperf-cache-apis",
    "resources.json": "otelperf-resources",
}


# --- helpers shared with test_dashboard_queries.py --------------------------------------------
def generated() -> dict[str, dict[str, Any]]:
    """The dashboards as Grafana will read them: parsed from the rendered text."""
    return {name: json.loads(text) for name, text in D.render().items()}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row (rows are only headings)."""
    for p in dashboard["panels"]:
        if p["type"] != "row":
            yield p
        yield from (c for c in p.get("panels", []) if c["type"] != "row")


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["templating"]["list"])


_VAR_RE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def used_variables(text: str) -> set[str]:
    """Names of the $var / ${var} / ${var:fmt} references in a string."""
    return {a or b for a, b in _VAR_RE.findall(text)}


# PromQL words that look like metric names but are not.
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression (or a Grafana label_values() query) selects.

    String literals, label matchers ({...}), range selectors ([...]) and grouping clauses
    (by/on/...(...)) are removed first; what is left that is an identifier not followed by "("
    (a function) and not a keyword or number is a metric name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    m = re.match(r"\s*label_values\((.*),\s*\w+\)\s*$", text)
    if m:
        text = m.group(1)
    names = set()
    for match in re.finditer(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def exposed_names() -> set[str]:
    """Every series name the library exposes, the recording rules, and Prometheus's own."""
    names = {s for m in N.ALL_METRICS for s in m.series}
    names |= {r.name for r in N.RECORDINGS}
    return names | {N.ALERTS, N.UP}


def all_queries(dashboard: dict[str, Any]) -> Iterator[str]:
    for p in panels(dashboard):
        for t in p["targets"]:
            yield t["expr"]
    for v in variables(dashboard):
        if v["type"] == "query":
            yield v["query"]


# --- the extractor itself ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (operation) (rate(a_total{job=~"$job",x="by(y)"}[5m]))', {"a_total"}),
        ("100 * (b or 0 * c) / on () group_left () d", {"b", "c", "d"}),
        ("histogram_quantile(0.95, sum by (operation, le) (rate(h_bucket[1m])))", {"h_bucket"}),
        ('label_values(target_info{job=~"$job"}, instance)', {"target_info"}),
        (
            'topk(10, otelperf:x:rate{job=~"$job"} > 0) and on (operation) y',
            {"otelperf:x:rate", "y"},
        ),
        ("1e3 * Inf - NaN", set()),
    ],
)
def test_metric_name_extractor(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


# --- structure --------------------------------------------------------------------------------
def test_the_four_dashboards_with_stable_uids() -> None:
    dashboards = generated()
    assert {name: d["uid"] for name, d in dashboards.items()} == UIDS
    assert [d["title"] for d in dashboards.values()] == [
        "otelperf / Overview",
        "otelperf / Bottlenecks",
        "otelperf / Cache & external APIs",
        "otelperf / Resources",
    ]
    for d in dashboards.values():
        assert d["id"] is None  # provisioning assigns ids; a fixed one would clash
        assert d["tags"] == ["otelperf"]
        assert d["description"]


def test_output_is_deterministic_sorted_and_newline_terminated() -> None:
    first, second = D.render(), D.render()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n") and not text.endswith("\n\n")
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_panel_ids_unique_and_grid_positions_do_not_overlap() -> None:
    for name, d in generated().items():
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        assert all(isinstance(i, int) and i > 0 for i in ids)
        cells: dict[tuple[int, int], str] = {}
        for p in d["panels"]:
            pos = p["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (name, p["title"])
            assert pos["w"] > 0 and pos["h"] > 0
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    other = cells.setdefault((x, y), p["title"])
                    assert other == p["title"], f"{name}: {p['title']!r} overlaps {other!r}"


def test_every_panel_has_a_unit_a_description_and_targets() -> None:
    count = 0
    for name, d in generated().items():
        for p in panels(d):
            count += 1
            assert p["description"] and len(p["description"]) > 20, (name, p["title"])
            assert p["fieldConfig"]["defaults"]["unit"], (name, p["title"])
            assert p["targets"], (name, p["title"])
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs))
    assert count == 38


def test_every_variable_used_is_defined_before_use() -> None:
    for name, d in generated().items():
        defined: list[str] = []
        for v in variables(d):
            text = v["query"] if v["type"] == "query" else ""
            text += json.dumps(v["datasource"])
            assert used_variables(text) - BUILTIN_VARS <= set(defined), (name, v["name"])
            defined.append(v["name"])
        assert defined[:3] == ["datasource", "job", "instance"]
        used: set[str] = set()
        for p in panels(d):
            used |= used_variables(json.dumps(p["datasource"]))
            for t in p["targets"]:
                used |= used_variables(t["expr"] + t["legendFormat"] + json.dumps(t["datasource"]))
        assert used - BUILTIN_VARS <= set(defined), name
        # and every variable defined is used by some panel (no dead drop-downs)
        assert set(defined) <= used | {"datasource"}, name


def test_every_datasource_reference_resolves_to_the_datasource_variable() -> None:
    provisioned = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    for name, d in generated().items():
        ds_vars = [v for v in variables(d) if v["type"] == "datasource"]
        assert len(ds_vars) == 1
        ds = ds_vars[0]
        assert (ds["name"], ds["query"]) == ("datasource", "prometheus")
        # the default is the datasource the compose stack provisions
        assert ds["current"]["value"] == D.DashboardSettings().datasource
        assert ds["current"]["value"] in [
            p["name"] for p in provisioned if p["type"] == "prometheus"
        ]
        expected = {"type": "prometheus", "uid": "${datasource}"}
        for v in variables(d):
            if v["type"] == "query":
                assert v["datasource"] == expected, (name, v["name"])
        for p in panels(d):
            assert p["datasource"] == expected, (name, p["title"])
            for t in p["targets"]:
                assert t["datasource"] == expected, (name, p["title"], t["refId"])


def test_dashboards_link_to_each_other() -> None:
    dashboards = generated()
    for name, d in dashboards.items():
        links = [link for link in d["links"] if link["type"] == "dashboards"]
        assert len(links) == 1, name
        link = links[0]
        assert link["includeVars"] and link["keepTime"]
        # a "dashboards" link lists every dashboard carrying all its tags: all four
        reached = {n for n, other in dashboards.items() if set(link["tags"]) <= set(other["tags"])}
        assert reached == set(dashboards), name


def test_every_metric_queried_is_exposed_by_the_library_or_a_recording_rule() -> None:
    allowed = exposed_names()
    used: set[str] = set()
    for name, d in generated().items():
        for expr in all_queries(d):
            names = promql_metric_names(expr)
            assert names, expr
            assert names <= allowed, f"{name}: {sorted(names - allowed)} in {expr}"
            used |= names
    # the cheap recording rules are actually used, and the rules generator defines them
    recordings = {r.name for r in N.RECORDINGS} & used
    assert recordings == {
        N.REC_OPERATION_P95_1H.name,
        N.REC_OPERATION_ERROR_RATIO.name,
        N.REC_API_COST_1H.name,
    }
    rule_files = sorted((REPO / "alert_rules").glob("*.yml"))
    assert rule_files, "alert_rules/*.yml missing: run `otelperf rules`"
    recorded = {
        rule["record"]
        for f in rule_files
        for group in (yaml.safe_load(f.read_text()) or {}).get("groups", [])
        for rule in group["rules"]
        if "record" in rule
    }
    assert recordings <= recorded


def test_panels_cover_the_issue_list() -> None:
    titles = {name: [p["title"] for p in panels(d)] for name, d in generated().items()}
    assert titles["overview.json"] == [
        "Request rate",
        "Error %",
        "Latency p50",
        "Latency p95",
        "Latency p99",
        "In flight",
        "Items / s",
        "Bytes / s",
        "Top 10 slowest operations (p95, last hour)",
        "Top 10 most failing operations",
        "Firing otelperf alerts",
    ]
    assert titles["bottlenecks.json"] == [
        "Root operations / s",
        "Mean root duration",
        "Critical-path share per operation",
        "Self time vs critical path",
        "CPU-bound vs waiting",
        "Top contributors",
    ]
    assert titles["cache-apis.json"] == [
        "Hit ratio per cache",
        "Lookups / s",
        "API calls / s",
        "API error %",
        "API latency",
        "Tokens / s by type",
        "Cost per hour",
        "Projected cost per day",
        "Projected cost per day per API (all models)",
    ]
    assert titles["resources.json"] == [
        "Process CPU",
        "Process resident memory",
        "Threads",
        "Open file descriptors",
        "GC collections / s",
        "Host CPU",
        "Host memory",
        "Filesystems",
        "Dropped spans / s",
        "Cardinality overflow / s",
        "Internal errors / s",
        "Traces in flight",
    ]
    share = next(
        p
        for p in panels(generated()["bottlenecks.json"])
        if p["title"] == "Critical-path share per operation"
    )
    assert share["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert share["fieldConfig"]["defaults"]["max"] == 100
    for key, title in D.FAULT_ONLY_PANELS:
        assert title in titles[next(f for k, _, f in D.DASHBOARDS if k == key)]


def test_multi_value_variables_start_on_all_and_root_is_single() -> None:
    for name, d in generated().items():
        for v in variables(d):
            if v["type"] != "query":
                continue
            if v["name"] == "root":
                assert (v["multi"], v["includeAll"]) == (False, False)
            else:
                assert (v["multi"], v["includeAll"]) == (True, True), (name, v["name"])
                assert v["current"]["value"] == ["$__all"]


def test_settings_change_the_output_and_bad_settings_name_the_field() -> None:
    custom = D.render(D.DashboardSettings(datasource="Metrics", uid_prefix="team-a", refresh="1m"))
    d = json.loads(custom["overview.json"])
    assert d["uid"] == "team-a-overview"
    assert d["refresh"] == "1m"
    assert variables(d)[0]["current"]["value"] == "Metrics"
    with pytest.raises(ConfigError, match=r"DashboardSettings\.uid_prefix='a b'"):
        D.build_dashboards(D.DashboardSettings(uid_prefix="a b"))
    with pytest.raises(ConfigError, match=r"uid_prefix=.* too long"):
        D.build_dashboards(D.DashboardSettings(uid_prefix="x" * 30))
    with pytest.raises(ConfigError, match=r"DashboardSettings\.datasource=''"):
        D.build_dashboards(D.DashboardSettings(datasource=""))


# --- the command ------------------------------------------------------------------------------
def test_committed_dashboards_are_current() -> None:
    """`otelperf dashboards --check` on the repository's dashboards/ (the real command)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "otelperf.cli",
            "dashboards",
            "--check",
            "--out",
            str(REPO / "dashboards"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 files" in proc.stdout


def test_write_then_check_then_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dash"
    assert main(["dashboards", "--check", "--out", str(out)]) == 1  # nothing written yet
    assert "overview.json is missing or stale" in capsys.readouterr().err
    assert main(["dashboards", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(UIDS)
    assert {p.name: p.read_text() for p in out.iterdir()} == D.render()
    assert main(["dashboards", "--check", "--out", str(out)]) == 0
    capsys.readouterr()

    (out / "bottlenecks.json").write_text((out / "bottlenecks.json").read_text() + " ")
    assert main(["dashboards", "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "bottlenecks.json is missing or stale" in err and "overview.json" not in err

    assert main(["dashboards", "--out", str(out)]) == 0  # regenerating fixes it
    (out / "old.json").write_text("{}\n")
    assert main(["dashboards", "--check", "--out", str(out)]) == 1
    assert "old.json is not generated by otelperf dashboards" in capsys.readouterr().err


def test_out_that_is_a_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "file"
    f.write_text("")
    assert main(["dashboards", "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert err == f"otelperf dashboards: error: --out={str(f)!r} is not a directory\n"
