"""Recoveries that v1 got wrong: the herd snapped onto one cluster after fail static or a
drain of everything, ramps that counted a stall as time spent ramping, and mass returns
held to a fixed number of slots however much room there was."""

from __future__ import annotations

import dataclasses
import math

import pytest

from failover.config import Policy
from failover.config.models import Recovery
from failover.model import ClusterState, ClusterView, Sample, Signals
from failover.planner import Plan, plan
from failover.planner.shift import moved
from tests.planner.views import DR, H, R, U, fleet

SHIFT = 0.25
POLICY = Policy(min_healthy_fraction=0.3, max_shift_per_tick=SHIFT,
                recovery=Recovery(max_concurrent=1, slow_start=20))


def run(states: list[dict[str, ClusterState]], previous: Plan | None,
        start: float = 0.0) -> list[Plan]:
    plans = []
    for tick, state in enumerate(states):
        previous = plan(fleet(**state), POLICY, previous, start + tick)
        plans.append(previous)
    return plans


def assert_never_zeroed_nor_jumping(before: Plan, after: list[Plan]) -> None:
    """No cluster that carried traffic loses all of it, and no tick moves more than the
    phasing allows."""
    previous = before
    for p in after:
        assert moved(previous.shares, p.shares) <= SHIFT + 1e-9, (previous.shares, p.shares)
        for name in before.shares:
            assert p.share(name) > 0, (name, p.shares)
        previous = p


ALL = {"a": H, "b": H, "c": H}


@pytest.mark.parametrize("failed", [{"a": U, "b": U, "c": U}, {"a": DR, "b": DR, "c": DR}],
                         ids=["fail-static", "drain-all"])
def test_leaving_a_freeze_keeps_the_herd_where_it_was(failed: dict[str, ClusterState]) -> None:
    """50/30/20 all fail (or are all drained): the shares stay. All pass again at once: each
    cluster keeps its share through the recovery gate and the plan settles at 50/30/20
    without a move larger than max_shift_per_tick."""
    (first,) = run([ALL], None)
    frozen = run([failed] * 3, first, 1.0)
    assert frozen[-1].frozen
    assert frozen[-1].shares == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})
    back = run([ALL] * 120, frozen[-1], 4.0)
    assert_never_zeroed_nor_jumping(frozen[-1], back)
    assert back[-1].shares == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})
    assert all(c.state == H for c in back[-1].clusters)
    assert not [d for p in back for d in p.decisions if d.action in ("rebalance", "ramp")]


def observed(views: list[ClusterView], since: float) -> list[ClusterView]:
    return [dataclasses.replace(v, observed_since=since) for v in views]


def ramping() -> tuple[Plan, float]:
    """b evacuated at 1, back at 2 and ramping; returns the plan at 12 (half its ramp)."""
    p = plan(fleet(a=H, b=H), POLICY, None, 0.0)
    p = plan(fleet(a=H, b=U), POLICY, p, 1.0)
    for now in range(2, 13):
        p = plan(fleet(a=H, b=H), POLICY, p, float(now))
    return p, 12.0


def level(p: Plan, name: str) -> float:
    ramp = next(c for c in p.clusters if c.name == name).ramp
    assert ramp is not None
    return ramp.level


def test_a_stall_does_not_count_as_ramping() -> None:
    """The daemon stopped for 20 s mid-ramp: on the first tick after, its checks report
    again only from 32, so the ramp gains no more than the observed time, not the 20 s."""
    p, now = ramping()
    assert level(p, "b") == pytest.approx(10 / 20)
    resumed = plan(observed(fleet(a=H, b=H), math.inf), POLICY, p, now + 20)
    assert level(resumed, "b") == pytest.approx(level(p, "b"))
    later = plan(observed(fleet(a=H, b=H), now + 20), POLICY, resumed, now + 21)
    assert level(later, "b") == pytest.approx(level(p, "b") + 1 / 20)


def test_a_lagging_data_plane_does_not_count_as_ramping() -> None:
    """While the actuators have not applied the previous plan, the ramp does not move."""
    p, now = ramping()
    held = plan(fleet(a=H, b=H), POLICY, p, now + 1, applied=False)
    assert level(held, "b") == pytest.approx(level(p, "b"))
    assert held.share("b") == pytest.approx(p.share("b"))


def test_a_restart_resumes_the_ramp_where_it_stood() -> None:
    """A restart (verdicts lapse: unknown) keeps the ramp's level; when the verdict is back
    it goes on from there, counting only the time since the checks report again."""
    p, now = ramping()
    unknown = plan(fleet(a=H, b=ClusterState.UNKNOWN), POLICY, p, now + 5)
    assert level(unknown, "b") == pytest.approx(level(p, "b"))
    back = plan(observed(fleet(a=H, b=H), now + 6), POLICY, unknown, now + 6.5)
    assert next(c for c in back.clusters if c.name == "b").state == R
    assert level(back, "b") == pytest.approx(level(p, "b") + 0.5 / 20)


N = 100


def mass_return(mode: str, signals: bool) -> float:
    """Seconds for N clusters, back at once after an outage of all but one, to reach their
    base shares with two slots and a 20 s slow start. With ``signals``, every cluster and
    the shared dependency report plenty of room."""
    policy = Policy(min_healthy_fraction=0.0, max_shift_per_tick=1.0,
                    recovery=Recovery(mode=mode, max_concurrent=2, slow_start=20))  # type: ignore[arg-type]
    names = [f"c{i:03}" for i in range(N)]

    def views(state: ClusterState) -> list[ClusterView]:
        return [ClusterView(n, H if i == 0 else state, 1.0, 1.0, "r") for i, n in
                enumerate(names)]

    p = plan(views(H), policy, None, 0.0)
    p = plan(views(U), policy, p, 1.0)
    now = 2.0
    while now < 3600:
        room = Signals({n: Sample(now - 1, utilization=0.2, error_ratio=0.0) for n in names},
                       Sample(now - 1, utilization=0.2, error_ratio=0.0), True, "test") \
            if signals else Signals()
        p = plan(views(H), policy, p, now, signals=room)
        if all(c.state == H for c in p.clusters):
            return now - 2.0
        now += 1.0
    return math.inf


def test_mass_return_is_paced_by_room_not_by_a_fixed_schedule() -> None:
    """99 clusters back at once: timed takes about 99/2 x 20 s (17 minutes); adaptive on
    signals with room admits as ramps advance and finishes in a fraction of that; adaptive
    without signals is exactly as slow as timed, never faster."""
    timed = mass_return("timed", signals=False)
    assert timed == pytest.approx(99 / 2 * 20, rel=0.1)
    blind = mass_return("adaptive", signals=False)
    assert blind == pytest.approx(timed, abs=1.0)
    adaptive = mass_return("adaptive", signals=True)
    assert adaptive < timed / 5, (adaptive, timed)
