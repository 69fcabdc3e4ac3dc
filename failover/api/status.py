"""The status listener: the page at /, /metrics, /healthz, /readyz, /v1/status,
/v1/decisions."""

from __future__ import annotations

from aiohttp import web

from failover.api.document import status_document_in_batches
from failover.api.exposition import MetricsPage
from failover.api.page_service import StatusPage
from failover.api.source import StatusSource
from failover.metrics import Metrics

MAX_DECISIONS = 1000


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 0 < int(raw) <= MAX_DECISIONS:
        raise web.HTTPBadRequest(text=f"limit must be an integer from 1 to {MAX_DECISIONS}\n")
    return int(raw)


def status_app(source: StatusSource, metrics: Metrics) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        if source.alive():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="a daemon loop has stalled\n")

    async def readyz(_: web.Request) -> web.Response:
        if source.ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="waiting for a verdict on every cluster\n")

    async def status(_: web.Request) -> web.Response:
        return web.json_response(await status_document_in_batches(source))

    async def decisions(request: web.Request) -> web.Response:
        return web.json_response(source.decisions(_limit(request)))

    status_page = StatusPage(source, metrics.errors.labels("status_page").inc)
    app = web.Application()
    app.on_cleanup.append(status_page.close)
    app.router.add_get("/", status_page.handle)
    metrics_page = MetricsPage(metrics.registry)
    app.on_cleanup.append(metrics_page.close)
    app.router.add_get("/metrics", metrics_page.handle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/decisions", decisions)
    return app
