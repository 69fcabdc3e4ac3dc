"""Planner v2: recovery gate, slow start, flap damping, phased moves, capacity, vantage."""

from __future__ import annotations

import pytest

from failover.config import Policy
from failover.config.models import Recovery
from failover.model import ClusterPlan, ClusterView
from failover.planner import ALL_CLUSTERS, VANTAGE, Plan, plan
from tests.planner.views import H, R, U, W, view

POLICY = Policy(min_healthy_fraction=0.0, max_shift_per_tick=1.0,
                recovery=Recovery(max_concurrent=1, slow_start=60, cooldown=30,
                                  max_cooldown=100))


def fleet(states: str, weights: tuple[float, ...] = (25, 25, 25, 25),
          capacity: tuple[float | None, ...] | None = None) -> list[ClusterView]:
    """Clusters a, b, c, d: one letter of ``states`` each, H(ealthy) or U(nhealthy)."""
    caps = capacity or (None,) * len(states)
    return [ClusterView(name, H if s == "H" else U, 1.0, w, "r", cap)
            for name, s, w, cap in zip("abcd", states, weights, caps, strict=False)]


def run(steps: list[tuple[float, str]], policy: Policy = POLICY, previous: Plan | None = None,
        **kwargs: object) -> list[Plan]:
    plans = []
    for now, states in steps:
        previous = plan(fleet(states), policy, previous, now, **kwargs)  # type: ignore[arg-type]
        plans.append(previous)
    return plans


def cluster(p: Plan, name: str) -> ClusterPlan:
    return next(c for c in p.clusters if c.name == name)


def test_first_plan_is_base_weights_of_the_passing_without_ramp() -> None:
    """At start (no previous plan) passing clusters get their full share at once."""
    first = plan(fleet("HHHU"), POLICY, None, 0.0)
    assert first.shares == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3, "d": 0})
    assert {c.state for c in first.clusters} == {H, U}


def test_one_recovery_slot_is_taken_by_rank_the_other_waits() -> None:
    """Two clusters pass again with one slot: the better ranked recovers, the other waits."""
    _down, back = run([(0, "HHUU"), (1, "HHHH")])
    assert (cluster(back, "c").state, cluster(back, "d").state) == (R, W)
    assert cluster(back, "d").reason == "passing again; waiting for a recovery slot"
    assert back.share("c") == 0
    assert back.share("d") == 0
    assert [d.action for d in back.decisions] == ["recovery_start"]


def test_slow_start_ramps_linearly_then_hands_the_slot_on() -> None:
    """The share grows with elapsed slow start toward its target (1/3 while d waits); at the
    end the cluster is healthy and the waiting one takes the slot."""
    plans = run([(0, "HHUU"), (1, "HHHH"), (16, "HHHH"), (31, "HHHH"), (61, "HHHH")])
    assert [p.share("c") for p in plans[1:]] == pytest.approx([0, 1 / 12, 1 / 6, 1 / 3])
    done = plans[-1]
    assert cluster(done, "c").state == H
    assert cluster(done, "d").state == R
    assert cluster(done, "d").recovery_started == 61


def test_failed_recovery_cools_down_doubling_up_to_the_cap() -> None:
    """Failing during the ramp evacuates at once and blocks a new try for 30 s, then 60 s,
    then at most 100 s."""
    plans = run([(0, "HHHU"), (1, "HHHH"), (11, "HHHU"), (12, "HHHH"), (40, "HHHH"),
                 (41.5, "HHHH")])
    failed = plans[2]
    assert failed.share("d") == 0
    d = cluster(failed, "d")
    assert (d.state, d.failed_recoveries, d.cooldown_until) == (U, 1, 41)
    assert [x.action for x in failed.decisions if x.cluster == "d"] == ["recovery_failed"]
    assert cluster(plans[3], "d").state == W
    assert "cooling down 29s more" in cluster(plans[3], "d").reason
    assert cluster(plans[4], "d").state == W  # 40 < 41
    assert cluster(plans[5], "d").state == R
    second = run([(50, "HHHU"), (51, "HHHH"), (52, "HHHU")], previous=plans[-1])
    assert cluster(second[0], "d").cooldown_until == 110  # 60 s after the second failure
    third = run([(200, "HHHH"), (201, "HHHU")], previous=second[-1])
    assert cluster(third[-1], "d").cooldown_until == 301  # 120 s capped at 100


def test_failure_on_probation_counts_as_a_failed_recovery() -> None:
    """Failing within one slow start after the ramp ends still doubles the cooldown, so a
    cluster flapping slower than its ramp is damped; past probation the count starts over."""
    plans = run([(0, "HHHU"), (1, "HHHH"), (2, "HHHU"), (40, "HHHH"), (100, "HHHH"),
                 (101, "HHHU")])
    assert cluster(plans[4], "d").state == H  # ramp done at 100, on probation until 160
    failed = cluster(plans[5], "d")
    assert (failed.failed_recoveries, failed.cooldown_until) == (2, 161)  # 60 s: doubled
    assert [x.action for x in plans[5].decisions if x.cluster == "d"] == ["recovery_failed"]
    calm = run([(170, "HHHH"), (240, "HHHH"), (400, "HHHH"), (401, "HHHU")],
               previous=plans[-1])
    assert cluster(calm[2], "d").failed_recoveries == 0  # through its probation
    assert cluster(calm[3], "d").cooldown_until is None  # a plain failure: no cooldown


def test_a_failure_just_past_probation_starts_the_count_over() -> None:
    """A cluster healthy through all of its probation has its failed recoveries reset even if
    it fails on the very tick the probation ends: that failure is a plain one, and the next
    failed recovery cools down 30 s again, not 60 s."""
    plans = run([(0, "HHHU"), (1, "HHHH"), (2, "HHHU"), (40, "HHHH"), (100, "HHHH"),
                 (159, "HHHH"), (160, "HHHU")])
    assert cluster(plans[4], "d").probation_until == 160  # ramp done at 100
    assert cluster(plans[5], "d").failed_recoveries == 1  # on probation still
    plain = cluster(plans[6], "d")
    assert (plain.failed_recoveries, plain.cooldown_until) == (0, None)
    assert [x.action for x in plans[6].decisions if x.cluster == "d"] == ["evacuate"]
    again = run([(161, "HHHH"), (162, "HHHU")], previous=plans[-1])
    assert cluster(again[0], "d").state == R
    failed = cluster(again[1], "d")
    assert (failed.failed_recoveries, failed.cooldown_until) == (1, 192)


def test_evacuation_is_immediate_other_moves_are_phased() -> None:
    """With max_shift 0.1 an evacuation still moves at once; a weight change moves 0.1 a tick."""
    slow = POLICY.model_copy(update={"max_shift_per_tick": 0.1})
    first = plan(fleet("HHHH"), slow, None, 0)
    evacuated = plan(fleet("HHHU"), slow, first, 1)
    assert evacuated.shares == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3, "d": 0})
    reweighted = plan(fleet("HHHU", (70, 10, 10, 10)), slow, evacuated, 2)
    moved = sum(abs(reweighted.share(n) - evacuated.share(n)) for n in "abcd") / 2
    assert moved == pytest.approx(0.1)
    assert reweighted.share("a") == pytest.approx(1 / 3 + 0.1)
    assert cluster(reweighted, "a").target_share == pytest.approx(70 / 90)


def test_capacity_caps_shares_at_headroom() -> None:
    """With demand 1000 rps, a cluster of capacity 500 at headroom 0.8 gets at most 0.4."""
    views = fleet("HH", (50, 50), (500, None))
    p = plan(views, POLICY, None, 0, demand_rps=1000)
    assert p.shares == pytest.approx({"a": 0.4, "b": 0.6})
    assert cluster(p, "a").capped


@pytest.mark.parametrize(("overflow", "expected", "shed"), [
    ("spill", {"a": 0.4, "b": 0.4, "c": 0.2}, 0.0),
    ("shed", {"a": 0.4, "b": 0.4, "c": 0.0}, 0.2),
])
def test_demand_beyond_capacity_spills_or_sheds(overflow: str, expected: dict[str, float],
                                               shed: float) -> None:
    """Beyond headroom, serving clusters fill up to their full capacity first; what is left
    goes to the failing one (spill) or is dropped and reported (shed)."""
    policy = POLICY.model_copy(update={"overflow": overflow})
    caps = (400, 400, 400)
    first = plan(fleet("HHH", (1, 1, 1), caps), policy, None, 0, demand_rps=1000)
    p = plan(fleet("HHU", (1, 1, 1), caps), policy, first, 1, demand_rps=1000)
    assert p.shares == pytest.approx(expected)
    assert p.shed == pytest.approx(shed)
    assert cluster(p, "a").spilled  # above headroom: pushed there by overflow
    if overflow == "spill":
        assert cluster(p, "c").spilled
    else:
        assert ("*", "shed") in [(d.cluster, d.action) for d in p.decisions]


def test_headroom_is_kept_while_capacity_allows() -> None:
    """With room at headroom for all demand, nobody is pushed beyond it."""
    p = plan(fleet("HH", (1, 1), (800, 800)), POLICY, None, 0, demand_rps=1000)
    assert p.shares == pytest.approx({"a": 0.5, "b": 0.5})
    assert not any(c.spilled for c in p.clusters)


def test_failing_vantage_freezes_the_plan() -> None:
    """When the vantage checks fail the shares stay, with one vantage decision; then resume."""
    first = plan(fleet("HHHH"), POLICY, None, 0)
    frozen = plan(fleet("UUHH"), POLICY, first, 1, vantage_ok=False)
    assert (frozen.frozen, frozen.frozen_reason) == (True, VANTAGE)
    assert frozen.shares == first.shares
    assert [(d.cluster, d.action, d.cause) for d in frozen.decisions] == [
        (ALL_CLUSTERS, "vantage", "vantage")]
    resumed = plan(fleet("UUHH"), POLICY, frozen, 2)
    assert resumed.decisions[0].action == "resume"
    assert resumed.decisions[0].cause == "vantage"
    assert resumed.shares == pytest.approx({"a": 0, "b": 0, "c": 0.5, "d": 0.5})


def test_view_builder_covers_waiting_state() -> None:
    """The shared view builder knows the gate states (used by other planner tests)."""
    assert view("x", W).state == W


def test_operator_freeze_holds_shares_until_unfrozen() -> None:
    """An operator freeze keeps every share, even through an evacuation, and says who froze."""
    first = plan(fleet("HHHH"), POLICY, None, 0)
    frozen = plan(fleet("UHHH"), POLICY, first, 1, frozen_by="incident 42")
    assert (frozen.frozen_reason, frozen.shares) == ("operator", first.shares)
    assert [(d.action, d.cause) for d in frozen.decisions] == [("freeze", "operator")]
    assert "incident 42" in frozen.decisions[0].reason
    thawed = plan(fleet("UHHH"), POLICY, frozen, 2)
    assert next((d.action, d.cause) for d in thawed.decisions) == ("resume", "operator")
    assert thawed.share("a") == 0
