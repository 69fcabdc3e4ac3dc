"""The status listener: the page at /, /metrics, /healthz, /readyz, /v1/status,
/v1/decisions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from failover.api import page
from failover.api.exposition import MetricsPage
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
"""Seconds a rendered page is served again: any number of open pages, refreshing, cost at
most one render a second, so a crowd watching an incident cannot load the daemon."""


class StatusPage:
    """`GET /`, the whole page, and `GET /?part=main`, what its script swaps in."""

    def __init__(self, source: StatusSource, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._source = source
        self._clock = clock
        self._wall = wall
        self._rendered: tuple[float, str, str] | None = None

    def render(self) -> tuple[str, str]:
        """The page's title and `main`, rendered at most once per PAGE_MAX_AGE."""
        now = self._clock()
        if self._rendered is None or now - self._rendered[0] >= PAGE_MAX_AGE:
            document = status_document(self._source)
            main = page.main(document, self._source.decisions(page.DECISIONS_SHOWN),
                             self._source.share_series, self._wall())
            self._rendered = (now, page.title(document), main)
        return self._rendered[1], self._rendered[2]

    async def handle(self, request: web.Request) -> web.Response:
        part = request.query.get("part")
        if part not in (None, "main"):
            raise web.HTTPBadRequest(text="part must be main, or absent for the whole page\n")
        title, main = self.render()
        return web.Response(
            text=main if part == "main" else page.page(title, main),
            content_type="text/html", charset="utf-8",
            headers={"Cache-Control": "no-store",
                     "Content-Security-Policy": page.CONTENT_SECURITY_POLICY,
                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


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

    app = web.Application()
    app.router.add_get("/", StatusPage(source).handle)
    app.router.add_get("/metrics", MetricsPage(metrics.registry).handle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/decisions", decisions)
    return app
