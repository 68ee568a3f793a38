"""HTTP for ``otelperf report`` and ``otelperf compare``: one request within an overall deadline
and a body limit, every failure a one-line :class:`~otelperf.errors.UserError`.

Why not a plain ``urlopen(timeout=...)``: that timeout bounds each socket operation, not the
request, so a server dripping one byte a second never times out, and ``read()`` takes whatever
body the server sends into memory.  Here the deadline (``--timeout`` seconds from the start of
the request) bounds connecting, the TLS handshake, the headers and the body: every read of the
socket gets the time that is left as its timeout and fails once none is; and the body is read
in chunks, refused as soon as it passes :data:`MAX_BODY_BYTES` (or announces more).
"""

from __future__ import annotations

import http.client
import io
import math
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from otelperf.errors import UserError

# A /metrics page or a Prometheus answer larger than this is refused.  otelperf's label caps keep
# a real page to a few MB and the report's queries aggregate away instances, so this is far
# above any honest answer while bounding the memory of one fetch (about twice this, parsed).
MAX_BODY_BYTES = 64 * 1024 * 1024
# --timeout at most a day: a socket timeout above ~9.2e9 s overflows, and no scrape or query
# is worth waiting longer than that.
MAX_TIMEOUT_SECONDS = 86400.0
CHUNK_BYTES = 64 * 1024


def size_text(n: int) -> str:
    """``64 MiB`` for a limit in bytes (whole MiB), else bytes.

    >>> size_text(MAX_BODY_BYTES), size_text(1000)
    ('64 MiB', '1000 bytes')
    """
    return f"{n // 2**20} MiB" if n % 2**20 == 0 and n else f"{n} bytes"


class Deadline:
    """A point on the monotonic clock; :meth:`remaining` is the timeout of the next step."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; raises TimeoutError once there are none (a timeout of 0 would mean
        a non-blocking socket, not "no time")."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left

    def expired(self) -> bool:
        return time.monotonic() >= self.end


class _DeadlineReader(io.RawIOBase):
    """The socket as a raw stream whose every read has the deadline's remaining time."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        super().__init__()
        self._sock = sock
        # The socket's own SocketIO (it holds a reference: closing the connection's socket
        # leaves the response readable, as with http.client's own makefile).
        self._io = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._deadline.remaining())
        return self._io.readinto(buffer)

    def close(self) -> None:
        self._io.close()
        super().close()


class _DeadlineSocket:
    """The connection's socket, handing http.client a deadline-bound reader."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        # http.client asks only for "rb", the response's stream.
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def sendall(self, data: Any) -> None:
        self._sock.settimeout(self._deadline.remaining())
        self._sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, *, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._deadline = deadline

    def connect(self) -> None:
        # Connecting (and for HTTPS the handshake, which CPython bounds as a whole by the
        # socket's timeout) gets what is left of the deadline.
        self.timeout = self._deadline.remaining()
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self._deadline)


class _DeadlineHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, *, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._deadline = deadline

    def connect(self) -> None:
        self.timeout = self._deadline.remaining()
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self._deadline)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def conn(host: str, **kw: Any) -> http.client.HTTPConnection:
            return _DeadlineHTTPConnection(host, deadline=self._deadline, **kw)

        return self.do_open(conn, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def do_open(self, http_class: Any, req: Any, **kw: Any) -> http.client.HTTPResponse:
        # Whatever arguments this Python's HTTPSHandler passes (context, check_hostname),
        # the connection is ours.
        def conn(host: str, **args: Any) -> http.client.HTTPConnection:
            return _DeadlineHTTPSConnection(host, deadline=self._deadline, **args)

        return super().do_open(conn, req, **kw)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Redirects as urllib follows them, except that the redirect's own body is not read:
    urllib reads it whole (``fp.read()``) before following, which no limit would bound."""

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        fp.close()  # a closed response reads as b""
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _opener(deadline: Deadline) -> urllib.request.OpenerDirector:
    # Only HTTP(S), with the environment's proxies and redirects as urlopen() has them; no
    # FTP or file handler, so a redirect cannot leave the deadline.
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        _HTTPHandler(deadline),
        _HTTPSHandler(deadline),
        _RedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def check_url(url: str, what: str) -> str:
    """``url`` if it is an http:// or https:// URL with a host and a valid port; else a
    UserError naming ``what`` (the option).

    >>> check_url("http://[::1/metrics", "--url")
    Traceback (most recent call last):
    ...
    otelperf.errors.UserError: --url='http://[::1/metrics' is not a valid URL (Invalid IPv6 URL)
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise UserError(f"{what}={url!r} is not an http:// or https:// URL")
    if not url.isascii() or not url.isprintable():
        raise UserError(
            f"{what}={url!r} is not a valid URL (control or non-ASCII characters: "
            "percent-encode them)"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as exc:
        raise UserError(f"{what}={url!r} is not a valid URL ({exc})") from None
    if not parts.hostname:
        raise UserError(f"{what}={url!r} is not a valid URL (no host)")
    return url


def check_timeout(seconds: float, what: str = "--timeout") -> float:
    """A timeout in (0, :data:`MAX_TIMEOUT_SECONDS`]: finite, positive, not absurd."""
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_SECONDS):
        raise UserError(f"{what}={seconds!r} is out of range: it must be a number of seconds "
                        f"above 0 and at most {MAX_TIMEOUT_SECONDS:g}")  # fmt: skip
    return seconds


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: ``status`` (200 or an error status) and the whole body."""

    status: int
    reason: str
    body: bytes | bytearray


def fetch(
    url: str,
    what: str,
    timeout: float,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    limit: int = MAX_BODY_BYTES,
) -> Answer:
    """GET ``url`` (POST when ``data`` is given) within ``timeout`` seconds overall, reading
    at most ``limit`` bytes of body.

    An error status is returned, not raised (its body, also limited, may explain it);
    everything else (no connection, no complete answer in time, a body over the limit) is a
    one-line UserError naming ``what`` and the URL.
    """
    check_url(url, what)
    deadline = Deadline(check_timeout(timeout))
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        try:
            resp = _opener(deadline).open(req)
        except urllib.error.HTTPError as exc:
            resp = exc
        with resp:
            status = int(resp.status or 0)
            reason_text = str(getattr(resp, "reason", "") or "")
            body = _read_limited(resp, url, what, limit)
    except UserError:
        raise
    except Exception as exc:  # classified below; anything else is a bug and re-raised
        cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if deadline.expired() or isinstance(cause, TimeoutError):
            raise UserError(f"{what} {url} did not answer completely within {timeout:g} s "
                            "(--timeout)") from None  # fmt: skip
        if isinstance(exc, urllib.error.URLError):
            raise UserError(f"cannot reach {what} {url}: {reason(exc.reason)}") from None
        if isinstance(exc, (OSError, ValueError, http.client.HTTPException)):  # resets, bad URL
            raise UserError(f"cannot reach {what} {url}: {reason(exc)}") from None
        raise
    return Answer(status, reason_text, body)


def _read_limited(resp: Any, url: str, what: str, limit: int) -> bytearray:
    over = UserError(
        f"{what} {url} answered more than {size_text(limit)}, the limit of a /metrics page or "
        "a Prometheus answer (docs/report.md)"
    )
    announced = resp.headers.get("Content-Length") if resp.headers is not None else None
    if announced is not None and announced.strip().isdigit() and int(announced) > limit:
        raise over  # refused before reading any of it
    body = bytearray()
    while True:
        chunk = resp.read(min(CHUNK_BYTES, limit + 1 - len(body)))
        if not chunk:
            missing = getattr(resp, "length", None)  # what Content-Length promised and is not here
            if isinstance(missing, int) and missing > 0:
                raise http.client.IncompleteRead(bytes(body[-80:]), missing)
            return body  # not copied into bytes: the caller decodes it once
        body += chunk
        if len(body) > limit:
            raise over


def reason(exc: object) -> str:
    """What went wrong, for a one-line message: an OSError's strerror, else its text."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
