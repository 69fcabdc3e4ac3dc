"""The policies ``failover simulate`` runs and compares, by name.

- ``planner``: the daemon's planner with the config as given (``recovery.mode`` included).
- ``timed``: the same planner with ``recovery.mode: timed``: the open-loop policy of v1, a
  fixed number of recoveries at once, each on a fixed linear slow start, static capacities.
- ``naive``: snap back to base weights over the passing clusters on every verdict (`naive`).
"""

from __future__ import annotations

from collections.abc import Sequence

from failover.config.models import Policy
from failover.controller import Planner
from failover.model import ClusterView, Signals
from failover.planner import Plan, plan
from failover.simulate.naive import naive_plan

NO_SIGNALS = Signals()


def timed_plan(views: Sequence[ClusterView], policy: Policy, previous: Plan | None, now: float,
               *, demand_rps: float | None = None, vantage_ok: bool = True,
               frozen_by: str | None = None, signals: Signals = NO_SIGNALS,
               applied: bool = True, first_version: int = 1, evidence: bool = False) -> Plan:
    recovery = policy.recovery.model_copy(update={"mode": "timed"})
    return plan(views, policy.model_copy(update={"recovery": recovery}), previous, now,
                demand_rps=demand_rps, vantage_ok=vantage_ok, frozen_by=frozen_by,
                signals=signals, applied=applied, first_version=first_version,
                evidence=evidence)


POLICIES: dict[str, Planner] = {"planner": plan, "naive": naive_plan, "timed": timed_plan}
