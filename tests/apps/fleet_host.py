"""One "host" of the fleet test: ``python -m tests.apps.fleet_host NAME`` (NAME a key of
:data:`WORKLOADS`).

Configures otelperf (service NAME, /metrics on a free port), runs its workload once, prints one
JSON line with the /metrics URL, then runs the workload again for every ``run`` line on stdin
(answering ``ran`` once it is recorded) and exits when stdin closes.  The workload is a known
number of calls, errors, items, cache lookups and priced API calls, so the fleet test knows
every total a central Prometheus should hold.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import otelperf


@dataclass(frozen=True)
class Workload:
    """One run: ``ok`` + ``errors`` calls of ``ingest`` with ``items`` items each, ``publish``
    calls (never failing), cache lookups and API calls of ``COST_USD`` each."""

    ok: int
    errors: int
    items: int
    publish: int
    hits: int
    misses: int
    api_calls: int


# Different on each host, so a total that counts one host twice or drops one is visible.
# The errors only reach the alert's minimum count (5 in 5 minutes) together.
WORKLOADS = {
    "host-a": Workload(ok=4, errors=3, items=10, publish=2, hits=3, misses=1, api_calls=2),
    "host-b": Workload(ok=2, errors=3, items=7, publish=5, hits=1, misses=2, api_calls=1),
}
COST_USD = 0.25  # a binary fraction: sums of it are exact


def run(w: Workload) -> None:
    """Record one run of ``w`` through otelperf's public API."""
    for i in range(w.ok + w.errors):
        try:
            with otelperf.measure("ingest") as op:
                op.add_items(w.items)
                if i < w.errors:
                    raise ValueError("bad row")
        except ValueError:
            pass
    for _ in range(w.publish):
        with otelperf.measure("publish"):
            pass
    for hit in [True] * w.hits + [False] * w.misses:
        otelperf.record_cache("rows", hit=hit)
    for _ in range(w.api_calls):
        otelperf.record_api_call("geocoder", cost_usd=COST_USD)


def main() -> None:
    name = sys.argv[1]
    workload = WORKLOADS[name]
    telemetry = otelperf.configure(service_name=name, prometheus_host="127.0.0.1",
                                   prometheus_port=0)  # fmt: skip
    run(workload)
    print(json.dumps({"metrics_url": telemetry.metrics_url}), flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            run(workload)
            print("ran", flush=True)
    telemetry.shutdown()


if __name__ == "__main__":
    main()
