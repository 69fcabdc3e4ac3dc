"""Planner invariants over random fleets, policies and timelines of health and time steps."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from failover.config import Policy
from failover.config.models import Recovery
from failover.model import ClusterState, ClusterView
from failover.planner import ALL_CLUSTERS, CAUSES, EPSILON, Plan, plan
from failover.planner.decisions import FOLDED, MIN_MOVE

S = ClusterState
NAMES = ["a", "b", "c", "d", "e", "f"]
HEALTH = [S.HEALTHY, S.HEALTHY, S.HEALTHY, S.DEGRADED, S.UNHEALTHY, S.UNHEALTHY, S.UNKNOWN,
          S.DRAINED]
"""Health's verdicts, weighted toward passing so recoveries happen often."""
TOL = 1e-9


@dataclass(frozen=True)
class Member:
    name: str
    weight: float
    capacity: float | None


@dataclass(frozen=True)
class Timeline:
    members: list[Member]
    policy: Policy
    demand: float | None
    steps: list[tuple[float, dict[str, ClusterState]]]
    """(seconds since the previous tick, health verdict per cluster)."""


@st.composite
def timelines(draw: st.DrawFn) -> Timeline:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    members = [Member(n, draw(st.sampled_from([1.0, 10.0, 50.0])),
                      draw(st.sampled_from([None, 500.0, 1000.0, 3000.0]))) for n in names]
    policy = Policy(
        min_healthy_fraction=draw(st.sampled_from([0.0, 0.3])),
        headroom=draw(st.sampled_from([0.5, 0.8, 1.0])),
        overflow=draw(st.sampled_from(["spill", "shed"])),
        max_shift_per_tick=draw(st.sampled_from([0.1, 0.25, 1.0])),
        recovery=Recovery(max_concurrent=draw(st.integers(1, 3)),
                          slow_start=draw(st.sampled_from([0.0, 10.0, 60.0])),
                          cooldown=draw(st.sampled_from([5.0, 30.0])), max_cooldown=120.0),
    )
    demand = draw(st.sampled_from([None, 1000.0, 3000.0]))
    steps = draw(st.lists(
        st.tuples(st.sampled_from([0.5, 1.0, 5.0, 30.0]),
                  st.fixed_dictionaries({n: st.sampled_from(HEALTH) for n in names})),
        min_size=1, max_size=15))
    return Timeline(members, policy, demand, steps)


def views_at(timeline: Timeline, states: dict[str, ClusterState]) -> list[ClusterView]:
    return [ClusterView(m.name, states[m.name], 1.0, m.weight, "r", m.capacity)
            for m in timeline.members]


def run(timeline: Timeline) -> list[tuple[Plan | None, Plan]]:
    """Each (previous, new) pair along the timeline."""
    pairs: list[tuple[Plan | None, Plan]] = []
    previous: Plan | None = None
    now = 0.0
    for dt, states in timeline.steps:
        now += dt
        new = plan(views_at(timeline, states), timeline.policy, previous, now,
                   demand_rps=timeline.demand)
        pairs.append((previous, new))
        previous = new
    return pairs


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_shares_are_fractions_summing_to_one_or_one_minus_shed(timeline: Timeline) -> None:
    """Shares lie in [0, 1] and sum to 1 - shed (shed only under overflow ``shed``); a frozen
    plan keeps the previous shares."""
    for previous, new in run(timeline):
        assert all(-TOL <= c.share <= 1 + TOL for c in new.clusters)
        assert 0 <= new.shed <= 1
        if timeline.policy.overflow == "spill":
            assert new.shed == 0
        if not new.frozen:
            assert math.isclose(math.fsum(new.shares.values()) + new.shed, 1.0, abs_tol=1e-9)
        elif previous is not None and previous.version >= 1:
            assert new.shares == {n: previous.share(n) for n in new.shares}


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_drained_and_unhealthy_get_nothing_except_by_spill(timeline: Timeline) -> None:
    """Unless the plan is frozen, drained and unhealthy clusters get 0, bar spilled traffic."""
    for _, new in run(timeline):
        if new.frozen:
            continue
        for c in new.clusters:
            if c.state == S.DRAINED or (c.state == S.UNHEALTHY and not c.spilled):
                assert c.share == 0, c


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_never_more_recovering_than_slots(timeline: Timeline) -> None:
    """At most ``max_concurrent`` clusters recover at once."""
    for _, new in run(timeline):
        recovering = sum(c.state == S.RECOVERING for c in new.clusters)
        assert recovering <= timeline.policy.recovery.max_concurrent


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_ramps_are_bounded_and_monotone(timeline: Timeline) -> None:
    """While others can carry the traffic (no capacity limit, some steady cluster serving), a
    recovering cluster gains at most max_shift_per_tick a tick, stays within its ramp's level
    of its target, its ramp grows by at most the time since the last tick over the slow
    start (without signals, adaptive goes no faster than timed), and it never loses traffic
    while the serving fleet stays the same. (Under
    capacity pressure a ramp may run ahead: better than traffic nobody serves.)"""
    policy = timeline.policy
    if timeline.demand is not None:
        return
    for previous, new in run(timeline):
        if previous is None or new.frozen:
            continue
        before = {c.name: c for c in previous.clusters}
        serving = {c.name for c in new.clusters
                   if c.state in (S.HEALTHY, S.DEGRADED, S.RECOVERING)}
        served_before = {c.name for c in previous.clusters
                         if c.state in (S.HEALTHY, S.DEGRADED, S.RECOVERING)}
        # Someone steady now and on the tick before: else ramps ran ahead as a last resort.
        steady = all(any(c.state in (S.HEALTHY, S.DEGRADED) and c.base_weight > 0
                         for c in p.clusters) for p in (previous, new))
        for c in new.clusters:
            if c.state != S.RECOVERING or c.ramp is None or not steady:
                continue
            old = before[c.name].share if c.name in before else 0.0
            assert c.share - old <= policy.max_shift_per_tick + TOL
            # Above its ramp only while a share it held comes down, phased.
            assert c.share <= max(c.ramp.level * c.target_share, old) + TOL
            was = before[c.name].ramp if c.name in before else None
            if was is not None and policy.recovery.slow_start > 0:
                step = (new.at - previous.at) / policy.recovery.slow_start
                # Timed, and adaptive without signals alike: a level of the target.
                if c.ramp.action in ("timed", "fallback"):
                    assert c.ramp.level <= was.level + step + TOL
            if serving == served_before and before[c.name].state == S.RECOVERING:
                assert c.share >= old - TOL


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_no_cluster_above_headroom_except_by_spill(timeline: Timeline) -> None:
    """With a demand, no cluster is planned above headroom x capacity unless spilled."""
    if timeline.demand is None:
        return
    capacity = {m.name: m.capacity for m in timeline.members}
    for _, new in run(timeline):
        if new.frozen:
            continue
        for c in new.clusters:
            cap = capacity[c.name]
            if cap is not None and not c.spilled:
                assert c.share <= timeline.policy.headroom * cap / timeline.demand + TOL, c


@settings(max_examples=300, deadline=None)
@given(timelines())
def test_versions_and_decisions_follow_the_shares(timeline: Timeline) -> None:
    """A version grows by one exactly when a share moves; every move is a decision with a
    machine-readable cause: one naming the cluster, or for a move smaller than MIN_MOVE that
    keeps it serving, a plan-wide one folding the small moves."""
    for previous, new in run(timeline):
        assert {d.cause for d in new.decisions} <= CAUSES
        if previous is None or previous.version == 0:
            continue
        names = {*previous.shares, *new.shares}
        changed = {n for n in names if abs(previous.share(n) - new.share(n)) > EPSILON}
        assert new.version == previous.version + bool(changed)
        unnamed = changed - {d.cluster for d in new.decisions}
        for name in unnamed:
            old, now = previous.share(name), new.share(name)
            assert abs(now - old) < MIN_MOVE
            assert old > EPSILON
            assert now > EPSILON
        if unnamed:
            assert {(d.cluster, d.action) for d in new.decisions} & {
                (ALL_CLUSTERS, action) for action in FOLDED}


@settings(max_examples=150, deadline=None)
@given(timelines(), st.randoms())
def test_same_inputs_same_plan(timeline: Timeline, rng: random.Random) -> None:
    """The plan depends on the inputs alone, not on the order the views come in."""
    previous: Plan | None = None
    now = 0.0
    for dt, states in timeline.steps:
        now += dt
        views = views_at(timeline, states)
        shuffled = list(views)
        rng.shuffle(shuffled)
        new = plan(views, timeline.policy, previous, now, demand_rps=timeline.demand)
        assert plan(shuffled, timeline.policy, previous, now, demand_rps=timeline.demand) == new
        previous = new
