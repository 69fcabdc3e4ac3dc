"""The examples the docs point to work: docs/provisioning.md's webhook receiver, run as a
process, starts a lab cluster and registers a body the daemon takes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from failover.config import Cluster
from failover.lab import Lab
from failover.lab.control import control_server
from tests.servers import free_port, serving

RECEIVER = Path(__file__).parent.parent / "examples" / "provision_receiver.py"


@pytest.fixture
async def admin() -> AsyncIterator[tuple[str, list[tuple[str, Any, str | None]]]]:
    """Stands in for the daemon's admin API: records each registration."""
    seen: list[tuple[str, Any, str | None]] = []

    async def register(request: web.Request) -> web.Response:
        seen.append((request.match_info["name"], await request.json(),
                     request.headers.get("Authorization")))
        return web.json_response({"registered": request.match_info["name"]}, status=201)

    app = web.Application()
    app.router.add_put("/v1/clusters/{name}", register)
    async with serving(app) as url:
        yield url, seen


async def test_the_provisioning_receiver_starts_and_registers_a_cluster(
        lab: Lab, admin: tuple[str, list[tuple[str, Any, str | None]]]) -> None:
    url, seen = admin
    port = free_port()
    async with control_server(lab) as control:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(RECEIVER), f"http://{control}", url, "tok", str(port))
        try:
            answer = None
            async with aiohttp.ClientSession() as session:
                for _ in range(200):  # until it listens: polled, as for any process
                    try:
                        async with session.post(
                                f"http://127.0.0.1:{port}/provision",
                                json={"shortfall_rps": 60, "at_capacity": ["lab-1"],
                                      "plan_version": 3}) as response:
                            answer = (response.status, await response.json())
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
        finally:
            process.terminate()
            await process.wait()
    assert answer == (201, {"registered": "lab-4"})
    assert [c.name for c in lab.clusters] == ["lab-1", "lab-2", "lab-3", "lab-4"]
    (name, body, authorization), = seen
    assert (name, authorization) == ("lab-4", "Bearer tok")
    cluster = Cluster.model_validate({**body, "name": name})
    assert cluster.capacity_rps == 120
    assert cluster.dns is not None
    assert str(cluster.dns.server) == lab.clusters[3].dns_address
