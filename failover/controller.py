"""One tick of the decision loop, pure: what health, the operators and the signals say, and
the previous plan, in; the next plan and whether to actuate it, out.

The daemon and the simulator both drive this, so the rules that used to be written twice
(drained clusters marked as such, version 0 never actuated, a plan actuated only when it
changed) live here once, and a policy (the planner, or a baseline the simulator compares
it with) is a function with the planner's call shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from failover.config.models import Policy
from failover.model import ClusterState, ClusterView, Signals
from failover.planner import Plan, plan


class Planner(Protocol):
    """``failover.planner.plan``'s call shape."""

    def __call__(self, views: Sequence[ClusterView], policy: Policy, previous: Plan | None,
                 now: float, *, demand_rps: float | None = None, vantage_ok: bool = True,
                 frozen_by: str | None = None, signals: Signals = ...,
                 applied: bool = True, first_version: int = 1,
                 evidence: bool = False) -> Plan: ...


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything a tick decides from, besides the previous plan and the time."""

    views: Sequence[ClusterView]
    """Health's verdicts, one per configured cluster."""
    demand_rps: float | None = None
    vantage_ok: bool = True
    drains: Mapping[str, str] = field(default_factory=dict)
    """Clusters an operator drained, with the reason."""
    frozen_by: str | None = None
    """An operator's freeze, by its reason."""
    signals: Signals = field(default_factory=Signals)
    applied: bool = True
    """The data plane carries the previous plan (every actuator applied it)."""
    first_version: int = 1
    """The version the first actuated plan takes (above what the data plane carries)."""
    evidence: bool = False
    """Our view is proven: a quorum of fresh vantages agrees, or (alone) the vantage checks
    pass. A fleet-wide failure is then acted on rather than failed static."""


@dataclass(frozen=True, slots=True)
class Step:
    plan: Plan
    actuate: bool
    """Hand this plan to the actuators: it changed (version or freeze), and it is not version
    0, which means no verdicts yet and must never touch the data plane."""


def drained(views: Sequence[ClusterView], drains: Mapping[str, str]) -> list[ClusterView]:
    """Health's views with drained clusters marked so; the reason says who and why."""
    return [dataclasses.replace(v, state=ClusterState.DRAINED, reason=f"drained: {drains[v.name]}")
            if v.name in drains else v for v in views]


def tick(policy: Policy, previous: Plan | None, inputs: Inputs, now: float,
         planner: Planner = plan) -> Step:
    new = planner(drained(inputs.views, inputs.drains), policy, previous, now,
                  demand_rps=inputs.demand_rps, vantage_ok=inputs.vantage_ok,
                  frozen_by=inputs.frozen_by, signals=inputs.signals, applied=inputs.applied,
                  first_version=inputs.first_version, evidence=inputs.evidence)
    changed = previous is None or (previous.version, previous.frozen) != (new.version, new.frozen)
    return Step(new, changed and new.version >= 1)
