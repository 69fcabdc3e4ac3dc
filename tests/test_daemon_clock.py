"""The daemon on a fake clock (looptime): probes injected, so minutes of its life take
milliseconds and every bound is exact."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from failover.config import Job, load
from failover.daemon import Daemon
from failover.model import ProbeResult
from failover.probes.base import ProbeContext

CONFIG = """\
listen: {status: "127.0.0.1:0", admin: "127.0.0.1:0"}
state_dir: state
probing: {interval: 2s, timeout: 800ms, jitter: 0.2, rise: 2, fall: 3}
policy: {tick: 1s, min_healthy_fraction: 0.3}
actuators: [{type: file, path: weights.json}]
clusters:
  - {name: a, weight: 50, checks: [{tcp: "127.0.0.1:1001"}]}
  - {name: b, weight: 50, checks: [{tcp: "127.0.0.1:1002"}]}
"""


class FakeTargets:
    """Stands in for the network: each cluster's TCP check passes unless it is down."""

    def __init__(self) -> None:
        self.down: set[str] = set()

    async def tcp(self, job: Job, ctx: ProbeContext) -> ProbeResult:
        await ctx.permit()
        await asyncio.sleep(0.005)
        if job.cluster in self.down:
            return ProbeResult.failed(0.005, "refused", "connection refused")
        return ProbeResult.passed(0.005)


@pytest.fixture
def daemon(tmp_path: Path) -> tuple[Daemon, FakeTargets]:
    (tmp_path / "c.yaml").write_text(textwrap.dedent(CONFIG))
    targets = FakeTargets()
    probes = {"tcp": targets.tcp}
    return Daemon(load(tmp_path / "c.yaml"), None, CollectorRegistry(),
                  probes=probes), targets  # type: ignore[dict-item]


async def advance_until(condition: Callable[[], bool], what: str, step: float = 0.1,
                        limit: float = 600.0) -> float:
    """Move the fake clock by ``step`` until ``condition`` holds; the fake seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(int(limit / step)):
        if condition():
            return loop.time() - start
        await asyncio.sleep(step)
    pytest.fail(f"{what}: not within {limit:g} fake seconds")


def shares(path: Path) -> dict[str, float]:
    return {n: c["share"] for n, c in json.loads(path.read_text())["clusters"].items()}


@pytest.mark.looptime
async def test_a_failing_cluster_is_evacuated_within_fall_intervals(
        daemon: tuple[Daemon, FakeTargets], tmp_path: Path) -> None:
    running, targets = daemon
    task = asyncio.create_task(running.run())
    await asyncio.sleep(10)
    assert running.plan is not None
    assert running.plan.shares == {"a": 0.5, "b": 0.5}
    targets.down.add("a")
    took = await advance_until(lambda: running.plan is not None
                               and running.plan.share("a") == 0, "evacuated")
    # fall results, each up to a jittered interval apart, plus the tick that acts on them.
    assert took <= 3 * 2.0 * 1.2 + 1.0 + 0.1
    running.stop()
    await task
    assert shares(tmp_path / "weights.json") == {"a": 0.0, "b": 1.0}


@pytest.mark.looptime
async def test_a_stalled_prober_is_seen_within_its_bounds(
        daemon: tuple[Daemon, FakeTargets]) -> None:
    """Every probe slot leaked: verdicts lapse after 3 jittered intervals and a timeout
    (8 s), the plan freezes as `stale` with its shares, and /healthz fails once the prober
    has been silent past its bound (interval x 1.2 + timeout + 10 s)."""
    running, _ = daemon
    task = asyncio.create_task(running.run())
    loop = asyncio.get_running_loop()
    await asyncio.sleep(10)
    assert running.plan is not None
    serving = running.plan.shares
    scheduler = running.scheduler
    assert scheduler is not None
    for _ in range(running.config.probing.budget.max_in_flight):
        await scheduler._in_flight.acquire()  # private: the failure injected is inside
    stalled_at = loop.time()
    frozen = await advance_until(lambda: running.plan is not None and running.plan.frozen,
                                 "frozen")
    assert running.plan is not None
    assert running.plan.frozen_reason == "stale"
    assert running.plan.shares == pytest.approx(serving)
    assert frozen <= 8.0 + 2.4 + 1.0 + 0.1  # + one interval, one tick
    assert running.surface.alive()
    await advance_until(lambda: not running.surface.alive(), "a stall seen")
    assert loop.time() - stalled_at <= 2.0 * 1.2 + 0.8 + 10.0 + 2.4 + 0.2
    assert any(s.startswith("prober silent for ")
               for s in running.surface.extra_status()["liveness"]["stalled"])
    running.stop()
    await task


@pytest.mark.looptime
async def test_a_fixed_cluster_ramps_back_over_the_slow_start(
        daemon: tuple[Daemon, FakeTargets]) -> None:
    """Back after rise passes, then at least the timed slow start (60 s by default) to its
    full share: minutes of the daemon's life in a fraction of a second."""
    running, targets = daemon
    task = asyncio.create_task(running.run())
    await asyncio.sleep(10)
    targets.down.add("a")
    await asyncio.sleep(60)  # long enough to be cold and out of its cooldown
    assert running.plan is not None
    assert running.plan.share("a") == 0
    targets.down.clear()
    back = await advance_until(lambda: running.plan is not None
                               and running.plan.share("a") > 0, "back")
    ramp = await advance_until(lambda: running.plan is not None
                               and running.plan.share("a") >= 0.5, "full share", step=0.5)
    assert back <= 2 * 2.0 * 1.2 + 1.0 + 0.1
    assert ramp >= 20.0, f"snapped back in {ramp:.1f}s"
    running.stop()
    await task
