"""The lab's control API: list and add clusters, set and reset faults, make a cluster cold,
and ``/metrics``. Loopback, no auth: it is a lab."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pydantic
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from failover.config.addresses import Endpoint, split_hostport
from failover.lab.faults import FaultRequest
from failover.lab.lab import (
    BadClusterName,
    ClusterExists,
    ClusterStartError,
    Lab,
    NoCapacity,
    UnknownCluster,
)
from failover.lab.metrics import lab_registry

MAX_BODY = 4096


class AddRequest(pydantic.BaseModel):
    """Body of ``POST /v1/clusters``: ``{}`` for ``lab-N``, or the new cluster's name."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    name: str | None = None


def control_app(lab: Lab) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def clusters(request: web.Request) -> web.Response:
        return web.json_response({"clusters": [c.describe() for c in lab.clusters]})

    async def add(request: web.Request) -> web.Response:
        # No body at all is {}, as reset and cold take none.
        try:
            body: Any = await request.json() if request.can_read_body else {}
            change = AddRequest.model_validate(body)
        except json.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        except pydantic.ValidationError as exc:
            return _error(400, _problems(exc))
        try:
            cluster = await lab.add(change.name)
        except BadClusterName as exc:
            return _error(400, str(exc))
        except (ClusterExists, ClusterStartError) as exc:
            return _error(409, str(exc))
        return web.json_response(cluster.describe(), status=201)

    async def fault(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            lab.cluster(name)
        except UnknownCluster:
            return _unknown(name)
        try:
            body: Any = await request.json()
            change = FaultRequest.model_validate(body)
        except json.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        except pydantic.ValidationError as exc:
            return _error(400, _problems(exc))
        cluster = await lab.set_fault(name, dns=change.dns, http=change.http, delay=change.delay)
        return web.json_response(cluster.describe())

    async def reset(request: web.Request) -> web.Response:
        try:
            cluster = await lab.reset(request.match_info["name"])
        except UnknownCluster:
            return _unknown(request.match_info["name"])
        return web.json_response(cluster.describe())

    async def cold(request: web.Request) -> web.Response:
        try:
            cluster = lab.make_cold(request.match_info["name"])
        except UnknownCluster:
            return _unknown(request.match_info["name"])
        except NoCapacity as exc:
            return _error(409, str(exc))
        return web.json_response(cluster.describe())

    app.router.add_get("/v1/clusters", clusters)
    app.router.add_post("/v1/clusters", add)
    app.router.add_post("/v1/clusters/{name}/fault", fault)
    app.router.add_post("/v1/clusters/{name}/reset", reset)
    app.router.add_post("/v1/clusters/{name}/cold", cold)
    app.router.add_get("/metrics", make_aiohttp_handler(lab_registry(lab)))
    return app


@contextlib.asynccontextmanager
async def control_server(lab: Lab, address: str = "127.0.0.1:0") -> AsyncIterator[str]:
    """Serve the control API on ``address`` (port 0: a free one) while the block runs;
    yields the bound ``host:port``. Raises OSError if it cannot bind, ValueError for a bad
    address."""
    host, port = split_hostport(address, listen=True)
    runner = web.AppRunner(control_app(lab), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        yield str(Endpoint(host, runner.addresses[0][1]))
    finally:
        await runner.cleanup()


def _problems(exc: pydantic.ValidationError) -> str:
    """Each field wrong in a body, and what is wrong with it."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                     for e in exc.errors())


def _unknown(name: str) -> web.Response:
    return _error(404, f"no cluster named {name!r}")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
