"""Actuator runners cut each attempt at one deadline, retry only temporary failures, count
them, and never block one another."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from failover.actuators.base import (
    ActuatorError,
    Applied,
    PermanentActuatorError,
    TemporaryActuatorError,
)
from failover.actuators.runner import ActuatorRunner
from failover.metrics import Metrics
from tests.actuators.test_file import make_plan


class Flaky:
    """Fails ``failures`` times with ``error``, then succeeds; records what it applied."""

    def __init__(self, name: str, failures: int,
                 error: type[ActuatorError] = TemporaryActuatorError) -> None:
        self._name = name
        self.failures = failures
        self.error = error
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
            raise self.error("backend down")
        self.applied.append(applied.plan.version)
        self.done.set()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.mark.looptime
async def test_temporary_failures_are_retried(metrics: Metrics) -> None:
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


class Drifting(Flaky):
    """Applies at once; each drift check returns the next queued list of differences."""

    def __init__(self, name: str, drifts: list[list[str]]) -> None:
        super().__init__(name, failures=0)
        self.drifts = drifts
        self.checks: list[float] = []
        """Loop times of the drift checks."""

    async def drift(self, applied: Applied) -> list[str]:
        self.checks.append(asyncio.get_running_loop().time())
        return self.drifts.pop(0) if self.drifts else []


class Hanging(Flaky):
    """Its first ``hangs`` applies never return (a data plane that stopped answering)."""

    def __init__(self, name: str, hangs: int) -> None:
        super().__init__(name, failures=0)
        self.hangs = hangs
        self.starts: list[float] = []
        """Loop times at which each apply began."""
        self.cut: list[float] = []
        """Loop times at which a hanging apply was cancelled."""

    async def apply(self, applied: Applied) -> None:
        loop = asyncio.get_running_loop()
        self.starts.append(loop.time())
        if self.hangs > 0:
            self.hangs -= 1
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cut.append(loop.time())
                raise
        await super().apply(applied)


class HangingDrift(Drifting):
    """Its first drift check never returns."""

    async def drift(self, applied: Applied) -> list[str]:
        if not self.checks:
            self.checks.append(asyncio.get_running_loop().time())
            await asyncio.Event().wait()
        return await super().drift(applied)


async def until_second_apply(runner: ActuatorRunner, actuator: Drifting) -> float:
    """Run ``runner`` on plan 1 until ``actuator`` has applied twice; return the loop time."""
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await actuator.done.wait()
        actuator.done.clear()
        await actuator.done.wait()
        task.cancel()
    return asyncio.get_running_loop().time()


@pytest.mark.looptime
async def test_drift_is_counted_and_reapplied(metrics: Metrics) -> None:
    """A drift check every tick after the apply; differences are counted, kept and re-applied."""
    found = ["server app/a weight 3, want 256", "server app/a state drain, want ready"]
    actuator = Drifting("lb", [[], found])
    runner = ActuatorRunner(actuator, metrics, retry_every=1.0)
    start = asyncio.get_running_loop().time()
    reapplied = await until_second_apply(runner, actuator) - start
    assert reapplied == pytest.approx(2.0)
    assert actuator.checks == pytest.approx([start + 1.0, start + 2.0])
    assert actuator.applied == [1, 1]
    assert runner.last_drift == found
    assert runner.last_drift_at is not None
    assert sample(metrics, "failover_actuator_drift_total", actuator="lb") == 2
    assert sample(metrics, "failover_actuator_applies_total", actuator="lb", result="ok") == 2


@pytest.mark.looptime
async def test_in_sync_data_plane_is_checked_each_tick_and_left_alone(metrics: Metrics) -> None:
    """No differences: one drift check per tick, no re-apply, the drift counter stays 0."""
    actuator = Drifting("lb", [])
    runner = ActuatorRunner(actuator, metrics, retry_every=1.0)
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await asyncio.sleep(5.5)
        task.cancel()
    assert len(actuator.checks) == 5
    assert actuator.applied == [1]
    assert runner.last_drift == []
    assert sample(metrics, "failover_actuator_drift_total", actuator="lb") == 0


@pytest.mark.looptime
async def test_actuators_without_drift_are_not_polled(metrics: Metrics) -> None:
    """An actuator with no drift method is left alone between plans, as before."""
    flaky = Flaky("file", failures=0)
    runner = ActuatorRunner(flaky, metrics, retry_every=1.0)
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await asyncio.sleep(10)
        task.cancel()
    assert flaky.calls == 1
    assert metrics.registry.get_sample_value(
        "failover_actuator_drift_total", {"actuator": "file"}) is None


@pytest.mark.looptime
async def test_a_hanging_apply_is_cut_at_the_one_deadline_and_retried(metrics: Metrics) -> None:
    """An apply that never returns is cancelled exactly ``timeout`` after it began (no later
    deadline stacked on it), counts as temporary, and the retry applies the plan."""
    actuator = Hanging("slow", hangs=1)
    runner = ActuatorRunner(actuator, metrics, retry_every=1.0, timeout=2.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await actuator.done.wait()
        task.cancel()
    assert actuator.starts[0] == pytest.approx(start)
    assert actuator.cut == [pytest.approx(start + 2.0)]
    # The retry starts after tenacity's first backoff: 0.2 s plus up to 0.2 s of jitter.
    assert 2.2 <= actuator.starts[1] - start <= 2.4 + 1e-6
    assert actuator.applied == [1]
    assert sample(metrics, "failover_actuator_applies_total", actuator="slow", result="retry") == 1
    assert runner.last_error is None


@pytest.mark.looptime
async def test_an_apply_that_always_hangs_reports_the_timeout(metrics: Metrics) -> None:
    """Applies that never return end as an error naming the timeout; the runner keeps going."""
    actuator = Hanging("stuck", hangs=10**9)
    runner = ActuatorRunner(actuator, metrics, retry_every=1.0, timeout=2.0)
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await asyncio.sleep(60)
        task.cancel()
    assert runner.last_error == "apply to stuck timed out after 2s"
    assert runner.applied_version is None
    assert sample(metrics, "failover_actuator_applies_total", actuator="stuck",
                  result="error") >= 2


@pytest.mark.looptime
async def test_a_failed_drift_check_is_counted_and_reapplies(metrics: Metrics) -> None:
    """A drift check that times out counts an error and applies the plan again."""
    actuator = HangingDrift("lb", [])
    runner = ActuatorRunner(actuator, metrics, retry_every=1.0, timeout=2.0)
    start = asyncio.get_running_loop().time()
    reapplied = await until_second_apply(runner, actuator) - start
    assert reapplied == pytest.approx(3.0)  # first check at 1 s, hung until its 2 s timeout
    assert actuator.applied == [1, 1]
    assert sample(metrics, "failover_errors_total", where="actuator_drift") == 1
    assert sample(metrics, "failover_actuator_drift_total", actuator="lb") == 0
    assert runner.last_error is None


@pytest.mark.looptime
async def test_applied_version_gauge_follows_successful_applies(metrics: Metrics) -> None:
    """The applied-version gauge shows the last plan applied, not one that failed."""
    flaky = Flaky("lb", failures=0)
    runner = ActuatorRunner(flaky, metrics, retry_every=1.0)
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        for version in (1, 2):
            flaky.done.clear()
            runner.submit(make_plan(version, {"a": 1.0}))
            await flaky.done.wait()
        gauge = sample(metrics, "failover_actuator_applied_plan_version", actuator="lb")
        flaky.failures = 10**9
        runner.submit(make_plan(3, {"a": 1.0}))
        await asyncio.sleep(30)
        task.cancel()
    assert gauge == 2
    assert sample(metrics, "failover_actuator_applied_plan_version", actuator="lb") == 2
    assert runner.last_error == "backend down"


@pytest.mark.looptime
async def test_a_newer_plan_replaces_a_failed_one_between_retries(metrics: Metrics) -> None:
    """Plan 2 arriving while plan 1 waits for its retry is what the retry applies."""
    flaky = Flaky("lb", failures=1)
    runner = ActuatorRunner(flaky, metrics, retry_every=1.0)
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await asyncio.sleep(0.1)  # virtual: plan 1 failed at once; its retry waits 0.2-0.4 s
        assert flaky.calls == 1
        runner.submit(make_plan(2, {"a": 1.0}))
        await flaky.done.wait()
        await asyncio.sleep(5)
        task.cancel()
    assert flaky.applied == [2]
    assert flaky.calls == 2
    assert runner.applied_version == 2


@pytest.mark.looptime
async def test_a_permanent_error_is_not_retried(metrics: Metrics) -> None:
    """A permanent error ends the apply at once: one call, no retry counted, the error kept;
    the plan is tried again only at the next tick, where it succeeds here."""
    actuator = Flaky("lb", failures=1, error=PermanentActuatorError)
    runner = ActuatorRunner(actuator, metrics, retry_every=1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await asyncio.sleep(0.5)  # virtual: within a retry's backoff, had there been one
        assert actuator.calls == 1
        assert runner.last_error == "backend down"
        await actuator.done.wait()
        task.cancel()
    assert loop.time() - start == pytest.approx(1.0)  # the next tick, not a backoff
    assert actuator.calls == 2
    assert sample(metrics, "failover_actuator_applies_total", actuator="lb", result="retry") == 0
    assert sample(metrics, "failover_actuator_applies_total", actuator="lb", result="error") == 1
    assert runner.applied_version == 1


@pytest.mark.looptime
async def test_an_error_of_neither_kind_is_not_retried(metrics: Metrics) -> None:
    """Only TemporaryActuatorError is retried: a bare ActuatorError is treated as permanent."""
    actuator = Flaky("lb", failures=1, error=ActuatorError)
    runner = ActuatorRunner(actuator, metrics, retry_every=1.0)
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(runner.run())
        runner.submit(make_plan(1, {"a": 1.0}))
        await actuator.done.wait()
        task.cancel()
    assert actuator.calls == 2
    assert sample(metrics, "failover_actuator_applies_total", actuator="lb", result="retry") == 0
