"""The runner's fence: a plan with an epoch is written only while the replica still leads;
a refusal (by the fence or by the data plane) is counted and never retried."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from failover.actuators.base import Applied, FencedError
from failover.actuators.runner import ActuatorRunner
from failover.metrics import Metrics
from tests.actuators.test_file import make_plan

pytestmark = pytest.mark.looptime


class Recorder:
    def __init__(self) -> None:
        self.applied: list[tuple[int, int | None]] = []
        self.refuse = False

    @property
    def name(self) -> str:
        return "rec"

    async def apply(self, applied: Applied) -> None:
        if self.refuse:
            raise FencedError("zone holds epoch 9 from a newer leader; ours is 5")
        self.applied.append((applied.plan.version, applied.epoch))


class Fence:
    def __init__(self) -> None:
        self.leading = True
        self.asked = 0

    async def __call__(self) -> bool:
        self.asked += 1
        return self.leading


def refused(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value(
        "failover_fenced_writes_refused_total", {"actuator": "rec"}) or 0.0


@contextlib.asynccontextmanager
async def running(runner: ActuatorRunner) -> AsyncIterator[None]:
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_replica_that_no_longer_leads_writes_nothing_and_does_not_retry() -> None:
    metrics, recorder, fence = Metrics(CollectorRegistry()), Recorder(), Fence()
    runner = ActuatorRunner(recorder, metrics, 1.0, fence=fence)
    async with running(runner):
        runner.submit(make_plan(1, {"a": 1.0}), epoch=5)
        await asyncio.sleep(0.1)
        assert recorder.applied == [(1, 5)]
        fence.leading = False
        runner.submit(make_plan(2, {"a": 1.0}), epoch=5)
        await asyncio.sleep(10)  # ten retry periods
    assert recorder.applied == [(1, 5)]
    assert refused(metrics) == 1
    assert runner.last_error == "epoch 5 no longer leads: not written"


async def test_a_data_plane_that_holds_a_newer_epoch_is_counted_and_not_retried() -> None:
    metrics, recorder = Metrics(CollectorRegistry()), Recorder()
    runner = ActuatorRunner(recorder, metrics, 1.0, fence=Fence())
    recorder.refuse = True
    async with running(runner):
        runner.submit(make_plan(1, {"a": 1.0}), epoch=5)
        await asyncio.sleep(10)
    assert refused(metrics) == 1
    assert "newer leader" in (runner.last_error or "")


async def test_standalone_plans_are_not_fenced() -> None:
    metrics, recorder, fence = Metrics(CollectorRegistry()), Recorder(), Fence()
    fence.leading = False
    runner = ActuatorRunner(recorder, metrics, 1.0, fence=fence)
    async with running(runner):
        runner.submit(make_plan(1, {"a": 1.0}))
        await asyncio.sleep(0.1)
    assert recorder.applied == [(1, None)]
    assert fence.asked == 0


async def test_the_same_plan_under_a_new_epoch_is_written_again() -> None:
    """A leader that lost and won again writes its plan over its rival's."""
    metrics, recorder = Metrics(CollectorRegistry()), Recorder()
    runner = ActuatorRunner(recorder, metrics, 1.0, fence=Fence())
    async with running(runner):
        runner.submit(make_plan(3, {"a": 1.0}), epoch=5)
        await asyncio.sleep(0.1)
        runner.submit(make_plan(3, {"a": 1.0}), epoch=8)
        await asyncio.sleep(0.1)
    assert recorder.applied == [(3, 5), (3, 8)]
