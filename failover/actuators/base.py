"""What every actuator is: something that makes a data plane match a plan, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from failover.planner.model import Plan


class ActuatorError(Exception):
    """Applying a plan failed; ``transient`` errors are retried, others wait for the next plan."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Applied:
    """A plan as the actuator applies it: the plan, plus wall-clock time for display."""

    plan: Plan
    wall_time: float
    """Unix seconds when the plan was made; the plan itself only knows loop time."""


class Actuator(Protocol):
    @property
    def name(self) -> str:
        """Label for metrics and logs, e.g. ``file:/var/lib/failover/weights.json``."""
        ...

    async def apply(self, applied: Applied) -> None:
        """Make the data plane match ``applied.plan``; raise ActuatorError on failure."""
        ...
