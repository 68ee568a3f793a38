"""End to end: demo with an injected fault -> real Prometheus with the generated rules -> real
Alertmanager (started by deploy/alertmanager/entrypoint.sh) -> a webhook in this test.

Fast evaluation comes from the generator's parameters (evaluation_interval, rate_window, for),
not from edited copies of the rules; the Alertmanager routing and inhibition are the committed
ones, only its timings and webhook URL come from the ALERTMANAGER_* variables.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port, require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
JOB = "otelperf-demo"
ALERT = "OtelperfOperationErrorRateHigh"
FAULT_SECONDS = 25.0
RUNBOOK = (
    "https://github.com/otelperf/otelperf/blob/main/docs/runbooks.md#otelperfoperationerrorratehigh"
)
SUMMARY = "An operation is failing more often than its error budget allows."


class Webhook:
    """An Alertmanager webhook receiver: every POSTed notification, with its arrival time."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.put((time.time(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Procs:
    """Child processes with their logs; stopped (by pid) when the test ends."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:  # fmt: skip
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append((name, p))
        return p

    def logs(self) -> str:
        parts = []
        for name, _ in self.procs:
            text = (self.tmp / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} (last 3000 chars)\n{text[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for _, p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    w = Webhook()
    try:
        yield w
    finally:
        w.close()


def wait_ready(url: str, what: str, procs: Procs, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} not ready at {url} after {timeout}s\n{procs.logs()}")


def wait_demo_url(log: Path, procs: Procs, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"serving (http://127\.0\.0\.1:\d+)/metrics", log.read_text(errors="replace"))
        if m:
            return m.group(1)
        time.sleep(0.1)
    pytest.fail(f"demo did not report its /metrics URL\n{procs.logs()}")


def test_error_rate_alert_fires_and_resolves_through_alertmanager(
    tmp_path: Path, procs: Procs, webhook: Webhook
) -> None:
    prometheus = require_binary("prometheus")
    alertmanager = require_binary("prometheus-alertmanager")
    sh = shutil.which("sh")
    assert sh is not None
    t0 = time.monotonic()

    # 1. Rules from the real generator, with fast parameters.
    rules_cfg = tmp_path / "rules.yml"
    rules_cfg.write_text(
        yaml.safe_dump(
            {
                "evaluation_interval": "1s",
                "rate_window": "10s",
                "for": {ALERT: "3s"},
            }
        ),
        encoding="utf-8",
    )
    rules_dir = tmp_path / "rules"
    gen = subprocess.run(
        [sys.executable, "-m", "otelperf.cli", "rules", "--config", str(rules_cfg),
         "--out", str(rules_dir)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr

    # 2. Alertmanager through the committed entrypoint and template (first: it needs nothing
    #    else, so the fault window is not spent waiting for it).
    am_port = free_port()
    am_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ALERTMANAGER_TEMPLATE": str(ROOT / "deploy" / "alertmanager" / "alertmanager.yml"),
        "ALERTMANAGER_RENDERED": str(tmp_path / "am" / "alertmanager.yml"),
        "ALERTMANAGER_BIN": alertmanager,
        "ALERTMANAGER_WEBHOOK_URL": webhook.url,
        "ALERTMANAGER_GROUP_WAIT": "1s",
        "ALERTMANAGER_GROUP_INTERVAL": "1s",
        "ALERTMANAGER_REPEAT_INTERVAL": "1h",
        "ALERTMANAGER_CRITICAL_REPEAT_INTERVAL": "1h",
        # Nothing listens there: the email integration fails on its own, loopback only.
        "ALERTMANAGER_SMTP_HOST": "127.0.0.1",
        "ALERTMANAGER_SMTP_PORT": str(free_port()),
    }
    procs.start("alertmanager", [
        sh, str(ROOT / "deploy" / "alertmanager" / "entrypoint.sh"),
        f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=", "--log.level=info",
    ], env=am_env)  # fmt: skip
    wait_ready(f"http://127.0.0.1:{am_port}/-/ready", "alertmanager", procs)

    # 3. The demo: store fails half the time for FAULT_SECONDS, then never.
    demo = procs.start("demo", [
        sys.executable, "-m", "otelperf.cli", "demo", "--port", "0", "--error-rate", "0.5",
        "--fault-seconds", str(FAULT_SECONDS), "--workers", "2", "--duration", "110",
        "--summary-interval", "1000",
    ])  # fmt: skip
    demo_started = time.time()
    demo_url = wait_demo_url(tmp_path / "demo.log", procs)
    assert demo.poll() is None

    # 4. Prometheus scraping the demo every second, evaluating the generated rules.
    prom_port = free_port()
    prom_cfg = tmp_path / "prometheus.yml"
    prom_cfg.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules_dir / "recording.yml"), str(rules_dir / "alerts.yml")],
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                },
                "scrape_configs": [
                    {
                        "job_name": JOB,
                        "static_configs": [{"targets": [demo_url.removeprefix("http://")]}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    procs.start("prometheus", [
        prometheus, f"--config.file={prom_cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}", "--rules.alert.resend-delay=1s",
    ])  # fmt: skip
    wait_ready(f"http://127.0.0.1:{prom_port}/-/ready", "prometheus", procs)

    # 5. Collect notifications until store's critical alert has fired and resolved.
    notes: list[tuple[float, dict[str, Any]]] = []

    def store_alerts(severity: str, status: str) -> list[tuple[float, dict[str, Any]]]:
        return [
            (t, a)
            for t, n in notes
            for a in n["alerts"]
            if a["labels"].get("operation") == "store"
            and a["labels"]["severity"] == severity
            and a["status"] == status
        ]

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not store_alerts("critical", "resolved"):
        try:
            notes.append(webhook.received.get(timeout=0.5))
        except queue.Empty:
            pass
    elapsed = time.monotonic() - t0
    summary = json.dumps([n for _, n in notes], indent=1)[:6000]
    assert store_alerts("critical", "resolved"), (
        f"no resolved notification\n{summary}\n{procs.logs()}"
    )

    firing = store_alerts("critical", "firing")
    assert firing, summary
    t_fire, alert = firing[0]
    assert t_fire < demo_started + FAULT_SECONDS, "fired only after the fault had stopped"
    assert alert["labels"] == {
        "alertname": ALERT, "job": JOB, "operation": "store", "severity": "critical",
    }  # fmt: skip
    assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
    assert alert["annotations"]["summary"] == SUMMARY
    assert alert["annotations"]["runbook_url"] == RUNBOOK
    # The demo fails store about half of the time; the humanized ratio is in the description.
    m = re.fullmatch(
        r"(\d+(?:\.\d+)?)% of store in job otelperf-demo failed over the last 10s "
        r"\(threshold 10%\)\.",
        alert["annotations"]["description"],
    )
    assert m, alert["annotations"]["description"]
    assert 25.0 <= float(m.group(1)) <= 75.0
    assert alert["generatorURL"].startswith("http://")

    note = next(n for t, n in notes if t == t_fire and alert in n["alerts"])
    assert note["receiver"] == "critical"
    assert note["status"] == "firing"
    assert note["groupLabels"] == {"alertname": ALERT, "job": JOB, "operation": "store"}
    assert note["commonLabels"] == alert["labels"]

    t_resolved, resolved = store_alerts("critical", "resolved")[0]
    assert t_resolved > demo_started + FAULT_SECONDS, "resolved while the fault was still on"
    assert resolved["labels"] == alert["labels"]
    assert resolved["startsAt"] == alert["startsAt"]
    ends = datetime.fromisoformat(resolved["endsAt"].replace("Z", "+00:00")).timestamp()
    assert ends > demo_started + FAULT_SECONDS

    # Inhibition: store's warning (5 %) fires together with the critical one, but reaches the
    # webhook only once the critical alert has ended, if at all.
    for t, _ in store_alerts("warning", "firing"):
        assert t >= ends, "warning notified while the critical alert of the same operation fired"

    # handle_order is the root of the failing store calls, so it fails as often.
    assert any(
        a["labels"] == {"alertname": ALERT, "job": JOB, "operation": "handle_order",
                        "severity": "critical"}
        for _, n in notes for a in n["alerts"]
    )  # fmt: skip
    assert elapsed < 100, elapsed
    warnings = [round(t - demo_started, 1) for t, _ in store_alerts("warning", "firing")]
    print(
        f"critical fired {t_fire - demo_started:.1f}s and resolved {t_resolved - demo_started:.1f}s"
        f" after the demo started (fault for {FAULT_SECONDS:g}s); store warning notified at "
        f"{warnings}; {len(notes)} notifications; {elapsed:.1f}s in all"
    )
