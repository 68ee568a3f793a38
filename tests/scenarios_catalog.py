"""The scenarios of tests/scenarios.py: per file, what it proves and how its series are made.

Every scenario starts at 1970-01-01 00:00 UTC (promtool's time 0), so minute 2880 is the start
of the third day; the history is the two days before.
"""

from __future__ import annotations

import random

from tests.scenarios import DAY, MB, Builder, Group, Histogram, binomial, counter, daily, poisson

H = 60  # minutes
T0 = 2 * DAY  # the fault day starts here
DUR = "otelperf_operation_duration_seconds"
API_DUR = "otelperf_api_call_duration_seconds"


def _op(job: str, op: str) -> dict[str, str]:
    return {"job": job, "instance": "a:1", "operation": op}


def errors(rng: random.Random) -> list[Group]:
    g = Group(
        "errors: ratio alerts with a significance bound, availability burn rates",
        T0 + 2 * H,
        sparse_before=DAY,
    )
    checkout, lowvol, near, rare = (
        Histogram(DUR, _op("svc", o), only_kept=True)
        for o in ("checkout", "lowvol", "near_miss", "rare")
    )
    for m in range(g.minutes):
        n = poisson(rng, 60 * daily(m, 0.4, 1.0))
        p = 0.6 if T0 <= m < T0 + H else 0.005  # the fault: 60 % errors for an hour
        checkout.minute(rng, n, binomial(rng, n, p), 0.08, 0.5)
        n = poisson(rng, 3)  # 3 calls a minute, a steady 1 % of errors
        lowvol.minute(rng, n, binomial(rng, n, 0.01), 0.05, 0.5)
        n = poisson(rng, 60)  # a steady 4 %: under the 5 % warning, over the 2 % budget
        near.minute(rng, n, binomial(rng, n, 0.04), 0.05, 0.5)
        if m % 30 == 0:  # 2 calls an hour; the one at the fault fails
            rare.minute(rng, 1, 1 if m == T0 + 30 else 0, 0.05, 0.5)
        else:
            rare.idle()
    for h in (checkout, lowvol, near, rare):
        h.write(g)
    warn = {"severity": "warning", "job": "svc"}
    crit = {"severity": "critical", "job": "svc"}
    g.fires(
        T0 + 45,
        "OtelperfOperationErrorRateHigh",
        {**warn, "operation": "checkout"},
        {**crit, "operation": "checkout"},
    )
    g.fires(
        T0 + 45,
        "OtelperfOperationErrorBudgetBurn",
        {**crit, "operation": "checkout"},
        {**warn, "operation": "near_miss"},
    )
    g.fires(T0 + 2 * H - 1, "OtelperfOperationErrorRateHigh")  # resolved after the fault
    for op in ("lowvol", "near_miss", "rare"):
        g.never("OtelperfOperationErrorRateHigh", operation=op)
    for op in ("lowvol", "rare"):
        g.never("OtelperfOperationErrorBudgetBurn", operation=op)
    return [g]


def _latency_group(rng: random.Random, name: str, minutes: int, ops: tuple[str, ...]) -> Group:
    g = Group(name, minutes, sparse_before=DAY)
    hists = {o: Histogram(DUR, _op("svc", o)) for o in ops}

    def factor(op: str, m: int) -> float:
        if m < T0:
            return 1.0
        if op == "creep":  # +50 % over 6 h, then stays
            return 1 + 0.5 * min(1.0, (m - T0) / 360)
        if op == "blip":  # one minute 20x slower
            return 20.0 if m == T0 + 60 else 1.0
        if op == "near_miss":  # +15 %, sustained
            return 1.15
        if op == "spike":  # 3x slower from 04:00 on
            return 3.0 if m >= T0 + 240 else 1.0
        return 50.0 if m >= T0 + 400 else 1.0  # timeout: 0.2 s -> 10 s from 06:40

    for m in range(minutes):
        for op, h in hists.items():
            n = poisson(rng, 60 * daily(m, 0.5, 1.0))
            h.minute(rng, n, 0, 0.2 * factor(op, m), 0.4)  # no errors: not this file's topic
    for h in hists.values():
        h.write(g)
    return g


def latency(rng: random.Random) -> list[Group]:
    w = {"severity": "warning", "job": "svc"}
    creep = _latency_group(
        rng, "latency: a creep, a blip, a near miss", T0 + 400, ("creep", "blip", "near_miss")
    )
    creep.fires(T0 + 60, "OtelperfOperationLatencyRegression")
    creep.fires(T0 + 390, "OtelperfOperationLatencyRegression", {**w, "operation": "creep"})
    for op in ("blip", "near_miss"):
        creep.never("OtelperfOperationLatencyRegression", operation=op)
        creep.never("OtelperfOperationLatencyAnomaly", operation=op)
    for op in ("creep", "blip", "near_miss"):
        creep.never("OtelperfOperationLatencyBudgetBurn", operation=op)
    spike = _latency_group(rng, "latency: 3x slower, then timeouts", T0 + 480, ("spike", "timeout"))
    spike.fires(T0 + 230, "OtelperfOperationLatencyAnomaly")
    spike.fires(T0 + 270, "OtelperfOperationLatencyAnomaly", {**w, "operation": "spike"})
    # 2.5 h on, the anomaly's baseline (ending an hour ago) has not absorbed it.
    spike.fires(T0 + 390, "OtelperfOperationLatencyAnomaly", {**w, "operation": "spike"})
    spike.fires(T0 + 390, "OtelperfOperationLatencyRegression", {**w, "operation": "spike"})
    spike.fires(T0 + 390, "OtelperfOperationLatencyBudgetBurn")  # 3x of 0.2 s is within 5 s
    spike.fires(
        T0 + 475,
        "OtelperfOperationLatencyBudgetBurn",
        {"severity": "critical", "job": "svc", "operation": "timeout", "le": "5.0"},
    )
    return [creep, spike]


def throughput(rng: random.Random) -> list[Group]:
    g = Group("throughput: against the same time on earlier days", 3 * DAY)
    stages = {"big_stage": (10000.0, 0.3), "daily_stage": (3000.0, 0.03)}
    for op, (peak, low) in stages.items():
        items = []
        for m in range(g.minutes):
            rate = peak * daily(m, low, 1.0)
            if op == "big_stage" and m >= T0 + 720:
                rate *= 0.2  # loses 80 % at noon on day 3, still above 1,000/s
            items.append(float(poisson(rng, rate * 60)))
        labels = {"job": "svc", "instance": "a:1", "operation": op}
        g.add("otelperf_operation_items_total", labels, counter(list(items)))
        g.add("otelperf_operation_in_flight", labels, [1.0] * g.minutes)
    w = {"severity": "warning", "job": "svc"}
    g.fires(T0 + 700, "OtelperfThroughputLow")
    g.fires(T0 + 750, "OtelperfThroughputLow", {**w, "operation": "big_stage"})
    # Nights at ~90/s and the ramps, once there is a day of history (the first day, a new
    # operation, is judged by the absolute 1,000/s).
    g.never("OtelperfThroughputLow", since=DAY + 30, operation="daily_stage")
    return [g]


def dependencies(rng: random.Random) -> list[Group]:
    g = Group(
        "dependencies: API errors and latency, cache misses, spend", T0 + 18 * H, sparse_before=DAY
    )
    apis = {
        a: Histogram(
            API_DUR, {"job": "svc", "instance": "a:1", "api": a, "model": "m"}, keep=(10.0,)
        )
        for a in ("llm", "geo", "pay")
    }
    calls: dict[tuple[str, str], list[float | None]] = {}
    cache: dict[tuple[str, str], list[float | None]] = {}
    cost: dict[str, list[float | None]] = {"spend": [], "burner": []}
    for m in range(g.minutes):
        fault = T0 + 12 * H <= m < T0 + 13 * H
        for api, (rate, p, median) in {
            "llm": (20 * daily(m, 0.4, 1.0), 0.3 if fault else 0.02, 14.0 if fault else 1.5),
            "geo": (3.0, 0.03, 0.2),
            "pay": (40.0, 0.04, 0.3),
        }.items():
            n = poisson(rng, rate)
            e = binomial(rng, n, p)
            apis[api].minute(rng, n - e, 0, median, 0.5)  # durations of the successes only
            calls.setdefault((api, "error"), []).append(float(e))
            calls.setdefault((api, "success"), []).append(float(n - e))
        for name, (rate, hit) in {
            "prices": (200 * daily(m, 0.4, 1.0), 0.4 if fault else 0.9),
            "cold": (3.0, 0.7),
        }.items():
            n = poisson(rng, rate)
            h = binomial(rng, n, hit)
            cache.setdefault((name, "hit"), []).append(float(h))
            cache.setdefault((name, "miss"), []).append(float(n - h))
        # USD a minute shaped like the traffic: "spend" uses 60 % of its 100 USD a day;
        # "burner" 40 % until day 3, then three times as much.
        shape = daily(m, 0.1, 1.0) / 0.55 / DAY
        cost["spend"].append(60 * shape * rng.uniform(0.9, 1.1))
        cost["burner"].append(40 * shape * rng.uniform(0.9, 1.1) * (3 if m >= T0 else 1))
    for h in apis.values():
        h.write(g)
    for (api, outcome), inc in calls.items():
        g.add(
            "otelperf_api_calls_total",
            {"job": "svc", "instance": "a:1", "api": api, "model": "m", "outcome": outcome},
            counter(inc),
        )
    for (name, result), inc in cache.items():
        g.add(
            "otelperf_cache_requests_total",
            {"job": "svc", "instance": "a:1", "cache": name, "result": result},
            counter(inc),
        )
    for job, inc in cost.items():
        g.add(
            "otelperf_api_cost_usd_total",
            {"job": job, "instance": "a:1", "api": "openai", "model": "gpt-4o"},
            counter(inc),
        )
    w = {"severity": "warning", "job": "svc"}
    g.fires(T0 + 12 * H - 5, "OtelperfApiErrorRateHigh")
    g.fires(T0 + 12 * H + 30, "OtelperfApiErrorRateHigh", {**w, "api": "llm"})
    g.fires(T0 + 12 * H + 30, "OtelperfApiSlow", {**w, "api": "llm"})
    g.fires(T0 + 12 * H + 30, "OtelperfCacheHitRateLow", {**w, "cache": "prices"})
    g.fires(T0 + 10 * H, "OtelperfApiCostBudgetExceeded", {"severity": "warning", "job": "burner"})
    g.fires(T0 + 10 * H, "OtelperfApiSpendIncrease", {"severity": "warning", "job": "burner"})
    g.fires(T0 + 15 * H, "OtelperfApiCostBudgetExceeded", {"severity": "warning", "job": "burner"})
    for api in ("geo", "pay"):
        g.never("OtelperfApiErrorRateHigh", api=api)
        g.never("OtelperfApiSlow", api=api)
    g.never("OtelperfCacheHitRateLow", cache="cold")
    g.never("OtelperfApiCostBudgetExceeded", job="spend")  # 60 % of its budget, every afternoon
    g.never("OtelperfApiSpendIncrease", job="spend")
    return [g]


def resources(rng: random.Random) -> list[Group]:
    g = Group("resources: leaks after warm-up, restarts, file descriptors", 20 * H)
    procs: dict[str, tuple[list[float | None], float]] = {}

    def rss(
        base: float, grow_per_hour: float, start: int, restart: int | None
    ) -> list[float | None]:
        out: list[float | None] = []
        for m in range(g.minutes):
            if m < start:
                out.append(None)
                continue
            since = m - (restart if restart is not None and m >= restart else start)
            warm = min(1.0, since / 12)  # caches fill over the first 12 minutes
            gc = 6 * MB * ((m * 7) % 11) / 11  # a garbage-collector sawtooth
            leak = grow_per_hour * max(0, m - 300) / 60 if grow_per_hour else 0.0
            out.append(round(50 * MB + (base - 50 * MB) * warm + gc + leak + rng.gauss(0, MB)))
        return out

    procs["leaky"] = (rss(300 * MB, 30 * MB, 0, None), 0.0)  # leaks 30 MiB/h from 05:00
    procs["slow_growth"] = (rss(300 * MB, 5 * MB, 0, None), 0.0)  # 5 MiB/h: under 10
    procs["new_pod"] = (rss(400 * MB, 0, 600, None), 600 * 60.0)  # starts at 10:00
    procs["restarted"] = (rss(300 * MB, 0, 0, 700), 0.0)  # restarts at 11:40
    for inst, (values, started) in procs.items():
        labels = {"job": "svc", "instance": inst}
        g.add("process_resident_memory_bytes", labels, values)
        start = [
            None if v is None else (700 * 60.0 if inst == "restarted" and m >= 700 else started)
            for m, v in enumerate(values)
        ]
        g.add("process_start_time_seconds", labels, start)
        fds = [None if v is None else float(40 + poisson(rng, 20)) for v in values]
        if inst == "leaky":  # a descriptor leak too: 200 -> 1000 by 10:00
            fds = [
                float(min(1000, 200 + m * 800 // 600) + poisson(rng, 5)) for m in range(g.minutes)
            ]
        g.add("process_open_fds", labels, fds)
        g.add("process_max_fds", labels, [None if v is None else 1024.0 for v in values])
    w = {"severity": "warning", "job": "svc"}
    g.fires(6 * H, "OtelperfMemoryLeakSuspected")  # 1 h of growth is not yet sustained
    g.fires(9 * H + 30, "OtelperfMemoryLeakSuspected", {**w, "instance": "leaky"})
    g.fires(20 * H - 1, "OtelperfMemoryLeakSuspected", {**w, "instance": "leaky"})  # still
    g.fires(10 * H, "OtelperfFileDescriptorsHigh", {**w, "instance": "leaky"})
    g.fires(5 * H, "OtelperfFileDescriptorsHigh")
    for inst in ("slow_growth", "new_pod", "restarted"):
        g.never("OtelperfMemoryLeakSuspected", instance=inst)
        g.never("OtelperfFileDescriptorsHigh", instance=inst)
    return [g]


def pipeline(rng: random.Random) -> list[Group]:
    g = Group("pipeline: a job leaving service discovery, internal errors", 4 * H)
    g.add("up", {"job": "svc", "instance": "a:1"}, [1.0] * g.minutes)
    g.add(
        "up",
        {"job": "gone", "instance": "b:1"},
        [1.0 if m < 60 else None for m in range(g.minutes)],
    )
    errors = [float(poisson(rng, 0.2)) if 120 <= m < 140 else 0.0 for m in range(g.minutes)]
    errors[120] = 1.0
    g.add(
        "otelperf_internal_errors_total",
        {"job": "svc", "instance": "a:1", "component": "processor"},
        counter(errors),
    )
    g.add(
        "otelperf_internal_errors_total",
        {"job": "svc", "instance": "a:1", "component": "exporter"},
        [0.0] * g.minutes,
    )
    # A component's first failure: the series appears at 1 (otelperf creates it then).
    g.add(
        "otelperf_internal_errors_total",
        {"job": "svc", "instance": "a:1", "component": "sink"},
        [None if m < 150 else 1.0 for m in range(g.minutes)],
    )
    g.fires(62, "OtelperfTargetAbsent")  # within the 5-minute lookback, and "for: 10m"
    g.fires(90, "OtelperfTargetAbsent", {"severity": "critical", "job": "gone"})
    g.fires(110, "OtelperfInternalErrors")
    g.fires(
        130,
        "OtelperfInternalErrors",
        {"severity": "warning", "job": "svc", "component": "processor"},
    )
    g.fires(
        170,
        "OtelperfInternalErrors",
        {"severity": "warning", "job": "svc", "component": "processor"},
        {"severity": "warning", "job": "svc", "component": "sink"},
    )
    g.never("OtelperfTargetAbsent", job="svc")
    g.never("OtelperfInternalErrors", component="exporter")
    return [g]


FILES: dict[str, tuple[str, Builder]] = {
    "scenarios_errors.yml": (
        "Error alerts: a 60 % fault on a busy operation fires the ratio alert and the "
        "availability page;\n3 calls a minute at 1 % and a steady 4 % never fire the ratio "
        "alert; 2 calls an hour with one\nfailure never pages (minimum bad events); 4 % against "
        "a 2 % budget files a ticket.",
        errors,
    ),
    "scenarios_latency.yml": (
        "Latency alerts: +50 % over 6 h fires the regression, +15 % and a one-minute 20x blip "
        "do not;\n3x slower fires the anomaly and it still fires 2.5 h on; 10 s against a "
        "5 s objective pages.",
        latency,
    ),
    "scenarios_throughput.yml": (
        "Throughput against its own history: a big stage losing 80 % (still above 1,000/s) "
        "fires;\na daily stage's nights (about 90/s) and ramps never do.",
        throughput,
    ),
    "scenarios_dependencies.yml": (
        "APIs, caches, spend: errors and slowness of a busy API, a cache hit ratio collapse "
        "fire;\nlow-volume and near-miss APIs and caches do not; a job spending 60 % of its "
        "budget\nwith an afternoon peak never fires the budget, one tripling its spend fires "
        "both spend alerts.",
        dependencies,
    ),
    "scenarios_resources.yml": (
        "Resources: a 30 MiB/h leak fires after 3 h of growth and keeps firing; 5 MiB/h, a new "
        "pod's\nwarm-up and a restart do not; file descriptors near the limit fire.",
        resources,
    ),
    "scenarios_pipeline.yml": (
        "Pipeline: a job leaving service discovery and otelperf's internal errors fire.",
        pipeline,
    ),
}
