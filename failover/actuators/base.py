"""What every actuator is: something that makes a data plane match a plan, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from failover.model import Plan


class ActuatorError(Exception):
    """Applying a plan failed. Raise one of the two kinds below: the kind is the retry policy."""


class TemporaryActuatorError(ActuatorError):
    """May pass by itself (unreachable, timed out, raced): the runner retries it with backoff."""


class PermanentActuatorError(ActuatorError):
    """Will fail the same way until config or the data plane changes: not retried, the next
    plan or tick tries again."""


class FencedError(PermanentActuatorError):
    """The data plane holds a newer leader's epoch than the plan's: this replica is no longer
    the leader, and its write was refused (by the data plane itself, or by the actuator's
    check of it). Counted in ``failover_fenced_writes_refused_total``; never retried."""


@dataclass(frozen=True)
class Applied:
    """A plan as the actuator applies it: the plan, plus wall-clock time for display."""

    plan: Plan
    wall_time: float
    """Unix seconds when the plan was made; the plan itself only knows loop time."""
    epoch: int | None = None
    """The leader's epoch (its etcd leader key's create revision) in distributed mode; None
    when the daemon runs alone. An actuator whose data plane can keep it does: it refuses to
    write over a higher epoch (raising `FencedError`) and records its own with each write,
    so a deposed leader that wakes up can never undo its successor's plan."""


class Actuator(Protocol):
    """Every actuator: ``name`` and ``apply``. ``drift`` is optional, see `DriftAware`."""

    @property
    def name(self) -> str:
        """Label for metrics and logs, e.g. ``file:/var/lib/failover/weights.json``."""
        ...

    async def apply(self, applied: Applied) -> None:
        """Make the data plane match ``applied.plan``; raise an ActuatorError kind on failure.

        The runner bounds each call with its one deadline and cancels the call there, so an
        actuator opens no timeout around its whole work; it must only stay cancellable.
        """
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
        ``server app/use1 weight 12, want 128``; empty when in sync. Raise an ActuatorError
        kind if the data plane cannot be read. Bounded by the runner, as ``apply`` is."""
        ...
