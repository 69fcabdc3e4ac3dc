"""The leader's quorum view: pure, on hand-made reports."""

from __future__ import annotations

from collections.abc import Set
from typing import Literal

from failover.coordination.quorum import (
    ClusterVerdict,
    QuorumView,
    Report,
    apply_quorum,
    quorum_view,
)
from failover.model import ClusterState, ClusterView

CLUSTERS = [f"c{i}" for i in range(5)]
PASS = ClusterVerdict("passing", "all checks passing")
FAIL = ClusterVerdict("failing", "dns timeout")


def report(vantage: str, failing: Set[str] = frozenset(), at: float = 100.0,
           self_check_ok: bool = True) -> Report:
    return Report(vantage, {c: FAIL if c in failing else PASS for c in CLUSTERS}, at,
                  self_check_ok)


def view(reports: list[Report], now: float = 101.0,
         quorum: Literal["majority"] | int = "majority", min_vantages: int = 2) -> QuorumView:
    return quorum_view(reports, CLUSTERS, now, stale_after=10.0, quorum=quorum,
                       min_vantages=min_vantages)


def own(failing: Set[str] = frozenset()) -> list[ClusterView]:
    return [ClusterView(c, ClusterState.UNHEALTHY if c in failing else ClusterState.HEALTHY,
                        0.0 if c in failing else 1.0, 1.0, "here") for c in CLUSTERS]


def test_a_cluster_failing_from_two_of_three_vantages_is_failing_everywhere() -> None:
    reports = [report("a", {"c1"}), report("b", {"c1"}), report("c")]
    quorum = view(reports)
    assert (quorum.trusted, quorum.needed, quorum.unsure) == (["a", "b", "c"], 2, None)
    views = apply_quorum(own(), quorum, {r.vantage: r for r in reports})
    c1 = next(v for v in views if v.name == "c1")
    assert c1.state == ClusterState.UNHEALTHY
    assert c1.reason == "failing from 2 of 3 vantages (a: dns timeout; b: dns timeout)"
    assert quorum.per_cluster["c1"] == {"a": "failing", "b": "failing", "c": "passing"}


def test_a_cluster_failing_from_one_of_three_is_not_even_where_it_fails() -> None:
    reports = [report("a", {"c1"}), report("b"), report("c")]
    views = apply_quorum(own({"c1"}), view(reports), {r.vantage: r for r in reports})
    c1 = next(v for v in views if v.name == "c1")
    assert c1.state == ClusterState.DEGRADED  # passing, ranked down by its own low score
    assert c1.reason == "failing from 1 of 3 vantages, fewer than the 2 needed: here"


def test_a_vantage_that_sees_nearly_everything_failing_is_excluded() -> None:
    reports = [report("a", set(CLUSTERS) - {"c0"}), report("b", {"c2"}), report("c")]
    quorum = view(reports)
    assert quorum.trusted == ["b", "c"]
    [a] = [v for v in quorum.vantages if v.name == "a"]
    assert (a.fresh, a.excluded) == (True, True)
    assert a.reason == ("sees 4 of 5 clusters failing where the others see 10% on average: "
                        "its own network is the likelier fault")
    views = apply_quorum(own(), quorum, {r.vantage: r for r in reports})
    assert all(v.state == ClusterState.HEALTHY for v in views)


def test_when_every_vantage_sees_everything_failing_none_is_excluded() -> None:
    reports = [report(v, set(CLUSTERS)) for v in "abc"]
    quorum = view(reports)
    assert quorum.trusted == ["a", "b", "c"]
    views = apply_quorum(own(), quorum, {r.vantage: r for r in reports})
    assert all(v.state == ClusterState.UNHEALTHY for v in views)


def test_a_vantage_whose_own_checks_fail_is_excluded() -> None:
    reports = [report("a", {"c1"}, self_check_ok=False), report("b", {"c1"}), report("c")]
    quorum = view(reports)
    assert quorum.trusted == ["b", "c"]
    assert next(v for v in quorum.vantages if v.name == "a").reason == \
        "its own vantage checks fail"
    views = apply_quorum(own(), quorum, {r.vantage: r for r in reports})
    assert next(v for v in views if v.name == "c1").state == ClusterState.HEALTHY  # 1 of 2


def test_a_stale_vantage_does_not_count_and_too_few_leave_the_view_unsure() -> None:
    reports = [report("a", at=80.0), report("b"), report("c", at=85.0)]
    quorum = view(reports)
    assert quorum.trusted == ["b"]
    stale = next(v for v in quorum.vantages if v.name == "a")
    assert (stale.fresh, stale.reason) == (False, "no report for 21.0s (stale after 10s)")
    assert quorum.unsure == "1 trusted fresh vantage of 3, fewer than min_vantages 2"


def test_an_integer_quorum_is_that_many_vantages() -> None:
    reports = [report(v, {"c1"} if v in "ab" else set()) for v in "abcde"]
    assert view(reports, quorum=3, min_vantages=3).needed == 3
    views = apply_quorum(own(), view(reports, quorum=3, min_vantages=3),
                         {r.vantage: r for r in reports})
    assert next(v for v in views if v.name == "c1").state == ClusterState.HEALTHY


def test_vantages_agree_unless_they_split_on_most_of_the_fleet() -> None:
    """Agreement is what lets a fleet-wide failure be acted on: three vantages that all see
    four of five clusters failing agree; vantages split on most clusters do not."""
    same = [report(v, {"c0", "c1", "c2", "c3"}) for v in "abc"]
    assert view(same).agreed
    split = [report("a", {"c0", "c1", "c2"}), report("b"), report("c")]
    assert not view(split).agreed
    assert not view([report("a"), report("b", at=0.0)]).agreed  # too few: unsure
