"""The planner's views are taken in batches, the loop let go between: all of them, in order,
and all from one config even when a reload lands between two batches."""

from __future__ import annotations

import asyncio

from failover.config import all_jobs, parse
from failover.daemon.planning import VIEW_BATCH, batched_probe_signals, batched_views
from failover.health import HealthTracker
from failover.model import ProbeResult


def config(names: list[str]) -> str:
    clusters = "\n".join(f"  - {{name: {n}, weight: 1, checks: [{{tcp: '127.0.0.1:{i + 1}'}}]}}"
                         for i, n in enumerate(names))
    return f"clusters:\n{clusters}\n"


async def test_every_view_in_order_and_one_config_despite_a_reload() -> None:
    first = [f"a{i}" for i in range(VIEW_BATCH * 2 + 7)]
    second = [f"b{i}" for i in range(VIEW_BATCH + 3)]
    health = HealthTracker(parse(config(first)))
    assert [v.name for v in await batched_views(health, 0.0)] == first

    async def reload_soon() -> None:
        await asyncio.sleep(0)  # after the first batch
        health.update_config(parse(config(second)))

    reload = asyncio.create_task(reload_soon())
    views = await batched_views(health, 0.0)
    await reload
    assert [v.name for v in views] == second


async def test_probe_signals_in_batches_are_the_whole() -> None:
    parsed = parse(config([f"c{i}" for i in range(VIEW_BATCH + 50)]))
    health = HealthTracker(parsed)
    for step, job in enumerate(all_jobs(parsed.clusters, parsed.vantage) * 4):
        result = ProbeResult.passed(0.001 * (1 + step % 5), "ok") if step % 3 else \
            ProbeResult.failed(0.8, "timeout", "no answer")
        health.record(job.key, result, float(step))
    whole = health.probe_signals()
    assert len(whole.clusters) == VIEW_BATCH + 50
    assert await batched_probe_signals(health) == whole
