"""What the status listener reads from the daemon; the daemon implements it, tests can fake it."""

from __future__ import annotations

from typing import Any, Protocol

from failover.api.history import Series
from failover.model import Plan


class StatusSource(Protocol):
    def current_plan(self) -> Plan | None: ...

    def cluster_checks(self, cluster: str) -> list[dict[str, Any]]:
        """Per-check fields: kind, target, ok, latency_ms, error, consecutive_failures."""
        ...

    def cluster_vantages(self, cluster: str) -> dict[str, str] | None:
        """Distributed mode: each vantage's verdict on the cluster (passing, failing,
        unknown); None when the daemon runs alone."""
        ...

    def score_components(self, cluster: str) -> dict[str, float]:
        """What the cluster's score is made of: success_ratio, latency_factor."""
        ...

    def share_series(self, cluster: str) -> Series | None:
        """The cluster's share over the last minutes (the page's sparkline)."""
        ...

    def decisions(self, limit: int) -> list[dict[str, Any]]:
        """Newest first, CONTRACT's decision fields."""
        ...

    def extra_status(self) -> dict[str, Any]:
        """Keys added to /v1/status beside CONTRACT's: actuators, config reloads."""
        ...

    def alive(self) -> bool:
        """True while every loop of the daemon keeps turning."""
        ...

    def ready(self) -> bool:
        """True once every cluster has a verdict."""
        ...
