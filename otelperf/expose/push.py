"""Push a registry to a Prometheus Pushgateway: how a batch job's metrics outlive the job.

prometheus_client's ``push_to_gateway`` does the request (text format, grouping key in the
path, base64 for values with ``/``); this module adds what a job's last act needs: the grouping
key otelperf uses (``job`` + ``instance``), credentials from the URL's user part, a few quick
retries, and one error naming the gateway instead of a traceback.

Replace, not add: the push is a ``PUT``, so the group ``job``/``instance`` holds exactly the
last run's metrics (an operation the previous run had and this one has not disappears).  Each
run's counters start at zero, which Prometheus's ``increase()`` reads as a counter reset
(docs/batch.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import push_to_gateway
from prometheus_client.exposition import basic_auth_handler, default_handler

ATTEMPTS = 3
BACKOFF_SECONDS = (0.25, 1.0)  # before the 2nd and the 3rd attempt
TIMEOUT_SECONDS = 5.0  # per attempt


class PushFailed(Exception):
    """Every attempt failed; the message names the gateway and the last error."""


def push_registry(
    url: str,
    registry: Any,
    *,
    job: str,
    instance: str,
    attempts: int = ATTEMPTS,
    timeout: float = TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """PUT ``registry`` to the Pushgateway at ``url`` under ``job`` and ``instance``.

    Retries ``attempts`` times in all (a gateway restarting, a connection refused while a
    sidecar starts), then raises :class:`PushFailed`.
    """
    gateway, handler = _gateway_and_handler(url)
    last: BaseException | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
        try:
            push_to_gateway(
                gateway,
                job=job,
                registry=registry,
                grouping_key={"instance": instance},
                timeout=timeout,
                handler=handler,
            )
            return
        except Exception as exc:  # URLError, HTTPError (a 400 on inconsistent metrics), OSError
            last = exc
    raise PushFailed(f"pushing to the Pushgateway {_shown(url)} failed after {attempts} "
                     f"attempts: {_describe(last)}")  # fmt: skip


def _gateway_and_handler(url: str) -> tuple[str, Callable[..., Callable[[], None]]]:
    # http://user:pass@host:9091 -> basic auth, and the credentials stay out of messages
    bare, user, password = _credentials(url)
    if user is None:
        return url, default_handler

    def handler(url: str, method: str, timeout: float | None, headers: Any, data: bytes) -> Any:
        return basic_auth_handler(url, method, timeout, headers, data, user, password)

    return bare, handler


def _credentials(url: str) -> tuple[str, str | None, str]:
    """``url`` without its user part, the user (None when there is none) and the password."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None, ""
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, parts.username, parts.password or ""


def _shown(url: str) -> str:
    return _credentials(url)[0]


def _describe(exc: BaseException | None) -> str:
    reason = getattr(exc, "reason", None)  # URLError: the socket error; HTTPError: the status
    code = getattr(exc, "code", None)
    if code is not None:  # the gateway's own words say which metric it refused
        body = ""
        try:
            body = exc.read(300).decode("utf-8", "replace").strip()  # type: ignore[union-attr]
        except Exception:
            pass
        return " ".join(f"HTTP {code} {reason or ''} {body}".split())
    return str(reason if reason is not None else exc)
