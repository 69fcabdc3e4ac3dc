"""An unfrozen tick: ramps step, recoveries finish and start, targets, the phased move.

On most ticks only a few clusters of a large fleet are doing anything: `advance_all` names
them (``special``), and ramps, guards, admission and held shares look at those alone; the
targets and the phased move are columns over the whole fleet.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from failover.config.models import Policy, Recovery
from failover.model import ClusterPlan, ClusterView, Plan, Signals
from failover.planner.lifecycle import (
    RECOVERY_START,
    SERVING_SHARE,
    Life,
    admit,
    cooling,
    finish,
    replace,
)
from failover.planner.ramp import (
    BACK_OFF,
    FALLBACK,
    Round,
    Shared,
    changed,
    shared_view,
    slots,
    start_level,
    step_all,
    step_guard,
)
from failover.planner.shift import phase
from failover.planner.states import (
    DEGRADED,
    DRAINED,
    HEALTHY,
    RECOVERING,
    UNHEALTHY,
    UNKNOWN,
    WAITING,
)
from failover.planner.targets import Basis, Wanted, basis, position, targets

GONE = frozenset({UNHEALTHY, DRAINED})
PASSING = frozenset({HEALTHY, DEGRADED})


class Carried(Mapping[str, float]):
    """The shares a plan carries, by name, read off its clusters: a tick looks up a few, and
    a dictionary of them all would cost more than the lookups."""

    __slots__ = ("_plans",)

    def __init__(self, plans: Mapping[str, ClusterPlan]) -> None:
        self._plans = plans

    def __getitem__(self, name: str) -> float:
        return self._plans[name].share

    def __iter__(self) -> Iterator[str]:
        return iter(self._plans)

    def __len__(self) -> int:
        return len(self._plans)


def observed_seconds(view: ClusterView, since: float, now: float, *, applied: bool) -> float:
    """Seconds since ``since`` in which the cluster was observed and the data plane carried
    the plan: what a ramp may count."""
    if not applied:
        return 0.0
    return max(0.0, now - max(since, view.observed_since))


@dataclass(frozen=True, slots=True)
class Moved:
    lives: dict[str, Life]
    wanted: Wanted
    shares: list[float]
    """Aligned with the names."""
    backed: frozenset[str]
    """Clusters whose ramp or guard backed off on their signals."""
    slots: int
    slots_reason: str


@dataclass(frozen=True, slots=True)
class Fleet:
    """The clusters of a tick: views and names in name order, and the actuated plan's."""

    views: Sequence[ClusterView]
    names: Sequence[str]
    special: Sequence[ClusterView]
    """`advance_all`'s: every cluster but the plainly healthy, degraded, failing or drained."""
    before: Mapping[str, ClusterPlan]
    """The actuated plan's clusters by name (none before one)."""
    old: Sequence[float]
    """The actuated plan's shares, aligned with the names."""
    removed: float
    """What the actuated plan gave clusters no longer in the views."""


def move(fleet: Fleet, lives: dict[str, Life], policy: Policy, actuated: Plan | None,
         now: float, demand_rps: float | None, signals: Signals, *, applied: bool,
         slots_before: int | None, settling: bool) -> Moved:
    """``settling``: some cluster has no verdict (after a restart, say). Its share is held,
    and the others' targets are only what it leaves: ramps hold where they are until it has
    one, neither moving on nor measured against such a target."""
    recovery = policy.recovery
    special, before = fleet.special, fleet.before
    kept = Carried(before)
    since = actuated.at if actuated is not None else now
    shared = shared_view(signals, recovery.adaptive, now)
    resuming = [v.name for v in special if lives[v.name].state == RECOVERING]
    fared, backed = Round(), set[str]()
    if not settling:
        fared, backed = _step(fleet, lives, resuming, signals, shared, recovery, now, since,
                              applied=applied)
    guarded, touched = _guards(fleet, lives, signals, policy, now, since, kept, demand_rps,
                               applied=applied)
    backed |= guarded
    if settling and slots_before is not None:
        k, k_reason = slots_before, "a verdict is missing: holding"
    else:
        k, k_reason = slots(
            slots_before, recovery, fared, shared,
            busy=sum(lives[v.name].state == RECOVERING for v in special),
            waiting=sum(lives[v.name].state == WAITING and not cooling(lives[v.name], now)
                        for v in special))
    lives = admit(special, lives, k, now, kept)
    held = {v.name: kept.get(v.name, 0.0) for v in special
            if lives[v.name].state == UNKNOWN
            or (lives[v.name].state == WAITING and kept.get(v.name, 0.0) > SERVING_SHARE)}
    if settling:
        held |= {name: kept[name] for name in resuming if kept.get(name, 0.0) > SERVING_SHARE}
    states = [life.state for life in lives.values()]
    limits = {}
    for name in sorted({v.name for v in special} | touched):
        guard = lives[name].guard
        if guard is not None and guard.limit is not None:
            limits[name] = guard.limit
    base = basis(fleet.views, fleet.names, states, held, policy, demand_rps, limits)
    recovering = [v.name for v in special if lives[v.name].state == RECOVERING]
    _level(lives, recovering, base, signals, recovery, now)
    wanted = targets(fleet.views, fleet.names, states, lives, recovering, base, policy,
                     demand_rps)
    if actuated is None:
        return Moved(lives, wanted, wanted.shares, frozenset(backed), k, k_reason)
    # Failing, drained and backed-off clusters shed what they hold above their target at
    # once: that traffic only errors there. Everything else moves phased.
    evacuated = list(map(GONE.__contains__, states))
    for name in backed:
        evacuated[_at(fleet.names, name)] = True
    shares = phase(fleet.names, fleet.old, fleet.removed, wanted.shares, evacuated,
                   policy.max_shift_per_tick, wanted.ceilings,
                   {_at(fleet.names, name) for name in recovering})
    return Moved(lives, wanted, shares, frozenset(backed), k, k_reason)


def _step(fleet: Fleet, lives: dict[str, Life], resuming: Sequence[str], signals: Signals,
          shared: Shared, recovery: Recovery, now: float, since: float, *,
          applied: bool) -> tuple[Round, set[str]]:
    """Every ramp steps, and those at their target finish, in ``lives``; returns how they
    fared, and those that backed off. Adaptive ramps move absolute shares, measured against
    the targets of the last tick (this tick's depend on who is admitted next); a timed ramp
    is a level of its target."""
    observed = {v.name: observed_seconds(v, since, now, applied=applied) for v in fleet.special
                if lives[v.name].state == RECOVERING}
    full_now = {name: fleet.before[name].target_share for name in resuming
                if name in fleet.before}
    fared, backed = step_all(lives, resuming, signals, shared, now, observed, full_now,
                             recovery)
    for name in resuming:
        lives[name] = finish(lives[name], recovery, now)
    return fared, backed


def _level(lives: dict[str, Life], recovering: Sequence[str], base: Basis, signals: Signals,
           recovery: Recovery, now: float) -> None:
    """Each ramp against this tick's target, in ``lives``: where one just admitted starts,
    the share a timed one's level stands for, the level an adaptive one's limit stands for."""
    for name in recovering:
        life = lives[name]
        ramp = life.ramp
        if ramp is None or name in base.held:
            continue
        full = base.full_of(name)
        if life.event == RECOVERY_START:
            ramp = start_level(ramp, full, recovery, signals.clusters.get(name), now)
        elif ramp.action == FALLBACK:  # the timed ramp: a level of this tick's target
            ramp = changed(ramp, limit=ramp.level * full)
        elif ramp.limit is not None:  # the level against this tick's target
            ramp = changed(ramp, level=1.0 if full <= 0 else min(1.0, ramp.limit / full))
        lives[name] = changed(life, ramp=ramp)


def _at(names: Sequence[str], name: str) -> int:
    at = position(names, name)
    if at is None:
        raise KeyError(name)
    return at


def _guards(fleet: Fleet, lives: dict[str, Life], signals: Signals, policy: Policy,
            now: float, since: float, kept: Mapping[str, float], demand_rps: float | None, *,
            applied: bool) -> tuple[set[str], set[str]]:
    """Serving clusters' share limits from their signals (adaptive), in ``lives``; returns
    those lowered now, and every cluster looked at."""
    lowered: set[str] = set()
    if policy.recovery.mode != "adaptive":
        return lowered, set()
    worst = policy.recovery.adaptive.max_error_ratio
    # A limit is stepped where there is one, or where the signals say requests fail.
    candidates = {v.name: v for v in fleet.special if lives[v.name].guard is not None}
    for name, reading in signals.clusters.items():
        if not (reading.error_ratio or 0.0) < worst and name not in candidates:
            at = position(fleet.names, name)
            if at is not None:
                candidates[name] = fleet.views[at]
    for name in sorted(candidates):
        view, life = candidates[name], lives[name]
        if life.state not in PASSING:
            continue
        sample = signals.clusters.get(name)
        if life.guard is None and (sample is None or (sample.error_ratio or 0.0) < worst):
            continue
        bound = 1.0 if view.capacity_rps is None or not demand_rps else \
            min(1.0, view.capacity_rps / demand_rps)
        limit = step_guard(life.guard, sample, now,
                           observed_seconds(view, since, now, applied=applied),
                           policy.recovery, kept.get(name, 0.0), bound)
        if limit is not None and limit.action == BACK_OFF:
            lowered.add(name)
        if limit is not life.guard:
            lives[name] = replace(life, guard=limit)
    return lowered, set(candidates)
