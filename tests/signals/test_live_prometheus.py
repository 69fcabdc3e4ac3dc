"""Against Debian's real Prometheus scraping a tiny target of the test's: the source reads
the gauges back; a series that goes away goes missing; while Prometheus is stopped the
queries fail, counted, and the samples stop advancing; started again, they advance again."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from failover.config.signals import PrometheusSignals, SignalQueries
from failover.model import Signals
from failover.signals import PrometheusSource, SignalMetrics
from tests.deploy.tools import poll
from tests.prometheus import Prometheus, ScrapeTarget, running_prometheus, scrape_config

WITHIN = 15.0
"""Seconds for a change to show through Prometheus: a scrape (every 1s) and a round."""
LAG = 1.0
INTERVAL = 0.2
STARTUP = 10.0
"""Seconds for the target's server to start or stop."""


class Target:
    """A /metrics page of gauges labelled by cluster, which the test edits as it goes.

    Served by aiohttp on a loop of its own in a thread: Prometheus (2.42 sends its first
    targets to the scrapers only after 5s) is started once for the module, and the tests'
    loops come and go under it.
    """

    def __init__(self) -> None:
        self.reset()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="metrics target",
                                        daemon=True)
        self._runner: web.AppRunner | None = None

    def reset(self) -> None:
        self.utilization = {"a": 0.25, "b": 0.5}
        self.error_ratio = {"a": 0.01, "b": 0.02}
        self.shared = 0.4

    async def metrics(self, request: web.Request) -> web.Response:
        lines = ["# TYPE test_utilization gauge"]
        lines += [f'test_utilization{{cluster="{n}"}} {v}' for n, v in self.utilization.items()]
        lines += ["# TYPE test_error_ratio gauge"]
        lines += [f'test_error_ratio{{cluster="{n}"}} {v}' for n, v in self.error_ratio.items()]
        lines += ["# TYPE test_shared_utilization gauge", f"test_shared_utilization {self.shared}"]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(STARTUP)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(STARTUP)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STARTUP)
        self._loop.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, Prometheus]]:
    served = Target()
    served.start()
    try:
        config = scrape_config([ScrapeTarget(f"127.0.0.1:{served.port}")])
        with running_prometheus(tmp_path_factory.mktemp("prometheus"), config) as running:
            # Once per module: the first scrape, which Prometheus 2.42 holds back about 5s.
            poll(lambda: running.vector("test_utilization") or None, WITHIN, "first scrape",
                 detail=running.logs)
            yield served, running
    finally:
        served.stop()


@pytest.fixture
def target(live: tuple[Target, Prometheus]) -> Iterator[Target]:
    served, _ = live
    served.reset()
    yield served
    served.reset()


@pytest.fixture
def prometheus(live: tuple[Target, Prometheus]) -> Iterator[Prometheus]:
    _, running = live
    yield running
    if not running.running:  # a test that stopped it and failed before starting it again
        running.start()


@pytest.fixture
async def source(prometheus: Prometheus, target: Target,
                 ) -> AsyncIterator[tuple[PrometheusSource, CollectorRegistry]]:
    spec = PrometheusSignals(
        url=prometheus.url,
        # One fleet-wide query, one per cluster, one shared: each way of asking.
        queries=SignalQueries(utilization="test_utilization",
                              error_ratio='test_error_ratio{cluster="{cluster}"}'),
        shared=SignalQueries(utilization="test_shared_utilization"),
        interval=INTERVAL, timeout=INTERVAL, lag=LAG)
    registry = CollectorRegistry()
    running = PrometheusSource(spec, lambda: ["a", "b"], SignalMetrics(registry))
    task = asyncio.create_task(running.run(), name="signals")
    try:
        yield running, registry
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _until(source: PrometheusSource, check: str, test: object) -> Signals:
    """The first snapshot, round by round, for which ``test(signals)`` holds."""
    assert callable(test)
    try:
        async with asyncio.timeout(WITHIN):
            while True:
                signals = await source.next_round()
                if test(signals):
                    return signals
    except TimeoutError:
        pytest.fail(f"{check}: not within {WITHIN:.0f}s; last {source.signals()}")


def _count(registry: CollectorRegistry, result: str) -> float:
    value = registry.get_sample_value("failover_signal_queries_total", {
        "target": "cluster", "signal": "utilization", "result": result})
    assert value is not None
    return value


async def test_values_come_back_and_a_vanished_series_goes_missing(
        source: tuple[PrometheusSource, CollectorRegistry], target: Target) -> None:
    """Scraped gauges read back per cluster and shared, dated about now - lag; a gauge the
    target stops serving is marked stale by Prometheus and becomes missing here."""
    signals_source, registry = source
    loop = asyncio.get_running_loop()
    got = await _until(signals_source, "every value in", lambda s: (
        set(s.clusters) == {"a", "b"} and s.shared is not None
        and all(x.utilization is not None and x.error_ratio is not None
                for x in s.clusters.values())))
    assert {n: (x.utilization, x.error_ratio) for n, x in got.clusters.items()} == {
        "a": (0.25, 0.01), "b": (0.5, 0.02)}
    assert got.shared is not None
    assert got.shared.utilization == 0.4
    assert got.shared_expected
    now = loop.time()
    for sample in (*got.clusters.values(), got.shared):
        assert now - LAG - 2 * INTERVAL - 1 < sample.measured_at <= now - LAG

    del target.utilization["b"]
    del target.error_ratio["b"]
    got = await _until(signals_source, "b gone", lambda s: "b" not in s.clusters)
    assert got.clusters["a"].utilization == 0.25
    assert _count(registry, "error") == 0


async def test_samples_stop_while_prometheus_is_down_and_resume_after(
        source: tuple[PrometheusSource, CollectorRegistry], prometheus: Prometheus) -> None:
    """Prometheus stopped: queries fail (counted) and measured_at stops; started again on the
    same port: measured_at advances again."""
    signals_source, registry = source
    before = await _until(signals_source, "a's values in", lambda s: "a" in s.clusters)
    await asyncio.to_thread(prometheus.stop)
    errors = _count(registry, "error")
    # Rounds after the stop fail; the values stay, dated where they were when it stopped.
    failed = await _until(signals_source, "queries failing",
                          lambda s: _count(registry, "error") >= errors + 2)
    stalled = failed.clusters["a"].measured_at
    assert stalled >= before.clusters["a"].measured_at
    assert failed.clusters["a"].utilization == 0.25
    again = await signals_source.next_round()
    assert again.clusters["a"].measured_at == stalled, "nothing new while it is down"

    await asyncio.to_thread(prometheus.start)
    oks = _count(registry, "ok")
    await _until(signals_source, "a advancing again",
                 lambda s: "a" in s.clusters and s.clusters["a"].measured_at > stalled)
    assert _count(registry, "ok") > oks
