"""Actuator runners retry transient failures, count them, and never block one another."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from failover.actuators.base import ActuatorError, Applied
from failover.actuators.runner import ActuatorRunner
from failover.metrics import Metrics
from tests.actuators.test_file import make_plan


class Flaky:
    """Fails ``failures`` times, then succeeds; records what it applied."""

    def __init__(self, name: str, failures: int) -> None:
        self._name = name
        self.failures = failures
        self.applied: list[int] = []
        self.calls = 0
        self.done = asyncio.Event()

    @property
    def name(self) -> str:
        return self._name

    async def apply(self, applied: Applied) -> None:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise ActuatorError("backend down")
        self.applied.append(applied.plan.version)
        self.done.set()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.mark.looptime
async def test_transient_failures_are_retried(metrics: Metrics) -> None:
    """Two failures then success: applied once, two retries counted, success time set."""
    flaky = Flaky("flaky", failures=2)
    runner = ActuatorRunner(flaky, metrics, retry_every=1.0)
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await flaky.done.wait()
        task.cancel()
    assert flaky.applied == [1]
    assert runner.applied_version == 1
    assert sample(metrics, "failover_actuator_applies_total", actuator="flaky", result="retry") == 2
    assert sample(metrics, "failover_actuator_applies_total", actuator="flaky", result="ok") == 1
    assert sample(metrics, "failover_actuator_last_success_timestamp_seconds", actuator="flaky") > 0


@pytest.mark.looptime
async def test_a_failing_actuator_does_not_block_another(metrics: Metrics) -> None:
    """One actuator that always fails leaves the other applying every plan on time."""
    broken = Flaky("broken", failures=10**9)
    healthy = Flaky("healthy", failures=0)
    runners = [ActuatorRunner(a, metrics, retry_every=1.0) for a in (broken, healthy)]
    async with asyncio.TaskGroup() as tasks:
        running = [tasks.create_task(r.run()) for r in runners]
        for r in runners:
            r.submit(make_plan(1, {"a": 1.0}))
        await healthy.done.wait()
        healthy.done.clear()
        for r in runners:
            r.submit(make_plan(2, {"a": 1.0}))
        await healthy.done.wait()
        await asyncio.sleep(30)  # virtual time: lets the broken one exhaust retries repeatedly
        for task in running:
            task.cancel()
    assert healthy.applied == [1, 2]
    assert runners[0].applied_version is None
    assert runners[0].last_error == "backend down"
    errors = sample(metrics, "failover_actuator_applies_total", actuator="broken", result="error")
    assert errors >= 2


@pytest.mark.looptime
async def test_resubmitting_the_same_plan_does_nothing(metrics: Metrics) -> None:
    """A plan already applied is not applied again."""
    flaky = Flaky("once", failures=0)
    runner = ActuatorRunner(flaky, metrics, retry_every=1.0)
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await flaky.done.wait()
        runner.submit(make_plan(1, {"a": 1.0}))
        await asyncio.sleep(5)
        task.cancel()
    assert flaky.calls == 1
