"""The docker compose stack, checked without Docker (it cannot run on the CI machine).

The compose file's structure, that every file it mounts exists, that the configurations agree
with each other (service names, ports, mount points), and the real ``promtool check config``
and ``amtool check-config`` on the files the containers will read.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

import otelperf.generate.dashboards as D
from tests.conftest import require_binary

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
SERVICES = {"demo", "prometheus", "alertmanager", "grafana", "pushgateway"}
AM_DIR = REPO / "deploy" / "alertmanager"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def service(name: str) -> dict[str, Any]:
    svc: dict[str, Any] = compose()["services"][name]
    return svc


def bind_mounts(name: str) -> list[tuple[Path, PurePosixPath]]:
    """(host path, container path) of a service's bind mounts; named volumes are left out."""
    out = []
    for spec in service(name).get("volumes", []):
        source, target = spec.split(":")[:2]
        if source.startswith(("./", "/", "../")):
            out.append(((COMPOSE.parent / source).resolve(), PurePosixPath(target)))
    return out


def to_host(name: str, container_path: str) -> Path:
    """The host path a container path of ``name`` reads, through its bind mounts."""
    p = PurePosixPath(container_path)
    for host, target in bind_mounts(name):
        if p == target or target in p.parents:
            return host / p.relative_to(target)
    raise AssertionError(f"{container_path} is not inside a bind mount of service {name!r}")


def published(name: str) -> dict[int, int]:
    """Container port -> host port of a service (every mapping is "127.0.0.1:HOST:CONTAINER")."""
    out = {}
    for spec in service(name).get("ports", []):
        _ip, host, container = str(spec).split(":")
        out[int(container)] = int(host)
    return out


# --- structure ---------------------------------------------------------------------------------
def test_the_five_services_with_pinned_images() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES
    assert services["demo"]["build"] == "."
    for name in SERVICES - {"demo"}:
        image = services[name]["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: unpinned {image}"
    assert services["prometheus"]["depends_on"] == ["demo", "alertmanager", "pushgateway"]
    assert services["grafana"]["depends_on"] == ["prometheus"]


def test_every_published_port_is_bound_to_loopback() -> None:
    seen = 0
    for name in SERVICES:
        for spec in service(name).get("ports", []):
            assert isinstance(spec, str), f"{name}: write ports as quoted strings"
            assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", spec), f"{name}: {spec}"
            seen += 1
    assert seen == 5
    assert published("grafana") == {3000: 3000}
    assert published("prometheus") == {9090: 9090}
    assert published("alertmanager") == {9093: 9093}
    assert published("demo") == {9464: 9464}
    assert published("pushgateway") == {9091: 9091}


def test_grafana_admin_password_comes_from_the_environment_without_default() -> None:
    env = service("grafana")["environment"]
    value = env["GF_SECURITY_ADMIN_PASSWORD"]
    # ${VAR:?message} makes `docker compose up` fail when VAR is unset or empty; ${VAR:-x}
    # or ${VAR-x} would be a default, a literal would be a committed password.
    m = re.fullmatch(r"\$\{(\w+):\?([^}]+)\}", value)
    assert m, value
    assert m.group(1) == "GF_ADMIN_PASSWORD" and "GF_ADMIN_PASSWORD" in m.group(2)
    text = COMPOSE.read_text()
    assert not re.search(r"\$\{\w+:?-", text), "no variable in the compose file has a default"
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert code.count("GF_ADMIN_PASSWORD") == 2  # the reference and its error message only
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_every_mounted_file_exists() -> None:
    count = 0
    for name in SERVICES:
        for host, target in bind_mounts(name):
            count += 1
            assert host.exists(), f"{name} mounts {host} at {target}, which does not exist"
            if target.suffix:
                assert host.is_file(), f"{name}: {host} should be a file"
            else:
                assert host.is_dir(), f"{name}: {host} should be a directory"
    assert count == 6
    assert sorted(p.name for p in (REPO / "dashboards").glob("*.json")) == sorted(
        f for _, _, f in D.DASHBOARDS
    )
    assert sorted(p.name for p in (REPO / "alert_rules").glob("*.yml"))


def test_dockerfile_installs_the_package_and_runs_the_demo_on_all_interfaces() -> None:
    lines = [
        line.strip()
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    copies = [shlex.split(line)[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies, "the Dockerfile copies the package in"
    for sources in copies:
        for src in sources:
            assert (REPO / src).exists(), f"Dockerfile: COPY {src}: no such file in the repo"
    assert any(line.startswith("RUN pip install .") for line in lines)
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert yaml.safe_load(cmd.removeprefix("CMD ")) == [
        "otelperf", "demo", "--host", "0.0.0.0", "--port", "9464",
    ]  # fmt: skip
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    # the compose command serves on the port the compose file publishes and Prometheus scrapes
    command = service("demo")["command"]
    assert command[:4] == ["otelperf", "demo", "--host", "0.0.0.0"]
    assert int(command[command.index("--port") + 1]) in published("demo")


def test_prometheus_config_agrees_with_the_compose_file() -> None:
    prom = service("prometheus")
    config_arg = next(a for a in prom["command"] if a.startswith("--config.file="))
    # the latency panels link buckets to traces through the exemplars otelperf serves
    assert "--enable-feature=exemplar-storage" in prom["command"]
    config_host = to_host("prometheus", config_arg.split("=", 1)[1])
    assert config_host == REPO / "deploy/prometheus/prometheus.yml"
    cfg = yaml.safe_load(config_host.read_text())
    rules = [to_host("prometheus", r) for r in cfg["rule_files"]]
    assert rules == [REPO / "alert_rules" / "*.yml"]
    targets = {sc["job_name"]: sc["static_configs"][0]["targets"] for sc in cfg["scrape_configs"]}
    demo_port = next(iter(published("demo")))
    assert targets["otelperf-demo"] == [f"demo:{demo_port}"]
    # pushed job and instance labels are kept (docs/batch.md)
    gateway = next(sc for sc in cfg["scrape_configs"] if sc["job_name"] == "pushgateway")
    assert gateway["honor_labels"] is True
    assert targets["pushgateway"] == [f"pushgateway:{next(iter(published('pushgateway')))}"]
    am = cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == [f"alertmanager:{next(iter(published('alertmanager')))}"]


def test_grafana_provisioning_agrees_with_the_compose_file() -> None:
    provisioning = to_host("grafana", "/etc/grafana/provisioning")
    assert provisioning == REPO / "deploy/grafana/provisioning"
    (ds,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
    assert ds["type"] == "prometheus" and ds["isDefault"] is True
    assert ds["url"] == f"http://prometheus:{next(iter(published('prometheus')))}"
    assert ds["name"] == D.DashboardSettings().datasource
    # $__rate_interval needs the datasource to know the scrape interval
    prom_cfg = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    assert ds["jsonData"]["timeInterval"] == prom_cfg["global"]["scrape_interval"]
    (provider,) = yaml.safe_load((provisioning / "dashboards/otelperf.yml").read_text())[
        "providers"
    ]
    assert to_host("grafana", provider["options"]["path"]) == REPO / "dashboards"
    home = service("grafana")["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert to_host("grafana", home) == REPO / "dashboards" / "overview.json"


# --- the real checkers ------------------------------------------------------------------------
@pytest.mark.integration
def test_promtool_check_config_on_the_mounted_prometheus_config(tmp_path: Path) -> None:
    """promtool on deploy/prometheus/prometheus.yml with the container paths mapped.

    The config names its rule files as the container sees them (/etc/prometheus/rules/*.yml);
    on the host that directory does not exist, and promtool would report "0 rule files found"
    and check nothing.  So the test writes a copy whose rule_files point where the compose file
    mounts them from (alert_rules/*.yml) and checks that the rule files are found and valid.
    """
    promtool = require_binary("promtool")
    cfg = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    cfg["rule_files"] = [str(to_host("prometheus", r)) for r in cfg["rule_files"]]
    mapped = tmp_path / "prometheus.yml"
    mapped.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run(
        [promtool, "check", "config", str(mapped)], capture_output=True, text=True, timeout=60
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    n_files = len(list((REPO / "alert_rules").glob("*.yml")))
    assert n_files >= 1
    assert f"SUCCESS: {n_files} rule files found" in out, out
    found = [int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", out)]
    assert len(found) == n_files and all(n > 0 for n in found), out


def test_alertmanager_runs_the_template_through_its_entrypoint_with_secrets() -> None:
    am = service("alertmanager")
    assert am["entrypoint"] == ["/bin/sh", "/etc/alertmanager/entrypoint.sh"]
    assert to_host("alertmanager", am["entrypoint"][1]) == AM_DIR / "entrypoint.sh"
    # the entrypoint reads the template where the compose file mounts it
    script = (AM_DIR / "entrypoint.sh").read_text()
    default = re.search(r'ALERTMANAGER_TEMPLATE:=([^}"]+)', script)
    assert default, "entrypoint.sh has no default template path"
    assert to_host("alertmanager", default.group(1)) == AM_DIR / "alertmanager.yml"
    assert not any(a.startswith("--config.file") for a in am["command"])  # the entrypoint's job
    # knobs pass through from the host (no values, so no secrets or defaults in this file)
    env = am["environment"]
    assert all(v is None for v in env.values())
    assert set(env) <= set(re.findall(r"\$\{(ALERTMANAGER_\w+):=", script))
    # every secret the config reads from /run/secrets is granted and comes from the host
    template = (AM_DIR / "alertmanager.yml").read_text()
    wanted = set(re.findall(r"_file: /run/secrets/(\w+)", template))
    assert wanted == {"alertmanager_smtp_password", "alertmanager_slack_api_url"}
    assert set(am["secrets"]) == wanted
    declared = compose()["secrets"]
    assert set(declared) == wanted
    for name, spec in declared.items():
        assert set(spec) == {"environment"}, f"secret {name} must come from the host environment"


@pytest.mark.integration
def test_amtool_check_config_on_the_mounted_alertmanager_config(tmp_path: Path) -> None:
    """amtool on the configuration the container runs: the template rendered by entrypoint.sh.

    The mounted alertmanager.yml is a template with ${ALERTMANAGER_*} placeholders (amtool
    would reject it as it is); the container renders it with its entrypoint, so the test runs
    the same script with the compose service's environment (host variables unset).
    """
    amtool = require_binary("amtool")
    template = AM_DIR / "alertmanager.yml"
    assert template.is_file(), f"{template} (owned by the alerting work) does not exist yet"
    rendered = tmp_path / "alertmanager.yml"
    env = {k: v for k, v in service("alertmanager")["environment"].items() if v is not None}
    proc = subprocess.run(
        ["sh", str(to_host("alertmanager", "/etc/alertmanager/entrypoint.sh")), "--render-only"],
        env={
            "PATH": "/usr/bin:/bin",
            **env,
            "ALERTMANAGER_TEMPLATE": str(template),
            "ALERTMANAGER_RENDERED": str(rendered),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert not re.search(r"\$\{ALERTMANAGER_\w+\}", rendered.read_text())
    proc = subprocess.run(
        [amtool, "check-config", str(rendered)], capture_output=True, text=True, timeout=60
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "SUCCESS" in out and " - 3 receivers" in out, out
