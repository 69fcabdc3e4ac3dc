"""Planner v1: shares proportional to base weight among passing clusters, statically stable."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from failover.config.models import Policy
from failover.planner.decisions import Change, freeze_decision, share_decisions
from failover.planner.guard import FAIL_STATIC, Tally, freeze_reason
from failover.planner.model import ClusterPlan, ClusterState, ClusterView, Plan
from failover.planner.rank import ranks
from failover.planner.shares import differ, proportional


def placeholder_shares(views: Sequence[ClusterView]) -> dict[str, float]:
    """Base weights normalised, drained at 0: what a plan shows before it may be actuated."""
    weights = {v.name: 0.0 if v.state == ClusterState.DRAINED else v.base_weight for v in views}
    return proportional(weights, 1.0)


def target_shares(views: Sequence[ClusterView], kept: Mapping[str, float]) -> dict[str, float]:
    """Unknown clusters keep their share from ``kept`` (no evidence, no move); passing clusters
    split the rest by base weight; every other cluster gets 0."""
    held = {v.name: kept.get(v.name, 0.0) for v in views if v.state == ClusterState.UNKNOWN}
    rest = max(0.0, 1.0 - math.fsum(held.values()))
    passing = proportional({v.name: v.base_weight for v in views if v.state.passing}, rest)
    return {v.name: held.get(v.name, passing.get(v.name, 0.0)) for v in views}


def _next_version(previous: Plan | None, shares: Mapping[str, float], *, frozen: bool) -> int:
    """0 until a plan may be actuated; then +1 whenever a share moves.

    The first unfrozen plan is version 1 even if its shares equal the placeholder's: version 0
    is never actuated, and this one must be.
    """
    if previous is None or previous.version == 0:
        return 0 if frozen else 1
    return previous.version + (1 if differ(previous.shares, shares) else 0)


def plan(views: Sequence[ClusterView], policy: Policy, previous: Plan | None, now: float) -> Plan:
    """The plan for this tick; pure and deterministic (views' order does not matter).

    Passing (healthy, degraded) clusters share the traffic in proportion to base weight;
    unhealthy, drained, waiting and recovering clusters get 0 (recovery is a later version);
    unknown ones keep their previous share. The plan is frozen, shares unchanged, when
    ``freeze_reason`` says so. Until a plan has been actuated (version >= 1) a frozen plan
    has version 0 and placeholder shares, which the daemon does not actuate: with no verdicts
    and no previous plan, the honest plan is "no change". ``policy.max_shift_per_tick`` and
    capacity are not applied yet. ``target_share`` equals ``share`` in this version.
    """
    ordered = sorted(views, key=lambda v: v.name)
    if len({v.name for v in ordered}) != len(ordered):
        msg = f"duplicate cluster names in views: {[v.name for v in ordered]}"
        raise ValueError(msg)
    actuated = previous if previous is not None and previous.version >= 1 else None
    tally = Tally.of(ordered)
    frozen = freeze_reason(tally, policy.min_healthy_fraction, started=actuated is not None)
    if frozen is None:
        shares = target_shares(ordered, actuated.shares if actuated else {})
    elif actuated is not None:
        shares = {v.name: actuated.share(v.name) for v in ordered}
    else:
        shares = placeholder_shares(ordered)
    version = _next_version(previous, shares, frozen=frozen is not None)

    rank = ranks(ordered)
    ranked = sorted(ordered, key=lambda v: rank[v.name])
    was_frozen = None if previous is None else previous.frozen_reason
    change = Change(
        at=now, version=version,
        old=previous.shares if previous is not None else placeholder_shares(ordered),
        new=shares,
        old_weights={} if previous is None else {c.name: c.base_weight for c in previous.clusters},
        resumed=was_frozen == FAIL_STATIC and frozen != FAIL_STATIC,
    )
    decisions = []
    if (frozen == FAIL_STATIC) != (was_frozen == FAIL_STATIC):
        decisions.append(freeze_decision(
            change, now_frozen=frozen, passing=tally.passing, unknown=tally.unknown,
            eligible=tally.eligible, min_fraction=policy.min_healthy_fraction))
    if version >= 1:
        decisions += share_decisions(ranked, change)

    clusters = tuple(
        ClusterPlan(v.name, shares[v.name], shares[v.name], v.state, rank[v.name], v.score,
                    v.base_weight, v.reason)
        for v in ranked)
    return Plan(version, now, clusters, frozen is not None, frozen, tuple(decisions))
