"""The naive policy, for comparison: snap to base weights among the passing clusters.

What a simple health-checked load balancer does: no recovery gate or slow start, no shift
limit, no capacity, no fail static. Same call shape as ``failover.planner.plan`` so the
engine runs either.
"""

from __future__ import annotations

from collections.abc import Sequence

from failover.config.models import Policy
from failover.model import Signals
from failover.planner import ClusterPlan, ClusterView, Plan, ranks
from failover.planner.shares import differ, proportional

NONE_PASSING = "none_passing"
"""Frozen reason when no cluster passes and the previous shares are kept."""


def naive_plan(views: Sequence[ClusterView], policy: Policy, previous: Plan | None,
               now: float, *, demand_rps: float | None = None,
               vantage_ok: bool = True, frozen_by: str | None = None,
               signals: Signals | None = None, applied: bool = True,
               first_version: int = 1, evidence: bool = False) -> Plan:
    """Base weights over the healthy and degraded clusters, at once; if none is, the previous
    shares (base weights over all before any plan). Everything but the views and the previous
    plan is ignored: that is the point of the comparison."""
    ordered = sorted(views, key=lambda v: v.name)
    passing = {v.name: v.base_weight if v.state.passing else 0.0 for v in ordered}
    frozen = sum(passing.values()) <= 0
    if not frozen:
        shares = proportional(passing, 1.0)
    elif previous is not None:
        before = previous.shares
        shares = {v.name: before.get(v.name, 0.0) for v in ordered}
    else:
        shares = proportional({v.name: v.base_weight for v in ordered}, 1.0)
    if previous is None:
        version = first_version
    else:
        version = previous.version + (1 if differ(previous.shares, shares) else 0)
    rank = ranks(ordered)
    clusters = tuple(
        ClusterPlan(name=v.name, share=shares[v.name], target_share=shares[v.name],
                    state=v.state, rank=rank[v.name], score=v.score,
                    base_weight=v.base_weight, reason=v.reason)
        for v in sorted(ordered, key=lambda v: rank[v.name]))
    return Plan(version=version, at=now, clusters=clusters, frozen=frozen,
                frozen_reason=NONE_PASSING if frozen else None)
