"""End to end: a cluster whose resolver keeps answering while its heartbeat freezes is
evacuated within max_age + fall x interval + timeout + tick, its DNS names resolving all along.

The caching lesson of 11 December 2024: the names still resolved from cache after the control
plane behind them was gone, so no probe of a name saw anything wrong until caches expired.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from failover.lab import Lab
from failover.lab.dns_server import HEARTBEAT
from tests.e2e.test_daemon_with_lab import (
    DETECTION_BOUND,
    Daemon,
    daemon_process,
    wait_until,
    write_config,
)
from tests.servers import free_port

MAX_AGE = 2.0
FROZEN_ROUNDING = 1.0
"""The lab's heartbeat is whole seconds: frozen, it may already be this much behind."""
STALE_BOUND = MAX_AGE + FROZEN_ROUNDING + DETECTION_BOUND


@pytest.fixture
async def daemon(lab: Lab, tmp_path: Path) -> AsyncIterator[Daemon]:
    config = write_config(tmp_path, lab, port := free_port())
    text = config.read_text().replace(
        "expect: [", f"freshness: {{name: {HEARTBEAT}, max_age: {MAX_AGE}}}, expect: [")
    assert text.count("freshness") == len(lab.clusters)
    config.write_text(text)
    async with daemon_process(config, port) as running:
        yield running


def checks_of(status: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    cluster = next(c for c in status["clusters"] if c["name"] == name)
    return {check["label"]: check for check in cluster["checks"]}


async def test_a_frozen_heartbeat_evacuates_a_cluster_whose_dns_still_answers(
        lab: Lab, daemon: Daemon) -> None:
    async def all_serving() -> bool:
        shares = daemon.file_shares()
        return len(shares) == 3 and all(share > 0 for share in shares.values())

    await wait_until(all_serving, 15, "first plan with every cluster serving")
    await lab.set_fault("lab-1", dns="stale")

    async def evacuated() -> bool:
        return daemon.file_shares().get("lab-1") == 0

    took = await wait_until(evacuated, STALE_BOUND, "evacuation of the stale cluster")
    status = await daemon.status()
    lab1 = next(c for c in status["clusters"] if c["name"] == "lab-1")
    assert lab1["state"] == "unhealthy"
    assert "heartbeat" in lab1["reason"]
    assert "stale" in lab1["reason"]
    checks = checks_of(status, "lab-1")
    heartbeat = next(c for label, c in checks.items() if label.endswith(" heartbeat"))
    name = next(c for label, c in checks.items()
                if label.endswith("api.default.svc.cluster.local"))
    assert not heartbeat["ok"]
    assert "over max_age 2s" in heartbeat["error"]
    # The resolver answered the names all along: only the heartbeat told.
    assert name["ok"], name
    assert name["consecutive_failures"] == 0
    assert lab.clusters[0].counters.dns_udp > 0
    print(f"evacuation took {took:.2f}s (bound {STALE_BOUND:.2f}s)")

    await lab.set_fault("lab-1", dns="ok")

    async def back() -> bool:
        return daemon.file_shares().get("lab-1", 0) > 0

    await wait_until(back, 15, "the cluster back once its heartbeat moves again")
