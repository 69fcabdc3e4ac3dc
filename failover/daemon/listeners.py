"""The two listeners: status always, admin only with a token (never open without auth)."""

from __future__ import annotations

import logging

from failover.api.admin import admin_app
from failover.api.audit import AuditLog
from failover.api.server import Listener
from failover.api.status import status_app
from failover.api.tls import ServingTls
from failover.api.token import TOKEN_ENV, TokenError, admin_token
from failover.config import Config
from failover.config.tls import Certificate
from failover.daemon.supervisor import StartupError
from failover.daemon.surface import Surface
from failover.metrics import Metrics

log = logging.getLogger("failover.daemon")


def serving_tls(config: Config, metrics: Metrics) -> ServingTls | None:
    """``listen.tls`` for every TCP listener, its expiry exported for each."""
    tls = config.listen.tls
    if tls is None:
        return None

    def shown(certificate: Certificate) -> None:
        for listener in ("status", "admin"):
            metrics.tls_expiry.labels(listener).set(certificate.not_after.timestamp())

    return ServingTls(tls.material, shown)


def listeners(config: Config, surface: Surface, metrics: Metrics,
              tls: ServingTls | None = None) -> tuple[Listener, Listener | None]:
    """The status listener, and the admin one unless no token is configured; StartupError
    when the token file cannot be used."""
    rejected = metrics.http_rejected
    status = Listener("status", status_app(surface, metrics), config.listen.status,
                      rejected.labels("status").inc, tls)
    try:
        token = admin_token(config)
    except TokenError as exc:
        raise StartupError(str(exc)) from exc
    if token is None:
        log.warning("admin API disabled: no token (set listen.admin_token_file or %s)",
                    TOKEN_ENV)
        return status, None
    return status, Listener("admin", admin_app(surface, token, AuditLog(config.audit_file)),
                            config.listen.admin, rejected.labels("admin").inc, tls)
