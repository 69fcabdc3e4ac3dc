"""The break-glass admin listener: drain, undrain, freeze, unfreeze, reload.

Every route needs the bearer token (compared in constant time); bodies are small JSON
objects checked strictly; every call, refused or not, is appended to the audit log. Handlers
only touch the daemon's memory, so they answer even when every probe target hangs.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import pydantic
from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ConfigDict, Field

from failover.api.audit import AuditLog
from failover.config.durations import Duration

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
"""Bytes: a reason is a sentence, not a file."""


class AdminTarget(Protocol):
    """What the admin routes act on; the daemon implements it."""

    def has_cluster(self, name: str) -> bool: ...

    def drain(self, name: str, reason: str, expires_in: float | None) -> dict[str, Any]:
        """Drain ``name`` (known); return the override as status shows it."""
        ...

    def undrain(self, name: str) -> bool:
        """False when ``name`` was not drained."""
        ...

    def freeze(self, reason: str) -> dict[str, Any]: ...

    def unfreeze(self) -> bool:
        """False when automation was not frozen."""
        ...

    def reload(self) -> bool:
        """Re-read the config now; False when it was refused (the running one stays)."""
        ...

    def reload_error(self) -> str | None: ...


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DrainBody(_Body):
    reason: str = Field(min_length=1, max_length=500)
    """Why: shown in status and written to the audit log."""
    expires_in: Duration | None = None
    """Seconds (or ``30m``) after which the drain lifts by itself."""


class FreezeBody(_Body):
    reason: str = Field(min_length=1, max_length=500)


class EmptyBody(_Body):
    pass


class BadRequest(Exception):
    pass


AUDIT = web.RequestKey("audit", dict[str, Any])
"""What a handler adds to its audit line: the action, cluster and reason."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


Body = TypeVar("Body", bound=_Body)


async def _body(request: web.Request, model: type[Body]) -> Body:
    try:
        raw = await request.read()
    except RequestPayloadError as exc:  # e.g. a corrupt gzip or chunked encoding
        msg = f"body cannot be read: {exc}"
        raise BadRequest(msg) from exc
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        # ValueError covers JSONDecodeError, bad UTF-8 and integers over Python's digit
        # limit; RecursionError, nesting deeper than the parser's stack.
        except (ValueError, RecursionError) as exc:
            msg = f"body is not JSON: {type(exc).__name__}: {str(exc)[:200]}"
            raise BadRequest(msg) from exc
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                             for e in exc.errors())
        raise BadRequest(problems) from exc


def _guard(token: str, audit: AuditLog) -> Middleware:
    """Authentication, JSON errors and the audit line, around every route."""
    expected = token.encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        entry: dict[str, Any] = {"method": request.method, "path": request.path,
                                 "remote": request.remote}
        given = request.headers.get("Authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credential.encode(), expected):
            await audit.append({**entry, "status": 401, "result": "unauthorized"})
            refused = _error(401, "a valid bearer token is required")
            refused.headers["WWW-Authenticate"] = 'Bearer realm="failover-admin"'
            return refused
        response: web.StreamResponse
        try:
            response = await handler(request)
        except BadRequest as exc:
            response = _error(400, f"bad body: {exc}")
        except web.HTTPException as exc:
            # Unknown routes, wrong methods, bodies over MAX_BODY: JSON like every answer here.
            response = _error(exc.status, exc.reason)
        entry.update(request.get(AUDIT, {}))
        await audit.append({**entry, "status": response.status,
                            "result": "ok" if response.status < 400 else "refused"})
        return response

    return guard


def admin_app(target: AdminTarget, token: str, audit: AuditLog) -> web.Application:
    def known(request: web.Request) -> str:
        name = request.match_info["name"]
        if not target.has_cluster(name):
            raise web.HTTPNotFound(reason=f"no cluster named {name!r}")
        return name

    async def drain(request: web.Request) -> web.Response:
        name = known(request)
        body = await _body(request, DrainBody)
        request[AUDIT] = {"action": "drain", "cluster": name, "reason": body.reason}
        override = target.drain(name, body.reason, body.expires_in)
        log.warning("operator drained %s: %s", name, body.reason)
        return web.json_response({"drained": name, **override})

    async def undrain(request: web.Request) -> web.Response:
        name = known(request)
        await _body(request, EmptyBody)
        request[AUDIT] = {"action": "undrain", "cluster": name}
        if not target.undrain(name):
            return _error(409, f"{name!r} is not drained")
        log.warning("operator undrained %s", name)
        return web.json_response({"undrained": name})

    async def freeze(request: web.Request) -> web.Response:
        body = await _body(request, FreezeBody)
        request[AUDIT] = {"action": "freeze", "reason": body.reason}
        override = target.freeze(body.reason)
        log.warning("operator froze automation: %s", body.reason)
        return web.json_response({"frozen": True, **override})

    async def unfreeze(request: web.Request) -> web.Response:
        await _body(request, EmptyBody)
        request[AUDIT] = {"action": "unfreeze"}
        if not target.unfreeze():
            return _error(409, "automation is not frozen")
        log.warning("operator unfroze automation")
        return web.json_response({"frozen": False})

    async def reload(request: web.Request) -> web.Response:
        await _body(request, EmptyBody)
        request[AUDIT] = {"action": "reload"}
        if target.reload():
            return web.json_response({"reloaded": True})
        return _error(400, f"config refused, the running one stays: {target.reload_error()}")

    app = web.Application(middlewares=[_guard(token, audit)], client_max_size=MAX_BODY)
    app.router.add_post("/v1/clusters/{name}/drain", drain)
    app.router.add_post("/v1/clusters/{name}/undrain", undrain)
    app.router.add_post("/v1/freeze", freeze)
    app.router.add_post("/v1/unfreeze", unfreeze)
    app.router.add_post("/v1/reload", reload)
    return app
