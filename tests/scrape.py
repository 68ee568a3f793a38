"""Scrape helpers for tests: a real HTTP GET over a socket, parsed by prometheus_client."""

from __future__ import annotations

import urllib.request

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


def get(url: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def scrape(url: str) -> dict[Key, float]:
    """Every sample of a /metrics page, keyed by (sample name, label set).

    Empty-valued labels are dropped, as Prometheus does when it ingests them: the OTel exporter
    writes ``error_type=""`` only when some other series of the family has an error_type.
    """
    status, _, body = get(url)
    assert status == 200, body
    out: dict[Key, float] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, frozenset((k, v) for k, v in s.labels.items() if v))] = s.value
    return out


def value(samples: dict[Key, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset((k, v) for k, v in labels.items() if v)))


def matching(samples: dict[Key, float], name: str, **labels: str) -> dict[Key, float]:
    want = {(k, v) for k, v in labels.items() if v}
    return {k: v for k, v in samples.items() if k[0] == name and want <= set(k[1])}


def read_registry(registry: CollectorRegistry) -> dict[Key, float]:
    """Every sample a registry would expose, keyed like :func:`scrape` (no HTTP)."""
    out: dict[Key, float] = {}
    for fam in registry.collect():
        for s in fam.samples:
            out[(s.name, frozenset((k, v) for k, v in s.labels.items() if v))] = s.value
    return out
