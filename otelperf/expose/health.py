"""The /health judgement: readings against thresholds, a pure function.

Host CPU, memory or any disk above its threshold, or a probe that failed, is degraded (HTTP
200); process memory above its limit is unhealthy (503).  docs/metrics.md#health has the
document's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HealthThresholds:
    """When /health reports degraded (host ratios, 0..1) or unhealthy (process bytes)."""

    cpu: float = 0.8
    memory: float = 0.8
    disk: float = 0.9
    process_memory_limit: int | None = None


@dataclass
class Readings:
    """One set of figures /health judges; None where the probe failed (see ``errors``)."""

    cpu: float | None
    memory: float | None
    disks: dict[str, float]
    rss: int | None
    errors: dict[str, str] = field(default_factory=dict)


HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"


def evaluate(r: Readings, t: HealthThresholds) -> tuple[int, dict[str, Any]]:
    """Judge readings against thresholds: (HTTP status, JSON document).  Pure.

    Host CPU, memory or any disk above its threshold, or a probe that failed, is degraded (200);
    process memory above the limit is unhealthy (503).

    >>> code, doc = evaluate(Readings(0.95, 0.1, {"/": 0.2}, 1000), HealthThresholds())
    >>> code, doc["status"], doc["reasons"]
    (200, 'degraded', ['host CPU utilization 0.950 > 0.800'])
    """
    reasons: list[str] = []
    unhealthy = False

    def ratio_check(name: str, label: str, value: float | None, limit: float) -> dict[str, Any]:
        check: dict[str, Any] = {"threshold": limit}
        if value is None:
            check["status"] = "error"
            check["error"] = r.errors.get(name, "probe failed")
            reasons.append(f"{label} unavailable: {check['error']}")
            return check
        check["utilization"] = round(value, 4)
        if value > limit:
            check["status"] = DEGRADED
            reasons.append(f"{label} {value:.3f} > {limit:.3f}")
        else:
            check["status"] = "ok"
        return check

    checks: dict[str, Any] = {
        "cpu": ratio_check("cpu", "host CPU utilization", r.cpu, t.cpu),
        "memory": ratio_check("memory", "host memory utilization", r.memory, t.memory),
    }
    disk: dict[str, Any] = {
        "threshold": t.disk,
        "mountpoints": {m: round(v, 4) for m, v in sorted(r.disks.items())},
        "status": "ok",
    }
    full = [m for m, v in sorted(r.disks.items()) if v > t.disk]
    for m in full:
        reasons.append(f"filesystem {m} utilization {r.disks[m]:.3f} > {t.disk:.3f}")
    if full:
        disk["status"] = DEGRADED
    if "disk" in r.errors:
        disk["status"] = "error" if not full else DEGRADED
        disk["error"] = r.errors["disk"]
        reasons.append(f"filesystem utilization unavailable: {r.errors['disk']}")
    checks["disk"] = disk

    proc: dict[str, Any] = {"limit_bytes": t.process_memory_limit, "status": "ok"}
    if r.rss is None:
        proc["status"] = "error"
        proc["error"] = r.errors.get("process_memory", "probe failed")
        reasons.append(f"process memory unavailable: {proc['error']}")
    else:
        proc["rss_bytes"] = r.rss
        if t.process_memory_limit is not None and r.rss > t.process_memory_limit:
            proc["status"] = UNHEALTHY
            unhealthy = True
            reasons.append(
                f"process resident memory {r.rss} bytes > limit {t.process_memory_limit} bytes"
            )
    checks["process_memory"] = proc

    status = UNHEALTHY if unhealthy else DEGRADED if reasons else HEALTHY
    return (503 if unhealthy else 200), {"status": status, "checks": checks, "reasons": reasons}
