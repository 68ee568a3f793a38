"""TLS and basic auth from an exporter-toolkit web configuration file (issue 14).

Certificates are made here with the cryptography package: a CA, a server certificate for
127.0.0.1, a client certificate from the CA, and a rogue client certificate from another CA.
A real Prometheus scrapes over TLS with basic auth; gunicorn workers keep TLS across a
takeover.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import ConfigError
from otelperf.config import resolve
from otelperf.expose import webconfig
from otelperf.expose.workers import service_dir
from tests.conftest import free_port, require_binary, wait_for

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-scrape"
COST = 12  # ~200+ ms per check: the cache's effect is plain to see


# -- certificates ----------------------------------------------------------------------------
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, Any] | None,
    sans: list[x509.GeneralName], ca: bool = False,
) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = (name, key) if issuer is None else (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]), issuer[1])  # fmt: skip
    b = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )  # fmt: skip
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    ca_key, rogue_key = _key(), _key()
    ca = _cert("otelperf test CA", ca_key, None, [], ca=True)
    rogue = _cert("rogue CA", rogue_key, None, [], ca=True)
    _write(d / "ca", ca, ca_key)
    _write(d / "rogue-ca", rogue, rogue_key)
    skey, ckey, rkey = _key(), _key(), _key()
    server = _cert("127.0.0.1", skey, ("otelperf test CA", ca_key),
                   [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost")])  # fmt: skip
    _write(d / "server", server, skey)
    _write(d / "client", _cert("prometheus", ckey, ("otelperf test CA", ca_key),
                               [x509.DNSName("prometheus")]), ckey)  # fmt: skip
    _write(d / "rogue", _cert("prometheus", rkey, ("rogue CA", rogue_key),
                              [x509.DNSName("prometheus")]), rkey)  # fmt: skip
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(COST)).decode()
    # htpasswd writes $2y$: accepted like $2b$
    (d / "hash").write_text(hashed.replace("$2b$", "$2y$", 1))
    return d


def web_file(pki: Path, name: str, body: str) -> str:
    p = pki / name
    p.write_text(body)
    return str(p)


def tls_auth(pki: Path, extra: str = "") -> str:
    return web_file(
        pki,
        "web-tls-auth.yml",
        f"""
tls_server_config:
  cert_file: server.crt
  key_file: server.key
{extra}
basic_auth_users:
  prometheus: '{(pki / "hash").read_text()}'
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
""",
    )


def client_ctx(pki: Path, cert: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert is not None:
        ctx.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    return ctx


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(
    url: str, ctx: ssl.SSLContext, auth: str | None = None, conn: Any = None
) -> tuple[int, dict[str, str], bytes]:
    u = urllib.parse.urlsplit(url)
    own = conn is None
    if own:
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
    try:
        conn.request("GET", u.path, headers={"Authorization": auth} if auth else {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        if own:
            conn.close()


@pytest.fixture
def secured(pki: Path) -> Iterator[otelperf.Telemetry]:
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           web_config_file=tls_auth(pki))  # fmt: skip
    try:
        with otelperf.measure("checkout"):
            pass
        yield t
    finally:
        t.shutdown()


# -- TLS + basic auth over real sockets ------------------------------------------------------
def test_tls_and_basic_auth_cover_metrics_and_health(
    pki: Path, secured: otelperf.Telemetry
) -> None:
    url = secured.metrics_url or ""
    assert url.startswith("https://127.0.0.1:")
    ctx = client_ctx(pki)
    status, headers, body = request(url, ctx, basic("prometheus", PASSWORD))
    assert status == 200 and b'otelperf_roots_total{root_operation="checkout"} 1.0' in body
    assert headers["X-Content-Type-Options"] == "nosniff"
    health = url.replace("/metrics", "/health")
    status, _, body = request(health, ctx, basic("prometheus", PASSWORD))
    assert status == 200 and json.loads(body)["status"] in ("healthy", "degraded")
    for target in (url, health, url.replace("/metrics", "/nope")):
        for auth in (None, basic("prometheus", "wrong"), basic("nobody", PASSWORD),
                     "Basic !!!not-base64", "Bearer x"):  # fmt: skip
            status, headers, body = request(target, ctx, auth)
            assert status == 401, (target, auth)
            assert headers["WWW-Authenticate"] == 'Basic realm="otelperf"'
            assert b"otelperf" not in body and b"status" not in body


def test_successful_checks_are_cached_so_scrapes_stay_cheap(
    pki: Path, secured: otelperf.Telemetry
) -> None:
    ctx = client_ctx(pki)
    u = urllib.parse.urlsplit(secured.metrics_url or "")
    auth = basic("prometheus", PASSWORD + "-not-cached-yet")
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
    try:
        t0 = time.monotonic()
        assert request(u.geturl(), ctx, auth, conn)[0] == 401  # failures are not cached
        failed = time.monotonic() - t0
        t0 = time.monotonic()
        assert request(u.geturl(), ctx, auth, conn)[0] == 401
        assert time.monotonic() - t0 > failed / 3  # a full bcrypt check again
        # the scheme is case-insensitive: a header not seen before by this server
        good = "basic" + basic("prometheus", PASSWORD)[5:]
        t0 = time.monotonic()
        assert request(u.geturl(), ctx, good, conn)[0] == 200
        first = time.monotonic() - t0
        t0 = time.monotonic()
        for _ in range(5):
            assert request(u.geturl(), ctx, good, conn)[0] == 200
        assert time.monotonic() - t0 < first  # five cached scrapes cost less than one check
    finally:
        conn.close()


def test_plain_http_to_the_tls_port_is_refused_without_pinning(
    pki: Path, secured: otelperf.Telemetry
) -> None:
    u = urllib.parse.urlsplit(secured.metrics_url or "")
    assert u.hostname is not None and u.port is not None
    plain = []
    for _ in range(10):  # more than the handler threads
        s = socket.create_connection((u.hostname, u.port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        plain.append(s)
    try:
        t0 = time.monotonic()
        assert request(u.geturl(), client_ctx(pki), basic("prometheus", PASSWORD))[0] == 200
        assert time.monotonic() - t0 < 1.0
        for s in plain:
            s.settimeout(5)
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            assert b"HTTP/" not in data and b"otelperf" not in data  # no answer, closed
    finally:
        for s in plain:
            s.close()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        conn.request("GET", "/metrics")
        conn.getresponse()


# -- client certificates ---------------------------------------------------------------------
def _mtls(pki: Path, extra: str) -> str:
    return web_file(
        pki,
        "web-mtls.yml",
        f"""
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_ca_file: ca.crt
{extra}
""",
    )


def _ok(url: str, ctx: ssl.SSLContext) -> bool:
    try:
        return request(url, ctx)[0] == 200
    except (ssl.SSLError, ConnectionError, OSError):
        return False


def test_client_certificate_required_and_verified(pki: Path) -> None:
    cfg = _mtls(pki, "  client_auth_type: RequireAndVerifyClientCert")
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           web_config_file=cfg)  # fmt: skip
    try:
        url = t.metrics_url or ""
        assert _ok(url, client_ctx(pki, "client"))
        assert not _ok(url, client_ctx(pki))  # no certificate
        assert not _ok(url, client_ctx(pki, "rogue"))  # another CA's
    finally:
        t.shutdown()


def test_client_certificate_if_given_and_allowed_sans(pki: Path) -> None:
    cfg = _mtls(pki, "  client_auth_type: VerifyClientCertIfGiven")
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           web_config_file=cfg)  # fmt: skip
    try:
        url = t.metrics_url or ""
        assert _ok(url, client_ctx(pki, "client")) and _ok(url, client_ctx(pki))
        assert not _ok(url, client_ctx(pki, "rogue"))  # given, so verified
    finally:
        t.shutdown()
    # RequestClientCert verifies nothing (Go): served like NoClientCert, with or without one
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           web_config_file=web_file(pki, "web-request.yml", """
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequestClientCert
"""))  # fmt: skip
    try:
        url = t.metrics_url or ""
        assert _ok(url, client_ctx(pki, "client")) and _ok(url, client_ctx(pki))
    finally:
        t.shutdown()
    for allowed, expect in (("prometheus", True), ("someone-else", False)):
        cfg = _mtls(pki, f"  client_auth_type: RequireAndVerifyClientCert\n"
                         f"  client_allowed_sans: [{allowed}]")  # fmt: skip
        t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(),
                               set_global=False, web_config_file=cfg)  # fmt: skip
        try:
            assert _ok(t.metrics_url or "", client_ctx(pki, "client")) is expect
        finally:
            t.shutdown()


# -- a bad file is a ConfigError naming the file and the key ---------------------------------
BAD = [
    ("tls_config:\n  cert_file: server.crt\n", "tls_config: unknown key"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  certfile: x\n",
     "tls_server_config.certfile: unknown key"),
    ("tls_server_config:\n  key_file: server.key\n", "tls_server_config.cert_file: missing"),
    ("tls_server_config:\n  cert_file: server.crt\n", "tls_server_config.key_file: missing"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: nope.key\n",
     "tls_server_config.key_file: cannot read"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: hash\n",
     "tls_server_config.key_file: the certificate and key do not load"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: VerifyAll\n", "tls_server_config.client_auth_type: 'VerifyAll'"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: RequireAndVerifyClientCert\n",
     "tls_server_config.client_ca_file: required by RequireAndVerifyClientCert"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  min_version: TLS14\n", "tls_server_config.min_version: 'TLS14'"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: RequireAnyClientCert\n",
     "tls_server_config.client_auth_type: RequireAnyClientCert (a certificate, not verified)"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_ca_file: ca.crt\n", "tls_server_config.client_auth_type: NoClientCert with a"),
    ("basic_auth_users:\n  alice: plaintext-password\n",
     "basic_auth_users.alice: is not a bcrypt hash"),
    ("basic_auth_users:\n  alice: '$2y$99$" + "a" * 53 + "'\n",
     "basic_auth_users.alice: is not a bcrypt hash"),
    ("rate_limit:\n  interval: 1s\n", "rate_limit: not supported"),
    ("http_server_config:\n  headers:\n    X-Powered-By: me\n",
     "http_server_config.headers.X-Powered-By: not one of"),
    ("- just\n- a list\n", "not a mapping"),
    ("tls_server_config: [unclosed\n", "not valid YAML"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_file_is_a_config_error_naming_file_and_key(pki: Path, body: str, message: str) -> None:
    path = web_file(pki, "bad.yml", body)
    with pytest.raises(ConfigError) as err:
        otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           web_config_file=path)  # fmt: skip
    assert str(err.value).startswith(f"web config file {path}: ")
    assert message in str(err.value)


def test_missing_file_and_the_variable(pki: Path) -> None:
    with pytest.raises(ConfigError, match=r"web config file /nonexistent/web.yml: cannot read"):
        webconfig.load("/nonexistent/web.yml")
    s = resolve(env={"OTELPERF_WEB_CONFIG_FILE": "/etc/otelperf/web.yml"})
    assert s.web_config_file == "/etc/otelperf/web.yml"
    assert resolve(web_config_file=pki / "x.yml", env={}).web_config_file == str(pki / "x.yml")
    assert resolve(env={}).web_config_file is None
    with pytest.raises(ConfigError, match=r"web_config_file=3 is not a file path"):
        resolve(web_config_file=3, env={})  # type: ignore[arg-type]
    # basic auth alone (no TLS) is served over plain HTTP, still 401 without credentials
    path = web_file(
        pki,
        "auth-only.yml",
        "basic_auth_users:\n  prometheus: '" + (pki / "hash").read_text() + "'\n",
    )
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           web_config_file=path)  # fmt: skip
    try:
        assert (t.metrics_url or "").startswith("http://")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(t.metrics_url or "", timeout=5)
        assert err.value.code == 401
    finally:
        t.shutdown()


# -- a real Prometheus scrapes over TLS with basic auth ---------------------------------------


def _api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())["data"]


@pytest.mark.slow
def test_real_prometheus_scrapes_over_tls_with_basic_auth(
    pki: Path, secured: otelperf.Telemetry, tmp_path: Path
) -> None:
    binary = require_binary("prometheus")
    target = urllib.parse.urlsplit(secured.metrics_url or "").netloc
    port = free_port()
    (tmp_path / "pw").write_text(PASSWORD)
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: secured
    scheme: https
    tls_config: {{ca_file: {pki / "ca.crt"}}}
    basic_auth: {{username: prometheus, password_file: {tmp_path / "pw"}}}
    static_configs: [{{targets: ["{target}"]}}]
  - job_name: wrong-password
    scheme: https
    tls_config: {{ca_file: {pki / "ca.crt"}}}
    basic_auth: {{username: prometheus, password: not-it}}
    static_configs: [{{targets: ["{target}"]}}]
  - job_name: plain-http
    static_configs: [{{targets: ["{target}"]}}]
""")
    with open(tmp_path / "prometheus.log", "wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:

            def targets() -> dict[str, dict[str, Any]] | None:
                active = _api(port, "/api/v1/targets")["activeTargets"]
                by_job = {t["labels"]["job"]: t for t in active}
                done = len(by_job) == 3 and all(t["lastScrape"][:4] != "0001" for t in active)
                return by_job if done and by_job["secured"]["health"] == "up" else None

            by_job = wait_for(targets, 30, "the secured target up")
            assert by_job["wrong-password"]["health"] == "down"
            assert "401" in by_job["wrong-password"]["lastError"]
            assert by_job["plain-http"]["health"] == "down"
            q = urllib.parse.quote('otelperf_roots_total{job="secured"}')
            result = wait_for(lambda: _api(port, f"/api/v1/query?query={q}")["result"], 15,
                           "otelperf's series in Prometheus")  # fmt: skip
            assert [(r["metric"]["root_operation"], r["value"][1]) for r in result] == [
                ("checkout", "1")
            ]
        finally:
            proc.terminate()
            proc.wait(timeout=20)


# -- pre-fork workers: the process that takes over serves the same TLS and users ------------
@pytest.mark.slow
def test_gunicorn_takeover_keeps_tls_and_auth(pki: Path) -> None:
    app_port, mport = free_port(), free_port()
    env = dict(os.environ, OTEL_EXPORTER_PROMETHEUS_PORT=str(mport), PYTHONPATH=str(ROOT),
               OTEL_TRACES_EXPORTER="none", OTELPERF_WEB_CONFIG_FILE=tls_auth(pki))  # fmt: skip
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with open(pki / f"gunicorn-{mport}.log", "wb") as log:
        proc = subprocess.Popen(
            [gunicorn, "-b", f"127.0.0.1:{app_port}", "-w", "2", "-k", "sync",
             "tests.apps.workers_flask:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"https://127.0.0.1:{mport}/metrics"
    ctx, auth = client_ctx(pki), basic("prometheus", PASSWORD)
    server_json = service_dir("127.0.0.1", mport) / "server.json"

    def serving() -> int | None:
        if request(url, ctx, auth)[0] != 200:
            return None
        return int(json.loads(server_json.read_text())["ident"][0])

    try:
        first = wait_for(serving, 30, "the TLS endpoint")
        assert request(url, ctx)[0] == 401
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: (s := serving()) != first and s, 15, "a takeover")
        assert second != first
        assert request(url, ctx, basic("prometheus", "wrong"))[0] == 401
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            conn = http.client.HTTPConnection("127.0.0.1", mport, timeout=5)
            conn.request("GET", "/metrics")
            conn.getresponse()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_concurrent_uncached_checks_are_bounded(pki: Path) -> None:
    import threading

    auth = webconfig.BasicAuth({"prometheus": (pki / "hash").read_bytes()}, max_checks=1)
    results: list[bool | None] = []
    slow = threading.Thread(
        target=lambda: results.append(auth.check(basic("prometheus", PASSWORD)))
    )
    slow.start()
    time.sleep(0.05)  # the cost-12 check takes ~200+ ms: it holds the one slot now
    t0 = time.monotonic()
    assert auth.check(basic("prometheus", "guess")) is None  # 503 at once, no thread tied up
    assert time.monotonic() - t0 < 0.05
    slow.join()
    assert results == [True]
    assert auth.check(basic("prometheus", PASSWORD)) is True  # cached: no slot needed
    assert auth.check(basic("prometheus", "guess")) is False
