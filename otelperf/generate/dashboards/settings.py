"""What the generated dashboards can be tuned with, and the list of dashboards.

>>> DashboardSettings(refresh="1m").refresh
'1m'
>>> [key for key, _, _ in DASHBOARDS]
['overview', 'bottlenecks', 'cache-apis', 'resources']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from otelperf.errors import ConfigError

# (key, title, file name); the UID is "<uid_prefix>-<key>", stable across runs.
DASHBOARDS: tuple[tuple[str, str, str], ...] = (
    ("overview", "otelperf / Overview", "overview.json"),
    ("bottlenecks", "otelperf / Bottlenecks", "bottlenecks.json"),
    ("cache-apis", "otelperf / Cache & external APIs", "cache-apis.json"),
    ("resources", "otelperf / Resources", "resources.json"),
)

_UID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
GRAFANA_UID_MAX = 40  # Grafana rejects longer dashboard UIDs


@dataclass(frozen=True)
class DashboardSettings:
    """What the generated dashboards can be tuned with.

    ``datasource`` is the name of the Prometheus datasource the ``$datasource`` variable selects
    by default (the provisioned one in deploy/grafana is called "Prometheus").

    >>> DashboardSettings(refresh="1m").refresh
    '1m'
    """

    datasource: str = "Prometheus"
    uid_prefix: str = "otelperf"
    tag: str = "otelperf"
    refresh: str = "30s"
    time_from: str = "now-1h"

    def validate(self) -> DashboardSettings:
        """Raise ConfigError naming the field when a setting cannot make valid dashboards."""
        for name in ("datasource", "tag", "refresh", "time_from"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"DashboardSettings.{name}={value!r} must be a non-empty string")
        if not isinstance(self.uid_prefix, str) or not _UID_RE.match(self.uid_prefix):
            raise ConfigError(
                f"DashboardSettings.uid_prefix={self.uid_prefix!r} must use only letters, digits,"
                " '-' and '_'"
            )
        longest = max(len(self.uid_prefix) + 1 + len(key) for key, _, _ in DASHBOARDS)
        if longest > GRAFANA_UID_MAX:
            raise ConfigError(
                f"DashboardSettings.uid_prefix={self.uid_prefix!r} is too long: dashboard UIDs "
                f"would exceed Grafana's {GRAFANA_UID_MAX} characters"
            )
        return self

    def uid(self, key: str) -> str:
        """The UID of dashboard ``key``: ``<uid_prefix>-<key>``."""
        return f"{self.uid_prefix}-{key}"


def title_of(key: str) -> str:
    """The title of dashboard ``key``.

    >>> title_of("resources")
    'otelperf / Resources'
    """
    return next(t for k, t, _ in DASHBOARDS if k == key)
