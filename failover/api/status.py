"""The status listener: /metrics, /healthz, /readyz, /v1/status, /v1/decisions."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from failover.api.source import StatusSource
from failover.metrics import Metrics
from failover.planner.model import ClusterPlan, Plan

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
            "checks": source.cluster_checks(c.name),
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


def _recovery(c: ClusterPlan, now: float) -> dict[str, Any]:
    """Ramp and flap-damping bookkeeping, in seconds relative to the plan's time."""
    return {
        "ramp_elapsed_s": None if c.recovery_started is None
        else round(now - c.recovery_started, 3),
        "cooldown_remaining_s": None if c.cooldown_until is None or c.cooldown_until <= now
        else round(c.cooldown_until - now, 3),
        "failed_recoveries": c.failed_recoveries,
    }


def _recoveries(plan: Plan | None) -> dict[str, list[str]]:
    if plan is None:
        return {"active": [], "queued": []}
    return {
        "active": [c.name for c in plan.clusters if c.state == "recovering"],
        "queued": [c.name for c in plan.clusters if c.state == "waiting"],
    }


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
        return web.json_response(status_document(source))

    async def decisions(request: web.Request) -> web.Response:
        return web.json_response(source.decisions(_limit(request)))

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/decisions", decisions)
    return app
