"""The break-glass admin listener: drain, undrain, freeze, unfreeze, reload.

Every route needs a bearer token the daemon accepts (`Gate`); bodies are small JSON
objects checked strictly; every call, refused or not, is appended to the audit log. Handlers
only touch the daemon's memory, so they answer even when every probe target hangs.

Three places write audit lines, and each request gets exactly one: the guard middleware
(every call that reaches a route), the Expect handler (calls refused before their body is
invited: it runs before any middleware), and the server's access hook (what aiohttp refused
before the app ran at all: malformed request lines and headers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Set
from typing import Any, Protocol, TypeVar

import pydantic
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError
from aiohttp.web_request import BaseRequest
from pydantic import BaseModel, ConfigDict, Field

from failover.api.audit import AuditLog
from failover.api.auth_limit import FailedAuth
from failover.api.gate import AUDITED, Gate, error
from failover.api.server import ACCESS_HOOK
from failover.api.token import Tokens
from failover.config.durations import Duration
from failover.metrics import Metrics
from failover.registry import RegistrationRefused

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
"""Bytes: a reason is a sentence, not a file."""


def can_serve(weights: Mapping[str, float], drained: Set[str]) -> bool:
    """Some cluster is left to take traffic: undrained, of base weight above 0. A drain or a
    reload that would leave none is refused (planning on nothing would fail static on a
    base weight of 0 while the data plane kept sending to a cluster shown as drained)."""
    return any(weight > 0 and name not in drained for name, weight in weights.items())


class AdminTarget(Protocol):
    """What the admin routes act on; the daemon implements it."""

    @property
    def metrics(self) -> Metrics:
        """Where an admin handler's unexpected error is counted (``errors{where="admin"}``)."""
        ...

    def has_cluster(self, name: str) -> bool: ...

    def base_weights(self) -> dict[str, float]:
        """Every configured cluster's base weight, by name."""
        ...

    def drained_clusters(self) -> set[str]:
        """The clusters drained now (a drain past its expiry no longer counts)."""
        ...

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

    def register(self, name: str, body: Any) -> bool:
        """Register (or update) cluster ``name`` from a PUT body; True when it is new.
        Raises RegistrationRefused (its status: 400 or 409), and then nothing changed."""
        ...

    def deregister(self, name: str) -> None:
        """Take registered cluster ``name`` out gradually, removed at share 0. Raises
        RegistrationRefused (404 not registered, 409 defined in the file or the last one)."""
        ...

    async def save_registered(self) -> bool:
        """Save the registered clusters; False when the save failed."""
        ...

    async def persist(self) -> bool:
        """Save the overrides as they are now; False when the save failed (the change holds
        in memory, but a restart would lose it)."""
        ...

    async def reload(self) -> bool:
        """Re-read the config now, parsing it off the loop; False when it was refused (the
        running one stays)."""
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



Body = TypeVar("Body", bound=_Body)


async def _body(request: web.Request, model: type[Body]) -> Body:
    data = await _json(request)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                             for e in exc.errors())
        raise BadRequest(problems) from exc


async def _json(request: web.Request) -> Any:
    """The body as JSON (an empty body as {}); BadRequest when it is not."""
    try:
        raw = await request.read()
    except RequestPayloadError as exc:  # e.g. a corrupt gzip or chunked encoding
        msg = f"body cannot be read: {exc}"
        raise BadRequest(msg) from exc
    except ConnectionError as exc:  # the client left mid-body: nobody will read the answer
        msg = f"body cannot be read: {type(exc).__name__}: {exc}"
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
    return data


def _entry(request: BaseRequest) -> dict[str, Any]:
    return {"method": request.method, "path": request.path, "remote": request.remote}


def _result(status: int) -> str:
    return "ok" if status < 400 else "error" if status >= 500 else "refused"


def _guard(gate: Gate, audit: AuditLog, metrics: Metrics) -> Middleware:
    """Authentication, JSON errors and the audit line, around every route."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        entry = _entry(request)
        request[AUDITED] = True  # from here on this middleware writes the line, or nobody
        token = gate.token(request)
        if token is None:
            return await gate.refuse(request, entry)
        entry["token"] = token
        response: web.StreamResponse
        try:
            response = await handler(request)
        except BadRequest as exc:
            response = error(400, f"bad body: {exc}")
        except web.HTTPException as exc:
            # Unknown routes, wrong methods, bodies over MAX_BODY: JSON like every answer here.
            response = error(exc.status, exc.reason)
            if hdrs.ALLOW in exc.headers:
                response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
        except Exception as exc:
            # A bug, not the caller's fault: counted, logged with its traceback, answered
            # in JSON; the audit line says the call failed, and what it was.
            metrics.errors.labels("admin").inc()
            log.exception("admin %s %s failed", request.method, request.path)
            response = error(500, f"internal error ({type(exc).__name__}); see the daemon's "
                                   "log")
            entry["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        entry.update(request.get(AUDIT, {}))
        await audit.append({**entry, "status": response.status,
                            "result": _result(response.status)})
        return response

    return guard


def _expect(gate: Gate, audit: AuditLog,
            ) -> Callable[[web.Request], Awaitable[web.Response | None]]:
    """The Expect handler of every route: aiohttp runs it before any middleware, and its
    default answers ``100 Continue`` to anyone, inviting the body of a call about to be
    refused. Here only an authenticated call, expecting ``100-continue``, with a declared
    body within MAX_BODY, is told to continue; any other is refused at once, audited, and
    its connection closed, so no body is invited or read."""

    async def expect(request: web.Request) -> web.Response | None:
        value = request.headers.get(hdrs.EXPECT, "")
        token = gate.token(request)
        if token is None:
            response = await gate.refuse(request, {**_entry(request), "expect": value[:100]})
            return await _answered_and_closed(request, response)
        if value.lower() != "100-continue":
            response, result = error(417, f"unsupported expectation {value[:100]!r}"), \
                "refused"
        elif (request.content_length or 0) > MAX_BODY:
            response, result = error(413, f"a body is at most {MAX_BODY} bytes"), "refused"
        else:
            if request.version >= (1, 1):
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0  # the 100 is not the answer's start
            return None
        request[AUDITED] = True
        await audit.append({**_entry(request), "status": response.status, "result": result,
                            "expect": value[:100], "token": token})
        return await _answered_and_closed(request, response)

    return expect


async def _answered_and_closed(request: web.Request, response: web.Response) -> web.Response:
    # Answered and closed here: no body was invited, so none is waited for. Left to
    # aiohttp, the connection would linger, reading a body the client was never asked for.
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


def _unparsed(request: BaseRequest) -> bool:
    """Whether ``request`` is aiohttp's stand-in for one whose request line or headers could
    not be parsed: method UNKNOWN, HTTP/1.0, no headers. A real request of that shape would
    have reached the app (the catch-all route takes any method) and been audited there."""
    return request.method == "UNKNOWN" and request.version == (1, 0) and not request.headers


def _access_hook(audit: AuditLog) -> Callable[[BaseRequest, web.StreamResponse], None]:
    """The line for a request that never reached the app: aiohttp answered it itself."""

    def hook(request: BaseRequest, response: web.StreamResponse) -> None:
        if request.get(AUDITED):
            return
        if _unparsed(request):
            entry: dict[str, Any] = {"method": None, "path": None, "remote": request.remote}
        else:
            entry = _entry(request)
        body = response.text if isinstance(response, web.Response) else None
        audit.record({**entry, "status": response.status, "result": "rejected",
                      "error": (body or response.reason or "")[:200]})

    return hook


def _registration(target: AdminTarget) -> Handler:
    async def register(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await _json(request)
        request[AUDIT] = {"action": "register", "cluster": name}
        try:
            created = target.register(name, body)
        except RegistrationRefused as exc:
            return error(exc.status, f"registration of {name!r} refused, nothing changed: "
                                      f"{exc}")
        log.warning("operator %s cluster %s", "registered" if created else "updated", name)
        return web.json_response({"registered": name, "created": created,
                                  "saved": await target.save_registered()},
                                 status=201 if created else 200)

    return register


def _deregistration(target: AdminTarget) -> Handler:
    async def deregister(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await _body(request, EmptyBody)
        request[AUDIT] = {"action": "deregister", "cluster": name}
        try:
            target.deregister(name)
        except RegistrationRefused as exc:
            return error(exc.status, str(exc))
        log.warning("operator deregistered %s: its share goes to 0, then it is removed", name)
        saved = await target.save_registered()
        return web.json_response({"deregistering": name, "saved": saved}, status=202)

    return deregister


def _registrations(app: web.Application, target: AdminTarget,
                   expect: Callable[[web.Request], Awaitable[web.Response | None]],
                   ) -> web.Resource:
    resource = app.router.add_resource("/v1/clusters/{name}")
    resource.add_route(hdrs.METH_PUT, _registration(target), expect_handler=expect)
    resource.add_route(hdrs.METH_DELETE, _deregistration(target), expect_handler=expect)
    return resource


def admin_app(target: AdminTarget, tokens: Tokens, audit: AuditLog,
              limiter: FailedAuth | None = None) -> web.Application:
    gate = Gate(tokens, audit, target.metrics, limiter)

    def known(request: web.Request) -> str:
        name = request.match_info["name"]
        if not target.has_cluster(name):
            raise web.HTTPNotFound(reason=f"no cluster named {name!r}")
        return name

    async def drain(request: web.Request) -> web.Response:
        name = known(request)
        body = await _body(request, DrainBody)
        request[AUDIT] = {"action": "drain", "cluster": name, "reason": body.reason}
        # No await between this check and the drain: nothing else runs in between.
        if not can_serve(target.base_weights(), target.drained_clusters() | {name}):
            return error(409, f"draining {name!r} would leave no cluster that can take "
                               "traffic (every other one is drained or has weight 0); "
                               "undrain one first")
        override = target.drain(name, body.reason, body.expires_in)
        log.warning("operator drained %s: %s", name, body.reason)
        return web.json_response({"drained": name, **override,
                                  "saved": await target.persist()})

    async def undrain(request: web.Request) -> web.Response:
        name = known(request)
        await _body(request, EmptyBody)
        request[AUDIT] = {"action": "undrain", "cluster": name}
        if not target.undrain(name):
            return error(409, f"{name!r} is not drained")
        log.warning("operator undrained %s", name)
        return web.json_response({"undrained": name, "saved": await target.persist()})

    async def freeze(request: web.Request) -> web.Response:
        body = await _body(request, FreezeBody)
        request[AUDIT] = {"action": "freeze", "reason": body.reason}
        override = target.freeze(body.reason)
        log.warning("operator froze automation: %s", body.reason)
        return web.json_response({"frozen": True, **override,
                                  "saved": await target.persist()})

    async def unfreeze(request: web.Request) -> web.Response:
        await _body(request, EmptyBody)
        request[AUDIT] = {"action": "unfreeze"}
        if not target.unfreeze():
            return error(409, "automation is not frozen")
        log.warning("operator unfroze automation")
        return web.json_response({"frozen": False, "saved": await target.persist()})

    async def reload(request: web.Request) -> web.Response:
        await _body(request, EmptyBody)
        request[AUDIT] = {"action": "reload"}
        if await target.reload():
            return web.json_response({"reloaded": True})
        return error(400, f"config refused, the running one stays: {target.reload_error()}")

    expect = _expect(gate, audit)

    async def unrouted(request: web.Request) -> web.Response:
        # A catch-all route, so that unknown paths get our Expect handler too; it answers
        # what the router would have: 405 where the path is known, else 404.
        allowed: set[str] = set()
        for resource in routed:
            _, methods = await resource.resolve(request)
            allowed |= methods
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound

    async def flush(_: web.Application) -> None:
        await audit.flush()

    app = web.Application(middlewares=[_guard(gate, audit, target.metrics)],
                          client_max_size=MAX_BODY)
    routes = (("/v1/clusters/{name}/drain", drain), ("/v1/clusters/{name}/undrain", undrain),
              ("/v1/freeze", freeze), ("/v1/unfreeze", unfreeze), ("/v1/reload", reload))
    routed = [app.router.add_resource(path) for path, _ in routes]
    for resource, (_, handler) in zip(routed, routes, strict=True):
        resource.add_route(hdrs.METH_POST, handler, expect_handler=expect)
    routed.append(_registrations(app, target, expect))
    app.router.add_route("*", "/{path:.*}", unrouted, expect_handler=expect)
    app[ACCESS_HOOK] = _access_hook(audit)
    app.on_cleanup.append(flush)
    return app
