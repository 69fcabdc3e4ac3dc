"""Parts built from the config before anything runs: the actuators and the listeners."""

from __future__ import annotations

import logging

from failover.actuators.base import Actuator, ActuatorError
from failover.actuators.dns import DnsUpdateActuator
from failover.actuators.file import FileActuator
from failover.actuators.haproxy import HaproxyActuator
from failover.api.admin import admin_app
from failover.api.audit import AuditLog
from failover.api.server import Listener
from failover.api.status import status_app
from failover.api.token import TOKEN_ENV, TokenError, admin_token
from failover.config import Config
from failover.config.actuators import FileActuator as FileActuatorConfig
from failover.config.actuators import HaproxyActuator as HaproxyActuatorConfig
from failover.daemon.supervisor import StartupError
from failover.daemon.surface import Surface
from failover.metrics import Metrics

log = logging.getLogger("failover.daemon")


class UnsupportedActuator(Exception):
    pass


def build_actuators(config: Config) -> list[Actuator]:
    """One actuator per config entry, in order; UnsupportedActuator names one that cannot be
    built (a TSIG secret that is not base64, a record name outside its zone)."""
    actuators: list[Actuator] = []
    for index, spec in enumerate(config.actuators):
        try:
            if isinstance(spec, FileActuatorConfig):
                actuators.append(FileActuator(spec.path))
            elif isinstance(spec, HaproxyActuatorConfig):
                actuators.append(HaproxyActuator.from_config(spec))
            else:
                actuators.append(DnsUpdateActuator.from_config(spec))
        except ActuatorError as exc:
            msg = f"actuators[{index}] ({spec.type}): {exc}"
            raise UnsupportedActuator(msg) from exc
    return actuators


def listeners(config: Config, surface: Surface, metrics: Metrics,
              ) -> tuple[Listener, Listener | None]:
    """The status listener, and the admin one unless no token is configured (never open
    without auth); StartupError when the token file cannot be used."""
    rejected = metrics.http_rejected
    status = Listener("status", status_app(surface, metrics), config.listen.status,
                      rejected.labels("status").inc)
    try:
        token = admin_token(config)
    except TokenError as exc:
        raise StartupError(str(exc)) from exc
    if token is None:
        log.warning("admin API disabled: no token (set listen.admin_token_file or %s)",
                    TOKEN_ENV)
        return status, None
    return status, Listener("admin", admin_app(surface, token, AuditLog(config.audit_file)),
                            config.listen.admin, rejected.labels("admin").inc)
