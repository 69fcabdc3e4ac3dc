"""Warm-up maths and the load window, on made-up times and counts: warmth grows with the
requests served, not with time; idleness makes a cluster cold; health checks do neither."""

from __future__ import annotations

import math

import pytest

from failover.lab.load import ClusterLoad, WindowFigures
from failover.lab.warmth import Warmth, WarmthParams, warmth

PARAMS = WarmthParams(cold_factor=0.25, warm_requests=10, cold_after=30)


def test_formula_runs_from_cold_factor_towards_1() -> None:
    """warmth(0) is the cold factor; warm_requests served close 1 - 1/e of the gap to 1."""
    assert warmth(0, PARAMS) == 0.25
    assert warmth(10, PARAMS) == pytest.approx(1 - 0.75 / math.e)
    assert warmth(1000, PARAMS) == pytest.approx(1)
    assert [warmth(n, PARAMS) for n in range(5)] == sorted(warmth(n, PARAMS) for n in range(5))


def test_starts_warm_and_stays_warm_while_serving() -> None:
    """A new cluster is fully warm; serving at least every cold_after keeps it so."""
    state = Warmth(PARAMS, now=0)
    assert state.level(0) == 1
    for now in (20, 45, 70):
        assert state.level(now) == 1
        state.record_served(now)
    assert state.level(99.9) == 1
    assert state.served(99.9) is None


def test_warms_with_requests_served_not_with_time() -> None:
    """Once cold, time alone does not warm it; each request served does."""
    state = Warmth(PARAMS, now=0)
    state.make_cold()
    assert state.level(0) == 0.25
    assert state.level(29) == 0.25
    for i in range(5):
        state.record_served(29 + i * 0.001)
    assert state.served(29.1) == 5
    assert state.level(29.1) == warmth(5, PARAMS)
    assert state.level(58) == warmth(5, PARAMS)


def test_goes_cold_after_cold_after_without_serving() -> None:
    """cold_after seconds after the last request served (or the start) it is cold, and the
    next requests count from 0."""
    state = Warmth(PARAMS, now=0)
    assert state.level(29.999) == 1
    assert state.level(30) == 0.25
    state.record_served(40)
    assert state.served(40) == 1
    assert state.level(40) == warmth(1, PARAMS)
    assert state.level(69.9) == warmth(1, PARAMS)
    assert state.level(70) == 0.25


def test_health_checks_neither_warm_nor_keep_warm() -> None:
    """200s to health checks use up capacity but leave warmth and the idle clock alone."""
    load = ClusterLoad(20, PARAMS, now=0)
    for now in range(0, 40, 5):
        assert load.offer(now)
        load.served(now, traffic=False)
    assert load.warmth_level(31) == 0.25
    load.make_cold(40)
    for i in range(5):
        load.offer(40 + i / 10)
        load.served(40 + i / 10, traffic=False)
    assert load.warmth_level(41) == 0.25


def test_window_capacity_and_rejections() -> None:
    """A cold window of capacity 20 x 0.25 admits 5 and rejects the rest; the next window
    starts with the capacity its served requests earned."""
    load = ClusterLoad(20, PARAMS, now=0)
    load.make_cold(0)
    admitted = []
    for i in range(8):
        admitted.append(load.offer(10 + i / 100))
        if admitted[-1]:
            load.served(10 + i / 100, traffic=True)
    assert admitted == [True] * 5 + [False] * 3
    assert load.last_window(11) == WindowFigures(offered=8, served=5, rejected=3, capacity=5)
    assert load.last_window(11).utilization == 8 / 5
    assert load.capacity(11) == 20 * warmth(5, PARAMS)
    earned = math.floor(20 * warmth(5, PARAMS))
    results = [load.offer(11 + i / 100) for i in range(earned + 2)]
    assert results == [True] * earned + [False] * 2


def test_capacity_is_fixed_for_a_window_but_a_cold_call_lowers_it_at_once() -> None:
    """Serving within a window does not raise that window's capacity; going cold cuts it."""
    load = ClusterLoad(20, WarmthParams(cold_factor=0.25, warm_requests=1, cold_after=30), 0)
    load.make_cold(0)
    for i in range(5):
        assert load.offer(i / 10)
        load.served(i / 10, traffic=True)
    assert (load.capacity(0.5) or 0) > 19  # five requests with warm_requests=1: nearly warm
    assert not load.offer(0.6)  # ... but this window keeps the capacity it started with
    assert load.offer(1.0)  # the next window has it
    load.make_cold(1.1)
    assert load.last_window(2.5).capacity == 5


def test_windows_are_back_to_back_and_restart_after_a_pause() -> None:
    """Figures are those of the last complete second: back-to-back windows while requests
    come, an empty one after a pause, and a new window from the first request after it."""
    load = ClusterLoad(None, None, now=0)

    def request(now: float) -> None:
        load.offer(now)
        load.served(now, traffic=True)

    request(10.0)
    request(10.5)
    assert load.last_window(10.9) == WindowFigures()  # nothing complete yet
    for now in (11.2, 11.5, 11.9):
        request(now)
    assert load.last_window(11.95) == WindowFigures(offered=2, served=2)  # [10, 11)
    assert load.last_window(12.0) == WindowFigures(offered=3, served=3)  # [11, 12)
    assert load.last_window(12.99) == WindowFigures(offered=3, served=3)
    assert load.last_window(13.0) == WindowFigures()  # [12, 13) had nothing
    load.offer(20.3)  # after a pause: a window from here
    assert load.last_window(21.29) == WindowFigures()
    assert load.last_window(21.3) == WindowFigures(offered=1)
    assert load.last_window(21.3).utilization is None


def test_reading_changes_nothing() -> None:
    """Reading the figures (as a scrape does) neither rolls the window nor warms."""
    load = ClusterLoad(20, PARAMS, now=0)
    load.make_cold(0)
    load.offer(5)
    for now in (5.5, 7.0, 9.0):
        load.last_window(now)
        load.capacity(now)
    assert [load.offer(5.9) for _ in range(5)] == [True] * 4 + [False]


def test_refusals_cost_the_next_seconds_capacity() -> None:
    """With a reject cost of half a request, 20 requests at capacity 10 serve 10 and refuse
    10, which cost the next second 5: it serves only 5 of another 20; a quiet second in
    between pays the debt off."""
    load = ClusterLoad(10, None, now=0, reject_cost=0.5)
    first = [load.offer(0.01 * i) for i in range(20)]
    assert first.count(True) == 10
    second = [load.offer(1.0 + 0.01 * i) for i in range(20)]
    assert second.count(True) == 5
    assert load.last_window(2.0).capacity == 5
    after_pause = [load.offer(4.0 + 0.01 * i) for i in range(20)]
    assert after_pause.count(True) == 10
    free = ClusterLoad(10, None, now=0)
    for i in range(20):
        free.offer(0.01 * i)
    assert [free.offer(1.0 + 0.01 * i) for i in range(20)].count(True) == 10
