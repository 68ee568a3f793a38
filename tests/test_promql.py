"""The shared PromQL builders: exact text, since generated files must stay byte-identical."""

from __future__ import annotations

import pytest

from otelperf.generate import promql as q


def test_selector_joins_non_empty_matchers() -> None:
    assert q.selector("up") == "up"
    assert q.selector("up", "", "") == "up"
    assert q.selector("up", q.eq("job", "a"), q.re_match("instance", "$i")) == (
        'up{job="a", instance=~"$i"}'
    )
    assert q.selector("up", q.eq("job", "a"), q.eq("x", "b"), sep=",") == 'up{job="a",x="b"}'


def test_eq_escapes_the_value_for_a_string_literal() -> None:
    assert q.eq("job", 'a"b\\c\nd') == 'job="a\\"b\\\\c\\nd"'
    assert q.not_re_match("operation", "a|b") == 'operation!~"a|b"'


def test_regex_alternation_survives_promql_unescaping() -> None:
    # PromQL turns \\ into \, leaving re.escape's single backslash for the regex engine.
    assert q.regex_alternation(["db.query", "x"]) == "db\\\\.query|x"


def test_rates_aggregations_and_quantiles() -> None:
    sel = q.selector("d_bucket", q.eq("job", "a"))
    assert q.rate(sel, "5m") == 'rate(d_bucket{job="a"}[5m])'
    assert q.rate("x", "1h", offset="1d") == "rate(x[1h] offset 1d)"
    assert q.increase("x", "1h") == "increase(x[1h])"
    assert q.over_time("max", "x", "1h") == "max_over_time(x[1h])"
    assert q.call("predict_linear", q.range_vector("x", "6h"), "24 * 3600") == (
        "predict_linear(x[6h], 24 * 3600)"
    )
    assert q.sum_by(("job", "le"), q.rate(sel, "5m")) == (
        'sum by (job, le) (rate(d_bucket{job="a"}[5m]))'
    )
    assert q.sum_by((), "x") == "sum (x)"
    assert q.aggregate("max", ("a",), "x") == "max by (a) (x)"
    assert q.histogram_quantile(0.99, "b") == "histogram_quantile(0.99, b)"
    assert q.on("job", tight=True) + " " + q.group_left(tight=True) == "on(job) group_left()"
    assert q.on() + " " + q.group_left() == "on () group_left ()"


@pytest.mark.parametrize(
    ("x", "text"),
    [(0.05, "0.05"), (1.0, "1"), (1073741824.0, "1073741824"), (1 / 3, "0.333333333333")],
)
def test_number(x: float, text: str) -> None:
    assert q.number(x) == text


@pytest.mark.parametrize(
    ("text", "ok", "seconds"),
    [("5m", True, 300), ("1h30m", True, 5400), ("1500ms", True, 1.5), ("0", False, 0),
     ("0s", True, 0), ("", False, 0), ("5 m", False, 300), ("m", False, 0)],
)  # fmt: skip
def test_durations(text: str, ok: bool, seconds: float) -> None:
    assert q.is_duration(text) is ok
    if ok:
        assert q.duration_seconds(text) == seconds


def test_metric_names_skips_functions_labels_and_durations() -> None:
    expr = 'sum by (job) (rate(x_total{a="b"}[5m] offset 1d)) / on(job) group_left() y > 0'
    assert q.metric_names(expr) == {"x_total", "y"}
