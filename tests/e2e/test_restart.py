"""kill -9 in the middle of a recovery: the restarted daemon takes up the ramp where it was."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from failover.lab import Lab
from tests.e2e.test_daemon_with_lab import TICK, Daemon, free_port, wait_until, write_config

SLOW_START = 6.0
"""Long enough to kill the daemon mid-ramp and watch the next one carry on."""


async def start(config: Path, folder: Path, port: int, log_name: str) -> Daemon:
    with (folder / log_name).open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "failover", "run", "-c", str(config), "--log-format", "json",
            stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return Daemon(process, f"http://127.0.0.1:{port}", folder)


def version(folder: Path) -> int:
    doc = json.loads((folder / "state" / "weights.json").read_text())
    return int(doc["version"])


async def test_kill_9_mid_recovery_resumes_the_ramp(lab: Lab, tmp_path: Path) -> None:
    """After kill -9 during lab-1's slow start, the new daemon neither snaps lab-1 back to its
    full share nor starts the ramp over: shares only grow, within the original ramp's bound."""
    port = free_port()
    config = write_config(tmp_path, lab, port, slow_start=SLOW_START)
    first = await start(config, tmp_path, port, "first.log")
    second: Daemon | None = None
    try:
        await wait_until(lambda: _true(len(first.file_shares()) == 3), 15, "first plan")
        await lab.set_fault("lab-1", dns="timeout")
        await wait_until(lambda: _true(first.file_shares().get("lab-1") == 0), 10, "evacuation")
        await lab.set_fault("lab-1", dns="ok")
        await wait_until(lambda: _true(first.file_shares().get("lab-1", 0) > 0), 10, "ramp")
        ramp_seen = time.monotonic()  # the ramp began at most a tick or two before this
        await wait_until(lambda: _true(first.file_shares()["lab-1"] > 0.1), SLOW_START,
                         "mid-ramp")
        killed_at = first.file_shares()["lab-1"]
        killed_version = version(tmp_path)
        first.process.kill()
        await first.process.wait()
        assert killed_at < 0.45, "killed before the ramp ended"

        second = await start(config, tmp_path, port, "second.log")
        seen: list[tuple[float, float]] = []
        deadline = time.monotonic() + SLOW_START + 5
        while time.monotonic() < deadline:
            share = second.file_shares().get("lab-1")
            if share is not None:
                seen.append((time.monotonic() - ramp_seen, share))
                if share == pytest.approx(0.5):
                    break
            await asyncio.sleep(0.05)  # sampling an outside process's file
        assert seen[-1][1] == pytest.approx(0.5), f"lab-1 never got its share back: {seen}"
        shares = [share for _, share in seen]
        assert min(shares) >= killed_at - 1e-6, "the ramp went backwards or started over"
        for elapsed, share in seen:  # the original ramp's line, plus two ticks of lead
            assert share <= 0.5 * min(1.0, (elapsed + 2 * TICK) / SLOW_START) + 1e-6, seen
        assert version(tmp_path) > killed_version, "versions carry on from the saved plan"
        print(f"killed at share {killed_at:.3f}; resumed, full share "
              f"{seen[-1][0]:.1f}s after the ramp was first seen")
    finally:
        for daemon in (first, second):
            if daemon is not None and daemon.process.returncode is None:
                daemon.process.kill()
                await daemon.process.wait()


async def _true(value: bool) -> bool:
    return value
