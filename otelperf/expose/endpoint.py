"""The HTTP/1.1 engine behind /metrics and /health: one selector thread, a few handler threads.

Why not wsgiref + ThreadingMixIn (what served before): a thread per connection for as long as
the connection lives, no timeout, a listen backlog of 5.  Idle connections (a port scanner, a
TLS client hello on the plain port, ``nc``) each held a thread forever, and about 1,000 of them
took the endpoint offline.  Here:

* one **selector thread** accepts, runs TLS handshakes and reads request heads without
  blocking, so an idle or slow connection costs a file descriptor and a small buffer, never a
  thread;
* a **bounded pool** of handler threads (``Limits.threads``) runs the WSGI app on complete
  requests only and writes the answer (with a write timeout); excess requests wait their turn;
* **timeouts**: a request head (or a TLS handshake) must arrive within ``read_timeout`` of its
  first byte; a kept-alive connection is closed after ``idle_timeout`` without a request;
* **HTTP/1.1 keep-alive** (Prometheus reuses its connection between scrapes), a real listen
  backlog, and at most ``max_connections`` open: past it the longest-idle connection is closed
  (or, when every connection is busy, new ones wait in the listen queue).

Everything the selector thread owns (the connection table) is touched by it alone; handler
threads hand connections back through a queue and a wake-up socket.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import queue
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from otelperf._core.warn import warn_once
from otelperf.expose.http1 import (
    BadRequest,
    Limits,
    Request,
    WSGIApp,
    respond,
    take_request,
    wsgi_environ,
)

PeerCheck = Callable[[dict[str, Any]], bool]


_IDLE, _HANDSHAKE, _HEAD, _BUSY = range(4)
_LISTEN, _WAKE = object(), object()


class _Conn:
    __slots__ = ("addr", "buf", "deadline", "keep", "last", "request", "sock", "state")

    def __init__(self, sock: socket.socket, addr: Any, state: int, deadline: float) -> None:
        self.sock = sock
        self.addr = addr
        self.buf = b""
        self.state = state
        self.deadline = deadline
        self.last = time.monotonic()
        self.request: Request | None = None
        self.keep = False

    def handshake(self, check_peer: PeerCheck | None) -> int:
        """A TLS handshake step: the event to wait for, 0 when done, -1 when it failed."""
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            return selectors.EVENT_READ
        except ssl.SSLWantWriteError:
            return selectors.EVENT_WRITE
        except (ssl.SSLError, OSError):  # plain HTTP on the TLS port, a bad or missing cert
            return -1
        if check_peer is not None and not check_peer(sock.getpeercert() or {}):
            return -1
        return 0

    def receive(self, limit: int) -> bool | None:
        """Read what is there without blocking (TLS: every buffered record); whether
        anything came, None when the peer closed or the connection failed."""
        got = False
        while len(self.buf) <= limit:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):  # fmt: skip
                break
            except OSError:
                return None
            if not data:
                return None
            self.buf += data
            got = True
        return got

    def refuse(self, status: str) -> None:
        """A short answer to a bad request, best effort (the connection closes next)."""
        body = status.encode() + b"\n"
        with contextlib.suppress(OSError, ssl.SSLError):
            self.sock.send(
                b"HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (status.encode(), len(body), body)
            )

    def answer(self, payload: bytes, timeout: float) -> None:
        """Write a whole answer from a handler thread (blocking, with a timeout)."""
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(payload)
        finally:
            self.sock.setblocking(False)


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    try:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((host, port))
        lsock.listen(backlog)
    except OSError:
        lsock.close()
        raise
    lsock.setblocking(False)
    return lsock


class _Connections:
    """The selector thread's side: the listening socket, the connection table, accepting
    within the bounds, eviction and the timeouts.  Only the selector thread touches it."""

    def __init__(self, lsock: socket.socket, limits: Limits, tls: ssl.SSLContext | None) -> None:
        self.limits = limits
        self._lsock = lsock
        self._tls = tls
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(lsock, selectors.EVENT_READ, _LISTEN)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._accepting = True
        self._resume_at = 0.0
        self._conns: dict[int, _Conn] = {}  # by id()
        self._stopping = False

    def _accept(self) -> None:
        for _ in range(64):
            full = len(self._conns) >= self.limits.max_connections
            if full and all(c.state == _BUSY for c in self._conns.values()):
                self._pause(None)  # every connection is busy: new ones wait in the backlog
                return
            try:
                sock, addr = self._lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # out of file descriptors: free one (the longest idle) or stop accepting for a
                # moment; a readable listening socket must not spin the selector
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if not self._evict():
                        self._pause(time.monotonic() + 0.1)
                    return
                return
            if full:
                self._evict()  # only for a connection that is really there
            self._open(sock, addr)

    def _open(self, sock: socket.socket, addr: Any) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        now = time.monotonic()
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (OSError, ValueError):
                sock.close()
                return
            conn = _Conn(sock, addr, _HANDSHAKE, now + self.limits.read_timeout)
        else:
            conn = _Conn(sock, addr, _IDLE, now + self.limits.idle_timeout)
        self._conns[id(conn)] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn)

    def _pause(self, until: float | None) -> None:
        if self._accepting:
            self._sel.unregister(self._lsock)
            self._accepting = False
        self._resume_at = until if until is not None else float("inf")

    def _unpause(self) -> None:
        if not self._accepting and not self._stopping:
            self._sel.register(self._lsock, selectors.EVENT_READ, _LISTEN)
            self._accepting = True

    def _evict(self) -> bool:
        """Close the connection that has waited longest without a complete request."""
        idle = [c for c in self._conns.values() if c.state != _BUSY]
        if not idle:
            return False
        self._close(min(idle, key=lambda c: c.last))
        return True

    def _sweep(self, now: float) -> None:
        for conn in [c for c in self._conns.values() if c.state != _BUSY and now > c.deadline]:
            self._close(conn)
        if not self._accepting and now >= self._resume_at:
            self._unpause()

    def _close(self, conn: _Conn) -> None:
        if self._conns.pop(id(conn), None) is None:
            return
        if conn.state != _BUSY:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()
        if not self._accepting and self._resume_at == float("inf"):
            self._unpause()

    # --- after fork ---------------------------------------------------------------------------
    def abandon(self) -> None:
        """In a forked child (whose copy of the threads does not exist): close the inherited
        listening socket and connections, so the port frees and a client's kept-alive
        connection ends when the parent closes it.  Touches no selector registration: the
        epoll set is shared with the parent."""
        self._stopping = True
        for conn in list(self._conns.values()):
            with contextlib.suppress(OSError):
                conn.sock.close()
        self._conns.clear()
        self._release()

    def _release(self) -> None:
        for s in (self._lsock, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                s.close()
        with contextlib.suppress(OSError):
            self._sel.close()


class HTTPEndpoint(_Connections):
    """Serve ``app`` on host:port until :meth:`close` (binding errors raise OSError)."""

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApp,
        limits: Limits | None = None,
        tls: ssl.SSLContext | None = None,
        check_peer: PeerCheck | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        limits = limits or Limits()
        super().__init__(_listen(host, port, limits.backlog), limits, tls)
        self.server_address = self._lsock.getsockname()
        self._app = app
        self._check_peer = check_peer
        self._extra = list(extra_headers)
        self._returned: collections.deque[_Conn] = collections.deque()
        self._jobs: queue.SimpleQueue[_Conn | None] = queue.SimpleQueue()
        self._loop = threading.Thread(target=self._run, name="otelperf-metrics", daemon=True)
        self._workers = [
            threading.Thread(target=self._work, name=f"otelperf-metrics-{i}", daemon=True)
            for i in range(self.limits.threads)
        ]
        self._loop.start()
        for w in self._workers:
            w.start()

    # --- selector thread --------------------------------------------------------------------
    def _run(self) -> None:
        next_sweep = 0.0
        while not self._stopping:
            try:
                events = self._sel.select(0.25)
            except OSError:  # pragma: no cover - EINTR is retried by select() itself
                continue
            for key, mask in events:
                try:
                    self._event(key.data, mask)
                except Exception:  # one connection's trouble never stops the endpoint
                    if isinstance(key.data, _Conn):
                        self._close(key.data)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + 0.1
                self._sweep(now)
        for conn in list(self._conns.values()):
            self._close(conn)

    def _event(self, data: Any, mask: int) -> None:
        if data is _LISTEN:
            self._accept()
        elif data is _WAKE:
            with contextlib.suppress(OSError):
                self._wake_r.recv(4096)
            while self._returned:
                self._resume(self._returned.popleft())
        elif data.state == _HANDSHAKE:
            self._handshake(data)
        else:
            self._read(data)

    def _handshake(self, conn: _Conn) -> None:
        wait = conn.handshake(self._check_peer)
        if wait < 0:
            self._close(conn)
        elif wait:
            self._sel.modify(conn.sock, wait, conn)
        else:
            self._sel.modify(conn.sock, selectors.EVENT_READ, conn)
            conn.state, conn.last = _IDLE, time.monotonic()
            conn.deadline = conn.last + self.limits.idle_timeout
            self._read(conn)  # the request may have come with the handshake's last flight

    def _read(self, conn: _Conn) -> None:
        got = conn.receive(self.limits.max_head + self.limits.max_body)
        if got is None:
            self._close(conn)
            return
        if got and conn.state == _IDLE:
            conn.state = _HEAD
            conn.deadline = time.monotonic() + self.limits.read_timeout
        self._parse(conn)

    def _parse(self, conn: _Conn) -> None:
        """Dispatch a complete request to the pool; answer a bad one and close."""
        try:
            got = take_request(conn.buf, self.limits)
        except BadRequest as bad:
            conn.refuse(bad.status)
            self._close(conn)
            return
        if got is None:
            return  # the rest is on its way (still under the read deadline)
        conn.request, conn.buf = got
        conn.state = _BUSY
        self._sel.unregister(conn.sock)
        self._jobs.put(conn)

    def _resume(self, conn: _Conn) -> None:
        """A handler thread is done with ``conn``: wait for its next request, or close it."""
        if not conn.keep or self._stopping:
            self._close(conn)
            return
        conn.state, conn.last = _IDLE, time.monotonic()
        conn.deadline = conn.last + self.limits.idle_timeout
        try:
            self._sel.register(conn.sock, selectors.EVENT_READ, conn)
        except (OSError, ValueError):
            self._close(conn)
            return
        if not self._accepting and self._resume_at == float("inf"):
            self._unpause()  # it can be evicted now: accept again
        if conn.buf:  # a pipelined request arrived with the last one
            conn.state = _HEAD
            conn.deadline = time.monotonic() + self.limits.read_timeout
            self._parse(conn)

    def _work(self) -> None:
        while True:
            conn = self._jobs.get()
            if conn is None:
                return
            try:
                conn.keep = self._serve(conn)
            except Exception:  # a broken client or app: this connection only
                conn.keep = False
            self._returned.append(conn)
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")

    def _serve(self, conn: _Conn) -> bool:
        req = conn.request
        assert req is not None
        scheme = "https" if self._tls is not None else "http"
        environ = wsgi_environ(req, conn.addr, self.server_address, scheme)
        try:
            payload = respond(self._app, environ, req, self._extra)
        except Exception as exc:  # the app failed: say so, as wsgiref did, and close
            # once per kind of failure: a broken collector fails every scrape
            warn_once(("endpoint-500", type(exc).__name__),
                      "otelperf: /metrics or /health failed (answered 500): %r", exc)  # fmt: skip
            conn.refuse("500 Internal Server Error")
            return False
        conn.answer(payload, self.limits.write_timeout)
        return req.keep_alive

    # --- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop serving: close the listening socket, every connection and the threads."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._loop.join(timeout=5)
        for _ in self._workers:
            self._jobs.put(None)
        for w in self._workers:
            w.join(timeout=5)
        for conn in list(self._returned) + list(self._conns.values()):
            with contextlib.suppress(OSError):
                conn.sock.close()
        self._release()
