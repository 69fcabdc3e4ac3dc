"""The status listener: the page at /, /metrics, /healthz, /readyz, /v1/status,
/v1/decisions."""

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
from failover.api.exposition import MetricsPage
from failover.api.history import Series
from failover.api.source import StatusSource
from failover.metrics import Metrics
from failover.model import ClusterPlan, Plan, Ramp, Sample

MAX_DECISIONS = 1000


def status_document(source: StatusSource) -> dict[str, Any]:
    plan = source.current_plan()
    clusters = [] if plan is None else [
        {
            "name": c.name,
            "rank": c.rank,
            "state": str(c.state),
            "score": round(c.score, 4),
            "share": round(c.share, 6),
            "target_share": round(c.target_share, 6),
            "base_weight": c.base_weight,
            "reason": c.reason,
            "score_components": source.score_components(c.name),
            "capped": c.capped,
            "spilled": c.spilled,
            "recovery": _recovery(c, plan.at),
            "ramp": None if c.ramp is None else _ramp(c.ramp, plan.at),
            "limit": None if c.guard is None else _ramp(c.guard, plan.at),
            "checks": source.cluster_checks(c.name),
            **_vantages(source.cluster_vantages(c.name)),
        }
        for c in sorted(plan.clusters, key=lambda c: c.rank)
    ]
    return {
        "version": 0 if plan is None else plan.version,
        "frozen": False if plan is None else plan.frozen,
        "frozen_reason": None if plan is None else plan.frozen_reason,
        "shed": 0.0 if plan is None else round(plan.shed, 6),
        "clusters": clusters,
        "recoveries": _recoveries(plan),
        **source.extra_status(),
    }


def _vantages(verdicts: dict[str, str] | None) -> dict[str, Any]:
    return {} if verdicts is None else {"vantages": verdicts}


def _recovery(c: ClusterPlan, now: float) -> dict[str, Any]:
    """Ramp and flap-damping bookkeeping, in seconds relative to the plan's time."""
    return {
        "ramp_elapsed_s": None if c.recovery_started is None
        else round(now - c.recovery_started, 3),
        "cooldown_remaining_s": None if c.cooldown_until is None or c.cooldown_until <= now
        else round(c.cooldown_until - now, 3),
        "failed_recoveries": c.failed_recoveries,
    }


def _sample(sample: Sample | None, now: float) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {"utilization": _round(sample.utilization), "error_ratio": _round(sample.error_ratio),
            "latency_ratio": _round(sample.latency_ratio),
            "age_s": round(now - sample.measured_at, 3)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _ramp(ramp: Ramp, now: float) -> dict[str, Any]:
    """Where a ramp (or a serving cluster's limit) stands, what it read and why it moved:
    ``action`` is one of start, timed, fallback, await, advance, hold, back_off."""
    return {"level": round(ramp.level, 4),
            "limit_share": None if ramp.limit is None else round(ramp.limit, 6),
            "mode": "timed" if ramp.limit is None else "adaptive",
            "action": ramp.action, "reason": ramp.reason,
            "signals": _sample(ramp.sample, now),
            "last_move_s": None if ramp.changed_at is None else round(now - ramp.changed_at, 3)}


def _recoveries(plan: Plan | None) -> dict[str, Any]:
    if plan is None:
        return {"active": [], "queued": [], "slots": None, "slots_reason": ""}
    return {
        "active": [c.name for c in plan.clusters if c.state == "recovering"],
        "queued": [c.name for c in plan.clusters if c.state == "waiting"],
        "slots": plan.slots,
        "slots_reason": plan.slots_reason,
    }


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 0 < int(raw) <= MAX_DECISIONS:
        raise web.HTTPBadRequest(text=f"limit must be an integer from 1 to {MAX_DECISIONS}\n")
    return int(raw)


PAGE_MAX_AGE = 1.0
"""Seconds between two renders of the page while someone watches it: any number of open
pages, refreshing, cost one render a second, so a crowd watching an incident cannot load
the daemon."""

SERVED_FOR = 2 * PAGE_MAX_AGE
"""Seconds a render is served for: the next one, started PAGE_MAX_AGE after it, takes its
place well before, even on a loaded loop."""

WATCHED_FOR = 30.0
"""Seconds after the last request that renders go on: a page refreshing every few seconds
always finds a fresh one ready, and nobody watching costs nothing."""

GZIP_LEVEL = 1
"""The page is markup repeated per cluster: level 1 already takes 760 KB to 20 KB."""

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
        self._rendering: asyncio.Future[Rendered] | None = None
        """In progress: a request that needs a render waits for this one."""
        self._next: asyncio.TimerHandle | None = None
        self._watched_until = -math.inf
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

    def _render(self) -> asyncio.Future[Rendered]:
        if self._next is not None:
            self._next.cancel()
            self._next = None
        source, now = self._source, asyncio.get_running_loop().time()
        document = status_document(source)
        decisions = source.decisions(page.DECISIONS_SHOWN)
        series = {c["name"]: source.share_series(c["name"]) for c in document["clusters"]}
        rendering = self._rendering = asyncio.get_running_loop().run_in_executor(
            self._thread, self._make, now, document, decisions, series, self._wall())
        rendering.add_done_callback(self._made)
        return rendering

    def _make(self, now: float, document: dict[str, Any], decisions: list[dict[str, Any]],
              series: dict[str, Series | None], wall: float) -> Rendered:
        main = page.main(document, decisions, series, wall, self._sparks)
        return Rendered(now, page.title(document), main)

    def _made(self, done: asyncio.Future[Rendered]) -> None:
        self._rendering = None
        if done.cancelled():
            return
        error = done.exception()
        if error is None:
            self._rendered = done.result()
        else:
            self._render_failed(error)
        self._render_later()

    def _render_later(self) -> None:
        if not self._closed and asyncio.get_running_loop().time() < self._watched_until:
            self._next = asyncio.get_running_loop().call_later(PAGE_MAX_AGE, self._render_next)

    def _render_next(self) -> None:
        self._next = None
        try:
            self._render()
        except Exception as error:  # a bug reading the state: counted, logged, tried again
            self._render_failed(error)
            self._render_later()

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
        self._thread.shutdown(wait=False, cancel_futures=True)


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
        return web.json_response(status_document(source))

    async def decisions(request: web.Request) -> web.Response:
        return web.json_response(source.decisions(_limit(request)))

    status_page = StatusPage(source, metrics.errors.labels("status_page").inc)
    app = web.Application()
    app.on_cleanup.append(status_page.close)
    app.router.add_get("/", status_page.handle)
    app.router.add_get("/metrics", MetricsPage(metrics.registry).handle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/decisions", decisions)
    return app
