"""A registry's families as plain data, and the merge of several processes' families.

Pure functions, no I/O: :mod:`otelperf.expose.workers` writes and reads the files.  A family
is a dict ``{"name", "type", "help", "unit", "samples": [[sample_name, labels, value], ...]}``
(JSON-friendly).  How families of several processes of one service merge (docs/workers.md):

- counters, histograms and summaries: summed over every snapshot, live or exited, so a
  recycled worker's counts are neither lost nor seen as a counter reset;
- gauges (and untyped): summed over live processes only (in-flight operations, traces);
- host readings (``system_*``), ``target_info``, ``python_info`` and info/stateset families:
  once, from the serving process;
- process readings (``process_*``, ``python_gc_*``): per live process with a ``worker`` label
  (its pid) when several processes are alive, so they leave with their worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.metrics_core import Metric as PromMetric

from otelperf import _names as N

Family = dict[str, Any]
WORKER = "worker"

SUMMED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
_ONCE_NAMES = frozenset({N.TARGET_INFO, N.PYTHON_INFO.prom})
_PER_PROCESS_PREFIXES = ("process_", "python_gc_")


def families_of(metrics: Iterable[PromMetric]) -> list[Family]:
    """The families a registry's ``collect()`` yields, as plain data (no ``_created``)."""
    out: list[Family] = []
    for m in metrics:
        samples = [
            [s.name, dict(s.labels), float(s.value)]
            for s in m.samples
            if not s.name.endswith("_created")  # a start time: neither summable nor needed
        ]
        out.append({"name": m.name, "type": m.type, "help": m.documentation,
                    "unit": m.unit, "samples": samples})  # fmt: skip
    return out


def kind(family: Family) -> str:
    """How a family merges: ``once``, ``per_process``, ``summed`` or ``live``."""
    name, typ = family["name"], family["type"]
    if name in _ONCE_NAMES or name.startswith("system_") or typ in ("info", "stateset"):
        return "once"
    if name.startswith(_PER_PROCESS_PREFIXES):
        return "per_process"
    return "summed" if typ in SUMMED else "live"


def summable(families: Iterable[Family]) -> list[Family]:
    """The families an exited process leaves behind: counters and histograms."""
    return [f for f in families if kind(f) == "summed"]


def add_into(total: dict[str, Family], families: Iterable[Family]) -> None:
    """Sum ``families`` into ``total`` (name -> family), sample by sample (name + labels)."""
    for f in families:
        acc = total.get(f["name"])
        if acc is None:
            acc = total[f["name"]] = {**f, "samples": [list(s) for s in f["samples"]]}
            continue
        index = {_sample_key(s): s for s in acc["samples"]}
        for s in f["samples"]:
            hit = index.get(_sample_key(s))
            if hit is None:
                acc["samples"].append(list(s))
                index[_sample_key(s)] = acc["samples"][-1]
            else:
                hit[2] += s[2]


def subtract(families: list[Family], baseline: list[Family] | None) -> list[Family]:
    """``families`` less what a forked child inherited (``baseline``, its parent's registry at
    fork time): counters and histograms only; a child counts its own work, once.

    >>> c = {"name": "x", "type": "counter", "help": "", "unit": "",
    ...      "samples": [["x_total", {}, 5.0]]}
    >>> subtract([c], [{**c, "samples": [["x_total", {}, 2.0]]}])[0]["samples"]
    [['x_total', {}, 3.0]]
    """
    if not baseline:
        return families
    base = {(f["name"], _sample_key(smp)): smp[2] for f in baseline if kind(f) == "summed"
            for smp in f["samples"]}  # fmt: skip
    if not base:
        return families
    out = []
    for f in families:
        if kind(f) == "summed":
            samples = [[smp[0], smp[1], smp[2] - base.get((f["name"], _sample_key(smp)), 0.0)]
                       for smp in f["samples"]]  # fmt: skip
            f = {**f, "samples": samples}
        out.append(f)
    return out


def _sample_key(sample: Sequence[Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample[0], tuple(sorted(sample[1].items()))


def merge(
    own: list[Family],
    own_pid: int,
    live: Sequence[tuple[int, list[Family]]],
    exited: Sequence[list[Family]],
) -> list[PromMetric]:
    """One exposition for the service: ``own`` (the serving process, live), the other ``live``
    processes' snapshots (pid, families) and what ``exited`` processes left (counters only).

    >>> c = {"name": "x", "type": "counter", "help": "", "unit": "",
    ...      "samples": [["x_total", {}, 2.0]]}
    >>> [s.value for s in merge([c], 1, [(2, [c])], [[c]])[0].samples]
    [6.0]
    """
    every = [(own_pid, own), *live]
    per_process = len(every) > 1
    # name -> [(pid or None for exited, family)], in first-seen order (the serving process first)
    groups: dict[str, list[tuple[int | None, Family]]] = {}
    for pid, fams in every:
        for f in fams:
            groups.setdefault(f["name"], []).append((pid, f))
    for fams in exited:
        for f in fams:
            groups.setdefault(f["name"], []).append((None, f))

    out: list[PromMetric] = []
    for name, members in groups.items():
        first = members[0][1]
        how = kind(first)
        total: dict[str, Family] = {}
        if how == "once":
            total[name] = first
        for owner, f in members:
            if how == "once" or (owner is None and how != "summed"):
                continue
            if how == "per_process" and per_process:
                labelled = [[s[0], {**s[1], WORKER: str(owner)}, s[2]] for s in f["samples"]]
                f = {**f, "samples": labelled}
            add_into(total, [f])
        if name in total:
            out.append(_to_metric(total[name]))
    return out


def _to_metric(f: Family) -> PromMetric:
    m = PromMetric(f["name"], f["help"], f["type"], f["unit"])
    for sample_name, labels, value in f["samples"]:
        m.add_sample(sample_name, labels, value)
    return m
