"""Rank clusters best first: by state, then score, then base weight, then name."""

from __future__ import annotations

from collections.abc import Sequence

from failover.model import ClusterState, ClusterView

STATE_ORDER: dict[ClusterState, int] = {
    ClusterState.HEALTHY: 0,
    ClusterState.DEGRADED: 1,
    ClusterState.RECOVERING: 2,  # already serving some traffic, so ahead of those still queued
    ClusterState.WAITING: 3,
    ClusterState.UNKNOWN: 4,
    ClusterState.UNHEALTHY: 5,
    ClusterState.DRAINED: 6,
}


def rank_key(view: ClusterView) -> tuple[int, float, float, str]:
    """The name breaks every tie, so the order never depends on the order views came in."""
    return STATE_ORDER[view.state], -view.score, -view.base_weight, view.name


def ranks(views: Sequence[ClusterView]) -> dict[str, int]:
    """Cluster name -> rank, 1 for the best; ranks are distinct."""
    return {view.name: rank for rank, view in enumerate(sorted(views, key=rank_key), start=1)}
