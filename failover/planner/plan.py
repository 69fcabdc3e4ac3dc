"""The planner: health views + policy + previous plan + time -> the next plan. Pure.

Per tick: each cluster's lifecycle advances (`lifecycle`), free recovery slots go to waiting
clusters by rank, the desired shares follow base weight within capacity and slow start
(`targets`), and the move from the previous shares is phased (`shift`): evacuations at once,
everything else at most ``max_shift_per_tick``. When the planner must not trust what it sees
(`guard`), the shares stay as they are.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from failover.config.models import Policy
from failover.planner.decisions import (
    Change,
    cluster_decisions,
    freeze_decision,
    shed_decision,
)
from failover.planner.guard import FREEZES, Tally, freeze_reason
from failover.planner.lifecycle import Life, admit, advance, cooling, ramp_fraction
from failover.planner.model import ClusterPlan, ClusterState, ClusterView, Decision, Plan
from failover.planner.rank import ranks
from failover.planner.shares import EPSILON, differ, proportional
from failover.planner.shift import phase
from failover.planner.targets import Targets, targets

S = ClusterState


def placeholder_shares(views: Sequence[ClusterView]) -> dict[str, float]:
    """Base weights normalised, drained at 0: what a plan shows before it may be actuated."""
    weights = {v.name: 0.0 if v.state == S.DRAINED else v.base_weight for v in views}
    return proportional(weights, 1.0)


def _next_version(previous: Plan | None, shares: Mapping[str, float], *, frozen: bool) -> int:
    """0 until a plan may be actuated; then +1 whenever a share moves.

    The first unfrozen plan is version 1 even if its shares equal the placeholder's: version 0
    is never actuated, and this one must be.
    """
    if previous is None or previous.version == 0:
        return 0 if frozen else 1
    return previous.version + (1 if differ(previous.shares, shares) else 0)


def _reason(view: ClusterView, life: Life, policy: Policy, now: float) -> str:
    if life.state == S.WAITING:
        if cooling(life, now) and life.cooldown_until is not None:
            return (f"passing again; cooling down {life.cooldown_until - now:.0f}s more after "
                    f"{life.failed_recoveries} failed recoveries")
        return "passing again; waiting for a recovery slot"
    if life.state == S.RECOVERING:
        return f"recovering: {ramp_fraction(life, policy.recovery, now):.0%} of slow start"
    return view.reason


def plan(views: Sequence[ClusterView], policy: Policy, previous: Plan | None, now: float, *,
         demand_rps: float | None = None, vantage_ok: bool = True,
         frozen_by: str | None = None) -> Plan:
    """The plan for this tick; deterministic, whatever the order of ``views``.

    Until a plan has been actuated (version >= 1) the plan waits for every verdict, frozen at
    version 0 with placeholder shares the daemon does not actuate; the first actuated plan is
    the base weights of the passing clusters, with no ramp. ``demand_rps`` enables capacity
    planning; ``vantage_ok`` False freezes the plan (our own view is broken); ``frozen_by``
    (an operator's reason) freezes it too, before the first actuated plan as well. Drained clusters
    come as views in state ``drained``.
    """
    ordered = sorted(views, key=lambda v: v.name)
    if len({v.name for v in ordered}) != len(ordered):
        msg = f"duplicate cluster names in views: {[v.name for v in ordered]}"
        raise ValueError(msg)
    actuated = previous if previous is not None and previous.version >= 1 else None
    started = actuated is not None
    before = {c.name: c for c in actuated.clusters} if actuated is not None else {}
    tally = Tally.of(ordered)
    frozen = freeze_reason(tally, policy.min_healthy_fraction, started=started,
                           vantage_ok=vantage_ok, operator=frozen_by is not None)
    lives = {v.name: advance(v, before.get(v.name), policy.recovery, now, started=started)
             for v in ordered}
    wanted: Targets | None = None
    if frozen is None:
        lives = admit(ordered, lives, policy.recovery, now)
        kept = actuated.shares if actuated is not None else {}
        held = {v.name: kept.get(v.name, 0.0) for v in ordered if lives[v.name].state == S.UNKNOWN}
        wanted = targets(ordered, lives, held, policy, now, demand_rps)
        if actuated is None:
            shares = wanted.shares
        else:
            # Cold or failing clusters shed what they hold above their target at once: a
            # freeze or a spill may have left traffic on them that only errors there.
            gone = {n for n, life in lives.items()
                    if life.state in (S.UNHEALTHY, S.DRAINED, S.WAITING, S.RECOVERING)}
            ramping = {n for n, life in lives.items() if life.state == S.RECOVERING}
            shares = phase(actuated.shares, wanted.shares, gone, policy.max_shift_per_tick,
                           wanted.ceilings, ramping)
        shed = max(0.0, 1.0 - math.fsum(shares.values()))
        shed = shed if shed > EPSILON else 0.0
    elif actuated is not None:
        shares = {v.name: actuated.share(v.name) for v in ordered}
        shed = actuated.shed
    else:
        shares, shed = placeholder_shares(ordered), 0.0
    version = _next_version(previous, shares, frozen=frozen is not None)

    as_planned = [dataclasses.replace(v, state=lives[v.name].state) for v in ordered]
    rank = ranks(as_planned)
    ranked = sorted(as_planned, key=lambda v: rank[v.name])
    was = previous.frozen_reason if previous is not None else None
    change = Change(
        at=now, version=version,
        old=previous.shares if previous is not None else placeholder_shares(ordered),
        new=shares,
        old_weights={} if previous is None else {c.name: c.base_weight for c in previous.clusters},
        old_shed=previous.shed if previous is not None else 0.0, new_shed=shed,
    )
    decisions: list[Decision] = []
    if frozen != was and (frozen in FREEZES or was in FREEZES):
        decisions.append(freeze_decision(
            change, was=was if was in FREEZES else None,
            now_frozen=frozen, passing=tally.passing, unknown=tally.unknown,
            eligible=tally.eligible, min_fraction=policy.min_healthy_fraction,
            operator_reason=frozen_by))
    if version >= 1:
        decisions += cluster_decisions(ranked, lives, wanted or Targets(dict(shares), {}),
                                       change)
        shedding = shed_decision(change)
        if shedding is not None:
            decisions.append(shedding)

    original = {v.name: v for v in ordered}
    clusters = tuple(
        ClusterPlan(
            v.name, shares[v.name],
            wanted.full[v.name] if wanted is not None else
            (before[v.name].target_share if v.name in before else shares[v.name]),
            v.state, rank[v.name], v.score, v.base_weight,
            _reason(original[v.name], lives[v.name], policy, now),
            lives[v.name].recovery_started, lives[v.name].cooldown_until,
            lives[v.name].failed_recoveries,
            capped=wanted is not None and v.name in wanted.capped,
            spilled=wanted is not None and v.name in wanted.spilled)
        for v in ranked)
    return Plan(version, now, clusters, frozen is not None, frozen, tuple(decisions), shed)
