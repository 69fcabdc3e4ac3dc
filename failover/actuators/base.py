"""What every actuator is: something that makes a data plane match a plan, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
    """Every actuator: ``name`` and ``apply``. ``drift`` is optional, see `DriftAware`."""

    @property
    def name(self) -> str:
        """Label for metrics and logs, e.g. ``file:/var/lib/failover/weights.json``."""
        ...

    async def apply(self, applied: Applied) -> None:
        """Make the data plane match ``applied.plan``; raise ActuatorError on failure."""
        ...


@runtime_checkable
class DriftAware(Actuator, Protocol):
    """An actuator that can also read its data plane back and say how it differs from a plan.

    Optional: the runner checks ``isinstance(actuator, DriftAware)`` and, for those that are,
    calls ``drift`` every tick after a successful apply and re-applies on any difference, so a
    weight changed by hand or a lost record does not stay wrong until the next plan.
    """

    async def drift(self, applied: Applied) -> list[str]:
        """Differences between the data plane and ``applied.plan``, each a short text like
        ``server app/use1 weight 12, want 128``; empty when in sync. Raise ActuatorError if the
        data plane cannot be read."""
        ...
