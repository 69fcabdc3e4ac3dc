"""Who may call the admin API: a bearer token the daemon accepts now, every one compared in
constant time; wrong tokens are limited per peer (`FailedAuth`) and audited, at most one
line per peer and window once it is limited. The audit says which token was used by its
fingerprint, never the token."""

from __future__ import annotations

import logging
import math
from typing import Any

from aiohttp import hdrs, web
from aiohttp.web_request import BaseRequest

from failover.api.audit import AuditLog
from failover.api.auth_limit import FailedAuth
from failover.api.token import Tokens
from failover.metrics import Metrics

log = logging.getLogger("failover.api.admin")

AUDITED = web.RequestKey("audited", bool)
"""Set once the request's audit line is written (or, for a limited peer's refusal, once it
is known that none will be), so the access hook does not write another."""


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def unauthorised() -> web.Response:
    refused = error(401, "a valid bearer token is required")
    refused.headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="failover-admin"'
    return refused


def too_many(retry_after: float) -> web.Response:
    refused = error(429, "too many failed authentications from this address; try again "
                         "later (a valid token is always let in)")
    refused.headers[hdrs.RETRY_AFTER] = str(max(1, math.ceil(retry_after)))
    return refused


class Gate:
    def __init__(self, tokens: Tokens, audit: AuditLog, metrics: Metrics,
                 limiter: FailedAuth | None = None) -> None:
        self.tokens = tokens
        self._audit = audit
        self._refused = metrics.admin_auth_refused
        self._limiter = limiter or FailedAuth()

    def token(self, request: BaseRequest) -> str | None:
        """The fingerprint of the request's valid bearer token, or None."""
        scheme, _, credential = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.tokens.match(credential.encode())

    async def refuse(self, request: BaseRequest, entry: dict[str, Any]) -> web.Response:
        """The answer to a request without a valid token, audited as it deserves."""
        request[AUDITED] = True
        peer = request.remote or "local"
        retry = self._limiter.retry_after(peer)
        if retry is not None:
            self._refused.labels("rate_limited").inc()
            return too_many(retry)
        blocked = self._limiter.failed(peer)
        if blocked is None:
            self._refused.labels("unauthorized").inc()
            await self._audit.append({**entry, "status": 401, "result": "unauthorized"})
            return unauthorised()
        self._refused.labels("rate_limited").inc()
        left = blocked.left
        before = f" ({blocked.refused} refused in its last limit)" if blocked.refused else ""
        log.warning("admin: %d wrong tokens from %s within %gs: its wrong tokens are answered "
                    "429 for %.0fs%s; a valid token still gets in", blocked.failures, peer,
                    self._limiter.window, left, before)
        await self._audit.append({**entry, "status": 429, "result": "rate_limited",
                                  "failures": blocked.failures,
                                  "limited_for_s": round(left, 1),
                                  "refused_in_last_limit": blocked.refused})
        return too_many(left)
