"""Operation names, outcomes and noise for every span the processor sees.

Auto-instrumented services make spans whose names are either too coarse (an HTTP client span
named ``GET``), unbounded (a server span named after the raw URL path) or noise (the ASGI
``... http send`` / ``... http receive`` children).  :class:`SpanNamer` turns a span's name,
kind and attributes into ``(operation, outcome, error_type)`` by the rules in
docs/processor.md ("Operation names"), or None for a span to leave out.

It runs for every span that ends, so it is built for the common cases: a span whose name alone
decides (INTERNAL, or no attributes) costs one dict lookup (the answer is cached per name, the
cache bounded); the others read a handful of attributes from the span's plain dict, and the
URL parsing for HTTP clients is cached per ``scheme://authority`` prefix.  Everything a result
is built from is bounded (methods outside the standard set become ``HTTP``, never a URL path);
names that stay unbounded (an instrumentation naming spans after their input) fall into the
processor's ``max_operations`` cap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.trace import SpanKind

from otelperf import _names as N
from otelperf.config import DEFAULT_IGNORED_SPANS
from otelperf.errors import ConfigError
from otelperf.parsing import parse_span_patterns

# Semantic-convention attributes read here: the stable name first, the older one after.
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_METHOD_OLD = "http.method"
HTTP_ROUTE = "http.route"
HTTP_RESPONSE_STATUS = "http.response.status_code"
HTTP_STATUS_OLD = "http.status_code"
HTTP_URL_OLD = "http.url"
HTTP_HOST_OLD = "http.host"
HTTP_SCHEME_OLD = "http.scheme"
URL_FULL = "url.full"
URL_SCHEME = "url.scheme"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
NET_PEER_NAME = "net.peer.name"
NET_PEER_PORT = "net.peer.port"
DB_SYSTEM_OLD = "db.system"
DB_SYSTEM = "db.system.name"
DB_OPERATION_OLD = "db.operation"
DB_OPERATION = "db.operation.name"
DB_TABLE_OLD = "db.sql.table"
DB_COLLECTION = "db.collection.name"
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION = "messaging.operation.name"
MESSAGING_OPERATION_OLD = "messaging.operation"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_DESTINATION_OLD = "messaging.destination"
MESSAGING_DESTINATION_TEMPLATE = "messaging.destination.template"
MESSAGING_TEMPORARY = "messaging.destination.temporary"
MESSAGING_ANONYMOUS = "messaging.destination.anonymous"
MESSAGING_TEMPORARY_OLD = "messaging.temp_destination"
ERROR_TYPE = "error.type"

ERROR_TYPE_OTHER = "_OTHER"  # the semantic conventions' value when nothing names the error
TEMPORARY_DESTINATION = "(temporary)"
UNKNOWN_METHOD = "HTTP"  # what the HTTP conventions put in a span name for a non-standard method

# The ASGI instrumentation's "<server span name> http send" / "... http receive" children (and
# the websocket ones); the list and its pattern syntax live with the settings.
DEFAULT_IGNORED: tuple[str, ...] = DEFAULT_IGNORED_SPANS

HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
DEFAULT_PORTS = {"http": 80, "https": 443}
CACHE_MAX = 4096  # entries per cache; past it results are computed, not stored

_INTERNAL = SpanKind.INTERNAL
_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT
_PRODUCER = SpanKind.PRODUCER
_CONSUMER = SpanKind.CONSUMER
_SUCCESS = N.OUTCOME_SUCCESS
_ERROR = N.OUTCOME_ERROR
_MISS: Any = object()
_EMPTY: Mapping[str, Any] = {}
_MESSAGING_VERB = {_PRODUCER: "publish", _CONSUMER: "process", _CLIENT: "receive"}


def parse_ignore(patterns: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """``(exact names, suffixes)`` of ignore patterns; ConfigError naming ``ignore`` when bad.

    A pattern is an exact span name, or ``*`` followed by a suffix (``* http send``)."""
    if isinstance(patterns, str):
        raise ConfigError(f"ignore={patterns!r} is a string: give a list of span names")
    valid = parse_span_patterns(patterns, "ignore")
    exact = frozenset(p for p in valid if not p.startswith("*"))
    return exact, tuple(p[1:] for p in valid if p.startswith("*"))


def _port(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def authority(host: str, port: int | None, scheme: str | None) -> str:
    """``host:port``, the port left out when it is the scheme's default (80 http, 443 https;
    either when the scheme is unknown); IPv6 hosts in brackets, host names in lower case."""
    host = host.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS.get(scheme or "", 0):
        return host
    if scheme is None and port in (80, 443):
        return host
    return f"{host}:{port}"


def split_url(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an absolute URL (never its path), or None."""
    i = url.find("://")
    if i <= 0:
        return None
    scheme = url[:i].lower()
    rest = url[i + 3 :]
    end = len(rest)
    for sep in "/?#":
        j = rest.find(sep, 0, end)
        if j != -1:
            end = j
    netloc = rest[:end]
    netloc = netloc[netloc.rfind("@") + 1 :]  # drop any user:password@
    if netloc.startswith("["):
        close = netloc.find("]")
        if close == -1:
            return None
        host, port_s = netloc[1:close], netloc[close + 2 :]
    else:
        host, _, port_s = netloc.partition(":")
    if not host:
        return None
    return scheme, host, (int(port_s) if port_s.isdigit() else None)


def _scheme_of(url: Any) -> str | None:
    if isinstance(url, str):
        if url.startswith("https://"):
            return "https"
        if url.startswith("http://"):
            return "http"
    return None


class _UrlCache:
    """``host[:port]`` of URLs, cached per ``scheme://authority`` prefix (bounded)."""

    __slots__ = ("cache",)

    def __init__(self) -> None:
        self.cache: dict[str, str | None] = {}

    def get(self, url: str) -> str | None:
        i = url.find("://")
        j = url.find("/", i + 3) if i > 0 else -1
        prefix = url if j == -1 else url[:j]
        hit = self.cache.get(prefix, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[no-any-return]
        parts = split_url(url)
        result = authority(parts[1], parts[2], parts[0]) if parts else None
        if len(self.cache) < CACHE_MAX and "?" not in prefix and "#" not in prefix:
            self.cache[prefix] = result
        return result


_URLS = _UrlCache()
_HOSTS: dict[tuple[Any, Any, Any], str] = {}


def http_authority(attrs: Mapping[str, Any]) -> str | None:
    """The ``host[:port]`` an HTTP client span called, under either HTTP convention.

    Host and port from ``server.address``/``server.port``, else ``net.peer.name``/
    ``net.peer.port``, else the URL (``url.full``/``http.url``), else ``http.host``; the port
    left out when it is the scheme's default.  None when the span names no host."""
    url = attrs.get(URL_FULL) or attrs.get(HTTP_URL_OLD)
    host = attrs.get(SERVER_ADDRESS)
    if host:
        port = attrs.get(SERVER_PORT)
    else:
        host = attrs.get(NET_PEER_NAME)
        port = attrs.get(NET_PEER_PORT)
    if host and isinstance(host, str):
        if port is None:
            return _host_without_port(attrs, host, url)
        # Cached per (host, port, scheme): the URL's first 8 characters tell http:// from
        # https://, so the common case builds no string.
        key = (host, port, url[:8] if isinstance(url, str) else None)
        hit = _HOSTS.get(key)
        if hit is None:
            scheme = _scheme_of(url) or attrs.get(URL_SCHEME) or attrs.get(HTTP_SCHEME_OLD)
            hit = authority(host, _port(port), scheme if isinstance(scheme, str) else None)
            if len(_HOSTS) < CACHE_MAX and url is not None:
                _HOSTS[key] = hit
        return hit
    if isinstance(url, str) and url:
        return _URLS.get(url)
    hhost = attrs.get(HTTP_HOST_OLD)
    if isinstance(hhost, str) and hhost:
        parts = split_url("x://" + hhost)  # the Host header: host[:port]
        if parts:
            scheme = attrs.get(HTTP_SCHEME_OLD)
            return authority(parts[1], parts[2], scheme if isinstance(scheme, str) else None)
    return None


def _host_without_port(attrs: Mapping[str, Any], host: str, url: Any) -> str:
    """A host attribute with no port attribute: the port from the URL when it names the same
    host (the stable conventions leave ``server.port`` out when it is the default)."""
    scheme = _scheme_of(url) or attrs.get(URL_SCHEME) or attrs.get(HTTP_SCHEME_OLD)
    port = None
    if isinstance(url, str):
        parts = split_url(url)
        if parts and parts[1].lower() == host.lower().strip("[]"):
            port = parts[2]
    return authority(host, port, scheme if isinstance(scheme, str) else None)


def http_status(attrs: Mapping[str, Any]) -> int | None:
    """The response status code under either HTTP convention, or None."""
    status = attrs.get(HTTP_RESPONSE_STATUS)
    if status is None:
        status = attrs.get(HTTP_STATUS_OLD)
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    if isinstance(status, str) and status.isdigit():
        return int(status)
    return None


class SpanNamer:
    """Built once at set-up; classify() runs for every span that ends."""

    __slots__ = ("_clients", "_exact", "_plain", "_servers", "_suffixes")

    def __init__(self, *, ignore: Iterable[str] = DEFAULT_IGNORED) -> None:
        self._exact, self._suffixes = parse_ignore(ignore)
        # name -> (name, "success", "") for a span its name alone decides, None for noise.
        self._plain: dict[str, tuple[str, str, str] | None] = {}
        # (method, host, port, scheme) or (method, URL prefix) -> HTTP client result
        self._clients: dict[tuple[Any, ...], tuple[str, str, str]] = {}
        self._servers: dict[tuple[Any, Any], tuple[str, str, str]] = {}  # (method, route)

    def classify(
        self, name: str, kind: SpanKind, attrs: Mapping[str, Any] | None, error: bool
    ) -> tuple[str, str, str] | None:
        """(operation, outcome, error_type) of a span, or None when it is noise to leave out
        (of the shares, the histograms and the report). ``error``: the span status is ERROR.
        outcome is "success" or "error"; error_type is "" on success."""
        plain = self._plain.get(name, _MISS)
        if plain is _MISS:
            plain = self._learn(name)
        if plain is None:
            return None
        if attrs and kind is not _INTERNAL:
            if kind is _CLIENT:
                return self._client(name, attrs, error, plain)
            if kind is _SERVER:
                return self._server(attrs, error, plain)
            if MESSAGING_SYSTEM in attrs:
                op = _messaging(kind, attrs)
                if op is not None:
                    return _outcome(op, attrs, error, None)
        if not error:
            return plain  # type: ignore[no-any-return]
        return _outcome(name, attrs or _EMPTY, True, None)

    def is_ignored(self, name: str) -> bool:
        """Whether spans of this name are noise (by the ``ignore`` patterns)."""
        return name in self._exact or (bool(self._suffixes) and name.endswith(self._suffixes))

    def _learn(self, name: str) -> tuple[str, str, str] | None:
        plain = None if self.is_ignored(name) else (name, _SUCCESS, "")
        if len(self._plain) < CACHE_MAX:
            self._plain[name] = plain
        return plain

    def _server(
        self, attrs: Mapping[str, Any], error: bool, plain: tuple[str, str, str]
    ) -> tuple[str, str, str]:
        """METHOD route (the method alone without a route); only a 5xx is an error."""
        method = attrs.get(HTTP_REQUEST_METHOD) or attrs.get(HTTP_METHOD_OLD)
        if not method:
            return _outcome(plain[0], attrs, True, None) if error else plain
        route = attrs.get(HTTP_ROUTE)
        key = (method, route)
        ok = self._servers.get(key)
        if ok is None:
            m = method if method in HTTP_METHODS else UNKNOWN_METHOD
            ok = (f"{m} {route}" if route and isinstance(route, str) else m, _SUCCESS, "")
            if len(self._servers) < CACHE_MAX:
                self._servers[key] = ok
        status = http_status(attrs)
        if status is not None and status >= 500:
            return _outcome(ok[0], attrs, True, status)
        return _outcome(ok[0], attrs, True, status) if error else ok

    def _client(
        self, name: str, attrs: Mapping[str, Any], error: bool, plain: tuple[str, str, str]
    ) -> tuple[str, str, str]:
        """Database, messaging, then HTTP (a 4xx is an error); else the span name."""
        if DB_SYSTEM_OLD in attrs or DB_SYSTEM in attrs:
            return _outcome(_database(name, attrs), attrs, error, None)
        if MESSAGING_SYSTEM in attrs:
            op = _messaging(_CLIENT, attrs)
            if op is not None:
                return _outcome(op, attrs, error, None)
            return _outcome(name, attrs, True, None) if error else plain
        method = attrs.get(HTTP_REQUEST_METHOD) or attrs.get(HTTP_METHOD_OLD)
        if not method:
            return _outcome(name, attrs, True, None) if error else plain
        ok = self._client_op(method, attrs)
        status = http_status(attrs)
        if status is not None and status >= 400:
            return _outcome(ok[0], attrs, True, status)
        return _outcome(ok[0], attrs, True, status) if error else ok

    def _client_op(self, method: Any, attrs: Mapping[str, Any]) -> tuple[str, str, str]:
        """``(METHOD host[:port], "success", "")``, cached per (method, host, port, URL
        scheme) or, with no host attribute (the old conventions), per (method, URL up to its
        path)."""
        url = attrs.get(URL_FULL) or attrs.get(HTTP_URL_OLD)
        if not isinstance(url, str):
            url = ""
        host = attrs.get(SERVER_ADDRESS)
        if host:
            key: tuple[Any, ...] = (method, host, attrs.get(SERVER_PORT), url[:8])
        else:
            host = attrs.get(NET_PEER_NAME)
            if host:
                key = (method, host, attrs.get(NET_PEER_PORT), url[:8])
            else:
                j = url.find("/", url.find("://") + 3) if url else -1
                key = (method, url if j == -1 else url[:j])
        ok = self._clients.get(key)
        if ok is None:
            m = method if method in HTTP_METHODS else UNKNOWN_METHOD
            where = http_authority(attrs)
            ok = (f"{m} {where}" if where else m, _SUCCESS, "")
            # A key holding a query string or a port-less host (the port then comes from the
            # rest of the URL) is not cached.
            if len(self._clients) < CACHE_MAX and "?" not in key[-1] and key[-2:-1] != (None,):
                self._clients[key] = ok
        return ok


def _outcome(
    op: str, attrs: Mapping[str, Any], error: bool, status: int | None
) -> tuple[str, str, str]:
    """The result tuple; error_type from ``error.type``, else the HTTP status code of an HTTP
    error, else ``_OTHER``."""
    if not error:
        return op, _SUCCESS, ""
    etype = attrs.get(ERROR_TYPE)
    if etype:
        return op, _ERROR, str(etype)
    if status is not None and status >= 400:
        return op, _ERROR, str(status)
    return op, _ERROR, ERROR_TYPE_OTHER


def _database(name: str, attrs: Mapping[str, Any]) -> str:
    """``<system> <operation>[ <collection or table>]``; without an operation attribute, the
    span name when it is one word (the DB-API instrumentation names spans by the statement's
    first keyword), else the system alone."""
    system = attrs.get(DB_SYSTEM) or attrs.get(DB_SYSTEM_OLD)
    operation = attrs.get(DB_OPERATION) or attrs.get(DB_OPERATION_OLD)
    if not operation and name and " " not in name:
        operation = name
    table = attrs.get(DB_COLLECTION) or attrs.get(DB_TABLE_OLD)
    parts = [str(system)]
    if operation:
        parts.append(str(operation))
    if table:
        parts.append(str(table))
    return " ".join(parts)


def _messaging(kind: SpanKind, attrs: Mapping[str, Any]) -> str | None:
    """``<operation or kind> <destination>``; None without a destination."""
    if attrs.get(MESSAGING_TEMPORARY) or attrs.get(MESSAGING_ANONYMOUS):
        destination: Any = TEMPORARY_DESTINATION
    elif attrs.get(MESSAGING_TEMPORARY_OLD):
        destination = TEMPORARY_DESTINATION
    else:
        destination = (
            attrs.get(MESSAGING_DESTINATION_TEMPLATE)
            or attrs.get(MESSAGING_DESTINATION)
            or attrs.get(MESSAGING_DESTINATION_OLD)
        )
    if not destination:
        return None
    verb = attrs.get(MESSAGING_OPERATION) or attrs.get(MESSAGING_OPERATION_OLD)
    if not verb:
        verb = _MESSAGING_VERB.get(kind, "process")
    return f"{verb} {destination}"
