"""The two listeners: status always, admin only with a token (never open without auth);
their TLS and the admin tokens."""

from __future__ import annotations

import logging

from failover.api.admin import admin_app
from failover.api.audit import AuditLog
from failover.api.server import Listener
from failover.api.status import status_app
from failover.api.tls import ServingTls
from failover.api.token import TOKEN_ENV, TokenError, Tokens, admin_tokens
from failover.config import Config
from failover.config.addresses import UnixSocket
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

    tcp = ["status"] + ([] if isinstance(config.listen.admin, UnixSocket) else ["admin"])

    def shown(certificate: Certificate) -> None:
        for listener in tcp:
            metrics.tls_expiry.labels(listener).set(certificate.not_after.timestamp())

    return ServingTls(tls.material, shown)


def admin_tokens_of(config: Config, metrics: Metrics) -> Tokens | None:
    """The tokens the admin listener accepts; None (no admin listener) without any;
    StartupError when the token file cannot be used."""
    try:
        tokens = admin_tokens(config)
    except TokenError as exc:
        raise StartupError(str(exc)) from exc
    if tokens is None:
        log.warning("admin API disabled: no token (set listen.admin_token_file or %s)",
                    TOKEN_ENV)
        return None
    tokens.failed = metrics.errors.labels("admin_tokens").inc
    log.info("admin API: %d token(s) accepted (%s)", len(tokens.fingerprints),
             ", ".join(tokens.fingerprints))
    return tokens


def listeners(config: Config, surface: Surface, metrics: Metrics,
              tokens: Tokens | None, tls: ServingTls | None = None,
              ) -> tuple[Listener, Listener | None]:
    """The status listener, and the admin one when there are tokens."""
    rejected = metrics.http_rejected
    status = Listener("status", status_app(surface, metrics), config.listen.status,
                      rejected.labels("status").inc, tls)
    if tokens is None:
        return status, None
    listen = config.listen
    # A Unix socket's file mode is its access control; TLS is for what crosses a network.
    admin_tls = None if isinstance(listen.admin, UnixSocket) else tls
    return status, Listener("admin", admin_app(surface, tokens, AuditLog(config.audit_file)),
                            listen.admin, rejected.labels("admin").inc, admin_tls,
                            listen.admin_socket_mode, listen.admin_socket_group)
