"""/metrics rendered on a worker thread, one render at a time, shared by the scrapes it serves.

At a thousand clusters the exposition is megabytes of text made one sample at a time; made on
the event loop it stops every probe for the length of the render, which inflates their
latency and, past the timeout, fails them. prometheus_client's collectors lock what they
read, so a thread renders a consistent page while the loop runs on. The thread is the page's
own: saves to a hung disk can hold every thread of the default executor, and that is when
the metrics matter.
"""

from __future__ import annotations

import asyncio
import gzip
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

GZIP_LEVEL = 1
"""A scrape (or the status page, markup repeated per cluster: 760 KB to 20 KB) on loopback
or a LAN gains little from harder compression, and pays in CPU."""


class MetricsPage:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="metrics")
        self._renders: dict[str, asyncio.Future[bytes]] = {}
        """In progress, by content type: a scrape that comes during a render shares it."""

    async def handle(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        render = self._renders.get(content_type)
        if render is None:
            render = asyncio.get_running_loop().run_in_executor(self._thread, encoder,
                                                                 self._registry)
            self._renders[content_type] = render
            render.add_done_callback(lambda _: self._renders.pop(content_type, None))
        # Shielded: a scraper that hangs up must not cancel the render others wait on.
        body = await asyncio.shield(render)
        headers = {"Content-Type": content_type}
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            body = await asyncio.get_running_loop().run_in_executor(
                self._thread, gzip.compress, body, GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    async def close(self, _: web.Application) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
