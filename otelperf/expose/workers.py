"""One /metrics and /health for every process of a pre-fork service (gunicorn, uvicorn --workers).

Every process of a service that calls configure() with the same host and port joins one
directory, ``<tempdir>/otelperf-<uid>/<host>-<port>/``.  The process that binds the port serves
/metrics; the others are *writers*: a background thread writes their registry's families to
``<pid>-<start>.json`` there every second (write + rename) and at exit (atexit), and retries
binding when the serving process is gone, so one of them takes over within a second or two.
At scrape time the serving process merges its live registry with every snapshot
(:func:`otelperf.expose.snapshot.merge`); exited processes' counters are folded into
``exited.json`` so the directory does not grow with every recycle.  Nothing here runs per
call: only the background thread and the scrape touch files.  docs/workers.md has the why.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric as PromMetric
from prometheus_client.registry import Collector

from otelperf import _names as N
from otelperf._core import fork
from otelperf.errors import ConfigError
from otelperf.expose import snapshot
from otelperf.expose.server import HealthCheck, MetricsServer, PortInUse, hostport
from otelperf.expose.webconfig import WebConfig

try:  # POSIX record locks: owned by the process, so a forked child never inherits one held
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fork and no pre-fork servers
    fcntl = None  # type: ignore[assignment]

_log = logging.getLogger("otelperf")

INTERVAL = 1.0  # seconds between snapshots and takeover attempts
EXITED = "exited.json"
SERVER = "server.json"
_SNAPSHOT = re.compile(r"^(\d+)-(\d+)\.json$")

Ident = tuple[int, int]  # pid, start time in centiseconds (a reused pid has another start)


def supported() -> bool:
    """Can processes share one endpoint here (POSIX locks and fork)?"""
    return fcntl is not None and hasattr(os, "fork")


def service_dir(host: str, port: int, root: str | None = None) -> Path:
    """The directory every process of the service on ``host:port`` shares (per user)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", host)
    base = Path(root or tempfile.gettempdir()) / f"otelperf-{os.getuid()}"
    return base / f"{safe}-{port}"


def start_of(pid: int) -> int | None:
    """The process's start time (centiseconds), None when it is gone or a zombie."""
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return round(p.create_time() * 100)
    except (psutil.Error, OSError):
        return None


def alive(ident: Ident | list[int] | None) -> bool:
    """Is the process ``(pid, start)`` still running (not a zombie, not a reused pid)?"""
    return ident is not None and start_of(ident[0]) == ident[1]


def _me() -> Ident:
    return os.getpid(), start_of(os.getpid()) or 0


def _parent() -> Ident | None:
    # The pre-fork master (same process group) outlives a recycled worker: while it runs, the
    # service has not restarted.  A shell or supervisor in another group does not count.
    ppid = os.getppid()
    try:
        if ppid <= 0 or os.getpgid(ppid) != os.getpgid(0):
            return None
    except OSError:
        return None
    start = start_of(ppid)
    return None if start is None else (ppid, start)


class ServiceDir:
    """The shared directory: locking, atomic writes, the members' snapshots."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._threads = threading.Lock()  # POSIX locks do not exclude threads of one process

    def reset_after_fork(self) -> None:
        self._threads = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive among the service's processes (and this process's threads)."""
        with self._threads:
            fd = os.open(self.path / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock

    def write(self, name: str, doc: dict[str, Any]) -> None:
        tmp = self.path / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, self.path / name)  # readers see the old file or the new one, whole

    def read(self, name: str) -> dict[str, Any] | None:
        try:
            doc = json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def snapshots(self) -> list[tuple[Ident, str]]:
        """(pid, start) and file name of every process snapshot present."""
        out = []
        for entry in os.listdir(self.path):
            m = _SNAPSHOT.match(entry)
            if m:
                out.append(((int(m.group(1)), int(m.group(2))), entry))
        return out

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / name).unlink()

    def clear(self) -> None:
        for entry in os.listdir(self.path):
            if entry.endswith((".json", ".tmp")):
                self.remove(entry)

    def fold(self, me: Ident) -> dict[str, Any]:
        """Move exited processes' counters into exited.json (under the lock); return it."""
        acc = self.read(EXITED) or {"folded": [], "families": []}
        folded = {tuple(i) for i in acc["folded"]}
        total = {f["name"]: f for f in acc["families"]}
        present, gone, changed = set(), [], False
        for ident, name in self.snapshots():
            if ident == me or alive(ident):
                continue
            present.add(ident)
            gone.append(name)
            if ident not in folded:
                doc = self.read(name) or {}
                snapshot.add_into(total, snapshot.summable(doc.get("families", [])))
                folded.add(ident)
                changed = True
        if changed:
            # ids are kept while their file exists: a crash before the unlink below cannot
            # fold one twice
            acc = {"folded": sorted(present), "families": list(total.values())}
            self.write(EXITED, acc)
        for name in gone:
            self.remove(name)
        return acc


def snapshot_name(ident: Ident) -> str:
    return f"{ident[0]}-{ident[1]}.json"


class SharedService:
    """This process's membership of the service on host:port: serving or writing."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: HealthCheck | None = None,
        memory_limit: int | None = None,
        root: str | None = None,
        web: WebConfig | None = None,
    ) -> None:
        self.host, self.port = host, port
        # whichever process serves (this one now, or after a takeover) serves the same TLS
        # and users
        self._web = web
        self.registry = registry
        self._health = health
        self._memory_limit = memory_limit
        self.dir = ServiceDir(service_dir(host, port, root))
        self._merged = CollectorRegistry(auto_describe=False)
        self._merged.register(_Merged(self))
        self._server: MetricsServer | None = None
        self._closed = False
        self.me = _me()
        # A forked child inherits its parent's counters (those no fork reset cleared): what it
        # holds right after fork() is subtracted from everything it reports.  Our collections
        # hold this lock, and fork() waits for it, so the child never collects on state that a
        # thread of ours left half-way.
        self._baseline: list[snapshot.Family] | None = None
        self._collecting = threading.Lock()
        with self.dir.locked():
            self._join()
            try:
                self._try_serve(raise_foreign=True)
            except Exception:  # another program holds the port: leave no trace behind
                self.dir.remove(snapshot_name(self.me))
                raise
        self._stop = threading.Event()
        self._thread = self._start_thread()
        atexit.register(self._at_exit)
        fork.around_fork(self._before_fork, self._after_fork_in_parent)
        fork.on_fork(self._after_fork)

    @property
    def url(self) -> str:
        """The service's /metrics address (served by whichever process holds the port)."""
        scheme = "https" if self._web is not None and self._web.tls is not None else "http"
        return f"{scheme}://{hostport(self.host, self.port)}/metrics"

    @property
    def serving(self) -> bool:
        return self._server is not None

    # --- membership -----------------------------------------------------------------------
    def _join(self) -> None:
        """Record this process; a fresh start (no process of the service alive) starts clean."""
        others = [i for i, _ in self.dir.snapshots() if i != self.me]
        docs = [self.dir.read(snapshot_name(i)) or {} for i in others]
        server = self.dir.read(SERVER) or {}
        if not any(alive(i) for i in others) and not any(alive(d.get("parent")) for d in docs) \
                and not alive(server.get("ident")):  # fmt: skip
            self.dir.clear()
        self._write_snapshot()

    def own_families(self) -> list[snapshot.Family]:
        """This process's families, less what it inherited at fork."""
        with self._collecting:
            families = snapshot.families_of(self.registry.collect())
        return snapshot.subtract(families, self._baseline)

    def _write_snapshot(self) -> None:
        doc = {"pid": self.me[0], "parent": _parent(), "time": time.time(),
               "families": self.own_families()}  # fmt: skip
        self.dir.write(snapshot_name(self.me), doc)

    def _try_serve(self, raise_foreign: bool) -> None:
        """Bind the port (under the directory lock), or stay a writer if the service has it."""
        try:
            server = MetricsServer(
                self.host, self.port, self._merged, health=self.health, web=self._web
            )
        except PortInUse:
            holder = (self.dir.read(SERVER) or {}).get("ident")
            if alive(holder) or not raise_foreign:
                return  # our service serves (or a stranger does: retried, not raised, later)
            raise
        self._server = server
        self.dir.write(SERVER, {"ident": list(self.me)})

    # --- background ---------------------------------------------------------------------------
    def _start_thread(self) -> threading.Thread:
        t = threading.Thread(target=self._run, name="otelperf-workers", daemon=True)
        t.start()
        return t

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                self.tick()
            except Exception as exc:  # the service keeps running; the next tick retries
                _log.debug("otelperf: worker snapshot failed: %s", exc)

    def tick(self) -> None:
        """One background step: snapshot; serve when the serving process is gone; fold."""
        if self._closed:
            return
        others = [i for i, _ in self.dir.snapshots() if i != self.me]
        if self._server is None:
            self._write_snapshot()
            if not alive((self.dir.read(SERVER) or {}).get("ident")):
                with self.dir.locked():
                    if self._server is None and not self._closed:
                        self._try_serve(raise_foreign=False)
        elif others:  # alone, a serving process writes only at exit (a recycle keeps that)
            self._write_snapshot()
            with self.dir.locked():
                self.dir.fold(self.me)

    # --- scrape ---------------------------------------------------------------------------
    def collect(self) -> list[PromMetric]:
        """The service's families: this process live, the others from their snapshots."""
        own = self.own_families()
        live: list[tuple[int, list[snapshot.Family]]] = []
        with self.dir.locked():
            exited = self.dir.fold(self.me)
            for ident, name in self.dir.snapshots():
                if ident != self.me:
                    doc = self.dir.read(name)
                    if doc is not None:
                        live.append((ident[0], doc.get("families", [])))
        return snapshot.merge(own, self.me[0], live, [exited["families"]])

    def health(self) -> tuple[int, dict[str, Any]]:
        """/health for the whole service: this process's checks, plus every live worker's
        resident memory against ``process_memory_limit``."""
        own = self._health() if self._health is not None else None
        return service_health(self.dir, self.me, own, self._memory_limit)

    # --- lifecycle --------------------------------------------------------------------------
    def _at_exit(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):  # never fail the interpreter's exit
                self._write_snapshot()

    def _before_fork(self) -> None:
        self._collecting.acquire()

    def _after_fork_in_parent(self) -> None:
        self._collecting.release()

    def _after_fork(self) -> None:
        # In the child of a configured process (gunicorn --preload, a zero-code master): the
        # serving thread stayed in the parent; the child counts its own work and writes it.
        self.dir.reset_after_fork()
        if self._closed:
            return
        if self._server is not None:
            self._server.abandon()
            self._server = None
        self.me = _me()
        self._collecting = threading.Lock()
        # after the other fork resets (registered before this one): what the child inherited
        try:
            self._baseline = snapshot.families_of(self.registry.collect())
        except Exception as exc:  # then its counts include the inherited ones: say so
            _log.warning("otelperf: reading the registry after fork failed: %s", exc)
        self._stop = threading.Event()
        self._thread = self._start_thread()

    def close(self) -> None:
        """Leave the service: stop serving and writing.  The last snapshot stays, like an
        exited worker's (an application that shuts otelperf down in its lifespan's end, then
        exits, keeps its counts in the service's totals)."""
        if self._closed:
            return
        self._at_exit()
        self._closed = True
        self._stop.set()
        atexit.unregister(self._at_exit)
        fork.forget(self._after_fork)
        fork.forget(self._before_fork)
        fork.forget(self._after_fork_in_parent)
        if self._server is not None:
            self._server.close()
            self._server = None
            self.dir.remove(SERVER)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def service_health(
    d: ServiceDir, me: Ident, own: tuple[int, dict[str, Any]] | None, memory_limit: int | None
) -> tuple[int, dict[str, Any]]:
    """The serving process's /health (``own``) widened to every live process of the service."""
    code = 200
    doc: dict[str, Any] = {"status": "healthy", "reasons": []}
    if own is not None:
        code, doc = own
    reasons: list[str] = list(doc.get("reasons", []))
    pids = [me[0]]
    for ident, name in d.snapshots():
        if ident == me or not alive(ident):
            continue
        pids.append(ident[0])
        rss = _rss((d.read(name) or {}).get("families", []))
        if memory_limit is not None and rss is not None and rss > memory_limit:
            code = 503
            doc["status"] = "unhealthy"
            reasons.append(
                f"worker {ident[0]} resident memory {int(rss)} bytes > limit {memory_limit} bytes"
            )
    doc["reasons"] = reasons
    doc["workers"] = {"live": len(pids), "pids": sorted(pids)}
    return code, doc


def _rss(families: Iterable[snapshot.Family]) -> float | None:
    for f in families:
        if f["name"] == N.PROCESS_RESIDENT_MEMORY and f["samples"]:
            return float(f["samples"][0][2])
    return None


class _Merged(Collector):
    def __init__(self, service: SharedService) -> None:
        self._service = service

    def collect(self) -> Iterable[PromMetric]:
        return self._service.collect()


def start(
    host: str, port: int, registry: CollectorRegistry, health: HealthCheck | None,
    memory_limit: int | None, web: WebConfig | None = None,
) -> SharedService | MetricsServer:  # fmt: skip
    """Serve /metrics for the service on host:port: shared between its processes where the
    platform allows (and the port is fixed), a plain server otherwise; ``web`` (TLS, users)
    applies to whichever process serves."""
    if port == 0 or not supported():
        return MetricsServer(host, port, registry, health=health, web=web)
    try:
        return SharedService(host, port, registry, health, memory_limit, web=web)
    except PortInUse:
        raise
    except (OSError, ConfigError) as exc:
        raise ConfigError(f"cannot serve metrics on {hostport(host, port)}: {exc}") from None
