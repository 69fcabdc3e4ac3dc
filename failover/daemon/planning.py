"""The planning loop: health's views, the operators' overrides and the live signals through
the controller each tick; the plan saved, published, then handed to the actuators."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from failover import controller
from failover.actuators.file import written_version
from failover.actuators.runner import ActuatorRunner
from failover.config import Config
from failover.config.actuators import FileActuator as FileSpec
from failover.controller import Inputs, Planner
from failover.coordination.replica import Replica
from failover.daemon import persist
from failover.daemon.overrides import Overrides
from failover.daemon.publish import Publisher
from failover.daemon.shared_overrides import SharedOverrides
from failover.daemon.state import StateKeeper
from failover.daemon.supervisor import Heartbeats
from failover.health import HealthTracker
from failover.metrics import Metrics
from failover.model import ClusterState, ClusterView, Plan, Signals

T = TypeVar("T")

VIEW_BATCH = 200
"""Clusters viewed between two turns of the loop: well under a millisecond of work."""

log = logging.getLogger("failover.daemon")


async def batched_views(health: HealthTracker, now: float) -> list[ClusterView]:
    """Every cluster's view, a batch at a time with the loop let go between batches: at
    fleet scale the whole takes milliseconds that probes would wait behind, late."""
    return await _in_batches(health, lambda part: health.views(now, part))


async def batched_probe_signals(health: HealthTracker) -> Signals:
    """The probes' own load signals, a batch of clusters at a time, as `batched_views`."""
    samples = await _in_batches(health, lambda part: health.probe_signals(part).clusters.items())
    return Signals(dict(samples), source="probes")


async def _in_batches(health: HealthTracker, read: Callable[[slice], Iterable[T]]) -> list[T]:
    while True:
        generation, found = health.generation, list[T]()
        for start in range(0, health.cluster_count, VIEW_BATCH):
            found += read(slice(start, start + VIEW_BATCH))
            await asyncio.sleep(0)
        if health.generation == generation:
            return found
        # A reload changed the clusters between two batches: start again on the new set.


class Planning:
    def __init__(self, *, config: Callable[[], Config], health: HealthTracker,
                 overrides: Overrides, signals: Callable[[], Awaitable[Signals]],
                 runners: Sequence[ActuatorRunner], state: StateKeeper, publisher: Publisher,
                 heartbeats: Heartbeats, metrics: Metrics, planner: Planner,
                 replica: Replica | None = None, shared: SharedOverrides | None = None,
                 ) -> None:
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
        # Its own thread, not the default executor's: saves to a hung disk hold those
        # threads for good, and planning (evacuations) must go on while they do.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="planner")
        self._replica = replica
        self._shared = shared
        self.plan: Plan | None = None
        self.signals: Signals | None = None
        """What the last plan was made with: status shows these rather than reading every
        cluster's signals again, which at a thousand clusters costs the loop milliseconds."""
        self._first_version = 1
        self._led: int | None = None
        """The epoch this replica last planned under; another one means a takeover."""
        self._in_etcd: bytes | None = None
        self._seen_at: int | None = None
        """A follower: the revision of the leader's plan it shows."""
        self._exported: set[str] = set()
        self.unsure: str | None = None
        """Distributed mode: why the quorum view could not be trusted on the last tick."""

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
        try:
            while True:
                try:
                    await self._tick(loop.time())
                    self._heartbeats.beat("planner")
                except Exception:
                    # The iteration guard: the last plan stays applied (static stability)
                    # and the next tick tries again; no heartbeat, so a planner that fails
                    # every tick turns /healthz to 503 within its bound.
                    self._metrics.errors.labels("planner").inc()
                    log.exception("planning failed; keeping the last plan")
                await asyncio.sleep(self._config().policy.tick)
        finally:
            self._thread.shutdown(wait=False)

    async def _tick(self, now: float) -> None:
        config, overrides = self._config(), self._overrides
        for name in overrides.expire(time.time()):
            log.warning("drain of %s expired", name)
            if self._shared is not None:
                self._shared.drained(name, None)
        if self._shared is not None:
            await self._shared.flush()
        views, vantage_ok = await batched_views(self._health, now), self._health.vantage_ok()
        # Alone, passing vantage checks prove our own network: a fleet-wide failure seen
        # then is a fact to act on. In the distributed mode the vantages' agreement does.
        evidence = config.vantage is not None and vantage_ok
        epoch = None
        if self._replica is not None:
            self._replica.offer(views, vantage_ok, now)
            self._metrics.leader.set(self._replica.leading())
            if not self._replica.leading():
                await self._follow(self._replica, now)
                self._export_vantages(self._replica)
                return
            epoch = self._replica.epoch
            if epoch != self._led:
                await self._take_over(self._replica, epoch, now)
            views, view = self._replica.decide(views)
            unsure, evidence = view.unsure, view.agreed and vantage_ok
            self._export_vantages(self._replica)
            if unsure != self.unsure:
                (log.warning if unsure else log.info)(
                    "vantages: %s", unsure or "enough trusted vantages again")
            self.unsure = unsure
            vantage_ok = vantage_ok and unsure is None
        freeze = overrides.freeze
        inputs = Inputs(views, config.demand_rps, vantage_ok,
                        overrides.drain_reasons(), None if freeze is None else freeze.reason,
                        await self._signals(), applied=self.applied(),
                        first_version=self._first_version, evidence=evidence)
        # The planner is pure, so it runs on a worker thread: at 10,000 clusters a tick is
        # 100+ ms of Python, which on the loop would delay every probe and admin call by as
        # much. With the 1 ms switch interval the loop still turns every millisecond.
        step = await asyncio.get_running_loop().run_in_executor(
            self._thread, controller.tick, config.policy, self.plan, inputs, now, self._planner)
        # Saved before it is applied: a restart never resumes from behind what the data
        # plane already carries.
        await self._state.save(step.plan, overrides)
        if self._replica is not None and not await self._share(self._replica, step.plan, now):
            return  # deposed between the check and the write: the new leader acts
        previous, self.plan, self.signals = self.plan, step.plan, inputs.signals
        self._publisher.publish(step.plan, previous, now)
        if step.actuate:
            for runner in self._runners:
                runner.submit(step.plan, epoch=epoch)

    # -- the distributed mode ---------------------------------------------------------------

    def _export_vantages(self, replica: Replica) -> None:
        now = {v["name"]: v["fresh"] and not v["excluded"] for v in replica.status()["vantages"]}
        # A vantage gone from etcd (its lease lapsed) reads 0, not its last value.
        for name in self._exported - now.keys():
            self._metrics.vantage_fresh.labels(name).set(0)
        for name, fresh in now.items():
            self._metrics.vantage_fresh.labels(name).set(fresh)
        self._exported |= now.keys()

    def _document(self, plan: Plan | None, now: float) -> bytes:
        return persist.encode(persist.document(plan, self._overrides,
                                               persist.Clocks(now, time.time())))

    async def _share(self, replica: Replica, plan: Plan, now: float) -> bool:
        """Put the plan in etcd, fenced on our epoch, before any actuator sees it: whoever
        leads next starts from it. False when we no longer lead."""
        document = self._document(plan, now)
        if document == self._in_etcd:
            return True
        if not await replica.save_plan(document):
            log.warning("plan %d not saved in etcd: no longer leader; not actuated",
                        plan.version)
            return False
        self._in_etcd = document
        return True

    async def _take_over(self, replica: Replica, epoch: int | None, now: float) -> None:
        """A new leadership: start from the plan the last leader put in etcd (our own if
        none), with its overrides, and re-apply it under our epoch before planning anything,
        so that the data plane is exactly what was decided (static takeover)."""
        self._led, self._in_etcd = epoch, None
        data, _ = await replica.load_plan()
        saved = _decoded(data, now, "planning from our own")
        if saved is not None:
            self.plan = saved
            self._first_version = max(self._first_version, saved.version + 1)
        log.warning("leading under epoch %s from plan %s", epoch,
                    None if self.plan is None else self.plan.version)
        if self.plan is not None and self.plan.version >= 1:
            for runner in self._runners:
                runner.submit(self.plan, epoch=epoch)

    async def _follow(self, replica: Replica, now: float) -> None:
        """A follower plans nothing and writes nothing; it shows the leader's plan."""
        self._led = None
        data, self._seen_at = await replica.load_plan(self._seen_at)
        saved = _decoded(data, now, "showing the last one")
        if saved is not None:
            previous, self.plan = self.plan, saved
            if previous is None or previous.version != saved.version:
                self._publisher.publish(saved, previous, now)

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


def _decoded(data: bytes | None, now: float, instead: str) -> Plan | None:
    """The plan a leader put in etcd, or None when there is none or it cannot be used
    (said, with what is done ``instead``)."""
    if data is None:
        return None
    try:
        return persist.decode(data, persist.Clocks(now, time.time())).plan
    except ValueError as exc:
        log.error("the plan in etcd is unusable, %s: %s", instead, exc)
        return None
