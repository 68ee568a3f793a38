"""The demo service: a simulated order service that exercises everything otelperf measures.

Each request is a root operation ``handle_order`` with nested stages: ``download`` (waiting,
reports bytes), ``parse`` (CPU-bound, reports items), ``enrich`` (an asyncio.gather fan-out of
``fetch_price`` calls) and ``store``.  ``--error-rate`` makes ``store`` fail that often and
``--slow OPERATION`` makes one stage 20 times slower, so dashboards and alerts have faults to show.
``fetch_price`` reads through a small LRU price cache (``record_cache("prices", hit)``) and
``recommend`` makes a simulated LLM call (``api_call("openai", model="gpt-4o-mini")``) with
token counts, priced with ``set_api_price``; about 1% of those calls time out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from otelperf.emit.apis import api_call, record_cache
from otelperf.emit.measure import measure
from otelperf.emit.prices import set_api_price
from otelperf.errors import ConfigError
from otelperf.parsing import parse_float, parse_int

ROOT = "handle_order"
STAGES = ("download", "parse", "enrich", "fetch_price", "recommend", "store")
LLM_API = "openai"
LLM_MODEL = "gpt-4o-mini"
LLM_PRICE = (0.15, 0.60)  # USD per million input, output tokens
# Of 40 hot SKUs: a hit ratio around 85 %, healthy against OtelperfCacheHitRateLow (< 60 %), so
# the compose stack does not alert until a fault is injected.
PRICE_CACHE_SIZE = 34


class LLMTimeout(Exception):
    """The simulated LLM did not answer in time."""


SLOW_FACTOR = 20.0


class StoreError(Exception):
    """The simulated database rejected the write."""


@dataclass
class DemoConfig:
    """Knobs of the simulated service (validated by :func:`validate`)."""

    error_rate: float = 0.02
    slow: str | None = None
    workers: int = 4
    fault_seconds: float | None = None  # faults stop after this many seconds (None: never)
    seed: int | None = None
    started: float = field(default_factory=time.monotonic)

    def factor(self, stage: str) -> float:
        return SLOW_FACTOR if self.slow == stage and self.fault_active() else 1.0

    def fault_active(self) -> bool:
        return self.fault_seconds is None or time.monotonic() - self.started < self.fault_seconds


def validate(cfg: DemoConfig) -> DemoConfig:
    """``cfg`` if its knobs are usable; else a ConfigError naming the flag."""
    parse_float(cfg.error_rate, "--error-rate", low=0.0, high=1.0)
    if cfg.slow is not None and cfg.slow not in (ROOT, *STAGES):
        raise ConfigError(
            f"--slow={cfg.slow!r} is not an operation of the demo; choose one of "
            + ", ".join((ROOT, *STAGES))
        )
    parse_int(cfg.workers, "--workers", low=1, high=256)
    return cfg


class OrderService:
    """The simulated service; every stage is measured the way an application would do it."""

    def __init__(self, cfg: DemoConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.price_cache: OrderedDict[str, float] = OrderedDict()

    async def _sleep(self, stage: str, low_ms: float, high_ms: float) -> None:
        await asyncio.sleep(self.rng.uniform(low_ms, high_ms) / 1000 * self.cfg.factor(stage))

    async def download(self) -> bytes:
        async with measure("download") as op:
            await self._sleep("download", 5, 20)
            payload = json.dumps(
                [{"sku": f"SKU-{i}", "qty": self.rng.randint(1, 5)} for i in range(200)]
            ).encode()
            op.add_bytes(len(payload))
            return payload

    def parse(self, payload: bytes) -> list[dict[str, object]]:
        # CPU-bound on purpose: real decoding work, repeated to take a few milliseconds.
        with measure("parse") as op:
            rounds = int(8 * self.cfg.factor("parse"))
            rows: list[dict[str, object]] = []
            for _ in range(rounds):
                rows = json.loads(payload)
                json.dumps(rows, sort_keys=True)
            op.add_items(len(rows))
            return rows

    async def fetch_price(self, sku: str) -> float:
        cached = self.price_cache.get(sku)
        record_cache("prices", hit=cached is not None)
        if cached is not None:
            self.price_cache.move_to_end(sku)
            return cached
        async with measure("fetch_price"):
            await self._sleep("fetch_price", 2, 12)
            price = self.rng.uniform(1, 100)
        self.price_cache[sku] = price
        if len(self.price_cache) > PRICE_CACHE_SIZE:
            self.price_cache.popitem(last=False)
        return price

    async def enrich(self, rows: list[dict[str, object]]) -> float:
        async with measure("enrich"):
            skus = [f"SKU-{i}" for i in self.rng.sample(range(40), 4)]
            prices = await asyncio.gather(*(self.fetch_price(s) for s in skus))
            # No add_items here: four prices per order is not a throughput figure, and the
            # OtelperfThroughputLow alert watches every operation that reports items.
            return sum(prices)

    async def recommend(self, total: float) -> str:
        """A simulated LLM call: its span, duration, tokens and cost are counted by otelperf."""
        async with measure("recommend"), api_call(LLM_API, model=LLM_MODEL) as call:
            await self._sleep("recommend", 8, 25)
            if self.cfg.fault_active() and self.rng.random() < 0.01:
                raise LLMTimeout("no answer within 30 s")
            call.set_tokens(input=self.rng.randint(300, 1200), output=self.rng.randint(40, 300))
            return f"bundle for {total:.0f}"

    def _store_blocking(self, total: float) -> None:
        # A blocking database driver, run in a worker thread: the waiting stage. Being sync,
        # it reports thread CPU (close to 0), so dashboards show waiting next to parse's CPU.
        with measure("store"):
            time.sleep(self.rng.uniform(2, 8) / 1000 * self.cfg.factor("store"))
            if self.cfg.fault_active() and self.rng.random() < self.cfg.error_rate:
                raise StoreError("write conflict on orders table")

    async def store(self, total: float) -> None:
        await asyncio.to_thread(self._store_blocking, total)

    async def handle_order(self) -> None:
        async with measure(ROOT):
            await self._sleep(ROOT, 0.5, 1.5)
            payload = await self.download()
            rows = self.parse(payload)
            total = await self.enrich(rows)
            try:
                await self.recommend(total)
            except LLMTimeout:
                pass  # recommendations are optional; the call is counted as an error
            await self.store(total)


async def run_service(
    cfg: DemoConfig,
    stop: asyncio.Event,
    on_tick: Callable[[], None] | None = None,
    tick_seconds: float = 5.0,
) -> int:
    """Serve requests on ``cfg.workers`` concurrent workers until ``stop`` is set."""
    service = OrderService(cfg)
    handled = 0

    async def worker() -> None:
        nonlocal handled
        while not stop.is_set():
            try:
                await service.handle_order()
            except StoreError:
                pass  # counted by measure(); a real service would return 500
            handled += 1
            await asyncio.sleep(service.rng.uniform(0.005, 0.02))

    async def ticker() -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=tick_seconds)
            except asyncio.TimeoutError:
                if on_tick is not None:
                    on_tick()

    await asyncio.gather(*(worker() for _ in range(cfg.workers)), ticker())
    return handled


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=None,
        help="address to serve /metrics on (default OTEL_EXPORTER_PROMETHEUS_HOST or 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=str,
        default=None,
        help="port for /metrics (default OTEL_EXPORTER_PROMETHEUS_PORT or 9464; 0 = any free port)",
    )
    parser.add_argument(
        "--duration",
        type=str,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--error-rate",
        type=str,
        default="0.02",
        help="fraction of requests whose store step fails (0..1, default 0.02)",
    )
    parser.add_argument(
        "--slow",
        default=None,
        metavar="OPERATION",
        help=f"make one operation {SLOW_FACTOR:g}x slower: " + ", ".join((ROOT, *STAGES)),
    )
    parser.add_argument(
        "--fault-seconds",
        type=str,
        default=None,
        help="injected faults (--error-rate, --slow) stop after this many seconds",
    )
    parser.add_argument("--workers", type=str, default="4", help="concurrent requests (default 4)")
    parser.add_argument(
        "--summary-interval",
        type=str,
        default="5",
        help="seconds between live summaries (default 5)",
    )
    parser.add_argument(
        "--service-name",
        default=None,
        help="service.name resource attribute (default OTEL_SERVICE_NAME or otelperf-demo)",
    )


@dataclass(frozen=True)
class DemoOptions:
    """The demo's command line, checked (:func:`options`)."""

    cfg: DemoConfig
    duration: float | None
    interval: float
    port: int | None
    host: str | None
    service: str


# The longest --duration, --fault-seconds and --summary-interval: a year; past that a number is
# a typo, not a demo.
MAX_SECONDS = 365 * 86400.0


def _text(value: str | None, source: str) -> str | None:
    # A lone surrogate (an argument that was not valid UTF-8) cannot be a host or a resource
    # attribute: refused here, naming the flag, instead of failing deep in a socket call.
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{source}={value!r} is not valid text (not UTF-8)") from None
    if not value.strip() or not value.isprintable():
        raise ConfigError(f"{source}={value!r} must be non-empty printable text")
    return value


def options(args: argparse.Namespace) -> DemoOptions:
    """Every flag of ``otelperf demo`` parsed and checked, nothing started: a bad value is a
    ConfigError naming the flag."""

    def seconds(value: str | None, source: str, low: float = 0.0) -> float | None:
        return None if value is None else parse_float(value, source, low=low, high=MAX_SECONDS)

    cfg = validate(
        DemoConfig(
            error_rate=parse_float(args.error_rate, "--error-rate", low=0.0, high=1.0),
            slow=args.slow,
            workers=parse_int(args.workers, "--workers", low=1, high=256),
            fault_seconds=seconds(args.fault_seconds, "--fault-seconds"),
        )
    )
    return DemoOptions(
        cfg=cfg,
        duration=seconds(args.duration, "--duration"),
        interval=parse_float(
            args.summary_interval, "--summary-interval", low=0.1, high=MAX_SECONDS
        ),
        port=None if args.port is None else parse_int(args.port, "--port", low=0, high=65535),
        host=_text(args.host, "--host"),
        service=_text(args.service_name, "--service-name")
        or os.environ.get("OTEL_SERVICE_NAME")
        or "otelperf-demo",
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from otelperf.telemetry import configure

    out = out or sys.stdout
    opts = options(args)
    cfg, duration, interval, port = opts.cfg, opts.duration, opts.interval, opts.port
    service = opts.service
    # The demo opts in to per-operation CPU so dashboards show CPU-bound vs waiting stages.
    telemetry = configure(service_name=service, prometheus_host=opts.host, track_cpu=True,
                          prometheus_port=port)  # fmt: skip
    set_api_price(LLM_API, LLM_MODEL, input_per_million_usd=LLM_PRICE[0],
                  output_per_million_usd=LLM_PRICE[1])  # fmt: skip
    print(f"otelperf demo: serving {telemetry.metrics_url} (Ctrl-C to stop)", file=out, flush=True)
    summary = _Summary(telemetry, out)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        if duration is not None:
            loop.call_later(duration, stop.set)
        return await run_service(cfg, stop, summary.tick, interval)

    try:
        handled = asyncio.run(main())
    finally:
        telemetry.shutdown()
    print(f"otelperf demo: stopped after {handled} requests", file=out, flush=True)
    return 0


class _Summary:
    """The live summary printed every few seconds."""

    def __init__(self, telemetry: object, out: TextIO) -> None:
        from otelperf.report import LiveSummary

        self.telemetry = telemetry
        self.out = out
        self.live = LiveSummary()

    def tick(self) -> None:
        try:
            text = self.live.render(self.telemetry)
        except Exception as exc:  # the summary is a convenience; never stop the demo for it
            text = f"(summary unavailable: {exc})"
        print(text, file=self.out, flush=True)
