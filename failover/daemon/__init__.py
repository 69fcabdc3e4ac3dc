"""The daemon: builds the parts, runs them as named tasks, and stops the process when one
dies (``core``); persistence, publication and the operator's surfaces live beside it."""

from failover.daemon.core import Daemon
from failover.daemon.parts import UnsupportedActuator, build_actuators
from failover.daemon.supervisor import StartupError, TaskDied

__all__ = ["Daemon", "StartupError", "TaskDied", "UnsupportedActuator", "build_actuators"]
