"""End to end: the daemon, as a subprocess, moves traffic off a cluster whose DNS fails and back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from failover.lab import Lab
from tests.servers import free_port

INTERVAL, JITTER, TIMEOUT, TICK, FALL, RISE = 0.5, 0.2, 0.3, 0.2, 3, 2
SLACK = 2.0
"""Seconds allowed on top of the bounds for process scheduling and file/HTTP polling on a
loaded 2-core CI machine. The bounds themselves are held exactly, on a fake clock, in
tests/test_daemon.py; here a real process against real servers must keep them roughly."""
DETECTION_BOUND = FALL * INTERVAL + TIMEOUT + TICK + FALL * INTERVAL * JITTER + SLACK
"""fall x interval + timeout + one tick, plus jitter (each gap may be longer by
``jitter``) and the slack above: 4.3 s with the values here."""
SLOW_START = 1.0
RESTORE_BOUND = RISE * INTERVAL * (1 + JITTER) + INTERVAL * (1 + JITTER) + 2 * TICK + SLACK
"""rise passes, plus up to one interval until the first probe after the fix, a tick to take
the recovery slot and one to get a first slice of traffic, slack."""
RAMP_BOUND = SLOW_START + TICK + SLACK
"""From the first slice to the full share: the slow start and a tick."""


def write_config(folder: Path, lab: Lab, status_port: int,
                 slow_start: float = SLOW_START, actuators: str = "") -> Path:
    """The daemon's config for the lab; ``actuators``: more entries (YAML flow mappings, one
    per line) beside the file actuator."""
    clusters = "".join(textwrap.dedent(f"""\
          - name: {c.name}
            weight: {weight}
            dns: {{server: "{c.dns_address}", names: [api.default.svc.cluster.local],
                  expect: ["{c.answer}"]}}
            checks:
              - http: {c.http_url}/healthz
              - tcp: "{c.http_url.removeprefix('http://')}"
        """) for c, weight in zip(lab.clusters, (50, 30, 20), strict=True))
    path = folder / "config.yaml"
    path.write_text(textwrap.dedent(f"""\
        listen: {{status: "127.0.0.1:{status_port}", admin: "127.0.0.1:0"}}
        state_dir: state
        probing:
          interval: {INTERVAL}
          timeout: {TIMEOUT}
          jitter: {JITTER}
          rise: {RISE}
          fall: {FALL}
          budget: {{per_target_per_second: 10, total_per_second: 200, max_in_flight: 32}}
        policy:
          tick: {TICK}
          min_healthy_fraction: 0.3
          max_shift_per_tick: 1
          recovery: {{slow_start: {slow_start}}}
        actuators:
          - {{type: file, path: state/weights.json}}
        """) + textwrap.indent(actuators, "  ") + "clusters:\n" + clusters)
    return path


async def wait_until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll an external process's output until ``check`` holds; return the seconds it took."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > within:
            pytest.fail(f"{what} did not happen within {within:.1f}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


class Daemon:
    def __init__(self, process: asyncio.subprocess.Process, url: str, folder: Path) -> None:
        self.process = process
        self.url = url
        self.weights = folder / "state" / "weights.json"

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as r:
            return await r.json()

    async def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = await self.get("/v1/status")
        return doc

    async def metric(self, line_prefix: str) -> float | None:
        async with aiohttp.ClientSession() as session, session.get(self.url + "/metrics") as r:
            text = await r.text()
        for line in text.splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def file_shares(self) -> dict[str, float]:
        try:
            doc = json.loads(self.weights.read_text())
        except (OSError, ValueError):
            return {}
        return {name: c["share"] for name, c in doc["clusters"].items()}


@contextlib.asynccontextmanager
async def daemon_process(config: Path, status_port: int,
                         env: Mapping[str, str] | None = None) -> AsyncIterator[Daemon]:
    """``failover run -c config`` as a process, in the config's folder, logging JSON to
    daemon.log there; killed at the end if still running, its log's tail printed (shown
    when a test fails)."""
    folder = config.parent
    with (folder / "daemon.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "failover", "run", "-c", str(config), "--log-format", "json",
            stderr=log, cwd=folder, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    try:
        yield Daemon(process, f"http://127.0.0.1:{status_port}", folder)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        print((folder / "daemon.log").read_text()[-6000:])


@pytest.fixture
async def daemon(lab: Lab, tmp_path: Path) -> AsyncIterator[Daemon]:
    port = free_port()
    async with daemon_process(write_config(tmp_path, lab, port), port) as running:
        yield running


async def test_dns_outage_moves_traffic_away_and_back(lab: Lab, daemon: Daemon) -> None:
    """A DNS fault in lab-1 takes its share to 0 within the bound everywhere, and it returns."""

    async def all_serving() -> bool:
        return daemon.file_shares().get("lab-1", 0) > 0 and len(daemon.file_shares()) == 3

    await wait_until(all_serving, 15, "first plan with every cluster serving")
    assert daemon.file_shares() == pytest.approx({"lab-1": 0.5, "lab-2": 0.3, "lab-3": 0.2})

    await lab.set_fault("lab-1", dns="timeout")

    async def evacuated_in_file() -> bool:
        return daemon.file_shares().get("lab-1") == 0

    took = await wait_until(evacuated_in_file, DETECTION_BOUND, "evacuation in weights.json")
    assert daemon.file_shares() == pytest.approx({"lab-1": 0, "lab-2": 0.6, "lab-3": 0.4})
    status = await daemon.status()
    lab1 = next(c for c in status["clusters"] if c["name"] == "lab-1")
    assert lab1["share"] == 0
    assert lab1["state"] == "unhealthy"
    assert "timeout" in lab1["reason"]
    assert await daemon.metric('failover_cluster_share{cluster="lab-1"}') == 0
    newest = await daemon.get("/v1/decisions?limit=3")
    evacuation = next(d for d in newest if d["cluster"] == "lab-1")
    assert (evacuation["action"], evacuation["to_share"]) == ("evacuate", 0)
    assert "timeout" in evacuation["reason"]
    print(f"evacuation took {took:.2f}s (bound {DETECTION_BOUND:.2f}s)")

    await lab.set_fault("lab-1", dns="ok")

    async def restored() -> bool:
        return daemon.file_shares().get("lab-1", 0) > 0

    await wait_until(restored, RESTORE_BOUND, "recovery in weights.json")
    ramp_start = daemon.file_shares()["lab-1"]
    assert 0 < ramp_start < 0.5, "it ramps up (slow start) instead of snapping back"

    async def ramped() -> bool:
        return daemon.file_shares().get("lab-1", 0) == pytest.approx(0.5)

    await wait_until(ramped, RAMP_BOUND, "full share after the slow start")
    assert daemon.file_shares() == pytest.approx({"lab-1": 0.5, "lab-2": 0.3, "lab-3": 0.2})
    lab1 = next(c for c in (await daemon.status())["clusters"] if c["name"] == "lab-1")
    # Passing again; degraded while its recent failures still weigh on its score.
    assert lab1["state"] in ("healthy", "degraded")
    assert lab1["share"] == 0.5
    assert await daemon.metric('failover_cluster_share{cluster="lab-1"}') == 0.5


async def test_sigterm_stops_fast_and_leaves_weights(lab: Lab, daemon: Daemon) -> None:
    """SIGTERM ends the daemon within 2 s and weights.json stays byte for byte as it was."""

    async def written() -> bool:
        return len(daemon.file_shares()) == 3

    await wait_until(written, 15, "first plan written")
    before = daemon.weights.read_bytes()
    await lab.set_fault("lab-2", http="500")  # failing probes in flight while it stops
    start = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(daemon.process.wait(), 5)
    assert time.monotonic() - start < 2.0
    assert code == 0
    assert daemon.weights.read_bytes() == before
