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
import email.utils
import errno
import io
import queue
import selectors
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PeerCheck = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Limits:
    """The endpoint's bounds (docs/metrics.md "The endpoint")."""

    read_timeout: float = 10.0  # a request head or TLS handshake, from its first byte
    idle_timeout: float = 90.0  # > the usual 15-60 s scrape interval: Prometheus keeps its conn
    write_timeout: float = 30.0  # writing one answer
    threads: int = 4  # handler threads (the app holds the GIL while collecting anyway)
    backlog: int = 128
    max_connections: int = 256
    max_head: int = 64 * 1024  # request line + headers
    max_body: int = 64 * 1024  # a GET/HEAD has none; a bigger body closes the connection


_IDLE, _HANDSHAKE, _HEAD, _BUSY = range(4)
_LISTEN, _WAKE = object(), object()
_MAX_HEADERS = 100


class _Conn:
    __slots__ = ("addr", "buf", "deadline", "keep", "last", "request", "sock", "state")

    def __init__(self, sock: socket.socket, addr: Any, state: int, deadline: float) -> None:
        self.sock = sock
        self.addr = addr
        self.buf = b""
        self.state = state
        self.deadline = deadline
        self.last = time.monotonic()
        self.request: _Request | None = None
        self.keep = False


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class BadRequest(Exception):
    """A request the engine answers with ``status`` and then closes."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers (names lower-cased); raises BadRequest."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest("400 Bad Request") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        # HTTP/0.9 ("GET /metrics") and garbage: answered at once, not waited on
        raise BadRequest("400 Bad Request")
    if parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest("505 HTTP Version Not Supported")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or len(headers) >= _MAX_HEADERS:
            raise BadRequest("400 Bad Request")
        headers[name.lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


class HTTPEndpoint:
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
        self.limits = limits or Limits()
        self._app = app
        self._tls = tls
        self._check_peer = check_peer
        self._extra = list(extra_headers)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((host, port))
            lsock.listen(self.limits.backlog)
        except OSError:
            lsock.close()
            raise
        lsock.setblocking(False)
        self._lsock = lsock
        self.server_address = lsock.getsockname()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(lsock, selectors.EVENT_READ, _LISTEN)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._accepting = True
        self._resume_at = 0.0
        self._conns: dict[int, _Conn] = {}  # by id(); the selector thread's alone
        self._returned: collections.deque[_Conn] = collections.deque()
        self._jobs: queue.SimpleQueue[_Conn | None] = queue.SimpleQueue()
        self._stopping = False
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

    def _accept(self) -> None:
        for _ in range(64):
            if len(self._conns) >= self.limits.max_connections and not self._evict():
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

    def _handshake(self, conn: _Conn) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._sel.modify(sock, selectors.EVENT_READ, conn)
            return
        except ssl.SSLWantWriteError:
            self._sel.modify(sock, selectors.EVENT_WRITE, conn)
            return
        except (ssl.SSLError, OSError):  # plain HTTP on the TLS port, a bad or missing cert
            self._close(conn)
            return
        if self._check_peer is not None and not self._check_peer(sock.getpeercert() or {}):
            self._close(conn)
            return
        self._sel.modify(sock, selectors.EVENT_READ, conn)
        conn.state, conn.last = _IDLE, time.monotonic()
        conn.deadline = conn.last + self.limits.idle_timeout
        self._read(conn)  # the request may have come with the handshake's last flight

    def _read(self, conn: _Conn) -> None:
        got = False
        while len(conn.buf) <= self.limits.max_head + self.limits.max_body:
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):  # fmt: skip
                break
            except OSError:
                self._close(conn)
                return
            if not data:
                self._close(conn)
                return
            conn.buf += data
            got = True
        if got and conn.state == _IDLE:
            conn.state = _HEAD
            conn.deadline = time.monotonic() + self.limits.read_timeout
        self._parse(conn)

    def _parse(self, conn: _Conn) -> None:
        """Dispatch a complete request to the pool; answer a bad one and close."""
        buf = conn.buf
        if not buf:
            return
        end = buf.find(b"\r\n\r\n")
        try:
            if end < 0:
                line_end = buf.find(b"\r\n")
                if line_end >= 0:
                    parse_head(buf[:line_end])  # a bad request line is refused at once
                if len(buf) > self.limits.max_head:
                    raise BadRequest("431 Request Header Fields Too Large")
                return
            if end > self.limits.max_head:
                raise BadRequest("431 Request Header Fields Too Large")
            method, target, version, headers = parse_head(buf[:end])
            if "transfer-encoding" in headers:
                raise BadRequest("411 Length Required")
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise BadRequest("400 Bad Request") from None
            if length < 0 or length > self.limits.max_body:
                raise BadRequest("413 Content Too Large")
        except BadRequest as bad:
            self._refuse(conn, bad.status)
            return
        start = end + 4
        if len(buf) < start + length:
            return  # the body is on its way (still under the read deadline)
        token = headers.get("connection", "").lower()
        keep = token != "close" if version == "HTTP/1.1" else token == "keep-alive"
        conn.request = _Request(method, target, version, headers, buf[start : start + length],
                                keep)  # fmt: skip
        conn.buf = buf[start + length :]
        conn.state = _BUSY
        self._sel.unregister(conn.sock)
        self._jobs.put(conn)

    def _refuse(self, conn: _Conn, status: str) -> None:
        body = status.encode() + b"\n"
        with contextlib.suppress(OSError, ssl.SSLError):
            conn.sock.send(
                b"HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (status.encode(), len(body), body)
            )
        self._close(conn)

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
        if conn.buf:  # a pipelined request arrived with the last one
            conn.state = _HEAD
            conn.deadline = time.monotonic() + self.limits.read_timeout
            self._parse(conn)

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

    # --- handler threads --------------------------------------------------------------------
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
        path, _, query = req.target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": req.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": req.version,
            "SERVER_NAME": str(self.server_address[0]),
            "SERVER_PORT": str(self.server_address[1]),
            "REMOTE_ADDR": str(conn.addr[0]) if conn.addr else "",
            "CONTENT_LENGTH": str(len(req.body)),
            "CONTENT_TYPE": req.headers.get("content-type", ""),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self._tls is not None else "http",
            "wsgi.input": io.BytesIO(req.body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in req.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE"):
                environ[key] = value
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        result = self._app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        keep = req.keep_alive
        out = [f"HTTP/1.1 {status}"]
        length = None
        for name, value in headers:
            low = name.lower()
            if low == "content-length":
                length = value
            elif low not in ("connection", "keep-alive", "transfer-encoding"):
                out.append(f"{name}: {value}")
        out += [f"{n}: {v}" for n, v in self._extra]
        out.append(f"Content-Length: {length if length is not None else len(body)}")
        out.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        out.append("Connection: keep-alive" if keep else "Connection: close")
        payload = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        if req.method != "HEAD":
            payload += body
        sock = conn.sock
        sock.settimeout(self.limits.write_timeout)
        try:
            sock.sendall(payload)
        finally:
            sock.setblocking(False)
        return keep

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
        self._release()

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
