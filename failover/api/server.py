"""An aiohttp server run as an ordinary task: it sets ``ready`` once bound, cleans up on cancel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from failover.config.addresses import Endpoint, split_hostport

log = logging.getLogger(__name__)

AccessHook = Callable[[BaseRequest, web.StreamResponse], None]

ACCESS_HOOK: web.AppKey[AccessHook] = web.AppKey("access_hook")
"""Set on an app, called once for every answered request, where aiohttp writes its access
log: after the answer, for requests the app handled and for those aiohttp refused before any
handler or middleware ran (malformed request lines or headers, over-long lines). It must not
block: it runs on the loop, synchronously."""

LINGER = 2.0
"""Seconds aiohttp keeps reading (and discarding) a body nobody read, after the answer,
before closing (aiohttp's default is 10). Our bodies are at most a few KiB, so 2s covers any
honest client; longer only lets refused clients hold connections and feed the loop data."""


SHUTDOWN_WAIT = 2.0
"""Seconds requests in flight get to finish when the daemon stops (aiohttp's default is 60):
a stop must be bounded, and no answer of ours takes long."""


def _access_logger(hook: AccessHook) -> type[AbstractAccessLogger]:
    class HookAccessLogger(AbstractAccessLogger):
        def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
            try:
                hook(request, response)
            except Exception:
                # aiohttp would log and drop the connection's next requests; a hook's bug
                # must cost only its own line.
                log.exception("access hook failed")

    return HookAccessLogger


class Listener:
    def __init__(self, name: str, app: web.Application, address: Endpoint | str) -> None:
        self.name = name
        self.app = app
        self.address = split_hostport(address, listen=True) if isinstance(address, str) \
            else address
        self.ready = asyncio.Event()
        self.bound: list[str] = []
        """Addresses actually bound (a port 0 in the config becomes the real port)."""

    async def serve(self) -> None:
        host, port = self.address
        hook = self.app.get(ACCESS_HOOK)
        if hook is None:
            runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                   lingering_time=LINGER, shutdown_timeout=SHUTDOWN_WAIT)
        else:
            runner = web.AppRunner(self.app, handle_signals=False, lingering_time=LINGER,
                                   shutdown_timeout=SHUTDOWN_WAIT, access_log=log,
                                   access_log_class=_access_logger(hook))
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
