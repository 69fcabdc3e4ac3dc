"""End to end: clusters from discovery files, as the daemon (a subprocess) re-reads them: a
file added brings its cluster in through the recovery gate, a broken one keeps its last good
content and says where it is broken, a clashing name is refused, and a file removed takes its
cluster out gradually before it goes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from failover.lab import Lab
from tests.e2e.test_daemon_with_lab import Daemon, daemon_process, wait_until, write_config
from tests.servers import free_port

pytestmark = pytest.mark.lab_clusters(4)


def cluster_file(lab: Lab, index: int, weight: float = 40, name: str | None = None) -> str:
    c = lab.clusters[index]
    return json.dumps({"clusters": [{
        "name": name or c.name, "weight": weight,
        "dns": {"server": c.dns_address, "names": ["api.default.svc.cluster.local"],
                "expect": [c.answer]},
        "checks": [{"http": f"{c.http_url}/healthz"}]}]})


@pytest.fixture
async def daemon(lab: Lab, tmp_path: Path) -> AsyncIterator[Daemon]:
    path = write_config(tmp_path, SimpleNamespace(clusters=lab.clusters[:3]),  # type: ignore[arg-type]
                        status := free_port())
    text = path.read_text().replace("max_shift_per_tick: 1", "max_shift_per_tick: 0.05")
    path.write_text("discovery: {files: [\"discovered/*.json\"], refresh: 200ms}\n" + text)
    (tmp_path / "discovered").mkdir()
    async with daemon_process(path, status) as running:
        yield running


def logged(folder: Path, text: str) -> bool:
    return text in (folder / "daemon.log").read_text()


async def cluster(daemon: Daemon, name: str) -> dict[str, Any] | None:
    try:
        status = await daemon.status()
    except aiohttp.ClientError:
        return None
    return next((c for c in status["clusters"] if c["name"] == name), None)


async def test_discovery_files_added_changed_broken_and_removed(
        lab: Lab, daemon: Daemon, tmp_path: Path) -> None:
    folder = tmp_path / "discovered"

    async def serving() -> bool:
        return len(daemon.file_shares()) == 3

    await wait_until(serving, 15, "first plan with the file's clusters")
    (folder / "edge.json").write_text(cluster_file(lab, 3))
    states: list[str] = []

    async def ramped_in() -> bool:
        found = await cluster(daemon, "lab-4")
        if found is not None and (not states or states[-1] != found["state"]):
            states.append(found["state"])
        return found is not None and found["state"] == "healthy" and found["share"] > 0

    await wait_until(ramped_in, 20, "the discovered cluster ramped in")
    assert states[0] in ("unknown", "waiting"), states
    assert "recovering" in states, states

    # Changed: taken up.
    (folder / "edge.json").write_text(cluster_file(lab, 3, weight=20))

    async def reweighted() -> bool:
        found = await cluster(daemon, "lab-4")
        return found is not None and found["base_weight"] == 20

    await wait_until(reweighted, 10, "the changed weight taken up")

    # Broken: reported where, last good content kept.
    (folder / "edge.json").write_text('{"clusters": [{"name": "lab-4", "weight": -1}]}')
    await wait_until(lambda: asyncio.sleep(0, logged(tmp_path, "edge.json:1: clusters[0]")),
                     10, "the broken file reported")
    assert (await cluster(daemon, "lab-4")) is not None
    files = (await daemon.status())["sources"]["discovery"]["files"]
    edge = next(f for f in files if f["file"].endswith("edge.json"))
    assert edge["clusters"] == ["lab-4"]
    assert "edge.json:1: clusters[0].weight" in edge["error"]

    # A name the config file has: refused, nothing changes.
    (folder / "clash.json").write_text(cluster_file(lab, 3, name="lab-1"))
    await wait_until(lambda: asyncio.sleep(0, logged(tmp_path, "duplicate cluster name 'lab-1'")),
                     10, "the clash reported")
    names = {c["name"] for c in (await daemon.status())["clusters"]}
    assert names == {"lab-1", "lab-2", "lab-3", "lab-4"}

    # Removed: its share goes down in steps, then it goes.
    (folder / "clash.json").unlink()
    (folder / "edge.json").unlink()
    shares: list[float] = []

    async def gone() -> bool:
        found = await cluster(daemon, "lab-4")
        if found is not None and (not shares or shares[-1] != found["share"]):
            shares.append(found["share"])
        return found is None

    await wait_until(gone, 20, "the removed cluster drained and gone")
    assert shares[-1] == 0, shares
    assert len([s for s in shares if 0 < s < shares[0]]) >= 2, shares
