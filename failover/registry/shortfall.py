"""How far planned capacity falls short of demand, read from a plan: what the provisioning
hook asks for. Pure: a plan and the config in, a figure out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from failover.config import Cluster, Policy
from failover.model import Plan

EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Shortfall:
    rps: float
    """Demand no cluster can take within its headroom: shed, plus spilled beyond it."""
    at_capacity: tuple[str, ...]
    """The clusters planned at or over headroom x capacity."""
    plan_version: int


def shortfall(plan: Plan | None, clusters: Sequence[Cluster], policy: Policy,
              demand_rps: float | None) -> Shortfall | None:
    """None when nothing is short (or capacity-aware planning is off, or a plan is frozen:
    its shares are the last good ones, not a reading of the fleet now)."""
    if plan is None or demand_rps is None or plan.frozen:
        return None
    capacity = {c.name: c.capacity_rps for c in clusters}
    beyond = 0.0
    full = []
    for planned in plan.clusters:
        cap = capacity.get(planned.name)
        if cap is None:
            continue
        limit = policy.headroom * cap
        over = planned.share * demand_rps - limit
        if over > EPSILON or planned.spilled:
            beyond += max(0.0, over)
            full.append(planned.name)
        elif planned.capped or over > -EPSILON * max(1.0, limit):
            full.append(planned.name)
    rps = plan.shed * demand_rps + beyond
    if rps <= EPSILON * max(1.0, demand_rps):
        return None
    return Shortfall(rps, tuple(sorted(full)), plan.version)
