"""The load model: errors above effective capacity, cold clusters warming, exact integration."""

from __future__ import annotations

import pytest

from failover.simulate.load import DemandCurve, LoadModel, excess_area
from failover.simulate.scenario import DemandPoint, LoadParams


def model(cold_factor: float = 0.5, warmup: float = 100.0, cold_after: float = 30.0
          ) -> LoadModel:
    return LoadModel(LoadParams(cold_factor=cold_factor, warmup=warmup, cold_after=cold_after))


def test_demand_is_linear_between_points_and_flat_beyond() -> None:
    """Demand interpolates between points and holds the end values outside them."""
    curve = DemandCurve([DemandPoint(at=10, rps=100), DemandPoint(at=20, rps=300)])
    assert [curve(t) for t in (0, 10, 15, 20, 99)] == [100, 100, 200, 300, 300]


@pytest.mark.parametrize(("start", "end", "area"), [
    (10, 30, 200),    # all above: trapezoid
    (-10, -30, 0),    # all below: nothing
    (30, -10, 112.5),  # crosses at 3/4 of the way: triangle 30 x 7.5 / 2
    (-10, 30, 112.5),
])
def test_excess_area_is_the_positive_part(start: float, end: float, area: float) -> None:
    """Only the part of a linear excess above 0 counts, over a length of 10."""
    assert excess_area(start, end, 10) == pytest.approx(area)


def test_load_above_capacity_errors() -> None:
    """1000 rps at a warm cluster of capacity 800 errors 200 rps: 2000 requests in 10 s."""
    load = model()
    load.add("a", 800, 0.0, warm=True)
    load.set_shares({"a": 1.0}, 0.0)
    load.advance(0, 10, DemandCurve.constant(1000))
    assert load.requests.total == pytest.approx(10_000)
    assert load.requests.overload == pytest.approx(2000)
    assert load.requests.errored == pytest.approx(2000)
    assert load.peaks.overall["a"] == pytest.approx(1.25)


def test_load_within_capacity_does_not_error() -> None:
    """Two clusters sharing demand within their capacities error nothing."""
    load = model()
    load.add("a", 800, 0.0, warm=True)
    load.add("b", None, 0.0, warm=True)  # unlimited
    load.set_shares({"a": 0.5, "b": 0.5}, 0.0)
    load.advance(0, 60, DemandCurve.constant(1000))
    assert load.requests.errored == 0
    assert "b" not in load.peaks.overall


def test_cold_cluster_warms_linearly_and_errors_until_warm_enough() -> None:
    """Cold at 0.5 of 1000 rps, warming over 100 s, offered 800: capacity meets load at 60 s,
    so the errors are the triangle 300 rps x 60 s / 2."""
    load = model(cold_factor=0.5, warmup=100)
    load.add("new", 1000, 0.0, warm=False)
    load.set_shares({"new": 1.0}, 0.0)
    assert load.clusters["new"].effective_capacity() == 500
    load.advance(0, 50, DemandCurve.constant(800))
    assert load.clusters["new"].effective_capacity() == pytest.approx(750)
    load.advance(50, 100, DemandCurve.constant(800))
    assert load.requests.overload == pytest.approx(300 * 60 / 2)
    assert load.clusters["new"].warmth == 1.0
    assert load.peaks.overall["new"] == pytest.approx(800 / 500)


def test_warmth_reaching_one_mid_step_is_integrated_exactly() -> None:
    """One step across the instant warmth reaches 1 gives the same errors as exact maths:
    offered 900, capacity 500 -> 1000 over 100 s, excess 400 -> 0 at 80 s."""
    load = model(cold_factor=0.5, warmup=100)
    load.add("new", 1000, 0.0, warm=False)
    load.set_shares({"new": 1.0}, 0.0)
    load.advance(0, 200, DemandCurve.constant(900))
    assert load.requests.overload == pytest.approx(400 * 80 / 2)


def test_rising_demand_is_integrated_exactly() -> None:
    """Demand 600 -> 1400 rps over 100 s at capacity 1000: the excess is the last half,
    0 -> 400 rps over 50 s."""
    load = model()
    load.add("a", 1000, 0.0, warm=True)
    load.set_shares({"a": 1.0}, 0.0)
    load.advance(0, 100, DemandCurve([DemandPoint(at=0, rps=600), DemandPoint(at=100,
                                                                               rps=1400)]))
    assert load.requests.overload == pytest.approx(400 * 50 / 2)
    assert load.requests.total == pytest.approx(100_000)


def test_idle_beyond_cold_after_goes_cold() -> None:
    """A cluster at share 0 for cold_after loses its warmth; back, it errors while warming."""
    load = model(cold_factor=0.5, warmup=100, cold_after=30)
    load.add("a", 1000, 0.0, warm=True)
    load.set_shares({"a": 0.0}, 0.0)
    load.advance(0, 29, DemandCurve.constant(800))
    assert load.clusters["a"].warmth == 1.0
    load.advance(29, 31, DemandCurve.constant(800))
    assert load.clusters["a"].warmth == 0.5
    assert load.requests.unplaced == pytest.approx(800 * 31)  # nobody had a share


def test_short_idle_keeps_warmth() -> None:
    """Evacuated for less than cold_after, a cluster comes back at full capacity."""
    load = model(cold_after=30)
    load.add("a", 1000, 0.0, warm=True)
    load.add("b", None, 0.0, warm=True)
    load.set_shares({"b": 1.0}, 0.0)
    load.advance(0, 20, DemandCurve.constant(800))
    load.set_shares({"a": 1.0}, 20.0)
    load.advance(20, 30, DemandCurve.constant(800))
    assert load.requests.errored == 0


def test_down_cluster_errors_everything_and_goes_cold() -> None:
    """Every request sent to a down cluster errors; down long enough, it is cold when back."""
    load = model(cold_factor=0.3, cold_after=30)
    load.add("a", 1000, 0.0, warm=True)
    load.set_shares({"a": 1.0}, 0.0)
    load.set_down("a", True, 0.0)
    load.advance(0, 60, DemandCurve.constant(100))
    assert load.requests.down == pytest.approx(6000)
    assert load.requests.overload == 0
    assert load.clusters["a"].effective_capacity() == 0
    load.set_down("a", False, 60.0)
    assert load.clusters["a"].effective_capacity() == pytest.approx(300)


def test_shares_below_one_leave_demand_unplaced() -> None:
    """When shares sum to 0.75 a quarter of the requests go nowhere and count as errors."""
    load = model()
    load.add("a", None, 0.0, warm=True)
    load.set_shares({"a": 0.75}, 0.0)
    load.advance(0, 10, DemandCurve.constant(100))
    assert load.requests.unplaced == pytest.approx(250)
    assert load.requests.errored == pytest.approx(250)


def test_recovery_peaks_only_count_named_clusters() -> None:
    """A peak lands in the recovery peaks only for clusters marked recovering in that step."""
    load = model()
    load.add("a", 1000, 0.0, warm=True)
    load.add("b", 1000, 0.0, warm=True)
    load.set_shares({"a": 0.5, "b": 0.5}, 0.0)
    load.advance(0, 10, DemandCurve.constant(1000), recovering={"a"})
    assert load.peaks.recovery == {"a": pytest.approx(0.5)}
    assert load.peaks.overall == {"a": pytest.approx(0.5), "b": pytest.approx(0.5)}
