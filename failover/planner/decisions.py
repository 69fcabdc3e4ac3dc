"""Decisions: one per share change or lifecycle event, with a machine-readable cause.

``action`` says what happened to the cluster; ``cause`` is the machine-readable reason, one of
`CAUSES` (a metric label, so a small fixed set); ``reason`` is for people: it names the failing
check, the weights, or the clusters whose own change moved this one.

Decisions are the record of why traffic moved, so they stay proportionate to what happened,
not to the size of the fleet: a move a cluster only undergoes (a rebalance, its capacity cap
or spill adjusting) that is smaller than `MIN_MOVE` of all traffic, neither gives it its first
traffic nor takes its last, does not start its cap or spill, and comes with no change of its
own (of state, lifecycle event or base weight) is folded with the others of its kind into one
plan-wide decision (cluster ``*``). While one cluster ramps in a fleet of 200, a tick records
the ramp and one ``*`` rebalance, not 199 rebalances. A share can move by `MIN_MOVE` only
where there is traffic to move, so a tick names at most ``2 / MIN_MOVE`` clusters for their
moves alone, however many there are.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from failover.model import ClusterState, ClusterView, Decision
from failover.planner.guard import FAIL_STATIC, OPERATOR_FREEZE, STALE, VANTAGE
from failover.planner.lifecycle import Life
from failover.planner.shares import EPSILON
from failover.planner.states import DRAINED, RECOVERING, UNHEALTHY

ALL_CLUSTERS = "*"
"""The ``cluster`` of a decision about the whole plan (fail_static, vantage, resume, shed), or
about many clusters at once (the small moves of a rebalance, capacity cap or spill)."""

EVACUATE = "evacuate"
RECOVERY_START = "recovery_start"
RAMP = "ramp"
RECOVERY_FAILED = "recovery_failed"
CAPACITY_CAP = "capacity_cap"
SPILL = "spill"
SHED = "shed"
REBALANCE = "rebalance"
OPERATOR = "operator"
BACK_OFF = "back_off"
CAUSES = frozenset({EVACUATE, RECOVERY_START, RAMP, RECOVERY_FAILED, CAPACITY_CAP, SPILL, SHED,
                    FAIL_STATIC, VANTAGE, REBALANCE, OPERATOR, BACK_OFF})

DRAIN = "drain"
FREEZE = "freeze"
REMOVE = "remove"
RESUME = "resume"
"""Actions whose cause is another name: drain and freeze (operator), remove (rebalance),
resume (the freeze it ends)."""


MIN_MOVE = 0.01
"""A move a cluster only undergoes is its own decision from this fraction of all traffic on;
smaller ones are folded into one plan-wide decision per action."""
FOLDED = (REBALANCE, CAPACITY_CAP, SPILL)
"""Actions a cluster undergoes because of what others (or demand) did."""
NAMED = 3
"""Clusters a folded decision or a list of causes names; the rest are counted."""


class Marks(Protocol):
    """What the decisions read of a tick's targets (`Targets`, or their columns): who is held
    at capacity, who takes spilled traffic."""

    @property
    def capped(self) -> frozenset[str]: ...

    @property
    def spilled(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class _Unmarked:
    capped: frozenset[str] = frozenset()
    spilled: frozenset[str] = frozenset()


UNMARKED: Marks = _Unmarked()
"""The marks of a plan without targets (a frozen one): nobody capped, nobody spilled."""


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
    old_shed: float = 0.0
    new_shed: float = 0.0
    backed_off: frozenset[str] = frozenset()
    """Recovering clusters whose ramp backed off this tick on their signals."""
    old_capped: frozenset[str] = frozenset()
    """Clusters the previous plan held at headroom x capacity."""
    old_spilled: frozenset[str] = frozenset()
    """Clusters the previous plan gave spilled traffic."""
    old_states: Mapping[str, ClusterState] = field(default_factory=dict)
    """Each cluster's state in the previous plan; a cluster absent here is new."""


def _classify(view: ClusterView, life: Life, targets: Marks,  # noqa: PLR0911 - a rule per line
              old: float, new: float, change: Change) -> tuple[str, str]:
    """(action, cause) of a share move."""
    if life.event == RECOVERY_FAILED:
        return RECOVERY_FAILED, RECOVERY_FAILED
    if view.name in change.backed_off and new < old:
        return BACK_OFF, BACK_OFF
    if life.state == DRAINED:
        return DRAIN, OPERATOR
    if life.state == UNHEALTHY and new < old and (
            view.name not in targets.spilled or change.old_states.get(view.name) != UNHEALTHY):
        # A cluster that has just failed is evacuated, whatever overflow still leaves it
        # (the reason says so); one that was failing already sees its spill move.
        return EVACUATE, EVACUATE
    if view.name in targets.spilled:
        return SPILL, SPILL
    if life.state == RECOVERING and new > old:
        return (RECOVERY_START, RECOVERY_START) if life.event == RECOVERY_START else (RAMP, RAMP)
    if view.name in targets.capped:
        return CAPACITY_CAP, CAPACITY_CAP
    return REBALANCE, REBALANCE


def _own(view: ClusterView, life: Life, action: str, old: float, new: float,
         change: Change) -> bool:
    """Whether a move is worth a decision of its own (see the module docstring)."""
    before = change.old_weights.get(view.name)
    return (action not in FOLDED
            or abs(new - old) >= MIN_MOVE - EPSILON
            or (old <= EPSILON) != (new <= EPSILON)  # its first traffic, or its last
            or life.event is not None  # something happened to the cluster itself
            or change.old_states.get(view.name) != life.state
            or (before is not None and before != view.base_weight)
            or (action == CAPACITY_CAP and view.name not in change.old_capped)  # cap starts
            or (action == SPILL and view.name not in change.old_spilled))  # spill starts


def cluster_decisions(views: Sequence[ClusterView], lives: Mapping[str, Life], targets: Marks,
                      change: Change, *, moving: Sequence[ClusterView] | None = None,
                      removed: Collection[str] | None = None) -> list[Decision]:
    """Causes before effects: evacuations, failed recoveries, drains, removals, recovery starts
    and ramps first, rebalances after, then the folded small moves (cluster ``*``); within
    each, the order of ``views`` (pass them ranked).

    A lifecycle event (a recovery starting or failing) is a decision even on a tick where the
    share does not move, so the log tells when a cluster took a slot or lost it.

    ``moving``: when the caller knows them, the views (of ``views``, in their order) whose
    share moved or that had an event, the only ones that can make a decision; ``removed``:
    the clusters of ``change.old`` absent from ``views``. At 10,000 clusters a tick cannot
    afford to look at every cluster to find the few that moved.
    """
    entries: list[tuple[ClusterView, str, str, float, float]] = []
    folded: dict[str, list[tuple[ClusterView, float, float]]] = {}
    old_of, new_of = change.old.get, change.new
    for view in views if moving is None else moving:
        life = lives[view.name]
        old, new = old_of(view.name, 0.0), new_of[view.name]
        if abs(old - new) > EPSILON:
            action, cause = _classify(view, life, targets, old, new, change)
            if _own(view, life, action, old, new, change):
                entries.append((view, action, cause, old, new))
            else:
                folded.setdefault(action, []).append((view, old, new))
        elif life.event in (RECOVERY_START, RECOVERY_FAILED):
            entries.append((view, life.event, life.event, old, new))
    if removed is None:
        present = {v.name for v in views}
        removed = [n for n in change.old if n not in present]
    gone = sorted(n for n in removed if change.old[n] > EPSILON)
    causes: list[str] = []
    if REBALANCE in folded or any(action == REBALANCE for _, action, _, _, _ in entries):
        # Only a rebalance names its causes: the rest of the fleet's weights are read for one.
        causes = [f"{view.name} {action}" for view, action, _, _, _ in entries
                  if action not in (REBALANCE, CAPACITY_CAP)]
        causes += [f"{name} {REMOVE}" for name in gone]
        weights = change.old_weights
        causes += [f"{v.name} weight {weights[v.name]:g} -> {v.base_weight:g}" for v in views
                   if v.name in weights and weights[v.name] != v.base_weight]
    decisions = [
        Decision(change.at, change.version, view.name, action, old, new,
                 _reason(view, lives[view.name], action, change, causes)
                 + (_STILL_SPILLED if action == EVACUATE and view.name in targets.spilled
                    else ""), cause)
        for view, action, cause, old, new in entries
    ]
    decisions += [Decision(change.at, change.version, name, REMOVE, change.old[name], 0.0,
                           "removed from config", REBALANCE) for name in gone]
    decisions.sort(key=lambda d: d.action in (REBALANCE, CAPACITY_CAP))
    decisions += [_folded(action, folded[action], change, causes)
                  for action in FOLDED if action in folded]
    return decisions


def _listed(items: Sequence[str]) -> str:
    """The first `NAMED` of ``items``, and how many more."""
    more = len(items) - NAMED
    return ", ".join(items[:NAMED]) + (f" (+{more} more)" if more > 0 else "")


def _folded(action: str, moves: Sequence[tuple[ClusterView, float, float]], change: Change,
            causes: Sequence[str]) -> Decision:
    """One plan-wide decision for the small moves of one action: the total share of the
    clusters it folds before and after, the causes, and the largest moves by name."""
    count = f"1 cluster moved less than {MIN_MOVE:.0%} of traffic" if len(moves) == 1 else \
        f"{len(moves)} clusters moved less than {MIN_MOVE:.0%} of traffic each"
    why = f", {_FOLDED_REASONS[action]}" if action in _FOLDED_REASONS else \
        (", after " + _listed(causes) if causes else "")
    # As sorted()[:NAMED] (ties keep rank order), without sorting thousands to name three.
    largest = heapq.nsmallest(NAMED, moves, key=lambda m: -abs(m[2] - m[1]))
    names = [f"{view.name} {old:.3%} -> {new:.3%}" for view, old, new in largest]
    more = len(moves) - NAMED
    return Decision(change.at, change.version, ALL_CLUSTERS, action,
                    math.fsum(old for _, old, _ in moves), math.fsum(new for _, _, new in moves),
                    f"{count}{why}: {', '.join(names)}" + (f" (+{more} more)" if more > 0 else ""),
                    action)


_STILL_SPILLED = "; still takes demand beyond the passing clusters' capacity (spill)"
_FOLDED_REASONS = {
    CAPACITY_CAP: "held at headroom x capacity",
    SPILL: "taking demand beyond the passing clusters' capacity",
}
_FIXED_REASONS = {
    RAMP: "slow start",
    CAPACITY_CAP: "held at headroom x capacity",
    SPILL: "demand beyond the passing clusters' capacity spills here",
}


def _reason(view: ClusterView, life: Life, action: str,  # noqa: PLR0911 - a case per action
            change: Change, causes: list[str]) -> str:
    if action in (RAMP, BACK_OFF) and life.ramp is not None and life.ramp.reason:
        return life.ramp.reason
    if action == SPILL and life.state == UNHEALTHY:
        return f"{_FIXED_REASONS[SPILL]}, though it fails: {view.reason}"
    if action in _FIXED_REASONS:
        return _FIXED_REASONS[action]
    if action == RECOVERY_START:
        return f"passing again; took a recovery slot: {view.reason}"
    if action == RECOVERY_FAILED:
        return (f"failed while recovering ({life.failed_recoveries} in a row), cooling down: "
                f"{view.reason}")
    if action != REBALANCE:
        return view.reason
    before = change.old_weights.get(view.name)
    if before is not None and before != view.base_weight:
        return f"base weight {before:g} -> {view.base_weight:g}"
    others = [c for c in causes if not c.startswith(f"{view.name} ")]
    if others:
        return "after " + _listed(others)
    return view.reason


def shed_decision(change: Change) -> Decision | None:
    """A plan-wide decision when the shed fraction moves."""
    if abs(change.new_shed - change.old_shed) <= EPSILON:
        return None
    return Decision(change.at, change.version, ALL_CLUSTERS, SHED, 1 - change.old_shed,
                    1 - change.new_shed,
                    f"shedding {change.new_shed:.1%} of demand: beyond the serving clusters' "
                    f"capacity", SHED)


def freeze_decision(change: Change, *, was: str | None, now_frozen: str | None, passing: float,
                    unknown: float, eligible: float, min_fraction: float,
                    operator_reason: str | None = None, stale: float = 0.0) -> Decision:
    """The plan-wide decision for entering a freeze (fail_static, vantage) or leaving one
    (``now_frozen`` None, or awaiting_verdicts when missing verdicts keep the plan still)."""
    total_old, total_new = math.fsum(change.old.values()), math.fsum(change.new.values())
    weights = f"passing base weight {passing:g} of {eligible:g}"
    limit = f"min_healthy_fraction {min_fraction:g}"
    if now_frozen == FAIL_STATIC:
        action = cause = FAIL_STATIC
        reason = f"{weights} is below {limit}: keeping shares"
    elif now_frozen == VANTAGE:
        action = cause = VANTAGE
        reason = ("our own view cannot be trusted (vantage checks fail, or too few "
                  "vantages report): keeping shares")
    elif now_frozen == STALE:
        action = cause = FAIL_STATIC
        reason = (f"{weights}, {stale:g} stale (checks stopped reporting): keeping shares")
    elif now_frozen == OPERATOR_FREEZE:
        action, cause = FREEZE, OPERATOR
        reason = f"frozen by an operator: {operator_reason or 'no reason given'}"
    else:
        action, cause = RESUME, was or FAIL_STATIC
        if was == OPERATOR_FREEZE:
            cause, reason = OPERATOR, "unfrozen by an operator"
        elif was == VANTAGE:
            reason = "our own view holds again (vantage checks pass, enough vantages report)"
        elif was == STALE:
            cause, reason = FAIL_STATIC, "checks report again"
        elif now_frozen is None:
            reason = f"{weights} is at or above {limit}"
        else:
            reason = (f"{weights}, {unknown:g} without verdict, could reach {limit}: "
                      f"awaiting verdicts")
    return Decision(change.at, change.version, ALL_CLUSTERS, action, total_old, total_new, reason,
                    cause)
