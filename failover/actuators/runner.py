"""Drives each actuator on its own task: one failing actuator never blocks another or the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from failover.actuators.base import (
    Actuator,
    ActuatorError,
    Applied,
    DriftAware,
    FencedError,
    TemporaryActuatorError,
)
from failover.actuators.retry import retrying
from failover.metrics import Metrics
from failover.model import Plan
from failover.waiting import wait_event

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
"""Seconds one apply or drift check may take before it counts as a temporary failure."""


async def bounded(what: str, seconds: float, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` until ``seconds`` from now: the one deadline of one attempt.

    Actuators open no timeout of their own around an apply, so this is the only place an
    attempt is cut; its expiry is a TemporaryActuatorError naming ``what``.
    """
    scope = asyncio.timeout_at(asyncio.get_running_loop().time() + seconds)
    try:
        async with scope:
            return await work()
    except TimeoutError as exc:
        if not scope.expired():
            raise  # not ours: an actuator let a library timeout escape, a bug to see
        msg = f"{what} timed out after {seconds:g}s"
        raise TemporaryActuatorError(msg) from exc


def _identity(applied: Applied) -> tuple[int, bool, int | None]:
    """What makes two plans different for a data plane: shares (the version), the freeze,
    and the leader's epoch (a leader that lost and won again must write its plan over its
    rival's, though the version is the same)."""
    return applied.plan.version, applied.plan.frozen, applied.epoch


class ActuatorRunner:
    """Applies the newest plan to one actuator; a failed apply is retried, then again next tick.

    For a `DriftAware` actuator it also reads the data plane back every ``retry_every`` once
    the plan is applied, and applies it again when someone or something changed it.

    ``timeout`` is the actuator config's own: each attempt at an apply, and each drift
    check, is cut ``timeout`` seconds after it starts (`bounded`). Only temporary errors
    are retried, with backoff, before the next tick.
    """

    def __init__(self, actuator: Actuator, metrics: Metrics, retry_every: float,
                 timeout: float = DEFAULT_TIMEOUT,
                 fence: Callable[[], Awaitable[bool]] | None = None) -> None:
        """``fence``, in the distributed mode, says whether this replica still leads; it is
        asked before every write of a plan that carries an epoch."""
        self.actuator = actuator
        self._fence = fence
        self._metrics = metrics
        self._retry_every = retry_every
        self._timeout = timeout
        self._drift = actuator if isinstance(actuator, DriftAware) else None
        self._wanted: Applied | None = None
        self._changed = asyncio.Event()
        self._applied: tuple[int, bool, int | None] | None = None
        self.last_error: str | None = None
        self.last_drift: list[str] = []
        """Differences found by the latest drift check that found any (then re-applied);
        kept after the fix so status can show what happened, with ``last_drift_at``."""
        self.last_drift_at: float | None = None
        """Unix seconds of that check."""
        for result in ("ok", "error", "retry"):
            metrics.actuator_applies.labels(actuator.name, result)
        if self._drift is not None:
            metrics.actuator_drift.labels(actuator.name)
        metrics.fenced_refused.labels(actuator.name)

    @property
    def applied_version(self) -> int | None:
        """Version of the last plan applied successfully, for status."""
        return None if self._applied is None else self._applied[0]

    def submit(self, plan: Plan, wall_time: float | None = None,
               epoch: int | None = None) -> None:
        self._wanted = Applied(plan, time.time() if wall_time is None else wall_time, epoch)
        self._changed.set()

    async def run(self) -> None:
        while True:
            self._changed.clear()
            wanted = self._wanted
            if wanted is not None:
                if self._applied != _identity(wanted) or self.last_error is not None:
                    await self._apply(wanted)
                elif self._drift is not None:
                    await self._reconcile(self._drift, wanted)
            await wait_event(self._changed, self._next_wake())

    def _next_wake(self) -> float | None:
        """Seconds until the next look at the data plane; None: only when a plan comes."""
        if self.last_error is not None:
            return self._retry_every
        if self._drift is not None and self._applied is not None:
            return self._retry_every
        return None

    async def _reconcile(self, drifting: DriftAware, wanted: Applied) -> None:
        name = self.actuator.name
        version = wanted.plan.version
        try:
            found = await bounded(f"drift check of {name}", self._timeout,
                                  partial(drifting.drift, wanted))
        except FencedError as exc:
            self._fenced(wanted, exc)  # a newer leader owns the data plane: hands off
            return
        except ActuatorError as exc:
            # Not knowing the data plane's state is no reason to leave it: apply again, which
            # writes the plan and verifies it, and reports through the apply path if it fails.
            self._metrics.errors.labels("actuator_drift").inc()
            log.warning("drift check of %s failed, applying plan %d again: %s", name, version,
                        exc, extra={"actuator": name, "version": version})
            await self._apply(wanted)
            return
        if not found:
            return
        self._metrics.actuator_drift.labels(name).inc(len(found))
        self.last_drift = list(found)
        self.last_drift_at = time.time()
        log.warning("%s drifted from plan %d, applying it again: %s", name, version,
                    "; ".join(found),
                    extra={"actuator": name, "version": version, "drift": list(found)})
        await self._apply(wanted)

    def _fenced(self, refused: Applied, exc: FencedError) -> None:
        """A deposed leader's plan is dropped, not retried: the new leader owns the data
        plane now, and its plan is already there or on its way."""
        name = self.actuator.name
        self._wanted = None
        self.last_error = str(exc)
        self._metrics.fenced_refused.labels(name).inc()
        log.warning("plan %d not written to %s: %s", refused.plan.version, name, exc,
                    extra={"actuator": name, "version": refused.plan.version})

    async def _apply(self, wanted: Applied) -> None:
        name = self.actuator.name
        current = wanted

        def count_retry() -> None:
            self._metrics.actuator_applies.labels(name, "retry").inc()

        try:
            # ``within`` stops retrying, it cuts no attempt: each has its own deadline below.
            async for attempt in retrying(f"apply to {name}", count_retry,
                                          within=max(self._retry_every * 5, 5.0)):
                with attempt:
                    # A plan that arrived during the backoff replaces the one that failed:
                    # retrying a stale plan would hold back an evacuation for no gain.
                    current = self._wanted or wanted
                    if current.epoch is not None and self._fence is not None \
                            and not await self._fence():
                        msg = f"epoch {current.epoch} no longer leads: not written"
                        raise FencedError(msg)
                    await bounded(f"apply to {name}", self._timeout,
                                  partial(self.actuator.apply, current))
        except FencedError as exc:
            self._fenced(current, exc)
            return
        except ActuatorError as exc:
            self.last_error = str(exc)
            self._metrics.actuator_applies.labels(name, "error").inc()
            log.error("apply of plan %d to %s failed: %s", current.plan.version, name, exc,
                      extra={"actuator": name, "version": current.plan.version,
                             "permanent": not isinstance(exc, TemporaryActuatorError)})
            return
        self.last_error = None
        self._applied = _identity(current)
        self._metrics.actuator_applies.labels(name, "ok").inc()
        self._metrics.actuator_last_success.labels(name).set(time.time())
        self._metrics.actuator_applied_version.labels(name).set(current.plan.version)
        log.info("applied plan %d to %s", current.plan.version, name,
                 extra={"actuator": name, "version": current.plan.version})
