"""Real traffic through a real HAProxy splits as the plan says, and leaves a failed cluster.

The load generator opens a new connection for every request (keep-alive off): each request is
then its own load-balancing decision and no idle connection stays pinned to a server, so the
counts measure the weights and nothing else, as many independent clients would.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from failover.actuators.base import Applied
from failover.actuators.haproxy import HaproxyActuator
from failover.lab import Lab
from failover.lab.service import CLUSTER_HEADER
from tests.actuators.test_file import make_plan
from tests.e2e.test_daemon_with_lab import DETECTION_BOUND
from tests.e2e.test_daemon_with_lab import write_config as e2e_config
from tests.haproxy import Haproxy, free_port, running_haproxy

MAPPING = {"lab-1": "lab-1", "lab-2": "lab-2", "lab-3": "lab-3"}
REQUESTS = 2000
TOLERANCE = 0.03
"""Allowed gap between a cluster's fraction of requests and its share. Weighted round robin is
deterministic, so the real error is rounding (256/154/102 for 0.5/0.3/0.2: at most 0.1 point)
plus where in HAProxy's cycle the sample starts and ends (a few requests of 2000: 0.1-0.2
point); 3 points leaves room for HAProxy's threads picking in a slightly different order,
while a wrong weight (e.g. 0.3 sent as 0.5) is still far outside."""

# DETECTION_BOUND is the e2e test's: fall x interval + timeout + a tick, plus jitter and
# slack, 3.3 s. The actuator runs as soon as the plan is made; setting weights takes ms.
MAX_FAILED = 5
"""Requests allowed to fail during the move. lab-1's HTTP keeps working under a DNS fault and
drain lets requests in flight finish, so 0 is expected; a few would mean a race, not a bug."""
RATE = 200.0
"""Requests per second of the continuous load: fine enough to time the move to 5 ms, light
enough that the lab, which shares this event loop, answers the daemon's probes on time."""
AFTER = 300
"""Requests sent after the drain shows in HAProxy, to be sure lab-1 gets none."""


@pytest.fixture
async def haproxy(lab: Lab, tmp_path: Path) -> AsyncIterator[Haproxy]:
    servers = {c.name: c.http_url.removeprefix("http://") for c in lab.clusters}
    async with running_haproxy(tmp_path, servers) as running:
        yield running


@dataclass(frozen=True)
class Outcome:
    started: float
    """Loop time the request was sent: when HAProxy picked its server, to a millisecond."""
    cluster: str | None
    """``X-Lab-Cluster`` of a 200 answer; None when the request failed."""
    error: str | None = None


@dataclass
class Load:
    """Sends GET requests through HAProxy, new connection each, and records every outcome."""

    url: str
    outcomes: list[Outcome] = field(default_factory=list)
    _waiters: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    async def one(self, session: aiohttp.ClientSession) -> None:
        started = asyncio.get_running_loop().time()
        try:
            async with session.get(self.url + "/") as response:
                await response.read()
                cluster = response.headers.get(CLUSTER_HEADER)
                if response.status == 200 and cluster:
                    self.outcomes.append(Outcome(started, cluster))
                else:
                    self.outcomes.append(Outcome(started, None, f"status {response.status}"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.outcomes.append(Outcome(started, None, repr(exc)))
        for count, event in self._waiters:
            if len(self.outcomes) >= count:
                event.set()

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=16),
            timeout=aiohttp.ClientTimeout(total=2))

    async def burst(self, total: int, concurrency: int = 10) -> None:
        """Send ``total`` requests as fast as ``concurrency`` workers go."""
        remaining = iter(range(total))
        async with self.session() as session:

            async def worker() -> None:
                for _ in remaining:
                    await self.one(session)

            async with asyncio.TaskGroup() as tasks:
                for _ in range(concurrency):
                    tasks.create_task(worker())

    async def steady(self, stop: asyncio.Event, rate: float = RATE) -> None:
        """Send ``rate`` requests a second, each on its own task, until ``stop`` is set."""
        loop = asyncio.get_running_loop()
        async with self.session() as session, asyncio.TaskGroup() as tasks:
            next_at = loop.time()
            while not stop.is_set():
                tasks.create_task(self.one(session))
                next_at += 1 / rate
                # Pacing, not synchronisation: the schedule keeps the rate, the stop ends it.
                await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def reached(self, count: int) -> None:
        """Wait until ``count`` outcomes are recorded."""
        event = asyncio.Event()
        self._waiters.append((count, event))
        if len(self.outcomes) >= count:
            event.set()
        await event.wait()

    def split(self, since: float = float("-inf"), until: float = float("inf"),
              ) -> dict[str, float]:
        """Fraction of the answered requests each cluster served, of those sent in the window."""
        served = Counter(o.cluster for o in self.outcomes
                         if o.cluster and since <= o.started < until)
        total = sum(served.values())
        return {name: count / total for name, count in sorted(served.items())}

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.cluster is None]


async def test_traffic_split_follows_the_plan(haproxy: Haproxy) -> None:
    """2000 requests through HAProxy split 0.5/0.3/0.2 within 3 points, then 0/0.6/0.4."""
    actuator = HaproxyActuator(backend="app", servers=MAPPING, socket=haproxy.socket)
    plans = [{"lab-1": 0.5, "lab-2": 0.3, "lab-3": 0.2},
             {"lab-1": 0.0, "lab-2": 0.6, "lab-3": 0.4}]
    for version, shares in enumerate(plans, start=1):
        await actuator.apply(Applied(make_plan(version, shares), 0.0))
        load = Load(haproxy.url)
        await load.burst(REQUESTS)
        split = load.split()
        print(f"plan {shares}: measured {split}, {len(load.failed())} failed")
        assert load.failed() == []
        if shares["lab-1"] == 0:
            assert "lab-1" not in split, "a drained server gets no new request at all"
        for name, share in shares.items():
            assert split.get(name, 0.0) == pytest.approx(share, abs=TOLERANCE), name


def write_config(folder: Path, lab: Lab, status_port: int, socket: Path) -> Path:
    """The end-to-end test's config, plus the HAProxy actuator."""
    servers = ", ".join(f"{c}: {s}" for c, s in MAPPING.items())
    return e2e_config(folder, lab, status_port, slow_start=1.0, actuators=(
        f'- {{type: haproxy, socket: "{socket}", backend: app, servers: {{{servers}}}}}\n'))


@pytest.fixture
async def daemon(lab: Lab, haproxy: Haproxy, tmp_path: Path,
                 ) -> AsyncIterator[asyncio.subprocess.Process]:
    config = write_config(tmp_path, lab, free_port(), haproxy.socket)
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "failover", "run", "-c", str(config), "--log-format", "json",
            stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        print(log_path.read_text()[-4000:])  # shown when a test fails: what the daemon said


async def wait_for(check: Callable[[], Awaitable[bool]], within: float, what: str,
                   daemon: asyncio.subprocess.Process) -> float:
    """Poll HAProxy's state until ``check`` holds; return the seconds it took."""
    start = time.monotonic()
    while not await check():
        if daemon.returncode is not None:
            pytest.fail(f"the daemon exited with {daemon.returncode} before {what}")
        if time.monotonic() - start > within:
            pytest.fail(f"{what} did not happen within {within:.1f}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_daemon_moves_real_traffic_off_a_failed_cluster(
        lab: Lab, haproxy: Haproxy, daemon: asyncio.subprocess.Process) -> None:
    """A DNS fault in lab-1 takes its HTTP traffic through HAProxy to 0 within the bound."""

    async def weights(expected: dict[str, tuple[int, bool]]) -> bool:
        servers = await haproxy.servers()
        return {n: (s.weight, s.drain) for n, s in servers.items()} == expected

    async def planned() -> bool:
        return await weights({"lab-1": (256, False), "lab-2": (154, False),
                              "lab-3": (102, False)})

    async def evacuated() -> bool:
        return await weights({"lab-1": (0, True), "lab-2": (256, False), "lab-3": (171, False)})

    await wait_for(planned, 15, "first plan in HAProxy", daemon)
    load = Load(haproxy.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(load.steady(stop))
        await load.reached(200)
        await lab.set_fault("lab-1", dns="timeout")
        fault_at = loop.time()
        await wait_for(evacuated, DETECTION_BOUND, "lab-1 drained in HAProxy", daemon)
        drained_seen = loop.time()
        await load.reached(len(load.outcomes) + AFTER)
        stop.set()

    before = load.split(until=fault_at)
    last_lab1 = max(o.started for o in load.outcomes if o.cluster == "lab-1")
    evacuation = last_lab1 - fault_at
    after = load.split(since=drained_seen)
    failed = load.failed()
    print(f"{len(load.outcomes)} requests; lab-1's last at {evacuation:.2f}s after the fault "
          f"(bound {DETECTION_BOUND:.2f}s); drain seen at {drained_seen - fault_at:.2f}s; "
          f"split after: {after}; failed: {len(failed)} {failed[:3]}")
    assert before.get("lab-1", 0) > 0.3, "lab-1 served its share before the fault"
    assert evacuation <= DETECTION_BOUND
    assert "lab-1" not in after
    assert after == pytest.approx({"lab-2": 0.6, "lab-3": 0.4}, abs=TOLERANCE)
    assert len(failed) <= MAX_FAILED
