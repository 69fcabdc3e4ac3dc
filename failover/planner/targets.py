"""Where traffic should go this tick, before the per-tick shift limit: capacity, ramps, overflow.

Serving clusters (passing, or recovering) split the traffic by base weight. With a demand
and capacities, none is planned above ``headroom x capacity``; a recovering one is further
held to its slow-start fraction of its target. Traffic nobody can take follows ``overflow``:
under ``spill`` it goes first to recovering clusters beyond their ramp, then to serving
clusters beyond headroom up to full capacity, then over failing clusters by base weight
(Envoy's panic mode: some answers beat none); under ``shed`` it fills serving clusters up to
full capacity (ramps hold: a cold cluster is not pushed) and the rest is shed, the shares
summing below 1. Clusters waiting at the gate with traffic they carried all along keep it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from failover.config.models import Policy
from failover.model import ClusterState, ClusterView
from failover.planner.fill import fill
from failover.planner.lifecycle import Life
from failover.planner.shares import EPSILON

S = ClusterState
SERVING = (S.HEALTHY, S.DEGRADED, S.RECOVERING)
SPILL_TO = (S.UNHEALTHY, S.WAITING)
"""Failing clusters that may take spilled traffic; drained and unknown ones never do."""


@dataclass(frozen=True, slots=True)
class Targets:
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


def capacity_bounds(views: Sequence[ClusterView], policy: Policy, demand_rps: float | None,
                    limits: Mapping[str, float] | None = None) -> dict[str, float]:
    """Each cluster's largest share under ``headroom``; unbounded without demand or capacity;
    and never above a limit its live signals set."""
    limits = limits or {}
    if demand_rps is None or demand_rps <= 0:
        return {v.name: limits.get(v.name, math.inf) for v in views}
    return {v.name: min(limits.get(v.name, math.inf),
                        math.inf if v.capacity_rps is None
                        else policy.headroom * v.capacity_rps / demand_rps) for v in views}


def _add(shares: dict[str, float], extra: Mapping[str, float], spilled: set[str]) -> None:
    """Add overflow ``extra`` to ``shares``, marking who took some."""
    for name, part in extra.items():
        if part > EPSILON:
            shares[name] = shares.get(name, 0.0) + part
            spilled.add(name)


@dataclass(frozen=True, slots=True)
class Basis:
    """What every ramp and overflow rule of a tick starts from."""

    caps: dict[str, float]
    """Each cluster's largest share under headroom."""
    held: dict[str, float]
    """Shares kept as they are (clusters without a verdict, or waiting at the gate with the
    traffic they carried), within capacity."""
    rest: float
    """What the held shares leave to the serving clusters."""
    serving: dict[str, float]
    """Base weights of the serving clusters."""
    full: dict[str, float]
    """Each serving cluster's share once every ramp is done."""
    limits: dict[str, float] = field(default_factory=dict)
    """Shares live signals hold serving clusters to (adaptive guards), whatever capacity."""


def basis(views: Sequence[ClusterView], lives: Mapping[str, Life], held: Mapping[str, float],
          policy: Policy, demand_rps: float | None,
          limits: Mapping[str, float] | None = None) -> Basis:
    limits = dict(limits or {})
    caps = capacity_bounds(views, policy, demand_rps, limits)
    kept = {name: min(share, caps[name]) for name, share in held.items()}
    rest = max(0.0, 1.0 - math.fsum(kept.values()))
    serving = {v.name: v.base_weight for v in views
               if lives[v.name].state in SERVING and v.name not in kept}
    full, _ = fill(serving, caps, rest)
    return Basis(caps, kept, rest, serving, full, limits)


def ramp_bound(life: Life, full: float) -> float:
    """The share a cluster may take as far as its ramp goes: the adaptive ramp's limit, or
    the timed ramp's level of its target; its full target when not recovering."""
    if life.state != S.RECOVERING or life.ramp is None:
        return full
    if life.ramp.limit is not None:
        return min(full, life.ramp.limit)
    return life.ramp.level * full


def targets(views: Sequence[ClusterView], lives: Mapping[str, Life], base: Basis,
            policy: Policy, demand_rps: float | None) -> Targets:
    caps, held, rest, serving, full = base.caps, base.held, base.rest, base.serving, base.full
    ramping = {name for name in serving if lives[name].state == S.RECOVERING}
    ramps = {name: min(caps[name], ramp_bound(lives[name], full[name]))
             if name in ramping else caps[name] for name in serving}
    shares, unplaced = fill(serving, ramps, rest)
    # Under ``shed`` a ramp protects a cold cluster, unless nothing else serves at all.
    last_resort = policy.overflow == "spill" or not any(
        name not in ramping and weight > 0 for name, weight in serving.items())
    if unplaced > EPSILON and last_resort:
        # A recovering cluster ahead of its ramp beats traffic spilled or unserved.
        room = {name: caps[name] - shares[name] for name in serving}
        extra, unplaced = fill(serving, room, unplaced)
        shares = {name: shares[name] + extra[name] for name in serving}
    capped = frozenset(name for name in serving
                       if caps[name] < math.inf and shares[name] >= caps[name] - EPSILON)
    spilled: set[str] = set()
    if unplaced > EPSILON and policy.headroom < 1:
        # Headroom is a margin, not a wall: serving clusters up to their full capacity beat
        # failing ones, where every request errors. Ramping ones are likely cold: not them.
        full_caps = capacity_bounds(views, policy.model_copy(update={"headroom": 1.0}),
                                    demand_rps, base.limits)
        room = {name: 0.0 if name in ramping else max(0.0, full_caps[name] - shares[name])
                for name in serving}
        extra, unplaced = fill(serving, room, unplaced)
        _add(shares, extra, spilled)
    if unplaced > EPSILON and last_resort:
        # Passing clusters held at the gate beat failing ones, and beat shedding everything.
        waiting = {v.name: v.base_weight for v in views if lives[v.name].state == S.WAITING}
        extra, unplaced = fill(waiting, {name: max(0.0, caps[name] - held.get(name, 0.0))
                                         for name in waiting}, unplaced)
        _add(shares, extra, spilled)
    shed = 0.0
    if unplaced > EPSILON and policy.overflow == "spill":
        failing = {v.name: v.base_weight for v in views if lives[v.name].state in SPILL_TO}
        # Failing clusters, else serving ones, else those held where they are: some answers
        # beat none.
        for takers in (failing, serving, {v.name: v.base_weight for v in views
                                          if v.name in held}):
            if math.fsum(takers.values()) > 0:
                extra, _ = fill(takers, {}, unplaced)
                _add(shares, extra, spilled)
                break
    elif unplaced > EPSILON:
        shed = unplaced
    # Held clusters are never serving, so a share and a held share never add up twice, bar
    # overflow given to a cluster waiting with traffic: on top of what it holds.
    out = {v.name: held.get(v.name, 0.0) + shares.get(v.name, 0.0) for v in views}
    full_out = {v.name: held.get(v.name, 0.0) + full.get(v.name, 0.0) for v in views}
    for name in spilled:
        full_out[name] = out[name]
    ceilings = {v.name: math.inf if v.name in spilled else caps[v.name] for v in views}
    return Targets(out, full_out, shed, capped, frozenset(spilled), ceilings)
