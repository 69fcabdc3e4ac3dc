"""Builders shared by the planner tests."""

from __future__ import annotations

from failover.model import ClusterState, ClusterView

H, D, U = ClusterState.HEALTHY, ClusterState.DEGRADED, ClusterState.UNHEALTHY
UNK, DR = ClusterState.UNKNOWN, ClusterState.DRAINED
W, R = ClusterState.WAITING, ClusterState.RECOVERING

REASONS = {
    H: "all checks passing",
    D: "dns 127.0.0.1:5301 api.local 7/10 recent probes passed",
    U: "dns 127.0.0.1:5301 api.local timeout x3",
    UNK: "no verdict yet from 1 of 2 checks",
    DR: "drained: maintenance",
    W: "waiting for a recovery slot",
    R: "recovering",
}


def view(name: str, state: ClusterState, weight: float = 50, score: float = 1.0) -> ClusterView:
    return ClusterView(name, state, score, weight, REASONS[state])


def fleet(**states: ClusterState) -> list[ClusterView]:
    """Clusters a, b, c... with the given states and weights 50, 30, 20, 10, ..."""
    weights = [50, 30, 20, 10, 10, 10]
    return [view(name, state, weights[i]) for i, (name, state) in enumerate(states.items())]
