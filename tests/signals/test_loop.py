"""The source's loop: a round every interval, an unexpected error in a round logged with
its traceback and counted while the loop goes on, cancellation at any point ending it
cleanly."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from failover.config.signals import PrometheusSignals, SignalQueries
from failover.signals import PrometheusSource, SignalMetrics
from tests.signals.conftest import FakePrometheus, json_response, vector

WITHIN = 10.0
"""Seconds a test waits for rounds that come every few tens of milliseconds."""


def _spec(fake: FakePrometheus, interval: float = 0.05) -> PrometheusSignals:
    return PrometheusSignals(url=fake.url, queries=SignalQueries(utilization="u"),
                             interval=interval, timeout=interval, lag=0)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_failing_round_is_logged_counted_and_the_loop_goes_on(
        fake: FakePrometheus, caplog: pytest.LogCaptureFixture) -> None:
    """clusters() raising (a bug) costs one round, with a traceback and a count; the next
    round runs."""
    fake.replies = {"u": vector(({"cluster": "a"}, "0.5"))}
    calls = 0

    def clusters() -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            msg = "broken"
            raise RuntimeError(msg)
        return ["a"]

    registry = CollectorRegistry()
    source = PrometheusSource(_spec(fake), clusters, SignalMetrics(registry))
    task = asyncio.create_task(source.run(), name="signals")
    try:
        async with asyncio.timeout(WITHIN):
            while "a" not in (await source.next_round()).clusters:
                pass
    finally:
        await _stop(task)
    assert registry.get_sample_value("failover_signal_errors_total") == 1
    failed = [r for r in caplog.records if "signal round failed" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].exc_info is not None
    assert "RuntimeError: broken" in caplog.text


async def test_rounds_come_every_interval(fake: FakePrometheus) -> None:
    """The loop queries again each interval: measured_at follows the evaluation times, on
    the loop clock."""

    async def now(expr: str) -> web.StreamResponse:
        return json_response(vector(({"cluster": "a"}, "0.5"), ts=time.time()))

    fake.handler = now
    source = PrometheusSource(_spec(fake), lambda: ["a"], SignalMetrics(CollectorRegistry()))
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(source.run(), name="signals")
    try:
        async with asyncio.timeout(WITHIN):
            first = (await source.next_round()).clusters["a"].measured_at
            for _ in range(3):
                await source.next_round()
            later = source.signals().clusters["a"].measured_at
    finally:
        await _stop(task)
    assert first < later <= loop.time()
    assert later > loop.time() - 1.0, "lag 0: as old as the reply, no older"
    assert len(fake.queries) >= 4


async def test_cancel_during_a_query_ends_the_loop(fake: FakePrometheus) -> None:
    """Cancelled while a query is in flight: the loop ends at once, no task left behind."""
    fake.handler = fake.hang
    source = PrometheusSource(_spec(fake, interval=5.0), lambda: ["a", "b"],
                              SignalMetrics(CollectorRegistry()))
    task = asyncio.create_task(source.run(), name="signals")
    async with asyncio.timeout(WITHIN):
        await fake.received.wait()
    await _stop(task)


async def test_a_round_called_on_its_own_opens_and_closes_a_session(
        fake: FakePrometheus, caplog: pytest.LogCaptureFixture) -> None:
    """run_round outside run() works and leaves nothing open (an unclosed session would
    warn, and warnings are errors)."""
    caplog.set_level(logging.WARNING)
    fake.replies = {"u": vector(({"cluster": "a"}, "0.5"))}
    source = PrometheusSource(_spec(fake), lambda: ["a"], SignalMetrics(CollectorRegistry()))
    await source.run_round()
    assert source.signals().clusters["a"].utilization == 0.5
    assert not caplog.records
