"""The planner: health views + policy + previous plan + time -> the next plan. Pure.

Per tick: each cluster's lifecycle advances (`lifecycle`), free recovery slots go to waiting
clusters by rank, the desired shares follow base weight within capacity and slow start
(`targets`), and the move from the previous shares is phased (`shift`): evacuations at once,
everything else at most ``max_shift_per_tick``. When the planner must not trust what it sees
(`guard`), the shares stay as they are.

At 10,000 clusters every pass over the fleet shows in the tick's time (a few microseconds
per cluster is all a tick has), so the shares travel as columns aligned with the clusters'
names, decisions are looked for only where a share moved or something happened, and a
cluster's plan is the previous one, object and all, when nothing of it changed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, islice, repeat
from operator import attrgetter, eq, is_, sub

from failover.config.models import Policy
from failover.model import (
    ClusterPlan,
    ClusterState,
    ClusterView,
    Decision,
    Plan,
    Ramp,
    Signals,
)
from failover.planner.decisions import (
    UNMARKED,
    Change,
    Marks,
    cluster_decisions,
    freeze_decision,
    shed_decision,
)
from failover.planner.guard import FREEZES, Tally, freeze_reason
from failover.planner.lifecycle import (
    RECOVERY_FAILED,
    RECOVERY_START,
    Life,
    advance_all,
    cooling,
    demote,
)
from failover.planner.move import Fleet, move
from failover.planner.rank import rank_order
from failover.planner.shares import EPSILON, proportional
from failover.planner.states import DRAINED, RECOVERING, WAITING

NAME = attrgetter("name")
SHARE = attrgetter("share")
ABOVE_NOISE = EPSILON.__lt__


def placeholder_shares(views: Sequence[ClusterView]) -> dict[str, float]:
    """Base weights normalised, drained at 0: what a plan shows before it may be actuated."""
    weights = {v.name: 0.0 if v.state == DRAINED else v.base_weight for v in views}
    return proportional(weights, 1.0)


NO_SIGNALS = Signals()


def _reason(view: ClusterView, life: Life, now: float) -> str:
    if life.state == WAITING:
        if cooling(life, now) and life.cooldown_until is not None:
            return (f"passing again; cooling down {life.cooldown_until - now:.0f}s more after "
                    f"{life.failed_recoveries} failed recoveries")
        return "passing again; waiting for a recovery slot"
    if life.state == RECOVERING and life.ramp is not None:
        return f"recovering: {life.ramp.level:.0%} of its target share ({life.ramp.reason})"
    return view.reason


def _aligned(names: Sequence[str],
             prior: Mapping[str, ClusterPlan]) -> tuple[list[float], list[str]]:
    """A plan's shares aligned with ``names`` (0 where it had none), and the clusters it had
    that ``names`` no longer do."""
    found = list(map(prior.get, names))
    missing = sum(map(is_, found, repeat(None)))  # ``count(None)`` would call every __eq__
    old = [0.0 if c is None else c.share for c in found] if missing else list(map(SHARE, found))
    if len(prior) == len(names) - missing:
        return old, []
    present = set(names)
    return old, [name for name in prior if name not in present]


def _moving(old: Sequence[float], new: Sequence[float]) -> list[int]:
    """Where a share moved by more than noise."""
    return list(compress(range(len(new)), map(ABOVE_NOISE, map(abs, map(sub, old, new)))))


def plan(views: Sequence[ClusterView], policy: Policy, previous: Plan | None,
         now: float, *, demand_rps: float | None = None, vantage_ok: bool = True,
         frozen_by: str | None = None, signals: Signals = NO_SIGNALS,
         applied: bool = True, first_version: int = 1, evidence: bool = False) -> Plan:
    """The plan for this tick; deterministic, whatever the order of ``views``.

    Until a plan has been actuated (version >= 1) the plan waits for every verdict, frozen at
    version 0 with placeholder shares the daemon does not actuate; the first actuated plan is
    the base weights of the passing clusters, with no ramp. ``demand_rps`` enables capacity
    planning; ``vantage_ok`` False freezes the plan (our own view is broken); ``frozen_by``
    (an operator's reason) freezes it too, before the first actuated plan as well. Drained clusters
    come as views in state ``drained``. ``signals`` steer adaptive ramps and admission;
    ``applied`` False says the data plane does not carry the previous plan yet, so no ramp
    counts the time. ``first_version`` numbers the first actuated plan: above what the data
    plane already carries when the saved state was lost, so versions never go backwards.
    ``evidence`` says our view is proven (a quorum of vantages agrees, or the vantage checks
    pass): a low passing fraction is then acted on instead of failing static.
    """
    ordered = sorted(views, key=NAME)
    names = [v.name for v in ordered]
    if any(map(eq, names, islice(names, 1, None))):  # sorted: a duplicate is a neighbour
        msg = f"duplicate cluster names in views: {names}"
        raise ValueError(msg)
    actuated = previous if previous is not None and previous.version >= 1 else None
    prior = {c.name: c for c in previous.clusters} if previous is not None else {}
    before = prior if actuated is not None else {}
    tally = Tally.of(ordered)
    frozen = freeze_reason(tally, policy.min_healthy_fraction, started=actuated is not None,
                           vantage_ok=vantage_ok, operator=frozen_by is not None,
                           evidence=evidence)
    lives, special = advance_all(ordered, before, policy.recovery, now,
                                 started=actuated is not None)
    old, removed = _aligned(names, prior)
    if previous is None:
        old = list(placeholder_shares(ordered).values())  # what a first plan moves from
    marks: Marks = UNMARKED
    backed: frozenset[str] = frozenset()
    k = previous.slots if previous is not None else None
    k_reason = previous.slots_reason if previous is not None else ""
    full: Sequence[float] | None = None
    if frozen is None:
        fleet = Fleet(ordered, names, special, before, old,
                      math.fsum(prior[name].share for name in removed))
        moved = move(fleet, lives, policy, actuated, now, demand_rps, signals,
                     applied=applied, slots_before=k, settling=tally.unknown_clusters > 0)
        lives, shares, backed = moved.lives, moved.shares, moved.backed
        marks, full = moved.wanted, moved.wanted.full
        k, k_reason = moved.slots, moved.slots_reason
        shed = max(0.0, 1.0 - math.fsum(shares))
        shed = shed if shed > EPSILON else 0.0
    elif actuated is not None:
        # Nothing moves, and no more ramps run than there are slots either.
        lives = demote(special, lives, k or policy.recovery.max_concurrent)
        shares, shed = old, actuated.shed
    else:
        shares, shed = list(placeholder_shares(ordered).values()), 0.0
    moving = _moving(old, shares)
    if previous is None or previous.version == 0:
        # The first unfrozen plan is version ``first`` even if its shares equal the
        # placeholder's: version 0 is never actuated, and this one must be.
        version = 0 if frozen is not None else first_version
    else:
        differs = bool(moving) or any(abs(prior[name].share) > EPSILON for name in removed)
        version = previous.version + (1 if differs else 0)
    if full is None:
        full = [before[name].target_share if name in before else share
                for name, share in zip(names, shares, strict=True)]
    tick = Tick(ordered, names, lives, special, rank_order(ordered, [
        life.state for life in lives.values()]), shares, full, marks, now)
    decisions = _decisions(tick, previous, old, moving, removed, shed, backed,
                           version=version, frozen=frozen, frozen_by=frozen_by, tally=tally,
                           policy=policy)
    return Plan(version, now, _clusters(tick, prior), frozen is not None, frozen,
                tuple(decisions), shed, k, k_reason)


@dataclass(frozen=True, slots=True)
class Tick:
    """What the decisions and the clusters' plans of a tick are made of."""

    views: Sequence[ClusterView]
    names: Sequence[str]
    """In name order, as the views; every column below is aligned with them."""
    lives: Mapping[str, Life]
    special: Sequence[ClusterView]
    order: Sequence[int]
    """Positions best ranked first."""
    shares: Sequence[float]
    full: Sequence[float]
    marks: Marks
    now: float


def _clusters(tick: Tick, prior: Mapping[str, ClusterPlan]) -> tuple[ClusterPlan, ...]:
    """Each cluster's plan, best ranked first: the previous one, the very object, where
    nothing of it changed."""
    views, shares, full, now = tick.views, tick.shares, tick.full, tick.now
    capped, spilled = tick.marks.capped, tick.marks.spilled
    lives = list(tick.lives.values())
    clusters: list[ClusterPlan] = []
    append, reused = clusters.append, prior.get
    for rank, i in enumerate(tick.order, start=1):
        view, life = views[i], lives[i]
        name, state, score = view.name, life.state, view.score
        reason = _reason(view, life, now) if state is WAITING or state is RECOVERING else \
            view.reason
        was = reused(name)
        if was is not None and was.score == score:  # the score moves most, so it is first
            fields: _Fields = (
                name, shares[i], full[i], state, rank, score, view.base_weight, reason,
                life.recovery_started, life.cooldown_until, life.failed_recoveries,
                name in capped, name in spilled, life.ramp, life.guard, life.probation_until)
            if _same(was, fields):
                append(was)
                continue
        append(ClusterPlan(
            name, shares[i], full[i], state, rank, score, view.base_weight, reason,
            life.recovery_started, life.cooldown_until, life.failed_recoveries,
            name in capped, name in spilled, life.ramp, life.guard, life.probation_until))
    return tuple(clusters)


_FIELDS = attrgetter(*ClusterPlan.__slots__)
_Fields = tuple[str, float, float, ClusterState, int, float, float, str, float | None,
                float | None, int, bool, bool, Ramp | None, Ramp | None, float | None]
"""A `ClusterPlan`'s fields, in order."""


def _same(plan: ClusterPlan, fields: _Fields) -> bool:
    """Whether ``plan`` is what ``fields`` would make, to the last bit: equal, of the same
    type, zeros of the same sign, and the very same ramps (whose own equality has zeros)."""
    for have, want in zip(_FIELDS(plan), fields, strict=True):
        if have is want:
            continue
        if type(have) is not type(want) or isinstance(have, Ramp) or have != want:
            return False
        if isinstance(have, float) and isinstance(want, float) and have == 0 \
                and math.copysign(1.0, have) != math.copysign(1.0, want):
            return False
    return True


def _decisions(tick: Tick, previous: Plan | None, old: Sequence[float], moving: Sequence[int],
               removed: Sequence[str], shed: float, backed: frozenset[str], *, version: int,
               frozen: str | None, frozen_by: str | None, tally: Tally,
               policy: Policy) -> list[Decision]:
    """The decisions that make this plan from the previous one. Most ticks at scale move
    nothing: then only lifecycle events and the shed fraction can make one, and the
    comparison of old and new (`Change`) is never built."""
    was = previous.frozen_reason if previous is not None else None
    freezing = frozen != was and (frozen in FREEZES or was in FREEZES)
    old_shed = previous.shed if previous is not None else 0.0
    events = [v for v in tick.special
              if tick.lives[v.name].event in (RECOVERY_START, RECOVERY_FAILED)]
    if not freezing and (version < 1 or not (
            moving or events or removed or abs(shed - old_shed) > EPSILON)):
        return []
    prior = previous.clusters if previous is not None else ()
    change = Change(
        at=tick.now, version=version,
        old=previous.shares if previous is not None else dict(zip(tick.names, old, strict=True)),
        new=dict(zip(tick.names, tick.shares, strict=True)),
        old_weights={c.name: c.base_weight for c in prior},
        old_shed=old_shed, new_shed=shed,
        backed_off=backed,
        old_capped=frozenset(c.name for c in prior if c.capped),
        old_spilled=frozenset(c.name for c in prior if c.spilled),
        old_states={c.name: c.state for c in prior},
    )
    decisions: list[Decision] = []
    if freezing:
        decisions.append(freeze_decision(
            change, was=was if was in FREEZES else None,
            now_frozen=frozen, passing=tally.passing, unknown=tally.unknown,
            eligible=tally.eligible, min_fraction=policy.min_healthy_fraction,
            operator_reason=frozen_by, stale=tally.stale))
    if version >= 1:
        involved = set(moving)
        involved.update(bisect_left(tick.names, v.name) for v in events)
        views, order = tick.views, tick.order
        decisions += cluster_decisions(
            [views[i] for i in order], tick.lives, tick.marks, change,
            moving=[views[i] for i in order if i in involved], removed=removed)
        shedding = shed_decision(change)
        if shedding is not None:
            decisions.append(shedding)
    return decisions
