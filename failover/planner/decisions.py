"""Decisions: one per share change, with a machine-readable action and a human reason."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from failover.planner.guard import FAIL_STATIC
from failover.planner.model import ClusterState, ClusterView, Decision
from failover.planner.shares import EPSILON

ALL_CLUSTERS = "*"
"""The ``cluster`` of a decision about the whole plan (fail_static, resume)."""

EVACUATE = "evacuate"
"""A failing cluster's share went to 0."""
RESTORE = "restore"
"""A passing cluster got traffic back from 0."""
DRAIN = "drain"
"""A drained cluster's share went to 0."""
REMOVE = "remove"
"""A cluster left the config; its share is gone."""
REBALANCE = "rebalance"
"""Any other change: a base weight changed, or another cluster came or went."""
ENTER_FAIL_STATIC = "fail_static"
RESUME = "resume"


@dataclass(frozen=True, slots=True)
class Change:
    """What the decisions of one tick are computed from."""

    at: float
    version: int
    old: Mapping[str, float]
    """Shares before; a cluster absent here had 0."""
    new: Mapping[str, float]
    old_weights: Mapping[str, float]
    """Base weights the previous plan used, to tell a weight change apart."""
    resumed: bool


_CAUSES = {EVACUATE: "unhealthy", RESTORE: "passing", DRAIN: "operator", REMOVE: "config"}


def _action(view: ClusterView, old: float, new: float) -> str:
    if new <= EPSILON:
        if view.state == ClusterState.UNHEALTHY:
            return EVACUATE
        return DRAIN if view.state == ClusterState.DRAINED else REBALANCE
    return RESTORE if old <= EPSILON else REBALANCE


def share_decisions(views: Sequence[ClusterView], change: Change) -> list[Decision]:
    """Causes before effects: evacuations, drains, restores and removals first, rebalances
    after; within each, the order of ``views`` (pass them ranked), removed clusters by name.

    A rebalance names its cause: its own weight change, else the clusters whose own change
    moved the rest, so an operator reading one line knows why a healthy cluster's share moved.
    """
    moved = [(v, change.old.get(v.name, 0.0), change.new[v.name]) for v in views
             if abs(change.old.get(v.name, 0.0) - change.new[v.name]) > EPSILON]
    actions = {v.name: _action(v, old, new) for v, old, new in moved}
    present = {v.name for v in views}
    removed = sorted(n for n, s in change.old.items() if n not in present and s > EPSILON)
    causes = [f"{name} {action}" for name, action in actions.items() if action != REBALANCE]
    causes += [f"{name} {REMOVE}" for name in removed]
    causes += [f"{v.name} weight {change.old_weights[v.name]:g} -> {v.base_weight:g}"
               for v in views
               if v.name in change.old_weights and change.old_weights[v.name] != v.base_weight]
    decisions = []
    for view, old, new in moved:
        action = actions[view.name]
        reason, cause = view.reason, _CAUSES.get(action, "")
        if action == REBALANCE:
            reason, cause = _rebalance_reason(view, change, causes)
        decisions.append(
            Decision(change.at, change.version, view.name, action, old, new, reason, cause))
    decisions += [Decision(change.at, change.version, name, REMOVE, change.old[name], 0.0,
                           "removed from config", _CAUSES[REMOVE]) for name in removed]
    return sorted(decisions, key=lambda d: d.action == REBALANCE)


def _rebalance_reason(view: ClusterView, change: Change,
                      causes: list[str]) -> tuple[str, str]:
    """The reason and cause of a rebalance."""
    before = change.old_weights.get(view.name)
    if before is not None and before != view.base_weight:
        return f"base weight {before:g} -> {view.base_weight:g}", "weight_change"
    others = [c for c in causes if not c.startswith(f"{view.name} ")]
    if others:
        return "after " + ", ".join(others), "cluster_change"
    if change.resumed:
        return "resumed after fail_static", "resumed"
    return view.reason, "cluster_change"


def freeze_decision(change: Change, *, now_frozen: str | None, passing: float, unknown: float,
                    eligible: float, min_fraction: float) -> Decision:
    """The plan-wide decision for entering fail_static, or for leaving it (``now_frozen`` is
    then None, or awaiting_verdicts when missing verdicts keep the plan still)."""
    total_old, total_new = math.fsum(change.old.values()), math.fsum(change.new.values())
    weights = f"passing base weight {passing:g} of {eligible:g}"
    limit = f"min_healthy_fraction {min_fraction:g}"
    cause = "min_healthy_fraction"
    if now_frozen == FAIL_STATIC:
        action, reason = ENTER_FAIL_STATIC, f"{weights} is below {limit}: keeping shares"
    elif now_frozen is None:
        action, reason = RESUME, f"{weights} is at or above {limit}"
    else:
        action, cause = RESUME, "awaiting_verdicts"
        reason = f"{weights}, {unknown:g} without verdict, could reach {limit}: awaiting verdicts"
    return Decision(change.at, change.version, ALL_CLUSTERS, action, total_old, total_new, reason,
                    cause)
