"""Fixtures for the signal source: a fake Prometheus API served by aiohttp on a free loopback
port, fake clocks, and a source built against them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from failover.config.signals import PrometheusSignals, SignalQueries
from failover.signals import PrometheusSource, SignalMetrics

WALL = 1_700_000_000.0
"""The fake wall clock's start (unix seconds), and the evaluation time fake replies carry."""
LOOP = 1000.0
"""The fake loop clock's start."""

Handler = Callable[[str], Awaitable[web.StreamResponse]]


class Clock:
    """A clock that moves only when the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def vector(*series: tuple[dict[str, str], str], ts: float = WALL) -> dict[str, Any]:
    """An instant-vector reply: one series per (labels, value text)."""
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [ts, value]} for labels, value in series]}}


def one(value: str, ts: float = WALL) -> dict[str, Any]:
    """A vector of one series without labels (an aggregated per-cluster query)."""
    return vector(({}, value), ts=ts)


def json_response(doc: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(doc), status=status, content_type="application/json")


class FakePrometheus:
    """``/api/v1/query``: answers ``replies[query]`` (an empty vector for any other query),
    or whatever ``handler`` returns when a test sets one; records every query it gets."""

    def __init__(self) -> None:
        self.replies: dict[str, Any] = {}
        self.handler: Handler | None = None
        self.queries: list[str] = []
        self.arrivals: list[float] = []
        """Loop time of each query's arrival."""
        self.received = asyncio.Event()
        """Set at each query's arrival."""
        self.release = asyncio.Event()
        """Handlers that hang wait for it; set at teardown so the server can stop."""
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        expr = request.query["query"]
        self.queries.append(expr)
        self.arrivals.append(asyncio.get_running_loop().time())
        self.received.set()
        if self.handler is not None:
            return await self.handler(expr)
        return json_response(self.replies.get(expr, vector()))

    async def hang(self, expr: str) -> web.StreamResponse:
        """A handler that never answers (until teardown)."""
        await self.release.wait()
        return json_response(vector())


@pytest.fixture
async def fake() -> AsyncIterator[FakePrometheus]:
    server = FakePrometheus()
    app = web.Application()
    app.router.add_get("/api/v1/query", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


class Rig:
    """A source against the fake, on fake clocks, with its registry to read metrics from."""

    def __init__(self, fake: FakePrometheus) -> None:
        self.fake = fake
        self.loop = Clock(LOOP)
        self.wall = Clock(WALL)
        self.registry = CollectorRegistry()
        self.clusters: list[str] = ["a", "b", "c"]

    def spec(self, queries: dict[str, str], *, shared: dict[str, str] | None = None,
             **options: Any) -> PrometheusSignals:
        # interval == timeout: a round never waits for a token, so a frozen clock is safe.
        fields: dict[str, Any] = {"interval": 1.0, "timeout": 1.0, "lag": 10.0,
                                  "max_queries_per_second": 1000.0, **options}
        return PrometheusSignals(
            url=self.fake.url, queries=SignalQueries(**queries),
            shared=SignalQueries(**shared) if shared is not None else None, **fields)

    def source(self, queries: dict[str, str], *, shared: dict[str, str] | None = None,
               clusters: Callable[[], Sequence[str]] | None = None,
               **options: Any) -> PrometheusSource:
        return PrometheusSource(self.spec(queries, shared=shared, **options),
                                clusters or (lambda: self.clusters),
                                SignalMetrics(self.registry), loop_time=self.loop,
                                wall_time=self.wall)

    def advance(self, seconds: float) -> None:
        self.loop.now += seconds
        self.wall.now += seconds

    def count(self, result: str, *, target: str = "cluster",
              signal: str = "utilization") -> float:
        value = self.registry.get_sample_value(
            "failover_signal_queries_total",
            {"target": target, "signal": signal, "result": result})
        assert value is not None
        return value


@pytest.fixture
def rig(fake: FakePrometheus) -> Rig:
    return Rig(fake)
