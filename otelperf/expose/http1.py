"""HTTP/1.1 as otelperf.expose.endpoint speaks it: the bounds, parsing a request head,
the WSGI environ, the answer.  Pure functions over bytes: no sockets, no threads."""

from __future__ import annotations

import email.utils
import io
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_MAX_HEADERS = 100


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


@dataclass
class Request:
    """A parsed request: what a handler thread needs."""

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
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
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


def take_request(buf: bytes, limits: Limits) -> tuple[Request, bytes] | None:
    """The first complete request in ``buf`` and what follows it; None while incomplete.
    Raises BadRequest for what is answered and closed (a bad request line at once)."""
    if not buf:
        return None
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        line_end = buf.find(b"\r\n")
        if line_end >= 0:
            parse_head(buf[:line_end])  # a bad request line is refused at once
        if len(buf) > limits.max_head:
            raise BadRequest("431 Request Header Fields Too Large")
        return None
    if end > limits.max_head:
        raise BadRequest("431 Request Header Fields Too Large")
    method, target, version, headers = parse_head(buf[:end])
    if "transfer-encoding" in headers:
        raise BadRequest("411 Length Required")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise BadRequest("400 Bad Request") from None
    if length < 0 or length > limits.max_body:
        raise BadRequest("413 Content Too Large")
    start = end + 4
    if len(buf) < start + length:
        return None
    token = headers.get("connection", "").lower()
    keep = token != "close" if version == "HTTP/1.1" else token == "keep-alive"
    req = Request(method, target, version, headers, buf[start : start + length], keep)
    return req, buf[start + length :]


def wsgi_environ(req: Request, addr: Any, server: Any, scheme: str) -> dict[str, Any]:
    """The WSGI environ of a parsed request (PEP 3333)."""
    path, _, query = req.target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(path, encoding="latin-1"),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": req.version,
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": str(addr[0]) if addr else "",
        "CONTENT_LENGTH": str(len(req.body)),
        "CONTENT_TYPE": req.headers.get("content-type", ""),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
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
    return environ


def respond(
    app: WSGIApp, environ: dict[str, Any], req: Request, extra: list[tuple[str, str]]
) -> bytes:
    """Run the app; the whole HTTP/1.1 answer (always with Content-Length: keep-alive)."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    out = [f"HTTP/1.1 {status}"]
    length = None
    for name, value in headers:
        low = name.lower()
        if low == "content-length":
            length = value
        elif low not in ("connection", "keep-alive", "transfer-encoding"):
            out.append(f"{name}: {value}")
    out += [f"{n}: {v}" for n, v in extra]
    out.append(f"Content-Length: {length if length is not None else len(body)}")
    out.append(f"Date: {email.utils.formatdate(usegmt=True)}")
    out.append("Connection: keep-alive" if req.keep_alive else "Connection: close")
    payload = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
    return payload if req.method == "HEAD" else payload + body
