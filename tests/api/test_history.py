"""The share history behind the page's sparklines keeps 15 minutes of changes, bounded."""

from __future__ import annotations

from failover.api.history import ShareHistory
from failover.model import ClusterPlan, ClusterState, Plan


def plan(at: float, **shares: float) -> Plan:
    clusters = tuple(ClusterPlan(name, share, share, ClusterState.HEALTHY, rank, 1.0, 1.0, "")
                     for rank, (name, share) in enumerate(shares.items(), start=1))
    return Plan(1, at, clusters, False, None)


def test_a_steady_share_is_one_point_however_many_ticks() -> None:
    """Ticks that change nothing add nothing: a steady cluster costs one point."""
    history = ShareHistory(window=900, step=5)
    for tick in range(2000):
        history.record(plan(float(tick), a=0.5))
    series = history.series("a")
    assert series is not None
    assert series.points == ((0, 0.5),)
    assert (series.first, series.last) == (1999 // 5 - 179, 1999 // 5)


def test_a_step_keeps_the_last_share_planned_in_it() -> None:
    """Several plans within one step leave the last one's share for that step."""
    history = ShareHistory(window=900, step=5)
    history.record(plan(0.0, a=0.5))
    for at, share in ((5.0, 0.4), (6.0, 0.3), (9.0, 0.2), (10.0, 0.1)):
        history.record(plan(at, a=share))
    series = history.series("a")
    assert series is not None
    assert series.points == ((0, 0.5), (1, 0.2), (2, 0.1))


def test_points_older_than_the_window_go_but_what_held_at_its_start_stays() -> None:
    """A change that scrolled out of the window goes, except the last one before its
    start, which says what share held there; memory stays bounded by the window."""
    history = ShareHistory(window=50, step=5)  # 10 steps
    for step in range(100):
        history.record(plan(step * 5.0, a=float(step % 2)))
    series = history.series("a")
    assert series is not None
    assert series.first == 90
    assert [s for s, _ in series.points] == list(range(90, 100))
    history.record(plan(600.0, a=1.0))  # step 120: nothing changed since step 99 (1.0)
    series = history.series("a")
    assert series is not None
    assert series.points == ((99, 1.0),)


def test_a_cluster_gone_from_the_plan_is_forgotten_and_a_new_one_starts_fresh() -> None:
    """Only the current plan's clusters are kept, so removed clusters cost nothing."""
    history = ShareHistory()
    history.record(plan(0.0, a=0.5, b=0.5))
    history.record(plan(10.0, a=1.0))
    assert history.series("b") is None
    history.record(plan(20.0, a=0.5, b=0.5))
    series = history.series("b")
    assert series is not None
    assert series.points == ((4, 0.5),)
