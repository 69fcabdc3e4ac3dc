"""/metrics renders on a thread: the loop runs on meanwhile; scrapes during a render share it."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from failover.api.exposition import MetricsPage
from failover.metrics import Metrics


class Held:
    """A collector that blocks its render until released, counting the renders."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.renders = 0

    def collect(self) -> Iterator[Metric]:
        self.renders += 1
        self.started.set()
        self.release.wait(10)
        yield GaugeMetricFamily("held", "A gauge behind a slow render.", value=1)


@pytest.fixture
async def page() -> AsyncIterator[tuple[Held, str]]:
    held = Held()
    registry = CollectorRegistry()
    registry.register(held)  # type: ignore[arg-type]  # a collector by protocol
    app = web.Application()
    app.router.add_get("/metrics", MetricsPage(registry).handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield held, f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
    finally:
        held.release.set()
        await runner.cleanup()


async def test_loop_runs_during_a_render_and_scrapes_share_it(page: tuple[Held, str]) -> None:
    held, url = page
    async with aiohttp.ClientSession() as session:
        async def scrape() -> str:
            async with session.get(url) as response:
                return await response.text()

        first = asyncio.create_task(scrape())
        await asyncio.to_thread(held.started.wait, 10)
        second = asyncio.create_task(scrape())
        # The render is held on its thread; the loop still turns (these sleeps return).
        for _ in range(20):
            await asyncio.sleep(0.001)
        assert not first.done()
        held.release.set()
        bodies = await asyncio.gather(first, second)
    assert all("held 1.0" in body for body in bodies)
    assert held.renders == 1


async def test_gzip_when_asked(page: tuple[Held, str]) -> None:
    held, url = page
    held.release.set()
    async with aiohttp.ClientSession(auto_decompress=False) as session, session.get(
            url, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert b"held 1.0" in gzip.decompress(await response.read())


def test_no_created_series() -> None:
    """`_created` would double the page at fleet scale."""
    registry = CollectorRegistry()
    Metrics(registry)
    Counter("extra", "An extra counter.", registry=registry).inc()
    names = {sample.name for family in registry.collect() for sample in family.samples}
    assert "extra_total" in names
    assert not any(name.endswith("_created") for name in names)
