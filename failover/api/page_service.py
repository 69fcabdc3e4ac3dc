"""When the status page is rendered and how it is served: renders made ahead of requests
while anyone watches, on the page's own thread, each body encoded once."""

from __future__ import annotations

import asyncio
import gzip
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from failover.api import page
from failover.api.document import status_document_in_batches
from failover.api.exposition import GZIP_LEVEL
from failover.api.history import Series
from failover.api.source import StatusSource

PAGE_MAX_AGE = 1.0
"""Seconds between two renders of the page while someone watches it: any number of open
pages, refreshing, cost one render a second, so a crowd watching an incident cannot load
the daemon."""

SERVED_FOR = 5.0
"""Seconds a render is served for: the next one, started PAGE_MAX_AGE after it started,
takes its place well before, even when a loaded loop makes a render take most of a second
(at a thousand clusters with every probe hanging, it can)."""

WATCHED_FOR = 30.0
"""Seconds after the last request that renders go on: a page refreshing every few seconds
always finds a fresh one ready, and nobody watching costs nothing."""

log = logging.getLogger(__name__)


class Rendered:
    """One render: its time, and each body served from it, encoded once, on the page's
    thread (a thousand clusters' page is most of a megabyte)."""

    def __init__(self, at: float, title: str, main: str) -> None:
        self.at = at
        whole = page.page(title, main).encode()
        part = main.encode()
        self.bodies = {(True, False): whole, (False, False): part,
                       (True, True): gzip.compress(whole, GZIP_LEVEL),
                       (False, True): gzip.compress(part, GZIP_LEVEL)}
        """By (whole page, gzipped)."""


class StatusPage:
    """`GET /`, the whole page, and `GET /?part=main`, what its script swaps in.

    A request is answered from a render made ahead of it: while anyone watched within
    WATCHED_FOR, a render follows each one by PAGE_MAX_AGE, so a request costs the loop
    no more than writing bytes already made, and the page stays fast under full probe load.
    A render reads what the page shows on the loop, where the daemon's state changes, and
    makes it into HTML on a thread of the page's own: at a thousand clusters that takes tens
    of milliseconds that would otherwise stop every probe, and the default executor's
    threads can all be held by saves to a hung disk, when the page matters most."""

    def __init__(self, source: StatusSource, failed: Callable[[], None] = lambda: None,
                 wall: Callable[[], float] = time.time) -> None:
        """``failed`` is called for each render that failed (a metric); it is logged."""
        self._source = source
        self._failed = failed
        self._wall = wall
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="status-page")
        self._sparks = page.Sparklines()
        self._rendered: Rendered | None = None
        self._rendering: asyncio.Task[Rendered] | None = None
        """In progress: a request that needs a render waits for this one."""
        self._next: asyncio.TimerHandle | None = None
        self._watched_until = -math.inf
        self._started = -math.inf
        self._closed = False

    async def rendered(self) -> Rendered:
        """A render younger than SERVED_FOR, waiting for one only when none is."""
        now = asyncio.get_running_loop().time()
        self._watched_until = now + WATCHED_FOR
        rendered = self._rendered
        if rendered is not None and now - rendered.at < SERVED_FOR:
            if self._rendering is None and self._next is None:
                self._render_later()
            return rendered
        rendering = self._rendering or self._render()
        # Shielded: a viewer that hangs up must not cancel the render others wait on.
        return await asyncio.shield(rendering)

    def _render(self) -> asyncio.Task[Rendered]:
        if self._next is not None:
            self._next.cancel()
            self._next = None
        self._started = asyncio.get_running_loop().time()
        rendering = self._rendering = asyncio.create_task(self._steps(),
                                                         name="status-page-render")
        rendering.add_done_callback(self._made)
        return rendering

    async def _steps(self) -> Rendered:
        loop, source = asyncio.get_running_loop(), self._source
        document = await status_document_in_batches(source)
        decisions = source.decisions(page.DECISIONS_SHOWN)
        series = {c["name"]: source.share_series(c["name"]) for c in document["clusters"]}
        return await loop.run_in_executor(self._thread, self._make, self._started, document,
                                          decisions, series, self._wall())

    def _make(self, now: float, document: dict[str, Any], decisions: list[dict[str, Any]],
              series: dict[str, Series | None], wall: float) -> Rendered:
        main = page.main(document, decisions, series, wall, self._sparks)
        return Rendered(now, page.title(document), main)

    def _made(self, done: asyncio.Task[Rendered]) -> None:
        self._rendering = None
        if done.cancelled():
            return
        error = done.exception()
        took = asyncio.get_running_loop().time() - self._started
        if error is None:
            self._rendered = done.result()
            log.debug("status page rendered in %.0f ms", took * 1000)
        else:
            self._render_failed(error)
        self._render_later(max(0.0, PAGE_MAX_AGE - took))

    def _render_later(self, delay: float = PAGE_MAX_AGE) -> None:
        """The next render, ``delay`` from now, if anyone still watches: renders start a
        PAGE_MAX_AGE apart, or one after the other when one takes longer."""
        loop = asyncio.get_running_loop()
        if not self._closed and loop.time() < self._watched_until:
            self._next = loop.call_later(delay, self._render)

    def _render_failed(self, error: BaseException) -> None:
        # A bug in the page, not in the daemon: the last good render goes on being served,
        # and a request that needs a new one gets the error (500).
        self._failed()
        log.error("status page render failed", exc_info=error)

    async def handle(self, request: web.Request) -> web.Response:
        part = request.query.get("part")
        if part not in (None, "main"):
            raise web.HTTPBadRequest(text="part must be main, or absent for the whole page\n")
        rendered = await self.rendered()
        gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
        headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                   "Content-Security-Policy": page.CONTENT_SECURITY_POLICY,
                   "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                   "Vary": "Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=rendered.bodies[part is None, gzipped], headers=headers)

    async def close(self, _: web.Application) -> None:
        self._closed = True
        if self._next is not None:
            self._next.cancel()
        if self._rendering is not None:
            self._rendering.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)
