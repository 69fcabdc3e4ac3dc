"""How far planned capacity falls short of demand, read from a plan, and when that has
lasted long enough to ask for more: what the provisioning hook (and the simulator's model of
it) acts on. Pure: a plan, the config and the time in; no I/O, no clock of its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from failover.config import Cluster, Policy
from failover.config.provisioning import Provisioning
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


class ShortfallWatch:
    """When a call is due: once a shortfall has lasted ``after``, at most once per
    ``cooldown``. A shortfall that ends must last ``after`` again."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.last_call: float | None = None

    def due(self, short: Shortfall | None, hook: Provisioning | None, now: float) -> float | None:
        """Seconds the shortfall has lasted when a call is due now; else None."""
        if short is None or hook is None:
            self.since = None
            return None
        if self.since is None:
            self.since = now
        lasted = now - self.since
        if lasted < hook.after:
            return None
        if self.last_call is not None and now - self.last_call < hook.cooldown:
            return None
        return lasted

    def called(self, now: float) -> None:
        self.last_call = now
