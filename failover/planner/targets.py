"""Where traffic should go this tick, before the per-tick shift limit: capacity, ramps, overflow.

Serving clusters (passing, or recovering) split the traffic by base weight. With a demand
and capacities, none is planned above ``headroom x capacity``; a recovering one is further
held to its slow-start fraction of its target. Traffic nobody can take follows ``overflow``:
under ``spill`` it goes first to recovering clusters beyond their ramp, then to serving
clusters beyond headroom up to full capacity, then over failing clusters by base weight
(Envoy's panic mode: some answers beat none); under ``shed`` it fills serving clusters up to
full capacity (ramps hold: a cold cluster is not pushed) and the rest is shed, the shares
summing below 1. Clusters waiting at the gate with traffic they carried all along keep it.

Values come as columns: lists aligned with the tick's cluster names (ascending), or with its
serving clusters'; a tick at 10,000 clusters cannot afford a dictionary per step.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import add, and_, ge, sub

from failover.config.models import Policy
from failover.model import ClusterState, ClusterView
from failover.planner.fill import INF, POSITIVE, Parts
from failover.planner.lifecycle import Life
from failover.planner.shares import EPSILON
from failover.planner.states import DEGRADED, HEALTHY, RECOVERING, UNHEALTHY, WAITING

SERVING = frozenset({HEALTHY, DEGRADED, RECOVERING})
SPILL_TO = frozenset({UNHEALTHY, WAITING})
"""Failing clusters that may take spilled traffic; drained and unknown ones never do."""


@dataclass(frozen=True, slots=True)
class Targets:
    """A tick's targets by name. The planner keeps them as columns (`Wanted`); decisions read
    only who is capped and who spilled (`failover.planner.decisions.Marks`)."""

    shares: dict[str, float]
    """Desired shares this tick (ramps applied)."""
    full: dict[str, float]
    """Each cluster's target once every ramp is done: the status' ``target_share``."""
    shed: float = 0.0
    capped: frozenset[str] = field(default_factory=frozenset)
    """Clusters held at headroom x capacity."""
    spilled: frozenset[str] = field(default_factory=frozenset)
    """Failing clusters given traffic by spill, and serving ones pushed beyond capacity."""
    ceilings: dict[str, float] = field(default_factory=dict)
    """Shares no cluster may hold even for a tick: its headroom x capacity, unless spilled."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """`Targets` as columns aligned with the tick's names."""

    shares: list[float]
    full: list[float]
    ceilings: list[float]
    shed: float
    capped: frozenset[str]
    spilled: frozenset[str]


def position(names: Sequence[str], name: str) -> int | None:
    """Where ``name`` is in the ascending ``names``, None if absent."""
    at = bisect_left(names, name)
    return at if at < len(names) and names[at] == name else None


def capacity_bounds(capacities: Sequence[float | None], names: Sequence[str], headroom: float,
                    demand_rps: float | None, limits: Mapping[str, float]) -> list[float]:
    """Each cluster's largest share under ``headroom``; unbounded without demand or capacity;
    and never above a limit its live signals set. Columns aligned with ``names``."""
    if demand_rps is None or demand_rps <= 0:
        return [limits.get(name, INF) for name in names] if limits else [INF] * len(names)
    bounds = [INF if capacity is None else headroom * capacity / demand_rps
              for capacity in capacities]
    if not limits and not math.isnan(sum(bounds)):
        return bounds  # min(inf, bound) is the bound itself, NaN aside
    return [min(limits.get(name, INF), bound) for name, bound in zip(names, bounds, strict=True)]


@dataclass(frozen=True, slots=True)
class Basis:
    """What every ramp and overflow rule of a tick starts from."""

    capacities: list[float | None]
    """Each cluster's capacity (rps), aligned with the names."""
    caps: list[float]
    """Each cluster's largest share under headroom, aligned with the names."""
    held: dict[str, float]
    """Shares kept as they are (clusters without a verdict, or waiting at the gate with the
    traffic they carried), within capacity."""
    rest: float
    """What the held shares leave to the serving clusters."""
    serving: Parts
    """The serving clusters and their base weights."""
    at: list[int]
    """Where each serving cluster is among the names."""
    full: list[float]
    """Each serving cluster's share once every ramp is done."""
    unplaced: float
    """What the serving clusters could not take of ``rest`` under their caps."""
    limits: dict[str, float] = field(default_factory=dict)
    """Shares live signals hold serving clusters to (adaptive guards), whatever capacity."""

    def full_of(self, name: str) -> float:
        at = position(self.serving.names, name)
        return 0.0 if at is None else self.full[at]


def basis(views: Sequence[ClusterView], names: Sequence[str], states: Sequence[ClusterState],
          held: Mapping[str, float], policy: Policy, demand_rps: float | None,
          limits: Mapping[str, float]) -> Basis:
    capacities = [v.capacity_rps for v in views]
    caps = capacity_bounds(capacities, names, policy.headroom, demand_rps, limits)
    kept = {name: min(share, caps[_at(names, name)]) for name, share in held.items()}
    rest = max(0.0, 1.0 - math.fsum(kept.values()))
    serving = list(compress(range(len(views)), map(SERVING.__contains__, states)))
    if kept:
        serving = [i for i in serving if names[i] not in kept]
    if len(serving) == len(views):
        parts = Parts(names, [v.base_weight for v in views])
        bounds = caps
    else:
        parts = Parts([names[i] for i in serving], [views[i].base_weight for i in serving])
        bounds = [caps[i] for i in serving]
    full, unplaced = parts.fill(bounds, rest)
    return Basis(capacities, caps, kept, rest, parts, serving, full, unplaced, dict(limits))


def _at(names: Sequence[str], name: str) -> int:
    at = position(names, name)
    if at is None:
        raise KeyError(name)
    return at


def ramp_bound(life: Life, full: float) -> float:
    """The share a cluster may take as far as its ramp goes: the adaptive ramp's limit, or
    the timed ramp's level of its target; its full target when not recovering."""
    if life.state != RECOVERING or life.ramp is None:
        return full
    if life.ramp.limit is not None:
        return min(full, life.ramp.limit)
    return life.ramp.level * full


def targets(views: Sequence[ClusterView], names: Sequence[str], states: Sequence[ClusterState],
            lives: Mapping[str, Life], ramping: Sequence[str], base: Basis, policy: Policy,
            demand_rps: float | None) -> Wanted:
    """``ramping``: the recovering clusters, ascending."""
    parts, at, full = base.serving, base.at, base.full
    caps = base.caps if len(at) == len(names) else [base.caps[i] for i in at]
    ramps = [j for j in (position(parts.names, name) for name in ramping) if j is not None]
    if ramps:
        bounds = list(caps)
        for j in ramps:
            bounds[j] = min(caps[j], ramp_bound(lives[parts.names[j]], full[j]))
        shares, unplaced = parts.fill(bounds, base.rest)
    else:
        # The same fill as the basis': nothing ramps.
        shares, unplaced = list(full), base.unplaced
    weights = parts.weights
    # Under ``shed`` a ramp protects a cold cluster, unless nothing else serves at all.
    last_resort = policy.overflow == "spill" or \
        sum(map(POSITIVE, weights)) == sum(weights[j] > 0 for j in ramps)
    if unplaced > EPSILON and last_resort:
        # A recovering cluster ahead of its ramp beats traffic spilled or unserved.
        extra, unplaced = parts.fill(list(map(sub, caps, shares)), unplaced)
        shares = list(map(add, shares, extra))
    capped = frozenset(compress(parts.names, map(
        and_, map(INF.__gt__, caps), map(ge, shares, map(sub, caps, repeat(EPSILON))))))
    spilled = Spilled(set(), set())
    if unplaced > EPSILON and policy.headroom < 1:
        # Headroom is a margin, not a wall: serving clusters up to their full capacity beat
        # failing ones, where every request errors. Ramping ones are likely cold: not them.
        whole = capacity_bounds(
            [base.capacities[i] for i in at] if len(at) < len(names) else base.capacities,
            parts.names, 1.0, demand_rps, base.limits)
        room = list(map(max, repeat(0.0), map(sub, whole, shares)))
        for j in ramps:
            room[j] = 0.0
        extra, unplaced = parts.fill(room, unplaced)
        _add(shares, extra, parts.names, at, spilled)
    others: dict[int, float] = {}
    shed = _overflow(views, names, states, base, shares, unplaced, others, spilled,
                     spill=policy.overflow == "spill", last_resort=last_resort)
    return _columns(names, base, shares, others, shed, capped, spilled)


def _overflow(views: Sequence[ClusterView], names: Sequence[str],
              states: Sequence[ClusterState], base: Basis, shares: list[float],
              unplaced: float, others: dict[int, float], spilled: Spilled, *, spill: bool,
              last_resort: bool) -> float:
    """Where what the serving clusters cannot take goes, beyond ramps and headroom; returns
    what is shed. ``others``: what clusters that do not serve take, by position."""
    held, parts, at = base.held, base.serving, base.at
    if unplaced > EPSILON and last_resort:
        # Passing clusters held at the gate beat failing ones, and beat shedding everything.
        waiting = _where(states, WAITING.__eq__)
        unplaced = _spill(waiting, views, names, unplaced, others, spilled,
                          [max(0.0, base.caps[i] - held.get(names[i], 0.0)) for i in waiting])
    if not unplaced > EPSILON:  # NaN too, as ever
        return 0.0
    if not spill:
        return unplaced
    # Failing clusters, else serving ones, else those held where they are: some answers beat
    # none.
    failing = _where(states, SPILL_TO.__contains__)
    if math.fsum(views[i].base_weight for i in failing) > 0:
        _spill(failing, views, names, unplaced, others, spilled)
    elif math.fsum(parts.weights) > 0:
        extra, _ = parts.fill([INF] * len(parts.weights), unplaced)
        _add(shares, extra, parts.names, at, spilled)
    else:
        keeping = [i for i in range(len(names)) if names[i] in held]
        if math.fsum(views[i].base_weight for i in keeping) > 0:
            _spill(keeping, views, names, unplaced, others, spilled)
    return 0.0


@dataclass(frozen=True, slots=True)
class Spilled:
    """Who took overflow: by name, and by position among the names."""

    names: set[str]
    at: set[int]


def _where(states: Sequence[ClusterState], test: Callable[[ClusterState], bool]) -> list[int]:
    return list(compress(range(len(states)), map(test, states)))


def _add(shares: list[float], extra: Sequence[float], names: Sequence[str],
         at: Sequence[int], spilled: Spilled) -> None:
    """Add overflow ``extra`` to the serving clusters' ``shares``, marking who took some."""
    took = list(compress(range(len(extra)), map(EPSILON.__lt__, extra)))
    for j in took:
        shares[j] = shares[j] + extra[j]
    spilled.names.update(map(names.__getitem__, took))
    spilled.at.update(map(at.__getitem__, took))


def _spill(takers: Sequence[int], views: Sequence[ClusterView], names: Sequence[str],
           unplaced: float, others: dict[int, float], spilled: Spilled,
           bounds: Sequence[float] | None = None) -> float:
    """Fill what is left over clusters that do not serve (by position), added to ``others``;
    returns what they could not take."""
    parts = Parts([names[i] for i in takers], [views[i].base_weight for i in takers])
    extra, unplaced = parts.fill([INF] * len(takers) if bounds is None else bounds, unplaced)
    for i, part in zip(takers, extra, strict=True):
        if part > EPSILON:
            others[i] = others.get(i, 0.0) + part
            spilled.names.add(names[i])
            spilled.at.add(i)
    return unplaced


def _columns(names: Sequence[str], base: Basis, shares: Sequence[float],
             others: Mapping[int, float], shed: float, capped: frozenset[str],
             spilled: Spilled) -> Wanted:
    """The targets by name: a held share and a share never add up twice (held clusters never
    serve), bar overflow given to a cluster waiting with traffic: on top of what it holds."""
    held, at, count = base.held, base.at, len(names)
    # ``0.0 +``: as a held share of 0.0 adds to them, -0.0 comes out as 0.0.
    if count == len(at):
        out = list(map(add, repeat(0.0), shares))
        full = list(map(add, repeat(0.0), base.full))
    else:
        out, full = [0.0] * count, [0.0] * count
        for i, share, target in zip(at, map(add, repeat(0.0), shares),
                                    map(add, repeat(0.0), base.full), strict=True):
            out[i] = share
            full[i] = target
    kept = {_at(names, name): share for name, share in held.items()}
    for i in {*kept, *others}:
        out[i] = kept.get(i, 0.0) + others.get(i, 0.0)
        full[i] = kept.get(i, 0.0) + 0.0
    ceilings = list(base.caps)
    for i in spilled.at:
        full[i] = out[i]
        ceilings[i] = INF
    return Wanted(out, full, ceilings, shed, capped, frozenset(spilled.names))
