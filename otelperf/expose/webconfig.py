"""TLS and basic auth for /metrics and /health, from an exporter-toolkit web configuration file.

The format is the one every Prometheus exporter reads with ``--web.config.file``
(prometheus/exporter-toolkit, docs/web-configuration.md), so an operator who secured a
node_exporter secures otelperf with the same file.  Read once, at configure(): every mistake
is a ConfigError naming the file and the key, at start-up rather than at the first scrape.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import os
import re
import ssl
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from otelperf.errors import ConfigError

_TOP = {"tls_server_config", "http_server_config", "basic_auth_users"}
_TLS = {
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "prefer_server_cipher_suites",
}
# Known to exporter-toolkit, refused here rather than ignored: a setting the operator relies on
# for security must not silently do nothing.
_UNSUPPORTED = {
    "cipher_suites": "Go cipher suite names have no OpenSSL equivalent here; leave it out (TLS "
    "1.2+ with OpenSSL's default suites)",
    "curve_preferences": "leave it out (OpenSSL's default groups)",
    "rate_limit": "put a proxy in front for rate limiting",
}
_HEADERS = {
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
}
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH_TYPES = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
_BCRYPT = re.compile(r"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")
_SAN_KINDS = {"DNS", "IP Address", "email", "URI"}
AUTH_CACHE_SIZE = 256


@dataclass(frozen=True)
class WebConfig:
    """A loaded web configuration: the TLS context (None: plain HTTP), the users, the headers."""

    path: str
    tls: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    allowed_sans: tuple[str, ...] = ()

    def check_peer(self, cert: dict[str, Any]) -> bool:
        """client_allowed_sans: the verified client certificate names one of them."""
        names = {v for kind, v in cert.get("subjectAltName", ()) if kind in _SAN_KINDS}
        return any(s in names for s in self.allowed_sans)


def load(path: str) -> WebConfig:
    """Read and check the file at ``path``; ConfigError names the file and the key."""

    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"web config file {path}: {key}: {why}")

    try:
        with open(path, "rb") as f:
            doc = yaml.safe_load(f.read(1 << 20))
    except OSError as exc:
        raise ConfigError(
            f"web config file {path}: cannot read it: {exc.strerror or exc}"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"web config file {path}: not valid YAML: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"web config file {path}: not a mapping of keys (see the format)")
    for key in doc:
        if key in _UNSUPPORTED:
            raise bad(str(key), "not supported by otelperf: " + _UNSUPPORTED[key])
        if key not in _TOP:
            raise bad(str(key), f"unknown key (known: {', '.join(sorted(_TOP))})")
    base = os.path.dirname(os.path.abspath(path))
    tls, sans = _tls(doc.get("tls_server_config"), base, bad)
    users = _users(doc.get("basic_auth_users"), bad)
    headers = _http(doc.get("http_server_config"), bad)
    return WebConfig(path, tls, users, headers, sans)


def _mapping(value: Any, key: str, bad: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise bad(key, "must be a mapping")
    return value


def _string(value: Any, key: str, bad: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad(key, f"must be a non-empty string, not {value!r}")
    return value


def _tls(raw: Any, base: str, bad: Any) -> tuple[ssl.SSLContext | None, tuple[str, ...]]:
    cfg = _mapping(raw, "tls_server_config", bad)
    if not cfg:
        return None, ()
    for key in cfg:
        k = f"tls_server_config.{key}"
        if key in _UNSUPPORTED:
            raise bad(k, "not supported by otelperf: " + _UNSUPPORTED[key])
        if key not in _TLS:
            raise bad(k, f"unknown key (known: {', '.join(sorted(_TLS))})")

    def file(key: str) -> str | None:
        if cfg.get(key) is None:
            return None
        p = _string(cfg[key], f"tls_server_config.{key}", bad)
        p = os.path.join(base, p)  # relative to the web config file, as exporter-toolkit does
        if not os.access(p, os.R_OK):
            raise bad(f"tls_server_config.{key}", f"cannot read {p}")
        return p

    for inline, named in (
        ("cert", "cert_file"),
        ("key", "key_file"),
        ("client_ca", "client_ca_file"),
    ):
        if cfg.get(inline) is not None and cfg.get(named) is not None:
            raise bad(f"tls_server_config.{inline}", f"give {inline} or {named}, not both")
    cert, key_path, ca = file("cert_file"), file("key_file"), file("client_ca_file")
    has_cert = cert is not None or cfg.get("cert") is not None
    has_key = key_path is not None or cfg.get("key") is not None
    if not has_cert:
        raise bad("tls_server_config.cert_file", "missing (the server certificate, PEM)")
    if not has_key:
        raise bad("tls_server_config.key_file", "missing (the server's private key, PEM)")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    lo = _version(cfg.get("min_version", "TLS12"), "min_version", bad)
    hi = _version(cfg.get("max_version", "TLS13"), "max_version", bad)
    if lo > hi:
        raise bad("tls_server_config.min_version", "is above max_version")
    try:
        ctx.minimum_version, ctx.maximum_version = lo, hi
    except (ValueError, ssl.SSLError) as exc:
        raise bad("tls_server_config.min_version", f"refused by OpenSSL: {exc}") from None
    with _pem_files(cfg, cert, key_path, bad) as (chain, private):
        try:
            ctx.load_cert_chain(chain, private)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise bad(
                "tls_server_config.key_file",
                f"the certificate and key do not load as a pair: {exc}",
            ) from None
    auth = cfg.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH_TYPES:
        raise bad(
            "tls_server_config.client_auth_type",
            f"{auth!r} is not one of {', '.join(CLIENT_AUTH_TYPES)}",
        )
    has_ca = ca is not None or cfg.get("client_ca") is not None
    if auth == "RequireAnyClientCert":
        raise bad(
            "tls_server_config.client_auth_type",
            "RequireAnyClientCert (a certificate, not verified) cannot be expressed with "
            "Python's ssl module; use RequireAndVerifyClientCert with client_ca_file",
        )
    if auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        if not has_ca:
            raise bad("tls_server_config.client_ca_file", f"required by {auth}")
        try:
            if ca is not None:
                ctx.load_verify_locations(cafile=ca)
            else:
                ctx.load_verify_locations(cadata=_string(cfg["client_ca"], "client_ca", bad))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise bad("tls_server_config.client_ca_file", f"not a PEM CA: {exc}") from None
        ctx.verify_mode = (
            ssl.CERT_REQUIRED if auth == "RequireAndVerifyClientCert" else ssl.CERT_OPTIONAL
        )
    elif has_ca:
        raise bad(
            "tls_server_config.client_auth_type",
            f"{auth} with a client CA verifies nothing: use RequireAndVerifyClientCert",
        )
    # RequestClientCert: Go asks for a certificate and verifies nothing; Python cannot accept an
    # unverified one, and nothing here reads it, so it serves like NoClientCert.
    sans_raw = cfg.get("client_allowed_sans") or []
    if not isinstance(sans_raw, list) or not all(isinstance(s, str) for s in sans_raw):
        raise bad("tls_server_config.client_allowed_sans", "must be a list of strings")
    if sans_raw and auth != "RequireAndVerifyClientCert":
        raise bad("tls_server_config.client_allowed_sans", "needs RequireAndVerifyClientCert")
    psc = cfg.get("prefer_server_cipher_suites", True)
    if not isinstance(psc, bool):
        raise bad("tls_server_config.prefer_server_cipher_suites", "must be true or false")
    return ctx, tuple(sans_raw)


class _pem_files:
    """cert/key given inline: written to private temporary files for OpenSSL, then removed."""

    def __init__(self, cfg: dict[str, Any], cert: str | None, key: str | None, bad: Any) -> None:
        self._inline = [(cfg.get("cert"), "tls_server_config.cert"), (cfg.get("key"), "key")]
        self._paths = [cert, key]
        self._tmp: list[str] = []
        self._bad = bad

    def __enter__(self) -> tuple[str, str]:
        for i, (text, name) in enumerate(self._inline):
            if self._paths[i] is None:
                data = _string(text, name, self._bad)
                fd, p = tempfile.mkstemp(suffix=".pem")  # mode 0600
                with os.fdopen(fd, "w") as f:
                    f.write(data)
                self._tmp.append(p)
                self._paths[i] = p
        cert, key = self._paths
        assert cert is not None and key is not None
        return cert, key

    def __exit__(self, *exc: object) -> None:
        for p in self._tmp:
            os.unlink(p)


def _version(value: Any, key: str, bad: Any) -> ssl.TLSVersion:
    if value not in _VERSIONS:
        raise bad(f"tls_server_config.{key}", f"{value!r} is not one of {', '.join(_VERSIONS)}")
    return _VERSIONS[value]


def _users(raw: Any, bad: Any) -> dict[str, bytes]:
    users = _mapping(raw, "basic_auth_users", bad)
    out: dict[str, bytes] = {}
    for user, hashed in users.items():
        key = f"basic_auth_users.{user}"
        if ":" in user or not user:
            raise bad(key, "a user name cannot be empty or contain ':'")
        m = _BCRYPT.match(hashed) if isinstance(hashed, str) else None
        if m is None or not 4 <= int(m.group(1)) <= 31:
            raise bad(
                key, "is not a bcrypt hash (make one with: htpasswd -nBC 10 '' | tr -d ':\\n')"
            )
        out[user] = hashed.encode()
    return out


def _http(raw: Any, bad: Any) -> tuple[tuple[str, str], ...]:
    cfg = _mapping(raw, "http_server_config", bad)
    for key in cfg:
        if key not in ("http2", "headers"):
            raise bad(f"http_server_config.{key}", "unknown key (known: headers, http2)")
    if "http2" in cfg and not isinstance(cfg["http2"], bool):
        raise bad("http_server_config.http2", "must be true or false")
    # http2: otelperf speaks HTTP/1.1 (what Prometheus scrapes with); the flag is accepted.
    headers = _mapping(cfg.get("headers"), "http_server_config.headers", bad)
    out = []
    for name, value in headers.items():
        if name not in _HEADERS:
            raise bad(
                f"http_server_config.headers.{name}", f"not one of {', '.join(sorted(_HEADERS))}"
            )
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise bad(f"http_server_config.headers.{name}", "must be a one-line string")
        if value:
            out.append((name, value))
    return tuple(out)


class BasicAuth:
    """Checks ``Authorization: Basic`` against the bcrypt hashes; remembers successes.

    A bcrypt check costs ~50-100 ms at cost 10 (by design): Prometheus sends the same header
    on every scrape, so a success is remembered under a keyed hash of the header (never the
    password itself), at most AUTH_CACHE_SIZE of them.  Failures are never remembered.  At most
    ``max_checks`` uncached checks run at once; past that a request gets 503 at once rather
    than tying up every handler thread (a password-guessing client cannot starve scrapes).
    """

    def __init__(self, users: Mapping[str, bytes], max_checks: int = 2) -> None:
        self._users = dict(users)
        self._key = os.urandom(32)
        self._ok: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._checks = threading.BoundedSemaphore(max_checks)
        self._dummy: bytes | None = None

    def check(self, header: str | None) -> bool | None:
        """True: allowed; False: 401; None: too many checks running (503)."""
        if not header or header[:6].lower() != "basic ":
            return False
        digest = hmac.new(self._key, header.encode("latin-1", "replace"), hashlib.sha256).digest()
        with self._lock:
            if digest in self._ok:
                self._ok.move_to_end(digest)
                return True
        try:
            user, sep, password = (
                base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, ValueError):
            return False
        if not sep:
            return False
        if not self._checks.acquire(blocking=False):
            return None
        try:
            ok = self._verify(user, password.encode())
        finally:
            self._checks.release()
        if ok:
            with self._lock:
                self._ok[digest] = None
                while len(self._ok) > AUTH_CACHE_SIZE:
                    self._ok.popitem(last=False)
        return ok

    def _verify(self, user: str, password: bytes) -> bool:
        import bcrypt

        hashed = self._users.get(user)
        if hashed is None:
            # an unknown user costs a check too, so timing does not tell which users exist
            if self._dummy is None:
                self._dummy = bcrypt.hashpw(b"otelperf", bcrypt.gensalt(10))
            hashed, known = self._dummy, False
        else:
            known = True
        try:
            return bcrypt.checkpw(password, hashed) and known
        except ValueError:  # a password over 72 bytes (bcrypt 5 refuses it) or a bad hash
            return False
