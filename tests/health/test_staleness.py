"""A verdict lapses when its check stops reporting: a stalled prober must not leave the
planner acting on what it last saw."""

from __future__ import annotations

import pytest

from failover.health import HealthTracker
from failover.model import ClusterState
from tests.health.test_tracker import DNS, PASS, TCP, TIMEOUT, Feed, config


def test_a_check_silent_past_the_bound_makes_its_cluster_unknown_with_the_reason() -> None:
    tracker = HealthTracker(config())
    feed = Feed(tracker, config())
    for _ in range(2):
        feed(DNS, PASS)
        dns_last = feed.now
        feed(TCP, PASS)
    last = feed.now
    bound = tracker.stale_after
    assert bound == pytest.approx(3 * 2.0 * 1.2 + 0.8)
    assert tracker.cluster("a", dns_last + bound - 0.1).state == ClusterState.HEALTHY
    assert tracker.cluster("a", dns_last + bound + 0.1).reason.endswith("s)")  # DNS only
    view = next(v for v in tracker.views(last + bound + 1) if v.name == "a")
    assert view.state == ClusterState.UNKNOWN
    assert view.reason.startswith(f"stale: {DNS} last reported ")
    assert view.reason.endswith(f"ago (bound {bound:.0f}s) (+1 more stale)")
    # Without a clock (status shapes, /readyz) the last verdict still shows.
    assert tracker.cluster("a").state == ClusterState.HEALTHY


def test_a_stale_failure_lapses_too() -> None:
    """Old evidence of failure is no better than old evidence of health."""
    tracker = HealthTracker(config())
    feed = Feed(tracker, config())
    feed(DNS, TIMEOUT, TIMEOUT, TIMEOUT)
    feed(TCP, PASS, PASS)
    assert tracker.cluster("a", feed.now).state == ClusterState.UNHEALTHY
    assert tracker.cluster("a", feed.now + tracker.stale_after + 1).state \
        == ClusterState.UNKNOWN


def test_a_fresh_failure_outweighs_a_stale_check() -> None:
    tracker = HealthTracker(config())
    feed = Feed(tracker, config())
    feed(TCP, PASS, PASS)
    feed.now += tracker.stale_after
    feed(DNS, TIMEOUT, TIMEOUT, TIMEOUT)
    health = tracker.cluster("a", feed.now)
    assert health.state == ClusterState.UNHEALTHY
    assert health.reason.startswith(DNS)
