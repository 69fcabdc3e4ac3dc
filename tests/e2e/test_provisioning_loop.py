"""End to end, the whole loop of a fleet running short: the daemon (a subprocess) sees demand
beyond its clusters' headroom, calls the provisioning webhook once, the receiver starts a new
lab cluster and registers it through the admin API, and the new cluster ramps in through the
recovery gate until nothing is short."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from failover.lab import Lab
from tests.e2e.test_daemon_with_lab import Daemon, daemon_process, wait_until, write_config
from tests.servers import free_port, serving

TOKEN = "provisioning-loop-token"  # noqa: S105 - a throwaway token for a local test
HOOK_TOKEN = "hook-token"  # noqa: S105 - same


class Provisioner:
    """What a real one does with a cloud API, done with the lab: start a cluster, register it."""

    def __init__(self, lab: Lab, admin: str) -> None:
        self.lab = lab
        self.admin = admin
        self.calls: list[tuple[dict[str, Any], str | None]] = []
        self.added: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((await request.json(), request.headers.get("Authorization")))
        cluster = await self.lab.add()
        body = {"weight": 40, "capacity_rps": 200,
                "dns": {"server": cluster.dns_address,
                        "names": ["api.default.svc.cluster.local"], "expect": [cluster.answer]},
                "checks": [{"http": f"{cluster.http_url}/healthz"}]}
        async with aiohttp.ClientSession() as session, session.put(
                f"{self.admin}/v1/clusters/{cluster.name}", json=body,
                headers={"Authorization": f"Bearer {TOKEN}"}) as answer:
            assert answer.status == 201, await answer.text()
        self.added.append(cluster.name)
        return web.json_response({"provisioning": cluster.name}, status=202)


@pytest.fixture
async def receiver(lab: Lab) -> AsyncIterator[tuple[Provisioner, str, int]]:
    admin = free_port()
    provisioner = Provisioner(lab, f"http://127.0.0.1:{admin}")
    app = web.Application()
    app.router.add_post("/provision", provisioner.handle)
    async with serving(app) as url:
        yield provisioner, f"{url}/provision", admin


@pytest.fixture
async def daemon(lab: Lab, tmp_path: Path,
                 receiver: tuple[Provisioner, str, int]) -> AsyncIterator[Daemon]:
    _, hook, admin = receiver
    (tmp_path / "hook-token").write_text(HOOK_TOKEN)
    path = write_config(tmp_path, lab, status := free_port(), slow_start=3.0)
    text = path.read_text().replace('admin: "127.0.0.1:0"', f'admin: "127.0.0.1:{admin}"')
    # 300 rps on three clusters of 100 within 0.8 headroom: 60 rps short from the first plan.
    text = text.replace("  weight: ", "  capacity_rps: 100\n  weight: ")
    text = text.replace("clusters:\n", textwrap_block(hook) + "clusters:\n", 1)
    # Timed: a ramp in even steps over the slow start, whatever the live signals say.
    text = text.replace("recovery: {slow_start: 3.0}", "recovery: {mode: timed, slow_start: 3.0}")
    assert "mode: timed" in text
    path.write_text(text)
    async with daemon_process(path, status, {"FAILOVER_ADMIN_TOKEN": TOKEN}) as running:
        yield running


def textwrap_block(hook: str) -> str:
    return (f"demand_rps: 300\n"
            f"provisioning:\n"
            f"  webhook: {{url: \"{hook}\", token_file: hook-token}}\n"
            f"  after: 1s\n"
            f"  cooldown: 10m\n")


async def test_a_shortfall_provisions_a_cluster_that_ramps_in(
        lab: Lab, daemon: Daemon, receiver: tuple[Provisioner, str, int]) -> None:
    provisioner = receiver[0]

    async def provisioned() -> bool:
        return bool(provisioner.added)

    await wait_until(provisioned, 20, "the webhook called and a cluster registered")
    (body, authorization), = provisioner.calls
    assert authorization == f"Bearer {HOOK_TOKEN}"
    assert body["shortfall_rps"] == pytest.approx(60, abs=1)
    assert sorted(body["at_capacity"]) == ["lab-1", "lab-2", "lab-3"]
    assert body["demand_rps"] == 300
    new = provisioner.added[0]

    shares: list[float] = []
    states: list[str] = []

    async def in_full() -> bool:
        status = await daemon.status()
        cluster = next((c for c in status["clusters"] if c["name"] == new), None)
        if cluster is None:
            return False
        if not states or states[-1] != cluster["state"]:
            states.append(cluster["state"])
        if not shares or shares[-1] != cluster["share"]:
            shares.append(cluster["share"])
        return cluster["state"] == "healthy" and cluster["share"] > 0 \
            and cluster["share"] == pytest.approx(cluster["target_share"])

    await wait_until(in_full, 30, "the provisioned cluster ramped in")
    assert states[0] in ("unknown", "waiting"), states
    assert "recovering" in states, states
    target = shares[-1]
    assert len([s for s in shares if 0 < s < target - 1e-9]) >= 3, shares

    async def nothing_short() -> bool:
        return await daemon.metric("failover_provisioning_shortfall_rps") == 0

    await wait_until(nothing_short, 10, "the shortfall gone")
    # Once, not once per tick: the shortfall lasted all through the ramp.
    assert len(provisioner.calls) == 1
    assert await daemon.metric('failover_provisioning_calls_total{result="ok"}') == 1
    assert json.dumps(body)
