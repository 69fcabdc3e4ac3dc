"""The status listener serves CONTRACT's documents and Prometheus metrics."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp

from failover.api.document import status_document, status_document_in_batches
from failover.api.history import Series
from failover.model import Plan
from tests.actuators.test_file import make_plan


class FakeSource:
    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.is_ready = False

    def current_plan(self) -> Plan | None:
        return self.plan

    def cluster_checks(self, cluster: str) -> list[dict[str, Any]]:
        return [{"kind": "dns", "target": f"{cluster}:53", "ok": True, "latency_ms": 1.5,
                 "error": None, "consecutive_failures": 0}]

    def cluster_vantages(self, cluster: str) -> dict[str, str] | None:
        return None

    def score_components(self, cluster: str) -> dict[str, float]:
        return {"success_ratio": 1.0, "latency_factor": 1.0}

    def share_series(self, cluster: str) -> Series | None:
        return None

    def decisions(self, limit: int) -> list[dict[str, Any]]:
        return [{"at": f"2026-12-02T01:20:0{v}.000Z", "version": v, "cluster": "a",
                 "action": "rebalance", "from_share": 0.5, "to_share": 0.5, "reason": "",
                 "cause": "health"} for v in range(5, 0, -1)][:limit]

    def extra_status(self) -> dict[str, Any]:
        return {"actuators": []}

    def alive(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.is_ready


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_status_document_shape(served: tuple[FakeSource, str]) -> None:
    """/v1/status lists clusters by rank with CONTRACT's fields and checks."""
    source, url = served
    source.plan = make_plan(4, {"a": 0.6, "b": 0.4})
    async with aiohttp.ClientSession() as session, session.get(url + "/v1/status") as response:
        doc = await response.json()
    assert doc["version"] == 4
    assert doc["frozen"] is False
    assert [c["name"] for c in doc["clusters"]] == ["a", "b"]
    first = doc["clusters"][0]
    assert set(first) == {"name", "rank", "state", "score", "share", "target_share",
                          "base_weight", "reason", "checks", "score_components", "capped",
                          "spilled", "recovery", "ramp", "limit"}
    assert first["score_components"] == {"success_ratio": 1.0, "latency_factor": 1.0}
    assert first["recovery"] == {"ramp_elapsed_s": None, "cooldown_remaining_s": None,
                                 "failed_recoveries": 0}
    assert doc["shed"] == 0
    assert first["share"] == 0.6
    assert first["checks"][0]["target"] == "a:53"
    assert doc["recoveries"] == {"active": [], "queued": [], "slots": None, "slots_reason": ""}
    assert (first["ramp"], first["limit"]) == (None, None)


async def test_readyz_follows_verdicts(served: tuple[FakeSource, str]) -> None:
    """/readyz is 503 until every cluster has a verdict, then 200; /healthz is 200."""
    source, url = served
    assert (await get(url + "/readyz"))[0] == 503
    source.is_ready = True
    assert (await get(url + "/readyz"))[0] == 200
    assert (await get(url + "/healthz"))[0] == 200


async def test_decisions_limit(served: tuple[FakeSource, str]) -> None:
    """/v1/decisions honours ?limit and rejects a bad one with 400 and a message."""
    _, url = served
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/v1/decisions?limit=2") as response:
            assert [d["version"] for d in await response.json()] == [5, 4]
        async with session.get(url + "/v1/decisions?limit=abc") as response:
            assert response.status == 400
            assert "limit must be an integer" in await response.text()


async def test_metrics_exposition(served: tuple[FakeSource, str]) -> None:
    """/metrics serves Prometheus text with the build info and reload counters."""
    _, url = served
    status, text = await get(url + "/metrics")
    assert status == 200
    assert 'failover_build_info{version="' in text
    assert 'failover_config_reloads_total{result="error"} 0.0' in text


async def test_the_document_read_in_batches_is_the_document() -> None:
    """/v1/status reads its clusters a batch at a time; what it serves is unchanged."""
    source = FakeSource()
    source.plan = make_plan(3, {f"c{n}": 1 / 250 for n in range(250)})
    assert await status_document_in_batches(source) == status_document(source)


async def test_the_page_and_metrics_answer_while_every_default_worker_is_held(
        served: tuple[FakeSource, str]) -> None:
    """Saves to a hung disk can hold every thread of the default executor for good; the
    page and /metrics render on threads of their own, so operators still see the fleet."""
    source, url = served
    source.plan = make_plan(1, {"a": 1.0})
    loop = asyncio.get_running_loop()
    held = threading.Event()
    workers = ThreadPoolExecutor(1)
    loop.set_default_executor(workers)
    stuck = loop.run_in_executor(None, held.wait)  # the one default worker, held
    try:
        async with asyncio.timeout(10):
            status, page = await get(url + "/")
            assert status == 200
            assert "plan <b>v1</b>" in page
            async with aiohttp.ClientSession() as session, session.get(
                    url + "/metrics", headers={"Accept-Encoding": "gzip"}) as response:
                assert response.status == 200
                assert "failover_build_info" in await response.text()
    finally:
        held.set()
        await stuck
        loop.set_default_executor(ThreadPoolExecutor())
        workers.shutdown(wait=False)
