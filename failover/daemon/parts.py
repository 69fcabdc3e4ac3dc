"""Parts built from the config before anything runs: the actuators."""

from __future__ import annotations

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
