"""Planner v1: proportional shares, evacuation, restore, fail static, versions, decisions."""

from __future__ import annotations

import pytest

from failover.config import Policy
from failover.model import ClusterView
from failover.planner import ALL_CLUSTERS, AWAITING_VERDICTS, CAUSES, FAIL_STATIC, Plan, plan
from failover.planner.decisions import Change, cluster_decisions
from failover.planner.lifecycle import Life
from failover.planner.targets import Targets
from tests.planner.views import DR, REASONS, UNK, D, H, R, U, W, fleet, view

POLICY = Policy(min_healthy_fraction=0.3)


def started() -> Plan:
    """A first actuated plan with a, b, c healthy at 50/30/20."""
    first = plan(fleet(a=H, b=H, c=H), POLICY, None, 1.0)
    assert first.version == 1
    return first


def actions(p: Plan) -> list[tuple[str, str]]:
    return [(d.cluster, d.action) for d in p.decisions]


def test_all_healthy_shares_follow_base_weight() -> None:
    """Healthy clusters get shares proportional to base weight, summing to 1."""
    p = started()
    assert p.shares == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})
    assert not p.frozen
    assert all(c.target_share == c.share for c in p.clusters)


def test_first_plan_without_verdicts_is_version_zero_at_base_weights() -> None:
    """With no previous plan and no verdicts the plan is v0, frozen, at base weights."""
    p = plan(fleet(a=UNK, b=UNK, c=UNK), POLICY, None, 1.0)
    assert (p.version, p.frozen, p.frozen_reason) == (0, True, AWAITING_VERDICTS)
    assert p.shares == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})
    assert p.decisions == ()


def test_start_waits_for_every_verdict() -> None:
    """Before the first actuated plan, one unknown cluster keeps the plan at v0."""
    p = plan(fleet(a=H, b=U, c=UNK), POLICY, None, 1.0)
    assert (p.version, p.frozen_reason) == (0, AWAITING_VERDICTS)


def test_first_verdicts_give_version_one_with_decisions_from_base() -> None:
    """The first plan with every verdict is v1; changes from base weights are decisions."""
    waiting = plan(fleet(a=UNK, b=UNK, c=UNK), POLICY, None, 1.0)
    p = plan(fleet(a=H, b=H, c=U), POLICY, waiting, 2.0)
    assert p.version == 1
    assert p.shares == pytest.approx({"a": 0.625, "b": 0.375, "c": 0.0})
    assert actions(p) == [("c", "evacuate"), ("a", "rebalance"), ("b", "rebalance")]
    assert all(d.version == 1 and d.at == 2.0 for d in p.decisions)


def test_unchanged_inputs_keep_the_version() -> None:
    """A plan with the same shares keeps the version and decides nothing."""
    first = started()
    again = plan(fleet(a=H, b=H, c=H), POLICY, first, 2.0)
    assert (again.version, again.decisions) == (1, ())


def test_failing_cluster_is_evacuated() -> None:
    """An unhealthy cluster goes to 0 with an evacuate decision; the others take its share."""
    p = plan(fleet(a=H, b=U, c=H), POLICY, started(), 2.0)
    assert p.version == 2
    assert p.shares == pytest.approx({"a": 50 / 70, "b": 0.0, "c": 20 / 70})
    evacuate = next(d for d in p.decisions if d.cluster == "b")
    assert (evacuate.action, evacuate.from_share, evacuate.to_share) == ("evacuate", 0.3, 0.0)
    assert evacuate.reason == REASONS[U]
    rebalance = next(d for d in p.decisions if d.cluster == "a")
    assert (rebalance.action, rebalance.reason) == ("rebalance", "after b evacuate")


def test_passing_cluster_goes_through_the_recovery_gate() -> None:
    """A cluster passing again takes a recovery slot at share 0, then ramps (slow start)."""
    evacuated = plan(fleet(a=H, b=U, c=H), POLICY, started(), 2.0)
    p = plan(fleet(a=H, b=H, c=H), POLICY, evacuated, 3.0)
    assert p.version == 2
    assert p.share("b") == 0.0
    b = next(c for c in p.clusters if c.name == "b")
    assert (b.state, b.target_share, b.recovery_started) == (R, pytest.approx(0.3), 3.0)
    start = next(d for d in p.decisions if d.cluster == "b")
    assert (start.action, start.cause) == ("recovery_start", "recovery_start")
    later = plan(fleet(a=H, b=H, c=H), POLICY, p, 33.0)  # half of the 60 s slow start
    assert later.share("b") == pytest.approx(0.15)
    assert {d.cluster: d.action for d in later.decisions}["b"] == "ramp"


def test_degraded_cluster_keeps_its_share_but_ranks_lower() -> None:
    """Degraded is passing: same proportional share, ranked after healthy ones."""
    p = plan(fleet(a=D, b=H, c=H), POLICY, started(), 2.0)
    assert p.shares == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})
    assert [c.name for c in p.clusters] == ["b", "c", "a"]
    assert [c.rank for c in p.clusters] == [1, 2, 3]


def test_fail_static_keeps_previous_shares_and_decides_once() -> None:
    """Below min_healthy_fraction the plan freezes at the last shares; one decision marks it."""
    first = started()
    frozen = plan(fleet(a=U, b=U, c=H), POLICY, first, 2.0)
    assert (frozen.frozen, frozen.frozen_reason, frozen.version) == (True, FAIL_STATIC, 1)
    assert frozen.shares == first.shares
    assert actions(frozen) == [(ALL_CLUSTERS, "fail_static")]
    assert "passing base weight 20 of 100" in frozen.decisions[0].reason
    still = plan(fleet(a=U, b=U, c=H), POLICY, frozen, 3.0)
    assert (still.frozen_reason, still.decisions) == (FAIL_STATIC, ())


def test_leaving_fail_static_resumes_and_replans() -> None:
    """Back above the fraction, a resume decision comes with the recomputed shares: a cluster
    still failing is evacuated; one passing again goes through the gate but keeps the share
    the freeze left it (it carried that traffic all along), so nothing moves for it."""
    frozen = plan(fleet(a=U, b=U, c=H), POLICY, started(), 2.0)
    p = plan(fleet(a=U, b=H, c=H), POLICY, frozen, 3.0)
    assert not p.frozen
    assert p.version == 2
    assert p.shares == pytest.approx({"a": 0.0, "b": 0.3, "c": 0.7})
    assert actions(p)[0] == (ALL_CLUSTERS, "resume")
    assert ("a", "evacuate") in actions(p)
    assert next(c.state for c in p.clusters if c.name == "b") == R


def test_fail_static_at_start_stays_version_zero() -> None:
    """With everything failing at start the plan is v0 and fail_static: nothing is actuated."""
    p = plan(fleet(a=U, b=U, c=U), POLICY, None, 1.0)
    assert (p.version, p.frozen_reason) == (0, FAIL_STATIC)
    assert p.shares == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})
    assert actions(p) == [(ALL_CLUSTERS, "fail_static")]
    recovered = plan(fleet(a=H, b=U, c=U), POLICY, p, 2.0)
    assert recovered.version == 1
    assert recovered.shares == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.0})
    assert actions(recovered)[0] == (ALL_CLUSTERS, "resume")


def test_fraction_boundary_is_inclusive() -> None:
    """Exactly min_healthy_fraction of base weight passing is enough to plan."""
    views = [view("a", H, 30), view("b", U, 70)]
    p = plan(views, POLICY, plan([view("a", H, 30), view("b", H, 70)], POLICY, None, 1.0), 2.0)
    assert not p.frozen
    assert p.shares == pytest.approx({"a": 1.0, "b": 0.0})


def test_unknown_cluster_keeps_its_previous_share() -> None:
    """After start, a cluster without verdict (e.g. a check added by reload) is not moved."""
    p = plan(fleet(a=UNK, b=H, c=U), POLICY, started(), 2.0)
    assert not p.frozen
    assert p.shares == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.0})


def test_missing_verdicts_after_start_freeze_without_alarm() -> None:
    """Too little passing only because verdicts are missing: frozen awaiting, no decision."""
    first = started()
    p = plan(fleet(a=UNK, b=UNK, c=H), Policy(min_healthy_fraction=0.5), first, 2.0)
    assert (p.frozen_reason, p.version, p.decisions) == (AWAITING_VERDICTS, 1, ())
    assert p.shares == first.shares


def test_drained_cluster_gets_nothing_and_does_not_trigger_fail_static() -> None:
    """A drained cluster goes to 0 (drain); draining most weight is not a mass failure."""
    p = plan(fleet(a=DR, b=DR, c=H), POLICY, started(), 2.0)
    assert not p.frozen
    assert p.shares == pytest.approx({"a": 0.0, "b": 0.0, "c": 1.0})
    assert ("a", "drain") in actions(p)
    assert [c.name for c in p.clusters] == ["c", "a", "b"]


def test_weight_change_rebalances_with_its_cause() -> None:
    """A base weight change moves shares; the decisions name the weight change."""
    views = [view("a", H, 70), view("b", H, 30), view("c", H, 20)]
    p = plan(views, POLICY, started(), 2.0)
    assert p.version == 2
    assert p.shares == pytest.approx({"a": 70 / 120, "b": 30 / 120, "c": 20 / 120})
    reasons = {d.cluster: (d.action, d.reason) for d in p.decisions}
    assert reasons["a"] == ("rebalance", "base weight 50 -> 70")
    assert reasons["b"] == ("rebalance", "after a weight 50 -> 70")


def test_removed_cluster_is_a_decision() -> None:
    """A cluster gone from the views loses its share with a remove decision."""
    p = plan(fleet(a=H, b=H), POLICY, started(), 2.0)
    assert p.version == 2
    assert set(p.shares) == {"a", "b"}
    assert ("c", "remove") in actions(p)
    assert p.shares == pytest.approx({"a": 0.625, "b": 0.375})


def test_new_cluster_waits_at_zero_then_recovers() -> None:
    """A cluster added by reload stays at 0 while unknown, then enters through the gate."""
    first = started()
    added = plan([*fleet(a=H, b=H, c=H), view("d", UNK, 100)], POLICY, first, 2.0)
    assert (added.version, added.share("d"), added.decisions) == (1, 0.0, ())
    ready = plan([*fleet(a=H, b=H, c=H), view("d", H, 100)], POLICY, added, 3.0)
    assert ("d", "recovery_start") in actions(ready)
    assert ready.share("d") == 0.0
    ramped = plan([*fleet(a=H, b=H, c=H), view("d", H, 100)], POLICY, ready, 63.0)
    assert ramped.share("d") > 0


def test_gate_states_in_views_count_as_passing() -> None:
    """Health never reports waiting or recovering; if a view does, it is taken as passing."""
    p = plan(fleet(a=H, b=W, c=R), POLICY, started(), 2.0)
    assert p.shares == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})


def test_duplicate_names_are_refused() -> None:
    """Two views with one name are a programming error."""
    with pytest.raises(ValueError, match="duplicate"):
        plan([view("a", H), view("a", U)], POLICY, None, 1.0)


def test_leaving_fail_static_for_missing_verdicts_says_so() -> None:
    """If verdicts go missing during fail static, the resume decision says the plan awaits them."""
    frozen = plan(fleet(a=U, b=U, c=H), POLICY, started(), 2.0)
    p = plan(fleet(a=UNK, b=U, c=H), POLICY, frozen, 3.0)
    assert (p.frozen_reason, p.shares) == (AWAITING_VERDICTS, frozen.shares)
    assert actions(p) == [(ALL_CLUSTERS, "resume")]
    assert p.decisions[0].reason.endswith("awaiting verdicts")


def test_every_decision_has_a_cause_from_the_fixed_set() -> None:
    """Causes are machine-readable and bounded (a metric label)."""
    evacuated = plan(fleet(a=U, b=H, c=H), POLICY, started(), 2.0)
    causes = {d.cluster: (d.action, d.cause) for d in evacuated.decisions}
    assert causes["a"] == ("evacuate", "evacuate")
    assert causes["b"] == ("rebalance", "rebalance")
    weights = plan([view("a", H, 70), view("b", H, 30), view("c", H, 20)], POLICY, started(), 2.0)
    assert {d.cluster: d.cause for d in weights.decisions}["a"] == "rebalance"
    frozen = plan(fleet(a=U, b=U, c=H), POLICY, started(), 2.0)
    assert [d.cause for d in frozen.decisions] == ["fail_static"]
    for p in (evacuated, weights, frozen):
        assert {d.cause for d in p.decisions} <= CAUSES


def test_the_first_actuated_plan_takes_the_first_version_given() -> None:
    """After a lost state the daemon numbers on from the data plane's version."""
    first = plan(fleet(a=H, b=H, c=H), Policy(), None, 0.0, first_version=218)
    assert first.version == 218
    assert plan(fleet(a=H, b=H, c=U), Policy(), first, 1.0, first_version=218).version == 219


def test_a_ramp_in_a_large_fleet_is_a_few_decisions_a_tick_not_one_per_cluster() -> None:
    """At 200 clusters with one ramping back, each tick records the ramp and one fleet-level
    rebalance for the others' small moves: O(1) decisions a tick, not O(n)."""
    policy = Policy(min_healthy_fraction=0.0)
    names = [f"c{i:03d}" for i in range(200)]

    def views(failing: str = "") -> list[ClusterView]:
        return [view(n, U if n == failing else H, 10) for n in names]

    p = plan(views(), policy, None, 0.0)
    evacuated = plan(views("c000"), policy, p, 1.0)
    assert actions(evacuated) == [("c000", "evacuate"), (ALL_CLUSTERS, "rebalance")]
    p = evacuated
    per_tick = []
    for now in range(2, 70):
        p = plan(views(), policy, p, float(now))
        per_tick.append(len(p.decisions))
        assert {d.cluster for d in p.decisions} <= {"c000", ALL_CLUSTERS}
    assert max(per_tick) <= 2
    assert sum(per_tick) <= 2 * 61  # a ramp over the 60 s slow start, and its start
    ramp = plan(views(), policy, plan(views(), policy, evacuated, 2.0), 32.0)
    folded = next(d for d in ramp.decisions if d.cluster == ALL_CLUSTERS)
    assert (folded.action, folded.cause) == ("rebalance", "rebalance")
    assert folded.from_share == pytest.approx(1.0)
    assert folded.to_share == pytest.approx(1.0 - ramp.share("c000"))
    assert folded.reason.startswith("199 clusters moved less than 1% of traffic each, after "
                                    "c000 ramp: ")
    assert folded.reason.endswith("(+196 more)")


def test_a_large_move_or_a_move_to_or_from_zero_keeps_its_own_decision() -> None:
    """A cluster whose share moves by 1% of traffic or more, or gains its first traffic or
    loses its last, is named in its own decision; the small moves beside it are folded."""
    weights = {"a": 1000.0, **{f"s{i}": 1.0 for i in range(50)}}
    first = plan([view(n, H, w) for n, w in weights.items()], POLICY, None, 1.0)
    p = plan([view(n, H, 800 if n == "a" else w) for n, w in weights.items()], POLICY, first,
             2.0)
    assert actions(p) == [("a", "rebalance"), (ALL_CLUSTERS, "rebalance")]
    assert next(d for d in p.decisions if d.cluster == "a").reason == "base weight 1000 -> 800"
    folded = p.decisions[-1]
    assert folded.reason.startswith("50 clusters moved less than 1% of traffic each, after "
                                    "a weight 1000 -> 800: ")
    # A rebalance that gives a cluster its first traffic (or takes its last) is seldom
    # without a cause of its own; on its own it is named all the same.
    shares = {"a": 0.995, "z": 0.0, **{f"s{i}": 0.005 / 50 for i in range(50)}}
    moved = {**shares, "a": 0.990, "z": 0.005}
    views = [view(n, H, 1) for n in shares]
    change = Change(3.0, 3, shares, moved, dict.fromkeys(shares, 1.0),
                    old_states=dict.fromkeys(shares, H))
    decided = cluster_decisions(views, {v.name: Life(H) for v in views},
                                Targets(dict(moved), dict(moved)), change)
    assert [(d.cluster, d.action) for d in decided] == [("z", "rebalance"),
                                                        (ALL_CLUSTERS, "rebalance")]
    assert decided[-1].reason == "1 cluster moved less than 1% of traffic: a 99.500% -> 99.000%"


def test_a_small_move_that_comes_with_a_change_of_its_own_keeps_its_decision() -> None:
    """Under overload (spill), a cluster that fails is still named although its spilled share
    moves little; the 199 others' small spill adjustments are one plan-wide decision."""
    names = [f"c{i:03d}" for i in range(200)]

    def views(failing: str = "") -> list[ClusterView]:
        return [ClusterView(n, U if n == failing else H, 1.0, 10,
                            REASONS[U if n == failing else H], 500.0) for n in names]

    policy = Policy(min_healthy_fraction=0.0)
    first = plan(views(), policy, None, 0.0, demand_rps=200_000)
    failed = plan(views("c000"), policy, first, 1.0, demand_rps=200_000)
    # Overflow goes to the failing cluster before it would overload the passing ones; its
    # reason says that it fails, and why.
    assert actions(failed) == [("c000", "spill"), (ALL_CLUSTERS, "spill")]
    spilled = failed.decisions[0]
    assert spilled.to_share > spilled.from_share
    assert spilled.reason == ("demand beyond the passing clusters' capacity spills here, "
                              f"though it fails: {REASONS[U]}")
    assert failed.decisions[-1].reason.startswith(
        "199 clusters moved less than 1% of traffic each, taking demand beyond the passing "
        "clusters' capacity: ")


def test_a_serving_cluster_that_fails_is_evacuated_though_spill_leaves_it_some() -> None:
    """Demand beyond the passing clusters' full capacity: a serving cluster that fails loses
    most of its traffic and is named `evacuate` (its fault in the reason), not `spill`,
    though overflow still gives it some."""
    names = ["a", "b", "c"]

    def views(failing: str = "") -> list[ClusterView]:
        return [ClusterView(n, U if n == failing else H, 1.0, 10, REASONS[U if n == failing
                                                                          else H], 100.0)
                for n in names]

    policy = Policy(min_healthy_fraction=0.0, headroom=0.8)
    first = plan(views(), policy, None, 0.0, demand_rps=270)
    failed = plan(views("a"), policy, first, 1.0, demand_rps=270)
    a = next(d for d in failed.decisions if d.cluster == "a")
    assert (a.action, a.cause) == ("evacuate", "evacuate")
    assert 0 < a.to_share < a.from_share
    assert a.reason == (f"{REASONS[U]}; still takes demand beyond the passing clusters' "
                        "capacity (spill)")


def test_checks_gone_silent_freeze_the_plan_as_stale_and_say_so() -> None:
    """Most of the fleet stale at once (a stalled prober): the shares stay, the plan is
    frozen with reason `stale` and one fail_static decision; one stale cluster alone is
    just unknown."""
    import dataclasses  # noqa: PLC0415

    first = started()
    silent = [dataclasses.replace(v, state=UNK, stale=True) if v.name in ("a", "b") else v
              for v in fleet(a=H, b=H, c=H)]
    frozen = plan(silent, POLICY, first, 2.0)
    assert (frozen.frozen, frozen.frozen_reason) == (True, "stale")
    assert frozen.shares == first.shares
    [decision] = frozen.decisions
    assert (decision.action, decision.cause) == ("fail_static", "fail_static")
    assert "80 stale (checks stopped reporting)" in decision.reason
    back = plan(fleet(a=H, b=H, c=H), POLICY, frozen, 3.0)
    assert not back.frozen
    assert [(d.action, d.reason) for d in back.decisions] == [("resume", "checks report again")]

    one = [dataclasses.replace(v, state=UNK, stale=True) if v.name == "c" else v
           for v in fleet(a=H, b=H, c=H)]
    assert not plan(one, POLICY, first, 2.0).frozen
