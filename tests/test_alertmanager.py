"""deploy/alertmanager: the template, its entrypoint renderer, and amtool on the result."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parent.parent
AM_DIR = ROOT / "deploy" / "alertmanager"
TEMPLATE = AM_DIR / "alertmanager.yml"
ENTRYPOINT = AM_DIR / "entrypoint.sh"
PLACEHOLDER = re.compile(r"\$\{(ALERTMANAGER_[A-Z0-9_]+)\}")


def render(tmp_path: Path, env: dict[str, str] | None = None, template: Path = TEMPLATE
           ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run the real entrypoint.sh in render-only mode with a clean environment plus ``env``."""
    sh = shutil.which("sh")
    assert sh is not None
    full = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ALERTMANAGER_TEMPLATE": str(template),
        "ALERTMANAGER_RENDERED": str(tmp_path / "out" / "alertmanager.yml"),
        **(env or {}),
    }
    return subprocess.run([sh, str(ENTRYPOINT), "--render-only"], env=full, capture_output=True,
                          text=True, check=False)  # fmt: skip


def rendered(tmp_path: Path, env: dict[str, str] | None = None) -> tuple[Path, dict[str, Any]]:
    proc = render(tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "out" / "alertmanager.yml"
    text = path.read_text(encoding="utf-8")
    assert PLACEHOLDER.search(text) is None
    return path, yaml.safe_load(text)


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True,
                          check=False)  # fmt: skip


def test_default_render_passes_amtool_check_config(tmp_path: Path) -> None:
    path, _ = rendered(tmp_path)
    proc = amtool("check-config", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    assert " - 1 inhibit rules\n - 3 receivers\n" in proc.stdout


def test_environment_values_are_inserted_literally(tmp_path: Path) -> None:
    env = {
        "ALERTMANAGER_WEBHOOK_URL": "https://hooks.example.com/a&b/c?x=1\\2",
        "ALERTMANAGER_SLACK_CHANNEL": "#ops-'quoted'",
        "ALERTMANAGER_EMAIL_TO": "pager@example.org, lead@example.org",
        "ALERTMANAGER_SMTP_HOST": "smtp.example.org",
        "ALERTMANAGER_SMTP_PORT": "2525",
        "ALERTMANAGER_SMTP_FROM": "am@example.org",
        "ALERTMANAGER_SMTP_USERNAME": "am",
        "ALERTMANAGER_GROUP_WAIT": "10s",
        "ALERTMANAGER_GROUP_INTERVAL": "1m",
        "ALERTMANAGER_REPEAT_INTERVAL": "12h",
        "ALERTMANAGER_CRITICAL_REPEAT_INTERVAL": "30m",
    }
    path, cfg = rendered(tmp_path, env)
    assert amtool("check-config", str(path)).returncode == 0
    g = cfg["global"]
    assert (g["smtp_smarthost"], g["smtp_from"], g["smtp_auth_username"]) == (
        "smtp.example.org:2525", "am@example.org", "am",
    )  # fmt: skip
    route = cfg["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "10s", "1m", "12h",
    )  # fmt: skip
    assert route["routes"][0]["repeat_interval"] == "30m"
    receivers = {r["name"]: r for r in cfg["receivers"]}
    for r in receivers.values():
        assert r["webhook_configs"][0]["url"] == env["ALERTMANAGER_WEBHOOK_URL"]
    assert receivers["critical"]["slack_configs"][0]["channel"] == "#ops-'quoted'"
    assert receivers["critical"]["email_configs"][0]["to"] == env["ALERTMANAGER_EMAIL_TO"]


def test_routing_by_severity_with_amtool(tmp_path: Path) -> None:
    path, _ = rendered(tmp_path)
    cases = {
        ("severity=critical", "alertname=OtelperfTargetDown"): "critical",
        ("severity=warning", "alertname=OtelperfOperationSlow"): "warning",
        ("severity=info", "alertname=OtelperfBottleneckDominant"): "default",
        ("alertname=SomethingElse",): "default",
    }
    for labels, receiver in cases.items():
        proc = amtool("config", "routes", "test", f"--config.file={path}",
                      f"--verify.receivers={receiver}", *labels)  # fmt: skip
        assert proc.returncode == 0, (labels, proc.stdout, proc.stderr)
        assert proc.stdout.strip() == receiver


def test_grouping_inhibition_and_resolved_notifications(tmp_path: Path) -> None:
    _, cfg = rendered(tmp_path)
    route = cfg["route"]
    assert route["group_by"] == ["alertname", "job", "operation"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "30s", "5m", "4h",
    )  # fmt: skip
    assert cfg["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["alertname", "job", "operation", "instance",
                      "system_filesystem_mountpoint"],
        }
    ]  # fmt: skip
    kinds = {r["name"]: sorted(k for k in r if k.endswith("_configs")) for r in cfg["receivers"]}
    assert kinds == {
        "default": ["webhook_configs"],
        "warning": ["slack_configs", "webhook_configs"],
        "critical": ["email_configs", "slack_configs", "webhook_configs"],
    }
    for r in cfg["receivers"]:
        for key, configs in r.items():
            if key.endswith("_configs"):
                assert all(c["send_resolved"] is True for c in configs), (r["name"], key)


def test_secrets_come_from_files_not_from_the_template() -> None:
    cfg = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    g = cfg["global"]
    assert g["smtp_auth_password_file"] == "/run/secrets/alertmanager_smtp_password"
    assert g["slack_api_url_file"] == "/run/secrets/alertmanager_slack_api_url"
    text = TEMPLATE.read_text(encoding="utf-8")
    assert "api_url:" not in text and "auth_password:" not in text


def test_every_placeholder_is_single_quoted_and_has_a_default() -> None:
    script = ENTRYPOINT.read_text(encoding="utf-8")
    defaults = set(re.findall(r'^: "\$\{(ALERTMANAGER_[A-Z0-9_]+):=', script, flags=re.M))
    found = set()
    for line in TEMPLATE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        for name in PLACEHOLDER.findall(line):
            found.add(name)
            # Inside a single-quoted YAML scalar, so the renderer's quote doubling is right.
            assert re.search(r":\s*'[^']*\$\{" + name + r"\}[^']*'\s*$", line), line
    assert found
    assert found <= defaults, found - defaults


def test_unset_placeholder_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("route:\n  receiver: '${ALERTMANAGER_NOPE}'\n", encoding="utf-8")
    proc = render(tmp_path, template=bad)
    assert proc.returncode == 2
    assert proc.stderr == "entrypoint.sh: ALERTMANAGER_NOPE (line 2 of the template) is not set\n"
    assert not (tmp_path / "out" / "alertmanager.yml").exists()


@pytest.mark.parametrize("bad", ["not-a-duration", "5 minutes"])
def test_amtool_rejects_a_bad_value_from_the_environment(tmp_path: Path, bad: str) -> None:
    path, _ = rendered(tmp_path, {"ALERTMANAGER_GROUP_WAIT": bad})
    proc = amtool("check-config", str(path))
    assert proc.returncode == 1
    assert "FAILED" in proc.stdout
