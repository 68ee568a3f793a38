"""``otelperf report`` and ``otelperf compare`` against hostile servers (issue 14, defect 7):
``--timeout`` is an overall deadline for each request, and a body over the limit is refused
after reading no more than the limit.

Each server here is a real socket on 127.0.0.1 in a thread, speaking just enough HTTP to be
hostile: it drips bytes, announces a huge body, or streams an endless chunked one.  Before the
fix, a drip outlived ``--timeout`` (each byte reset a per-read timeout) and a body was read
whole into memory.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from otelperf.cli import main
from otelperf.errors import UserError
from otelperf.report.sources.fetch import MAX_BODY_BYTES, fetch

# A hostile server never talks longer than this, so a client without a deadline shows up as a
# slow test (an assertion on the elapsed time) rather than a hung one.
SERVER_GIVES_UP = 6.0
MARGIN = 1.0  # seconds allowed past --timeout: process start is not in it, this is in-process


class HostileServer:
    """Accepts connections and runs ``talk(conn)`` on each in its own thread."""

    def __init__(self, talk: Callable[[socket.socket, threading.Event], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.sent = 0
        self._talk = talk
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(SERVER_GIVES_UP)
            try:
                _read_request(conn)
                self._talk(conn, self.stop)
            except OSError:
                pass  # the client hung up: what a deadline does

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            need = int(line.split(b":")[1]) - len(rest)
            while need > 0:
                got = conn.recv(need)
                if not got:
                    return
                need -= len(got)


def drip(prefix: bytes) -> Callable[[socket.socket, threading.Event], None]:
    """Send ``prefix``, then one byte every 0.2 s (for at most SERVER_GIVES_UP seconds)."""

    def talk(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(prefix)
        end = time.monotonic() + SERVER_GIVES_UP
        while time.monotonic() < end and not stop.wait(0.2):
            conn.sendall(b"#")

    return talk


BODY_DRIP = drip(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n# HELP ")
HEADER_DRIP = drip(b"HTTP/1.1 200 OK\r\nX-Slow: ")


@pytest.fixture(params=["body", "headers"])
def dripping(request: pytest.FixtureRequest) -> Iterator[HostileServer]:
    server = HostileServer(BODY_DRIP if request.param == "body" else HEADER_DRIP)
    try:
        yield server
    finally:
        server.close()


def _timed(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, float]:
    t0 = time.monotonic()
    code = main(list(argv))
    elapsed = time.monotonic() - t0
    return code, capsys.readouterr().err, elapsed


def _one_line(err: str, command: str) -> str:
    assert err.startswith(f"otelperf {command}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# --- the deadline ----------------------------------------------------------------------------


def test_url_dripping_one_byte_at_a_time_stops_at_the_timeout(dripping, capsys):
    url = dripping.url + "/metrics"
    code, err, elapsed = _timed(capsys, "report", "--url", url, "--timeout", "1")
    assert code == 2
    assert elapsed < 1 + MARGIN, elapsed
    assert f"--url {url} did not answer completely within 1 s (--timeout)" in _one_line(
        err, "report"
    )


def test_prometheus_dripping_stops_at_the_timeout(dripping, capsys):
    code, err, elapsed = _timed(capsys, "report", "--prometheus", dripping.url, "--timeout", "1.5")
    assert code == 2
    assert elapsed < 1.5 + MARGIN, elapsed
    assert f"--prometheus {dripping.url}/api/v1/query did not answer completely within 1.5 s" in (
        _one_line(err, "report")
    )


def test_compare_prometheus_dripping_stops_at_the_timeout(dripping, capsys):
    code, err, elapsed = _timed(
        capsys, "compare", "--prometheus", dripping.url, "--timeout", "1",
        "--baseline", "1764496800..1764500400", "--candidate", "1764500400..1764504000",
    )  # fmt: skip
    assert code == 2
    assert elapsed < 1 + MARGIN, elapsed
    assert "did not answer completely within 1 s (--timeout)" in _one_line(err, "compare")


def test_every_prometheus_query_has_its_own_deadline(capsys):
    """A Prometheus that answers the first queries at once and then drips: the report stops
    at the first dripping query's deadline, having made the others."""
    answered = []
    empty = b'{"status":"success","data":{"resultType":"vector","result":[]}}'

    def talk(conn: socket.socket, stop: threading.Event) -> None:
        if len(answered) < 3:
            answered.append(1)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(empty), empty))  # fmt: skip
            return
        BODY_DRIP(conn, stop)

    server = HostileServer(talk)
    try:
        code, err, elapsed = _timed(capsys, "report", "--prometheus", server.url, "--timeout", "1")
    finally:
        server.close()
    assert code == 2 and len(answered) == 3
    assert elapsed < 1 + MARGIN, elapsed
    assert "did not answer completely within 1 s" in _one_line(err, "report")


# --- the body limit --------------------------------------------------------------------------


def _huge_announced(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                 b"Content-Length: 300000000\r\n\r\n")  # fmt: skip
    block = b"x" * 65536
    for _ in range(300_000_000 // len(block)):
        if stop.is_set():
            return
        conn.sendall(block)


def _endless_chunked(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    block = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    for _ in range(300_000_000 // 65536):  # 300 MB, then the end of the body
        if stop.is_set():
            return
        conn.sendall(block)
    conn.sendall(b"0\r\n\r\n")


@pytest.mark.parametrize("talk", [_huge_announced, _endless_chunked], ids=["announced", "chunked"])
def test_a_300_mb_body_is_refused_within_the_limit_of_memory(talk, capsys):
    server = HostileServer(talk)
    url = server.url + "/metrics"
    tracemalloc.start()
    try:
        code, err, elapsed = _timed(capsys, "report", "--url", url, "--timeout", "20")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.close()
    assert code == 2
    assert f"--url {url} answered more than 64 MiB, the limit of a /metrics page" in _one_line(
        err, "report"
    )
    # At most the limit and one chunk, plus the bytearray's growth margin; the body is 300 MB.
    assert peak < MAX_BODY_BYTES * 1.3, peak
    if talk is _huge_announced:
        assert peak < 4 * 2**20, peak  # refused on its Content-Length, before reading it
    assert elapsed < 15, elapsed


def test_prometheus_answer_over_the_limit_is_refused(capsys):
    server = HostileServer(_huge_announced)
    try:
        code, err, _ = _timed(capsys, "report", "--prometheus", server.url)
    finally:
        server.close()
    assert code == 2
    assert f"--prometheus {server.url}/api/v1/query answered more than 64 MiB" in _one_line(
        err, "report"
    )


def test_fetch_reads_a_body_up_to_the_limit_and_no_further():
    body = b"y" * 5000

    def talk(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))  # fmt: skip

    server = HostileServer(talk)
    try:
        assert fetch(server.url, "--url", 5, limit=5000).body == body
        with pytest.raises(UserError, match=r"answered more than 4999 bytes"):
            fetch(server.url, "--url", 5, limit=4999)
    finally:
        server.close()


def test_an_error_status_is_returned_with_its_body():
    def talk(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")

    server = HostileServer(talk)
    try:
        answer = fetch(server.url, "--url", 5)
    finally:
        server.close()
    assert (answer.status, answer.reason, bytes(answer.body)) == (503, "Busy", b"busy")


def test_a_redirect_keeps_the_deadline(capsys):
    drip_server = HostileServer(BODY_DRIP)

    def talk(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: %s/metrics\r\nContent-Length: 0\r\n\r\n"
                     % drip_server.url.encode())  # fmt: skip

    server = HostileServer(talk)
    try:
        code, err, elapsed = _timed(capsys, "report", "--url", server.url, "--timeout", "1")
    finally:
        server.close()
        drip_server.close()
    assert code == 2 and elapsed < 1 + MARGIN, elapsed
    assert "did not answer completely within 1 s" in _one_line(err, "report")


# --- malformed arguments: one line, exit 2 ---------------------------------------------------

_P = "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "--url", "http://[::1/metrics"], "--url='http://[::1/metrics' is not a valid "
         "URL (Invalid IPv6 URL)"),
        (["report", "--url", "http://127.0.0.1:99999/"], "is not a valid URL (Port out of range"),
        (["report", "--url", "http://127.0.0.1:x/"], "is not a valid URL (Port could not be cast"),
        (["report", "--url", "http:///metrics"], "is not a valid URL (no host)"),
        (["report", "--url", "http://127.0.0.1/m\u00e9trics"], "is not a valid URL (control or "
         "non-ASCII"),
        (["report", "--url", "http://127.0.0.1/\udcff"], "is not a valid URL"),
        (["report", "--url", "http://127.0.0.1/a\nb"], "is not a valid URL"),
        (["report", "--url", _P, "--timeout", "1e10"], "--timeout='1e10' is out of range"),
        (["report", "--url", _P, "--timeout", "nan"], "--timeout='nan' is out of range"),
        (["report", "--url", _P, "--timeout", "inf"], "--timeout='inf' is out of range"),
        (["report", "--url", _P, "--timeout", "-1"], "--timeout='-1' is out of range"),
        (["report", "--url", _P, "--timeout", "0"], "--timeout='0' is out of range"),
        (["report", "--url", _P, "--top", "1" + "0" * 5000], "--top="),
        (["report", "--prometheus", _P, "--at", "1e300"], "--at='1e300' is not a valid time"),
        (["report", "--prometheus", _P, "--at", "nan"], "--at='nan' is not a valid time (it must"),
        (["report", "--prometheus", _P, "--at", "inf"], "--at='inf' is not a valid time (it must"),
        (["report", "--prometheus", _P, "--at", "-1"], "--at='-1' is not a valid time (it must"),
        (["report", "--prometheus", _P, "--at", "9999-12-31T23:00:00-05:00"], "not a valid"),
        (["report", "--prometheus", _P, "--at", "0001-01-01T00:00:00+05:00"], "not a valid"),
        (["report", "--prometheus", _P, "--window", "999999999999y"], "--window='999999999999y' "
         "is out of range"),
        (["report", "--prometheus", "http://[::1"], "--prometheus='http://[::1' is not a valid"),
        (["report", "--prometheus", _P, "--job", "\udcff"], "--job='\\udcff' is not valid text"),
        (["report", "--url", _P, "--format", "csv", "--out", "\ud800"], "--out="),
        (["compare", "--prometheus", _P, "--baseline", "0..1e300", "--candidate", "1..2"],
         "--baseline END='1e300' is not a valid time (it must"),
        (["compare", "--prometheus", _P, "--baseline", "1..inf", "--candidate", "1..2"],
         "--baseline END='inf' is not a valid time (it must"),
        (["compare", "--prometheus", _P, "--baseline", "0..253402300799", "--candidate", "1..2"],
         "--baseline='0..253402300799' is out of range: Prometheus refuses a range over 292y"),
        (["compare", "--prometheus", _P, "--baseline", "1..2", "--candidate", "1..2",
          "--timeout", "1e10"], "--timeout='1e10' is out of range"),
        (["compare", "--prometheus", "http://[::1", "--baseline", "1..2", "--candidate", "1..2"],
         "--prometheus='http://[::1' is not a valid URL"),
        (["compare", "--prometheus", _P, "--baseline", "1..2", "--candidate", "1..2",
          "--job", "\ud800"], "--job='\\ud800' is not valid text"),
    ],
)  # fmt: skip
def test_malformed_arguments_are_one_line_exit_2(argv: list[str], message: str, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in _one_line(err, argv[0])


def test_https_dripping_stops_at_the_timeout(tmp_path, capsys, monkeypatch):
    """The deadline holds over TLS too: a trusted certificate (openssl), a completed handshake,
    then the body one byte at a time."""
    import ssl

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def talk(conn: socket.socket, stop: threading.Event) -> None:
        BODY_DRIP(conn, stop)

    class TLSServer(HostileServer):
        def _serve(self, conn: socket.socket) -> None:
            try:
                tls = ctx.wrap_socket(conn, server_side=True)
            except OSError:
                return
            super()._serve(tls)

    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client's default context trusts it
    server = TLSServer(talk)
    url = server.url.replace("http://", "https://") + "/metrics"
    try:
        code, err, elapsed = _timed(capsys, "report", "--url", url, "--timeout", "1")
    finally:
        server.close()
    assert code == 2 and elapsed < 1 + MARGIN, (elapsed, err)
    assert f"--url {url} did not answer completely within 1 s" in _one_line(err, "report")


def test_a_redirect_with_an_endless_body_is_not_read(capsys):
    """urllib reads a redirect's body whole before following it: an endless one would fill the
    memory until the deadline."""

    def gone(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    target = HostileServer(gone)

    def talk(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: %s/metrics\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" % target.url.encode())  # fmt: skip
        block = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
        for _ in range(300_000_000 // 65536):  # 300 MB of redirect body
            if stop.is_set():
                return
            conn.sendall(block)

    server = HostileServer(talk)
    tracemalloc.start()
    try:
        code, err, elapsed = _timed(capsys, "report", "--url", server.url, "--timeout", "5")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.close()
        target.close()
    assert code == 2 and elapsed < 2, elapsed
    assert f"--url {server.url} answered HTTP 404 Not Found" in _one_line(err, "report")
    assert peak < 4 * 2**20, peak
