"""The planning loop: health's views, the operators' overrides and the live signals through
the controller each tick; the plan saved, published, then handed to the actuators."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from failover import controller
from failover.actuators.file import written_version
from failover.actuators.runner import ActuatorRunner
from failover.config import Config
from failover.config.actuators import FileActuator as FileSpec
from failover.controller import Inputs, Planner
from failover.daemon import persist
from failover.daemon.overrides import Overrides
from failover.daemon.publish import Publisher
from failover.daemon.state import StateKeeper
from failover.daemon.supervisor import Heartbeats
from failover.health import HealthTracker
from failover.metrics import Metrics
from failover.model import ClusterState, Plan, Signals

log = logging.getLogger("failover.daemon")


class Planning:
    def __init__(self, *, config: Callable[[], Config], health: HealthTracker,
                 overrides: Overrides, signals: Callable[[], Signals],
                 runners: Sequence[ActuatorRunner], state: StateKeeper, publisher: Publisher,
                 heartbeats: Heartbeats, metrics: Metrics, planner: Planner) -> None:
        self._config = config
        self._health = health
        self._overrides = overrides
        self._signals = signals
        self._runners = runners
        self._state = state
        self._publisher = publisher
        self._heartbeats = heartbeats
        self._metrics = metrics
        self._planner = planner
        self.plan: Plan | None = None
        self._first_version = 1

    def restore(self, saved: persist.Saved) -> None:
        """Take up the plan the last run left, and re-apply it at once: after a crash the
        data plane may lag what was decided. Nothing moves until verdicts come in (unknown
        clusters keep their shares)."""
        if saved.plan is None:
            # The state is lost, not the data plane: number on from what it carries, so that
            # its readers never see the version go backwards.
            carried = [v for spec in self._config().actuators if isinstance(spec, FileSpec)
                       if (v := written_version(spec.path)) is not None]
            self._first_version = max(carried, default=0) + 1
            return
        self.plan = saved.plan
        log.info("restored plan %d from %s; re-applying it", saved.plan.version,
                 self._state.path)
        for runner in self._runners:
            runner.submit(saved.plan)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._tick(loop.time())
                self._heartbeats.beat("planner")
            except Exception:
                # The iteration guard: the last plan stays applied (static stability) and the
                # next tick tries again; no heartbeat, so a planner that fails every tick
                # turns /healthz to 503 within its bound.
                self._metrics.errors.labels("planner").inc()
                log.exception("planning failed; keeping the last plan")
            await asyncio.sleep(self._config().policy.tick)

    async def _tick(self, now: float) -> None:
        config, overrides = self._config(), self._overrides
        for name in overrides.expire(time.time()):
            log.warning("drain of %s expired", name)
        freeze = overrides.freeze
        inputs = Inputs(self._health.views(now), config.demand_rps, self._health.vantage_ok(),
                        overrides.drain_reasons(), None if freeze is None else freeze.reason,
                        self._signals(), applied=self.applied(),
                        first_version=self._first_version)
        step = controller.tick(config.policy, self.plan, inputs, now, self._planner)
        # Saved before it is applied: a restart never resumes from behind what the data
        # plane already carries.
        await self._state.save(step.plan, overrides)
        previous, self.plan = self.plan, step.plan
        self._publisher.publish(step.plan, previous, now)
        if step.actuate:
            for runner in self._runners:
                runner.submit(step.plan)

    def applied(self) -> bool:
        """Every actuator carries the current plan (what a ramp needs to count the time)."""
        if self.plan is None or self.plan.version < 1:
            return True
        version = self.plan.version
        return all(r.applied_version is not None and r.applied_version >= version
                   for r in self._runners)

    def signal_order(self) -> list[str]:
        """Clusters to query for signals, most important first: those recovering, then
        waiting, then held to a limit, then the rest (the query budget may not reach the
        last)."""
        if self.plan is None:
            return [c.name for c in self._config().clusters]
        order = {ClusterState.RECOVERING: 0, ClusterState.WAITING: 1}
        return [c.name for c in sorted(
            self.plan.clusters,
            key=lambda c: (order.get(c.state, 2 if c.guard is not None else 3), c.rank))]
