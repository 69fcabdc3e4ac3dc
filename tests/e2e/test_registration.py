"""End to end: a cluster registered through the admin API while the daemon runs enters through
the recovery gate and ramps in; bad bodies and over-budget ones change nothing; a restart
brings the registration back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from failover.lab import Lab
from tests.e2e.test_daemon_with_lab import Daemon, daemon_process, wait_until, write_config
from tests.servers import free_port

TOKEN = "registration-test-token"  # noqa: S105 - a throwaway token for a local test

pytestmark = pytest.mark.lab_clusters(4)


class Admin:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    async def put(self, name: str, body: Any) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with aiohttp.ClientSession() as session, session.put(
                f"{self.url}/v1/clusters/{name}", data=data,
                headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            return response.status, await response.json()


def body_for(lab: Lab, index: int) -> dict[str, Any]:
    c = lab.clusters[index]
    return {"weight": 40,
            "dns": {"server": c.dns_address, "names": ["api.default.svc.cluster.local"],
                    "expect": [c.answer]},
            "checks": [{"http": f"{c.http_url}/healthz"}]}


@pytest.fixture
def config(lab: Lab, tmp_path: Path) -> tuple[Path, int, int]:
    """The first three lab clusters in the file; the fourth is left to register."""
    status, admin = free_port(), free_port()
    path = write_config(tmp_path, SimpleNamespace(clusters=lab.clusters[:3]),  # type: ignore[arg-type]
                        status)
    text = path.read_text().replace('admin: "127.0.0.1:0"', f'admin: "127.0.0.1:{admin}"')
    # Moves in steps, so that a drain is seen going down as a ramp is seen going up.
    path.write_text(text.replace("max_shift_per_tick: 1", "max_shift_per_tick: 0.05"))
    return path, status, admin


@contextlib.asynccontextmanager
async def start(config: tuple[Path, int, int]) -> AsyncIterator[Daemon]:
    path, status, _ = config
    async with daemon_process(path, status, {"FAILOVER_ADMIN_TOKEN": TOKEN}) as daemon:
        async def up() -> bool:
            try:
                return bool(await daemon.status())
            except aiohttp.ClientError:
                return False

        await wait_until(up, 15, "the daemon answering")
        yield daemon


@pytest.fixture
async def running(config: tuple[Path, int, int]) -> AsyncIterator[Daemon]:
    async with start(config) as daemon:
        yield daemon


async def test_a_registered_cluster_ramps_in_and_survives_a_restart(
        lab: Lab, running: Daemon, config: tuple[Path, int, int], tmp_path: Path) -> None:
    admin = Admin(config[2])

    async def all_serving() -> bool:
        return len(running.file_shares()) == 3

    await wait_until(all_serving, 15, "first plan with the file's clusters")
    cluster_file = tmp_path / "lab-4.yaml"
    cluster_file.write_text(json.dumps({"name": "lab-4", **body_for(lab, 3)}))
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "failover", "register", "-f", str(cluster_file),
        "--url", f"http://127.0.0.1:{config[2]}", stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "FAILOVER_ADMIN_TOKEN": TOKEN})
    out, _ = await cli.communicate()
    assert cli.returncode == 0
    answer = json.loads(out)
    assert (answer["created"], answer["saved"]) == (True, True), answer
    # The same body again is an update, not a second cluster.
    status, answer = await admin.put("lab-4", body_for(lab, 3))
    assert (status, answer["created"]) == (200, False), answer
    sources = (await running.status())["sources"]
    assert (sources["registered"], sources["deregistering"]) == (["lab-4"], [])

    seen: list[float] = []
    states: list[str] = []

    async def ramped() -> bool:
        share = running.file_shares().get("lab-4", 0.0)
        if not seen or share != seen[-1]:
            seen.append(share)
        cluster = next((c for c in (await running.status())["clusters"]
                        if c["name"] == "lab-4"), None)
        if cluster is not None and (not states or states[-1] != cluster["state"]):
            states.append(cluster["state"])
        return share == pytest.approx(40 / 140)

    await wait_until(ramped, 20, "the registered cluster at its full share")
    # Never at full share at once: it waited for its verdict, then ramped.
    assert seen[0] == 0
    assert len([s for s in seen if 0 < s < 40 / 140 - 1e-9]) >= 3, seen
    assert states[0] in ("unknown", "waiting"), states
    assert "recovering" in states, states

    # A restart: the registration was saved, and comes back.
    running.process.terminate()
    await running.process.wait()
    async with start(config) as again:
        names = {c["name"] for c in (await again.status())["clusters"]}
        assert "lab-4" in names
        await deregister_through_the_cli(again, config)


async def deregister_through_the_cli(daemon: Daemon, config: tuple[Path, int, int]) -> None:
    async def serving() -> bool:
        return daemon.file_shares().get("lab-4", 0.0) == pytest.approx(40 / 140)

    await wait_until(serving, 15, "the restored cluster at its share again")
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "failover", "deregister", "lab-4",
        "--url", f"http://127.0.0.1:{config[2]}", stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "FAILOVER_ADMIN_TOKEN": TOKEN})
    out, _ = await cli.communicate()
    assert cli.returncode == 0
    assert json.loads(out) == {"deregistering": "lab-4", "saved": True}

    seen: list[float] = []

    async def removed() -> bool:
        share = daemon.file_shares().get("lab-4")
        if share is not None and (not seen or seen[-1] != share):
            seen.append(share)
        return "lab-4" not in {c["name"] for c in (await daemon.status())["clusters"]}

    await wait_until(removed, 20, "the deregistered cluster drained and removed")
    assert seen[-1] == 0, seen
    assert len([s for s in seen if 0 < s < 40 / 140 - 1e-9]) >= 3, seen  # gradually
    registry = json.loads((daemon.weights.parent / "clusters.json").read_text())
    assert registry["clusters"] == {}
    assert registry["leaving"] == []
    audited = [json.loads(line) for line in
               (daemon.weights.parent / "audit.jsonl").read_text().splitlines()]
    actions = [(e.get("action"), e.get("cluster"), e.get("result")) for e in audited]
    assert ("register", "lab-4", "ok") in actions
    assert ("deregister", "lab-4", "ok") in actions


async def test_a_bad_or_over_budget_registration_changes_nothing(
        lab: Lab, running: Daemon, config: tuple[Path, int, int], tmp_path: Path) -> None:
    admin = Admin(config[2])
    before = {c["name"] for c in (await running.status())["clusters"]}

    bad = {**body_for(lab, 3), "weight": -1, "colour": "red"}
    status, answer = await admin.put("lab-4", bad)
    assert status == 400, answer
    assert "weight" in answer["error"]
    assert "colour: unknown key" in answer["error"]
    assert (await admin.put("lab-4", b"{not json"))[0] == 400
    assert (await admin.put("lab-4", {**body_for(lab, 3), "name": "other"}))[0] == 400

    # Ten DNS names at one server: 10 x 2 requests per probe every 0.4 s at the shortest
    # gap is 50/s, over the file's 10/s per target.
    greedy = body_for(lab, 3)
    greedy["dns"]["names"] = [f"n{i}.cluster.local" for i in range(10)]
    status, answer = await admin.put("lab-4", greedy)
    assert status == 409, answer
    assert "exceeds probing.budget.per_target_per_second" in answer["error"]

    status, answer = await admin.put("lab-1", body_for(lab, 3))
    assert status == 409
    assert "defined in the config file" in answer["error"]

    assert {c["name"] for c in (await running.status())["clusters"]} == before
    assert not (tmp_path / "state" / "clusters.json").exists()
