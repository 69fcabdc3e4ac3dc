"""A cluster's HTTP service: ``/healthz`` and a catch-all that names the cluster.

Its faults follow the cluster's `Faults`, read per request. ``refuse`` closes the
listening socket (new connections are refused, as from a dead pod's address) and the
service binds the same port again once the fault is lifted.

Capacity model: with ``capacity_rps`` set, requests beyond that many in the current
one-second window (from the first request in it) get 503, health checks included, as a
saturated service answers.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from failover.lab.faults import Counters, Faults

log = logging.getLogger(__name__)

CLUSTER_HEADER = "X-Lab-Cluster"
"""Names the cluster on every answer, so a load test through a proxy can count the split."""

HOLD_LIMIT = 3600.0
"""Seconds a ``timeout`` fault holds a request: far beyond any client's patience."""


class HttpService:
    def __init__(self, name: str, faults: Faults, counters: Counters,
                 capacity_rps: float | None = None) -> None:
        self.name = name
        self.faults = faults
        self.counters = counters
        self.capacity_rps = capacity_rps
        self.host = ""
        self.port = 0
        self._window = (-1.0, 0)
        """(start, requests so far) of the capacity model's one-second window."""
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_route("*", "/{tail:.*}", self._serve)
        # Held ``timeout`` requests are cancelled at once on shutdown, not waited for.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.1)
        self._site: web.TCPSite | None = None
        self._held: set[asyncio.Task[object]] = set()
        """Handlers waiting out a ``timeout`` or ``slow`` fault, ended at close."""

    async def start(self, host: str, port: int) -> None:
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

    def _over_capacity(self) -> bool:
        if self.capacity_rps is None:
            return False
        now = asyncio.get_running_loop().time()
        start, count = self._window
        self._window = (start, count + 1) if 0 <= now - start < 1 else (now, 1)
        return self._window[1] > self.capacity_rps

    async def _respond(self, body: str) -> web.Response:
        self.counters.http += 1
        headers = {CLUSTER_HEADER: self.name}
        if self._over_capacity():
            self.counters.over_capacity += 1
            return web.Response(status=503, text="over capacity\n", headers=headers)
        fault = self.faults.http
        if fault in ("timeout", "slow"):
            await self._hold(HOLD_LIMIT if fault == "timeout" else self.faults.delay)
        elif fault == "500":
            return web.Response(status=500, text="injected fault\n", headers=headers)
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
        return await self._respond("ok\n")

    async def _serve(self, request: web.Request) -> web.Response:
        return await self._respond(f"{self.name}\n")
