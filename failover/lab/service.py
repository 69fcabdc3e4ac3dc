"""A cluster's HTTP service: ``/healthz`` and a catch-all that names the cluster.

Its faults follow the cluster's `Faults`, read per request. ``refuse`` closes the
listening socket (new connections are refused, as from a dead pod's address) and the
service binds the same port again once the fault is lifted.

Capacity model (`failover.lab.load`): with ``capacity_rps`` set, requests beyond the
current one-second window's effective capacity (``capacity_rps x warmth``) get 503, health
checks included, as a saturated service answers. Only 200 answers to other paths warm the
cluster (`failover.lab.warmth`). Without ``capacity_rps`` the same window only measures load.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from failover.lab.faults import Counters, Faults
from failover.lab.load import ClusterLoad
from failover.lab.warmth import WarmthParams

log = logging.getLogger(__name__)

CLUSTER_HEADER = "X-Lab-Cluster"
"""Names the cluster on every answer, so a load test through a proxy can count the split."""

HOLD_LIMIT = 3600.0
"""Seconds a ``timeout`` fault holds a request: far beyond any client's patience."""


class HttpService:
    def __init__(self, name: str, faults: Faults, counters: Counters,
                 capacity_rps: float | None = None, warmth: WarmthParams | None = None,
                 clock: Callable[[], float] | None = None, *, reject_cost: float = 0.0) -> None:
        """``warmth`` applies only with ``capacity_rps``; ``clock``: the loop's by default."""
        self.name = name
        self.faults = faults
        self.counters = counters
        self.capacity_rps = capacity_rps
        self.host = ""
        self.port = 0
        self.clock = clock or _loop_time
        self._warmth = warmth
        self._reject_cost = reject_cost
        self._load: ClusterLoad | None = None
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_route("*", "/{tail:.*}", self._serve)
        # Held ``timeout`` requests are cancelled at once on shutdown, not waited for.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.1)
        self._site: web.TCPSite | None = None
        self._held: set[asyncio.Task[object]] = set()
        """Handlers waiting out a ``timeout`` or ``slow`` fault, ended at close."""

    @property
    def load(self) -> ClusterLoad:
        if self._load is None:
            msg = f"lab {self.name}: the HTTP service has not started"
            raise RuntimeError(msg)
        return self._load

    async def start(self, host: str, port: int) -> None:
        # Here, not in __init__: the idle clock of a warm start runs from when it serves.
        self._load = ClusterLoad(self.capacity_rps, self._warmth, self.clock(),
                                 reject_cost=self._reject_cost)
        await self._runner.setup()
        self.host = host
        await self._listen(port)
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        await self._runner.cleanup()
        # aiohttp cancels a handler whose client left but does not wait for it to finish.
        for task in self._held:
            task.cancel()
        await asyncio.gather(*self._held, return_exceptions=True)

    async def apply_faults(self) -> None:
        """Open or close the listening socket as the ``refuse`` fault says."""
        refusing = self.faults.http == "refuse"
        if refusing and self._site is not None:
            site, self._site = self._site, None
            await site.stop()
        elif not refusing and self._site is None:
            await self._listen(self.port)

    async def _listen(self, port: int) -> None:
        site = web.TCPSite(self._runner, self.host, port, reuse_address=True)
        await site.start()
        self._site = site

    async def _respond(self, body: str, *, traffic: bool) -> web.Response:
        """``traffic``: a request for the application, not a health check."""
        self.counters.http += 1
        headers = {CLUSTER_HEADER: self.name}
        if not self.load.offer(self.clock()):
            self.counters.over_capacity += 1
            return web.Response(status=503, text="over capacity\n", headers=headers)
        fault = self.faults.http
        if fault in ("timeout", "slow"):
            await self._hold(HOLD_LIMIT if fault == "timeout" else self.faults.delay)
        elif fault == "500":
            self.counters.failed += 1
            return web.Response(status=500, text="injected fault\n", headers=headers)
        self.counters.ok += 1
        self.load.served(self.clock(), traffic=traffic)
        return web.Response(text=body, headers=headers)

    async def _hold(self, seconds: float) -> None:
        task = asyncio.current_task()
        if task is None:
            return
        self._held.add(task)
        try:
            await asyncio.sleep(seconds)
        finally:
            self._held.discard(task)

    async def _health(self, request: web.Request) -> web.Response:
        return await self._respond("ok\n", traffic=False)

    async def _serve(self, request: web.Request) -> web.Response:
        # Health checks with another method than GET or HEAD land here: still not traffic.
        return await self._respond(f"{self.name}\n", traffic=request.path != "/healthz")


def _loop_time() -> float:
    return asyncio.get_running_loop().time()
