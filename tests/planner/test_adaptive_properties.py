"""Adaptive recovery invariants over random fleets, timelines and live signals (fresh, stale,
missing, good and bad): whatever the signals say, the plan stays a plan, admission stays
within its limit, and signals that cannot be used never make a ramp faster than timed."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from failover.config import Policy
from failover.config.models import Recovery
from failover.model import ClusterState, ClusterView, Sample, Signals
from failover.planner import Plan, plan
from failover.planner.ramp import usable

S = ClusterState
NAMES = ["a", "b", "c", "d", "e"]
HEALTH = [S.HEALTHY, S.HEALTHY, S.HEALTHY, S.UNHEALTHY, S.UNKNOWN, S.DEGRADED]
TOL = 1e-9

samples = st.one_of(
    st.none(),
    st.builds(lambda age, u, e, lat: (age, u, e, lat),
              st.sampled_from([0.0, 1.0, 5.0, 60.0]),
              st.sampled_from([None, 0.0, 0.3, 0.8, 0.9, 0.97, 1.0]),
              st.sampled_from([None, 0.0, 0.02, 0.2]),
              st.sampled_from([None, 1.0, 1.5, 3.0])))


@st.composite
def runs(draw: st.DrawFn) -> tuple[list[ClusterView], Policy, float | None,
                                   list[tuple[float, dict[str, S], dict[str, object], object]]]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=5, unique=True))
    members = [ClusterView(n, S.HEALTHY, 1.0, draw(st.sampled_from([1.0, 10.0])), "r",
                           draw(st.sampled_from([None, 500.0, 2000.0]))) for n in names]
    policy = Policy(min_healthy_fraction=draw(st.sampled_from([0.0, 0.3])),
                    overflow=draw(st.sampled_from(["spill", "shed"])),
                    max_shift_per_tick=draw(st.sampled_from([0.1, 1.0])),
                    recovery=Recovery(mode="adaptive", max_concurrent=draw(st.integers(1, 2)),
                                      slow_start=draw(st.sampled_from([5.0, 30.0])),
                                      cooldown=5.0))
    demand = draw(st.sampled_from([None, 1000.0, 3000.0]))
    steps = draw(st.lists(st.tuples(
        st.sampled_from([0.5, 1.0, 5.0]),
        st.fixed_dictionaries({n: st.sampled_from(HEALTH) for n in names}),
        st.fixed_dictionaries({n: samples for n in names}),
        st.one_of(st.just("unwatched"), samples)), min_size=2, max_size=25))
    return members, policy, demand, steps


def signals_at(now: float, per: dict[str, object], shared: object) -> Signals:
    def sample(raw: object) -> Sample | None:
        if raw is None:
            return None
        age, u, e, lat = raw  # type: ignore[misc]
        return Sample(now - age, u, e, lat)

    clusters = {n: s for n, raw in per.items() if (s := sample(raw)) is not None}
    if shared == "unwatched":
        return Signals(clusters, None, False, "test")
    return Signals(clusters, sample(shared), True, "test")


@settings(max_examples=200, deadline=None)
@given(runs())
def test_adaptive_plans_stay_plans_whatever_the_signals(run: tuple) -> None:  # type: ignore[type-arg]
    """Shares in [0, 1] summing to 1 - shed; no admission beyond the admission limit; a
    ramp's share within its limit (or coming down to it) while others can carry the traffic;
    a ramp whose signals cannot be used grows at most at the timed pace."""
    members, policy, demand, steps = run
    previous: Plan | None = None
    now = 0.0
    for dt, states, per, shared in steps:
        now += dt
        views = [ClusterView(m.name, states[m.name], 1.0, m.base_weight, "r", m.capacity_rps)
                 for m in members]
        signals = signals_at(now, per, shared)
        new = plan(views, policy, previous, now, demand_rps=demand, signals=signals)
        assert all(-TOL <= c.share <= 1 + TOL for c in new.clusters)
        if not new.frozen:
            assert math.isclose(math.fsum(new.shares.values()) + new.shed, 1.0, abs_tol=1e-9)
            assert new.slots is not None
            # Admission only into free slots (a limit that shrank does not stop ramps that
            # run, it only stops new ones).
            recovering = [c for c in new.clusters if c.state == S.RECOVERING]
            if any(c.recovery_started == now for c in recovering):
                assert len(recovering) <= new.slots
        before = {} if previous is None else {c.name: c for c in previous.clusters}
        for c in new.clusters:
            ramp = c.ramp
            if ramp is None or c.state != S.RECOVERING or new.frozen:
                continue
            assert ramp.limit is not None
            old = before[c.name].share if c.name in before else 0.0
            steady = any(o.state in (S.HEALTHY, S.DEGRADED) and o.base_weight > 0
                         and o.guard is None for o in new.clusters)
            if demand is None and steady:  # else ramps may run ahead, as a last resort
                assert c.share <= max(ramp.limit, old) + TOL
            was = before[c.name].ramp if c.name in before else None
            blind = usable(signals.clusters.get(c.name), now, policy.recovery.adaptive)
            if was is not None and blind is not None and ramp.action == "fallback":
                assert ramp.level <= was.level + dt / policy.recovery.slow_start + TOL
        previous = new
