"""The lab's control API: list clusters, set and reset faults. Loopback, no auth: it is a lab."""

from __future__ import annotations

import json
from typing import Any

import pydantic
from aiohttp import web

from failover.lab.faults import FaultRequest
from failover.lab.lab import Lab, UnknownCluster

MAX_BODY = 4096


def control_app(lab: Lab) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def clusters(request: web.Request) -> web.Response:
        return web.json_response({"clusters": [c.describe() for c in lab.clusters]})

    async def fault(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            lab.cluster(name)
        except UnknownCluster:
            return _error(404, f"no cluster named {name!r}")
        try:
            body: Any = await request.json()
            change = FaultRequest.model_validate(body)
        except json.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors())
            return _error(400, problems)
        cluster = await lab.set_fault(name, dns=change.dns, http=change.http, delay=change.delay)
        return web.json_response(cluster.describe())

    async def reset(request: web.Request) -> web.Response:
        try:
            cluster = await lab.reset(request.match_info["name"])
        except UnknownCluster:
            return _error(404, f"no cluster named {request.match_info['name']!r}")
        return web.json_response(cluster.describe())

    app.router.add_get("/v1/clusters", clusters)
    app.router.add_post("/v1/clusters/{name}/fault", fault)
    app.router.add_post("/v1/clusters/{name}/reset", reset)
    return app


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
