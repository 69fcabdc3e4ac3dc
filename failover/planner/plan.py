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
from failover.model import (
    ClusterPlan,
    ClusterState,
    ClusterView,
    Decision,
    Plan,
    Signals,
)
from failover.planner.decisions import (
    Change,
    cluster_decisions,
    freeze_decision,
    shed_decision,
)
from failover.planner.guard import FREEZES, Tally, freeze_reason
from failover.planner.lifecycle import (
    RECOVERY_START,
    SERVING_SHARE,
    Life,
    admit,
    advance,
    cooling,
    demote,
    finish,
)
from failover.planner.ramp import (
    BACK_OFF,
    FALLBACK,
    Round,
    changed,
    shared_view,
    slots,
    start_level,
    step_all,
    step_guard,
)
from failover.planner.rank import ranks
from failover.planner.shares import EPSILON, differ, proportional
from failover.planner.shift import phase
from failover.planner.targets import Targets, basis, targets

S = ClusterState


def placeholder_shares(views: Sequence[ClusterView]) -> dict[str, float]:
    """Base weights normalised, drained at 0: what a plan shows before it may be actuated."""
    weights = {v.name: 0.0 if v.state == S.DRAINED else v.base_weight for v in views}
    return proportional(weights, 1.0)


def _next_version(previous: Plan | None, shares: Mapping[str, float], *, frozen: bool,
                  first: int) -> int:
    """0 until a plan may be actuated; then +1 whenever a share moves.

    The first unfrozen plan is version ``first`` even if its shares equal the placeholder's:
    version 0 is never actuated, and this one must be.
    """
    if previous is None or previous.version == 0:
        return 0 if frozen else first
    return previous.version + (1 if differ(previous.shares, shares) else 0)


NO_SIGNALS = Signals()


def _reason(view: ClusterView, life: Life, now: float) -> str:
    if life.state == S.WAITING:
        if cooling(life, now) and life.cooldown_until is not None:
            return (f"passing again; cooling down {life.cooldown_until - now:.0f}s more after "
                    f"{life.failed_recoveries} failed recoveries")
        return "passing again; waiting for a recovery slot"
    if life.state == S.RECOVERING and life.ramp is not None:
        return f"recovering: {life.ramp.level:.0%} of its target share ({life.ramp.reason})"
    return view.reason


def observed_seconds(view: ClusterView, since: float, now: float, *, applied: bool) -> float:
    """Seconds since ``since`` in which the cluster was observed and the data plane carried
    the plan: what a ramp may count."""
    if not applied:
        return 0.0
    return max(0.0, now - max(since, view.observed_since))


_Moved = tuple[dict[str, Life], Targets, dict[str, float], frozenset[str], int, str]


def _held(ordered: Sequence[ClusterView], lives: Mapping[str, Life],
          kept: Mapping[str, float]) -> dict[str, float]:
    """Shares kept as they are: clusters without a verdict, and clusters waiting at the gate
    with the traffic they carried all along."""
    return {v.name: kept.get(v.name, 0.0) for v in ordered
            if lives[v.name].state == S.UNKNOWN
            or (lives[v.name].state == S.WAITING and kept.get(v.name, 0.0) > SERVING_SHARE)}


def _limits(before: Mapping[str, ClusterPlan]) -> dict[str, float]:
    return {name: c.guard.limit for name, c in before.items()
            if c.guard is not None and c.guard.limit is not None}


def _guards(ordered: Sequence[ClusterView], lives: dict[str, Life],
            signals: Signals, policy: Policy, now: float,
            observed: Mapping[str, float], kept: Mapping[str, float],
            demand_rps: float | None) -> tuple[dict[str, Life], set[str]]:
    """Serving clusters' share limits from their signals (adaptive); and those lowered now."""
    lowered: set[str] = set()
    if policy.recovery.mode != "adaptive":
        return lives, lowered
    out = dict(lives)
    worst = policy.recovery.adaptive.max_error_ratio
    for view in ordered:
        life = lives[view.name]
        if life.state not in (S.HEALTHY, S.DEGRADED):
            continue
        sample = signals.clusters.get(view.name)
        if life.guard is None and (sample is None or (sample.error_ratio or 0.0) < worst):
            continue  # the common case, decided here: no limit, and no failing to set one
        bound = 1.0 if view.capacity_rps is None or not demand_rps else \
            min(1.0, view.capacity_rps / demand_rps)
        limit = step_guard(life.guard, sample, now, observed.get(view.name, 0.0),
                           policy.recovery, kept.get(view.name, 0.0), bound)
        if limit is not None and limit.action == BACK_OFF:
            lowered.add(view.name)
        if limit is not life.guard:
            out[view.name] = dataclasses.replace(life, guard=limit)
    return out, lowered


def _move(ordered: Sequence[ClusterView], lives: dict[str, Life], policy: Policy,
          actuated: Plan | None, now: float, demand_rps: float | None, signals: Signals, *,
          applied: bool, slots_before: int | None) -> _Moved:
    """An unfrozen tick: ramps step, recoveries finish and start, targets, the phased move.
    Returns the lives, targets, shares, ramps that backed off, and the admission limit."""
    recovery = policy.recovery
    kept = actuated.shares if actuated is not None else {}
    since = actuated.at if actuated is not None else now
    observed = {v.name: observed_seconds(v, since, now, applied=applied) for v in ordered}
    shared = shared_view(signals, recovery.adaptive, now)
    before = {c.name: c for c in actuated.clusters} if actuated is not None else {}
    # Adaptive ramps move absolute shares, measured against the targets of the last tick
    # (this tick's depend on who is admitted next); a timed ramp is a level of its target.
    full_now = {name: c.target_share for name, c in before.items()}
    # While some cluster has no verdict (after a restart, say) its share is held, and the
    # others' targets are only what it leaves: ramps hold where they are until it has one,
    # neither moving on nor measured against such a target.
    settling = any(life.state == S.UNKNOWN for life in lives.values())
    resuming = [name for name, life in lives.items() if life.state == S.RECOVERING]
    fared = Round()
    backed: set[str] = set()
    if not settling:
        lives, fared, backed = step_all(lives, signals, shared, now, observed, full_now,
                                        recovery)
        lives = {name: finish(life, recovery, now) for name, life in lives.items()}
    lives, guarded = _guards(ordered, lives, signals, policy, now, observed, kept, demand_rps)
    backed |= guarded
    if settling and slots_before is not None:
        k, k_reason = slots_before, "a verdict is missing: holding"
    else:
        k, k_reason = slots(
            slots_before, recovery, fared, shared,
            busy=sum(life.state == S.RECOVERING for life in lives.values()),
            waiting=sum(life.state == S.WAITING and not cooling(life, now)
                        for life in lives.values()))
    lives = admit(ordered, lives, k, now, kept)
    held = _held(ordered, lives, kept)
    if settling:
        held |= {name: kept[name] for name in resuming if kept.get(name, 0.0) > SERVING_SHARE}
    base = basis(ordered, lives, held, policy, demand_rps,
                 {name: life.guard.limit for name, life in lives.items()
                  if life.guard is not None and life.guard.limit is not None})
    for name, life in lives.items():
        ramp, full = life.ramp, base.full.get(name, 0.0)
        if life.state != S.RECOVERING or ramp is None or name in base.held:
            continue
        if life.event == RECOVERY_START:
            ramp = start_level(ramp, full, recovery, signals.clusters.get(name), now)
        elif ramp.action == FALLBACK:  # the timed ramp: a level of this tick's target
            ramp = changed(ramp, limit=ramp.level * full)
        elif ramp.limit is not None:  # the level against this tick's target
            ramp = changed(ramp, level=1.0 if full <= 0 else
                                       min(1.0, ramp.limit / full))
        lives[name] = changed(life, ramp=ramp)
    wanted = targets(ordered, lives, base, policy, demand_rps)
    if actuated is None:
        return lives, wanted, wanted.shares, frozenset(backed), k, k_reason
    # Failing, drained and backed-off clusters shed what they hold above their target at
    # once: that traffic only errors there. Everything else moves phased.
    gone = {n for n, life in lives.items() if life.state in (S.UNHEALTHY, S.DRAINED)} | backed
    ramping = {n for n, life in lives.items() if life.state == S.RECOVERING}
    shares = phase(actuated.shares, wanted.shares, gone, policy.max_shift_per_tick,
                   wanted.ceilings, ramping)
    return lives, wanted, shares, frozenset(backed), k, k_reason


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
    ordered = sorted(views, key=lambda v: v.name)
    if len({v.name for v in ordered}) != len(ordered):
        msg = f"duplicate cluster names in views: {[v.name for v in ordered]}"
        raise ValueError(msg)
    actuated = previous if previous is not None and previous.version >= 1 else None
    started = actuated is not None
    before = {c.name: c for c in actuated.clusters} if actuated is not None else {}
    tally = Tally.of(ordered)
    frozen = freeze_reason(tally, policy.min_healthy_fraction, started=started,
                           vantage_ok=vantage_ok, operator=frozen_by is not None,
                           evidence=evidence)
    lives = {v.name: advance(v, before.get(v.name), policy.recovery, now, started=started)
             for v in ordered}
    wanted: Targets | None = None
    backed: frozenset[str] = frozenset()
    k = previous.slots if previous is not None else None
    k_reason = previous.slots_reason if previous is not None else ""
    if frozen is None:
        moved = _move(ordered, lives, policy, actuated, now, demand_rps, signals,
                      applied=applied, slots_before=k)
        lives, wanted, shares, backed, k, k_reason = moved
        shed = max(0.0, 1.0 - math.fsum(shares.values()))
        shed = shed if shed > EPSILON else 0.0
    elif actuated is not None:
        # Nothing moves, and no more ramps run than there are slots either.
        lives = demote(ordered, lives, k or policy.recovery.max_concurrent)
        shares = {v.name: actuated.share(v.name) for v in ordered}
        shed = actuated.shed
    else:
        shares, shed = placeholder_shares(ordered), 0.0
    version = _next_version(previous, shares, frozen=frozen is not None, first=first_version)

    as_planned = [changed(v, state=lives[v.name].state) for v in ordered]
    rank = ranks(as_planned)
    ranked = sorted(as_planned, key=lambda v: rank[v.name])
    was = previous.frozen_reason if previous is not None else None
    change = Change(
        at=now, version=version,
        old=previous.shares if previous is not None else placeholder_shares(ordered),
        new=shares,
        old_weights={} if previous is None else {c.name: c.base_weight for c in previous.clusters},
        old_shed=previous.shed if previous is not None else 0.0, new_shed=shed,
        backed_off=backed,
        old_capped=frozenset(c.name for c in previous.clusters if c.capped)
        if previous is not None else frozenset(),
        old_spilled=frozenset(c.name for c in previous.clusters if c.spilled)
        if previous is not None else frozenset(),
        old_states={} if previous is None else {c.name: c.state for c in previous.clusters},
    )
    decisions: list[Decision] = []
    if frozen != was and (frozen in FREEZES or was in FREEZES):
        decisions.append(freeze_decision(
            change, was=was if was in FREEZES else None,
            now_frozen=frozen, passing=tally.passing, unknown=tally.unknown,
            eligible=tally.eligible, min_fraction=policy.min_healthy_fraction,
            operator_reason=frozen_by, stale=tally.stale))
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
            _reason(original[v.name], lives[v.name], now),
            lives[v.name].recovery_started, lives[v.name].cooldown_until,
            lives[v.name].failed_recoveries,
            capped=wanted is not None and v.name in wanted.capped,
            spilled=wanted is not None and v.name in wanted.spilled,
            ramp=lives[v.name].ramp, probation_until=lives[v.name].probation_until,
            guard=lives[v.name].guard)
        for v in ranked)
    return Plan(version, now, clusters, frozen is not None, frozen, tuple(decisions), shed,
                k, k_reason)
