"""The plan's gauges follow every plan, though only what changed is set."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from failover.daemon.publish import Publisher
from failover.metrics import Metrics
from tests.actuators.test_file import make_plan


def gauge(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_gauges_follow_changes_and_removals() -> None:
    registry = CollectorRegistry()
    publisher = Publisher(Metrics(registry))
    first = make_plan(1, {"a": 0.5, "b": 0.5, "c": 0.0})
    publisher.publish(first, None, 0.0)
    assert gauge(registry, "failover_cluster_share", cluster="a") == 0.5
    assert gauge(registry, "failover_cluster_state", cluster="c", state="unhealthy") == 1
    second = make_plan(2, {"a": 0.5, "c": 0.5})  # b removed, c back
    publisher.publish(second, first, 1.0)
    assert gauge(registry, "failover_cluster_share", cluster="a") == 0.5
    assert gauge(registry, "failover_cluster_rank", cluster="c") == 2
    assert gauge(registry, "failover_cluster_state", cluster="c", state="unhealthy") == 0
    assert gauge(registry, "failover_cluster_state", cluster="c", state="healthy") == 1
    assert gauge(registry, "failover_cluster_share", cluster="b") is None
    third = make_plan(3, {"a": 0.5, "b": 0.25, "c": 0.25})  # b added again
    publisher.publish(third, second, 2.0)
    assert gauge(registry, "failover_cluster_share", cluster="b") == 0.25
    assert gauge(registry, "failover_cluster_state", cluster="b", state="healthy") == 1
    assert gauge(registry, "failover_plan_version") == 3
