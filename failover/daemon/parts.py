"""Parts built from the config before anything runs: actuators and the admin token."""

from __future__ import annotations

import os

from failover.actuators.base import Actuator, ActuatorError
from failover.actuators.dns import DnsUpdateActuator
from failover.actuators.file import FileActuator
from failover.actuators.haproxy import HaproxyActuator
from failover.config import Config
from failover.config.actuators import FileActuator as FileActuatorConfig
from failover.config.actuators import HaproxyActuator as HaproxyActuatorConfig


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


TOKEN_ENV = "FAILOVER_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a secret


def admin_token(config: Config) -> str | None:
    """The admin bearer token: the environment first, else the token file; None for neither.

    Raises OSError when the configured file cannot be read, ValueError when it is empty: a
    daemon whose operators believe they have a break-glass API must not start without one.
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = config.listen.admin_token_file
    if path is None:
        return None
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        msg = f"admin token file {path} is empty"
        raise ValueError(msg)
    return token
