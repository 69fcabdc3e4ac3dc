"""Rank clusters best first: by state, then score, then base weight, then name."""

from __future__ import annotations

import math
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


def rank_order(views: Sequence[ClusterView], states: Sequence[ClusterState]) -> list[int]:
    """Positions of ``views`` best first, in `rank_key`'s order, ``states`` standing for the
    views' own. The views come in ascending name order; one stable sort per key, least
    significant first, then orders as `rank_key` does, at C speed (a key tuple per cluster
    would cost more than the rest of the ranking)."""
    weights = [view.base_weight for view in views]
    scores = [view.score for view in views]
    positions = range(len(views))
    if math.isnan(sum(weights) + sum(scores)):
        # A NaN compares neither way: order as the tuples do, so it lands where it always did.
        return sorted(positions, key=lambda i: (STATE_ORDER[states[i]], -scores[i],
                                                -weights[i], views[i].name))
    if len(set(scores)) == len(scores):
        order = list(positions)  # no score ties for the weight to break
    else:
        order = sorted(positions, key=weights.__getitem__, reverse=True)
    order.sort(key=scores.__getitem__, reverse=True)
    order.sort(key=list(map(STATE_ORDER.__getitem__, states)).__getitem__)
    return order
