"""A load generator for end-to-end tests: the clients behind a client-side load balancer.

Open loop, as real users are: a new request every ``1 / rps`` seconds of the loop's clock,
whatever happened to the earlier ones, each on its own task. Each goes to the cluster that
the shares of that moment pick, by smooth weighted round robin (deterministic, and as even
as whole requests allow); shares summing below 1 leave the rest unsent, counted as shed.
Requests in flight are bounded, so a target that hangs cannot pile up tasks forever; a
request that finds the bound reached is not sent and is counted as dropped.

    async with LoadGenerator(urls, SharesFile(weights), rps=200) as load:
        counts = await load.wait(lambda s: s.total().done >= 400)
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Self, TypeGuard

import aiohttp

SERVING = 1e-9
"""A share or a rest above this is traffic, not float noise (as the planner counts it)."""


@dataclass(frozen=True)
class ClusterCounts:
    """Requests picked for one cluster since the start or the last reset."""

    sent: int = 0
    ok: int = 0
    """Answered 200."""
    over_capacity: int = 0
    """Answered 503."""
    other: int = 0
    """Answered with any other status."""
    errors: int = 0
    """No answer: connection refused or reset, or no answer within the timeout."""
    dropped: int = 0
    """Not sent: the bound on requests in flight was reached."""

    @property
    def done(self) -> int:
        return self.ok + self.over_capacity + self.other + self.errors

    @property
    def in_flight(self) -> int:
        return self.sent - self.done

    def __add__(self, other: ClusterCounts) -> ClusterCounts:
        return ClusterCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                                for f in fields(self)})


@dataclass(frozen=True)
class LoadSnapshot:
    clusters: Mapping[str, ClusterCounts]
    """Every cluster with a URL, in the order given."""
    shed: int
    """Arrivals sent nowhere because the shares summed below 1."""
    elapsed: float
    """Loop seconds since the start or the last reset."""

    def total(self) -> ClusterCounts:
        return sum(self.clusters.values(), ClusterCounts())

    def split(self) -> dict[str, float]:
        """Each cluster's fraction of the requests sent."""
        sent = self.total().sent
        return {name: c.sent / sent if sent else 0.0 for name, c in self.clusters.items()}


class SmoothWeightedRoundRobin:
    """nginx's smooth weighted round robin over shares, with the unsent rest of 1 as one more
    contender (picked as None). Over any n picks with fixed shares, each cluster gets its
    share of n to within a request or so, spread out rather than in runs."""

    def __init__(self) -> None:
        self._current: dict[str | None, float] = {}

    def pick(self, shares: Mapping[str, float]) -> str | None:
        weights: dict[str | None, float] = {
            name: share for name, share in shares.items()
            if math.isfinite(share) and share > SERVING}
        rest = 1.0 - sum(weights.values())
        if rest > SERVING:
            weights[None] = rest
        if not weights:
            return None
        total = sum(weights.values())
        # Contenders that left the shares leave their credit behind; new ones start at 0.
        current = {key: self._current.get(key, 0.0) + weight for key, weight in weights.items()}
        chosen = max(current, key=current.__getitem__)
        current[chosen] -= total
        self._current = current
        return chosen


class LoadGeneratorError(RuntimeError):
    """The generator itself failed (e.g. ``shares`` raised): the counts stopped meaning much."""


class LoadGenerator:
    """``async with LoadGenerator(urls, shares, rps) as load``: sends from entry to exit.

    ``urls``: cluster name to base URL (requests go to ``url + "/"``); a share for a name
    without a URL is shed. ``shares``: called at every arrival. ``timeout``: seconds for
    a whole request. ``max_in_flight``: the bound on requests in flight.
    """

    def __init__(self, urls: Mapping[str, str], shares: Callable[[], Mapping[str, float]],
                 rps: float, timeout: float = 1.0, *, max_in_flight: int | None = None) -> None:
        if not (math.isfinite(rps) and rps > 0):
            msg = f"rps must be a finite number above 0, got {rps}"
            raise ValueError(msg)
        if not (math.isfinite(timeout) and timeout > 0):
            msg = f"timeout must be a finite number above 0, got {timeout}"
            raise ValueError(msg)
        if max_in_flight is not None and max_in_flight < 1:
            msg = f"max_in_flight must be at least 1, got {max_in_flight}"
            raise ValueError(msg)
        self.urls = dict(urls)
        self.shares = shares
        self.rps = rps
        self.timeout = timeout
        # Every request ends by its timeout, so about rps x timeout are ever in flight;
        # twice that (and a floor) absorbs a slow loop without capping a healthy run.
        self.max_in_flight = max_in_flight if max_in_flight is not None \
            else math.ceil(2 * rps * timeout) + 16
        self._picker = SmoothWeightedRoundRobin()
        self._tallies = {name: Counter[str]() for name in self.urls}
        self._shed = 0
        self._since = 0.0
        self._epoch = 0
        """Bumped by reset: answers to requests sent before it are not counted after it."""
        self._session: aiohttp.ClientSession | None = None
        self._pacer: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._waiters: list[tuple[Callable[[LoadSnapshot], bool],
                                  asyncio.Future[LoadSnapshot]]] = []
        self._failure: BaseException | None = None

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),  # the in-flight bound is the limit
            timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._since = loop.time()
        self._pacer = loop.create_task(self._pace(), name="loadgen pacer")
        self._pacer.add_done_callback(self._task_done)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        tasks = [*([] if self._pacer is None else [self._pacer]), *self._requests]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            self._task_done(task)  # again: its done callback may not have run yet
        if self._session is not None:
            await self._session.close()
        for _, waiter in self._waiters:
            waiter.cancel()
        self._waiters.clear()
        if exc is None:  # else that one says more, and may be this failure already
            self._raise_failure()

    def snapshot(self) -> LoadSnapshot:
        return LoadSnapshot(
            clusters=MappingProxyType({n: ClusterCounts(**t) for n, t in self._tallies.items()}),
            shed=self._shed, elapsed=asyncio.get_running_loop().time() - self._since)

    def reset(self) -> None:
        """Start counting afresh; answers to requests already in flight are not counted."""
        self._epoch += 1
        self._tallies = {name: Counter[str]() for name in self.urls}
        self._shed = 0
        self._since = asyncio.get_running_loop().time()
        self._changed()

    async def wait(self, predicate: Callable[[LoadSnapshot], bool]) -> LoadSnapshot:
        """Until ``predicate`` holds for the counts (checked at every change); returns those
        counts. Bound it with ``asyncio.timeout``. Raises LoadGeneratorError if it failed."""
        self._raise_failure()
        snapshot = self.snapshot()
        if predicate(snapshot):
            return snapshot
        waiter: asyncio.Future[LoadSnapshot] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, waiter))
        return await waiter

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rps
        next_at = loop.time()
        while True:
            now = loop.time()
            # After a stall the arrivals it missed go out at once: users kept arriving.
            while next_at <= now:
                self._arrive(loop)
                next_at += interval
            await asyncio.sleep(next_at - now)

    def _arrive(self, loop: asyncio.AbstractEventLoop) -> None:
        shares = {name: share for name, share in self.shares().items() if name in self.urls}
        target = self._picker.pick(shares)
        if target is None:
            self._shed += 1
        elif len(self._requests) >= self.max_in_flight:
            self._tallies[target]["dropped"] += 1
        else:
            self._tallies[target]["sent"] += 1
            task = loop.create_task(self._request(target, self._epoch),
                                    name=f"loadgen request to {target}")
            self._requests.add(task)
            task.add_done_callback(self._task_done)
        self._changed()

    async def _request(self, name: str, epoch: int) -> None:
        assert self._session is not None
        status: int | None = None
        try:
            async with self._session.get(self.urls[name] + "/") as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        if epoch != self._epoch:
            return
        outcome = {None: "errors", 200: "ok", 503: "over_capacity"}.get(status, "other")
        self._tallies[name][outcome] += 1
        self._changed()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._requests.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        # A bug here, not a target's misbehaviour: fail every waiter and the exit, loudly.
        if self._failure is None:
            self._failure = task.exception()
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(LoadGeneratorError(f"the load generator failed: "
                                                        f"{self._failure!r}"))
        self._waiters.clear()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            msg = f"the load generator failed: {self._failure!r}"
            raise LoadGeneratorError(msg) from self._failure

    def _changed(self) -> None:
        if not self._waiters:
            return
        snapshot = self.snapshot()
        waiting = []
        for predicate, waiter in self._waiters:
            if waiter.done():
                continue  # its waiting task was cancelled
            if predicate(snapshot):
                waiter.set_result(snapshot)
            else:
                waiting.append((predicate, waiter))
        self._waiters = waiting


@dataclass
class SharesFile:
    """Shares from the daemon's file actuator output (``weights.json``), as a ``shares``
    callable: read at every call, keeping the last good read while the file is missing,
    half written or not the expected shape (no shares at all before the first good read).

    Read every time rather than when its stat changes: a rewrite within the same clock tick
    at the same size would look unchanged, and a small file costs microseconds to read."""

    path: Path
    shares: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    version: int | None = None
    """The plan version of the last good read."""

    def __call__(self) -> Mapping[str, float]:
        try:
            shares, self.version = parse_weights(json.loads(self.path.read_bytes()))
        except (OSError, ValueError):
            return self.shares
        self.shares = MappingProxyType(shares)
        return self.shares


def parse_weights(doc: object) -> tuple[dict[str, float], int | None]:
    """Shares and plan version of a ``weights.json`` document; ValueError if it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("clusters"), dict):
        msg = "not a weights document: no 'clusters' object"
        raise ValueError(msg)
    shares = {}
    for name, entry in doc["clusters"].items():
        share = entry.get("share") if isinstance(entry, dict) else None
        if not _is_number(share) or not math.isfinite(share) or share < 0:
            msg = f"cluster {name!r}: share is not a number of 0 or more: {share!r}"
            raise ValueError(msg)
        shares[str(name)] = float(share)
    version = doc.get("version")
    return shares, version if isinstance(version, int) and not isinstance(version, bool) \
        else None


def _is_number(value: object) -> TypeGuard[int | float]:
    # bool is an int to Python, never a share or a version to us.
    return isinstance(value, int | float) and not isinstance(value, bool)
