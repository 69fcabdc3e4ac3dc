"""The naive policy: base weights over passing clusters, at once, whatever else is true."""

from __future__ import annotations

import pytest

from failover.config.models import Policy
from failover.planner import ClusterState, ClusterView, Plan
from failover.simulate import naive_plan

H, D, U = ClusterState.HEALTHY, ClusterState.DEGRADED, ClusterState.UNHEALTHY
UNK = ClusterState.UNKNOWN
POLICY = Policy()


def views(a: ClusterState, b: ClusterState, c: ClusterState = H) -> list[ClusterView]:
    return [ClusterView("a", a, 1.0, 50, "", 100.0), ClusterView("b", b, 1.0, 30, "", 100.0),
            ClusterView("c", c, 1.0, 20, "", 100.0)]


def test_base_weights_over_passing_clusters() -> None:
    """Healthy and degraded clusters split the traffic by base weight; others get nothing."""
    plan = naive_plan(views(U, D), POLICY, None, 0.0)
    assert plan.shares == {"a": 0.0, "b": pytest.approx(0.6), "c": pytest.approx(0.4)}
    assert plan.version == 1
    assert not plan.frozen


def test_snaps_back_in_one_tick() -> None:
    """A cluster passing again gets its full base weight on the very next plan, no ramp."""
    out = naive_plan(views(U, H), POLICY, None, 0.0)
    back = naive_plan(views(H, H), POLICY, out, 1.0)
    assert back.shares == {"a": pytest.approx(0.5), "b": pytest.approx(0.3),
                           "c": pytest.approx(0.2)}
    assert back.version == out.version + 1


def test_unknown_clusters_get_nothing() -> None:
    """A cluster without a verdict (e.g. just added) is not passing, so it gets no traffic."""
    assert naive_plan(views(UNK, H), POLICY, None, 0.0).share("a") == 0.0


def test_ignores_capacity_and_demand() -> None:
    """Demand far above every capacity changes nothing: shares stay at base weights."""
    plan = naive_plan(views(H, H), POLICY, None, 0.0, demand_rps=1e6)
    assert plan.share("a") == pytest.approx(0.5)


def test_keeps_previous_shares_when_none_pass() -> None:
    """With no cluster passing, the previous shares stay, frozen, and the version holds."""
    before = naive_plan(views(U, H, U), POLICY, None, 0.0)
    after = naive_plan(views(U, U, U), POLICY, before, 1.0)
    assert after.shares == before.shares
    assert after.frozen
    assert after.version == before.version


def test_same_call_shape_as_the_planner() -> None:
    """It returns a Plan whose clusters carry the states health gave."""
    plan = naive_plan(views(U, H), POLICY, None, 0.0, demand_rps=None, vantage_ok=False)
    assert isinstance(plan, Plan)
    assert {c.name: c.state for c in plan.clusters} == {"a": U, "b": H, "c": H}
