"""An aiohttp server run as an ordinary task: it sets ``ready`` once bound, cleans up on cancel."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from failover.config.addresses import split_hostport

log = logging.getLogger(__name__)


class Listener:
    def __init__(self, name: str, app: web.Application, address: str) -> None:
        self.name = name
        self.app = app
        self.address = address
        self.ready = asyncio.Event()
        self.bound: list[str] = []
        """Addresses actually bound (a port 0 in the config becomes the real port)."""

    async def serve(self) -> None:
        host, port = split_hostport(self.address, listen=True)
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
            self.bound = [f"{a[0]}:{a[1]}" for a in runner.addresses]
            log.info("%s listener on %s", self.name, ", ".join(self.bound))
            self.ready.set()
            await asyncio.Event().wait()  # until cancelled
        finally:
            await runner.cleanup()
