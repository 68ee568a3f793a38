"""The rule generator under abuse (issue 14, defects 8 and 10): every config it accepts makes
rule files Prometheus loads, and every config it refuses is a one-line error, exit 2.

Each case here produced either a file ``promtool check rules`` refused or a traceback before.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otelperf.generate.rules as rules
from otelperf.cli import main
from otelperf.errors import ConfigError
from tests.conftest import require_binary


def _promtool_check(tmp_path: Path, cfg: rules.RulesConfig) -> subprocess.CompletedProcess[str]:
    for name, text in rules.render_files(cfg).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return subprocess.run(
        [require_binary("promtool"), "check", "rules",
         str(tmp_path / "alerts.yml"), str(tmp_path / "recording.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["rules", *argv])
    return code, capsys.readouterr().err


# --- refused, with the key named ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # `$` matched before a trailing newline, so this name passed and broke the rule file.
        ({"operations": {"db\n": {"operation_slow_p95_seconds": 1}}}, "'db\\n' is not a usable"),
        ({"operations": {"a\tb": {"operation_slow_p95_seconds": 1}}}, "is not a usable"),
        ({"operations": {"\ud800": {"operation_slow_p95_seconds": 1}}}, "is not a usable"),
        ({"rate_window": "0s"}, "rate_window='0s' is out of range: it must be more than 0s"),
        ({"rate_window": "5m\n"}, "rate_window='5m\\n' is not a Prometheus duration"),
        ({"evaluation_interval": "0ms"}, "evaluation_interval='0ms' is out of range"),
        ({"rate_window": "999999999999y"}, "is out of range: it must be at most 292y"),
        ({"for": {"OtelperfTargetDown": "300y"}}, "for.OtelperfTargetDown='300y' is out of range"),
        ({"job_selector": 'job="a\\q"'}, "job_selector="),
        ({"job_selector": 'job=~"("'}, "job_selector="),
        ({"job_selector": 'job=~"a**"'}, "job_selector="),
        ({"thresholds": {"api_daily_budget_usd": 10**400}}, "is out of range: it is too large"),
        ({"runbook_url": "https://x/{anchor:>999999999}"}, "without format specs or conversions"),
        ({"runbook_url": "https://x/{anchor!r}"}, "without format specs or conversions"),
        ({"runbook_url": "https://x/{anchor"}, "not a URL pattern"),
        ({"runbook_url": "https://x/" + "a" * 3000}, "at most 2048 characters"),
    ],
)
def test_unusable_values_are_refused_naming_the_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        rules.config_from_mapping(data)
    assert message in str(err.value)


def test_for_zero_is_valid() -> None:
    cfg = rules.config_from_mapping({"for": {"OtelperfTargetDown": "0s"}})
    assert cfg.for_["OtelperfTargetDown"] == "0s"


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("latin1.yml", "rate_window: '5m' # caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
        ("deep.yml", b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        ("deep.toml", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        ("big.yml", b"thresholds:\n  api_daily_budget_usd: " + b"9" * 400 + b"\n", "too large"),
    ],
)
def test_unusable_files_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, body: bytes, message: str
) -> None:
    cfg = tmp_path / name
    cfg.write_bytes(body)
    code, err = _cli(capsys, "--config", str(cfg), "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.startswith("otelperf rules: error: ") and err.count("\n") == 1
    assert message in err and str(cfg) in err


def test_check_over_files_that_are_not_utf8_says_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _cli(capsys, "--out", str(out))[0] == 0
    (out / "alerts.yml").write_bytes(b"\xff\xfe not yaml, not utf-8")
    code, err = _cli(capsys, "--out", str(out), "--check")
    assert code == 1
    assert "alerts.yml" in err and "recording.yml" not in err


@pytest.mark.parametrize("check", [False, True])
def test_out_with_a_name_over_255_characters_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check: bool
) -> None:
    out = tmp_path / ("x" * 300) / "rules"
    code, err = _cli(capsys, "--out", str(out), *(["--check"] if check else []))
    assert code == 2
    assert err.startswith("otelperf rules: error: --out=") and err.count("\n") == 1
    assert "File name too long" in err


# --- accepted, and Prometheus loads the result ---------------------------------------------------


def test_a_name_with_template_braces_makes_a_loadable_file(tmp_path: Path) -> None:
    """``{{`` in an operation name broke the alert's label template."""
    cfg = rules.config_from_mapping(
        {"operations": {"render {{user}}": {"operation_slow_p95_seconds": 2}}}
    )
    proc = _promtool_check(tmp_path, cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    labels = [r.get("labels", {}) for g in rules.build_rules(cfg)["alerts.yml"]["groups"]
              for r in g["rules"]]  # fmt: skip
    assert {"severity": "warning", "operation": 'render {{ "{{" }}user}}'} in labels


_NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")).filter(lambda c: c not in '"\\'),
    min_size=1, max_size=30,
)  # fmt: skip
_OVERRIDE = st.fixed_dictionaries(
    {},
    optional={k: st.floats(0, 1) for k in rules.OPERATION_OVERRIDABLE},
)
_SELECTOR = st.sampled_from(
    ["", 'job="api"', 'job=~"api|worker.*"', 'job!="x", env=~"prod|stag\\\\.e"', 'a_b!~"\\\\d+"']
)
_DURATION = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 10_000), st.sampled_from("smhdw"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    operations=st.dictionaries(_NAME, _OVERRIDE, max_size=6),
    selector=_SELECTOR,
    window=_DURATION,
)
def test_every_accepted_config_makes_files_promtool_loads(
    tmp_path: Path, operations: dict[str, dict[str, float]], selector: str, window: str
) -> None:
    cfg = rules.config_from_mapping(
        {"operations": operations, "job_selector": selector, "rate_window": window}
    )
    proc = _promtool_check(tmp_path, cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
            lambda inner: st.one_of(
                st.lists(inner, max_size=4),
                st.dictionaries(st.text(max_size=12), inner, max_size=4),
            ),
            max_leaves=20,
        ).map(repr),
    )
)
def test_any_config_file_is_exit_0_or_a_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    cfg = tmp_path / "fuzz.yml"
    cfg.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, err = _cli(capsys, "--config", str(cfg), "--out", str(tmp_path / "out"), "--check")
    assert code in (0, 1, 2)
    if code == 2:
        assert err.startswith("otelperf rules: error: ") and err.count("\n") == 1, err


_OBJECTIVES = st.fixed_dictionaries(
    {},
    optional={
        "availability": st.floats(0.5, 0.99999),
        "latency_seconds": st.sampled_from([0.0001, 0.025, 0.5, 1, 2.5, 60, 86400]),
        "latency_target": st.floats(0.01, 0.9999),
    },
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(slos=st.dictionaries(_NAME, _OBJECTIVES, max_size=4), selector=_SELECTOR)
def test_every_accepted_slos_config_makes_files_promtool_loads(
    tmp_path: Path, slos: dict[str, dict[str, float]], selector: str
) -> None:
    """Issue 15: per-operation objectives (names, boundaries, budgets) end up in selectors,
    regexes of ``le`` and multipliers; whatever the config accepts, Prometheus loads."""
    cfg = rules.config_from_mapping({"slos": slos, "job_selector": selector})
    proc = _promtool_check(tmp_path, cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_name_with_the_replacement_character_makes_a_loadable_file(tmp_path: Path) -> None:
    """Prometheus' lexer refuses a raw U+FFFD in a string literal; names made safe for the
    exposition can hold one (a lone surrogate becomes '?', but U+FFFD may come as is)."""
    name = "report-\ufffd.csv"
    cfg = rules.config_from_mapping({"operations": {name: {"operation_slow_p95_seconds": 2}}})
    proc = _promtool_check(tmp_path, cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr
