"""Drives each actuator on its own task: one failing actuator never blocks another or the loop."""

from __future__ import annotations

import asyncio
import logging
import time

from failover.actuators.base import Actuator, ActuatorError, Applied
from failover.actuators.retry import retrying
from failover.metrics import Metrics
from failover.planner.model import Plan
from failover.waiting import wait_event

log = logging.getLogger(__name__)


def _identity(plan: Plan) -> tuple[int, bool]:
    """What makes two plans different for a data plane: shares (the version) and the freeze."""
    return plan.version, plan.frozen


class ActuatorRunner:
    """Applies the newest plan to one actuator; a failed apply is retried, then again next tick."""

    def __init__(self, actuator: Actuator, metrics: Metrics, retry_every: float) -> None:
        self.actuator = actuator
        self._metrics = metrics
        self._retry_every = retry_every
        self._wanted: Applied | None = None
        self._changed = asyncio.Event()
        self._applied: tuple[int, bool] | None = None
        self.last_error: str | None = None
        for result in ("ok", "error", "retry"):
            metrics.actuator_applies.labels(actuator.name, result)

    @property
    def applied_version(self) -> int | None:
        """Version of the last plan applied successfully, for status."""
        return None if self._applied is None else self._applied[0]

    def submit(self, plan: Plan, wall_time: float | None = None) -> None:
        self._wanted = Applied(plan, time.time() if wall_time is None else wall_time)
        self._changed.set()

    async def run(self) -> None:
        name = self.actuator.name
        while True:
            self._changed.clear()
            wanted = self._wanted
            if wanted is not None and (
                    self._applied != _identity(wanted.plan) or self.last_error is not None):
                await self._apply(wanted, name)
            await wait_event(self._changed, self._retry_every if self.last_error else None)

    async def _apply(self, wanted: Applied, name: str) -> None:
        def count_retry() -> None:
            self._metrics.actuator_applies.labels(name, "retry").inc()

        try:
            async for attempt in retrying(f"apply to {name}", count_retry,
                                          within=max(self._retry_every * 5, 5.0)):
                with attempt:
                    await self.actuator.apply(wanted)
        except ActuatorError as exc:
            self.last_error = str(exc)
            self._metrics.actuator_applies.labels(name, "error").inc()
            log.error("apply of plan %d to %s failed: %s", wanted.plan.version, name, exc,
                      extra={"actuator": name, "version": wanted.plan.version})
            return
        self.last_error = None
        self._applied = _identity(wanted.plan)
        self._metrics.actuator_applies.labels(name, "ok").inc()
        self._metrics.actuator_last_success.labels(name).set(time.time())
        log.info("applied plan %d to %s", wanted.plan.version, name,
                 extra={"actuator": name, "version": wanted.plan.version})
