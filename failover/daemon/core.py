"""The supervisor: builds the parts, runs them as named tasks under one TaskGroup, and stops
the process when one dies. It moves values between the parts and decides nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pydantic
from prometheus_client import CollectorRegistry

from failover.actuators.runner import ActuatorRunner
from failover.api.admin import can_serve
from failover.config import Cluster, Config, ConfigError, ProbeKind, all_jobs
from failover.config.budget import Job
from failover.controller import Planner
from failover.coordination.replica import Replica
from failover.daemon import distributed
from failover.daemon.listeners import admin_tokens_of, listeners, serving_tls
from failover.daemon.overrides import Overrides
from failover.daemon.parts import build_actuators
from failover.daemon.planning import Planning, batched_probe_signals
from failover.daemon.publish import Publisher
from failover.daemon.reload import WATCH_EVERY, Reloader
from failover.daemon.shared_overrides import SharedOverrides
from failover.daemon.shared_registry import SharedRegistry
from failover.daemon.state import StateKeeper
from failover.daemon.supervisor import (
    Heartbeats,
    StartupError,
    TaskDied,
    essential,
    expect_progress,
    lag_loop,
    listening,
)
from failover.daemon.surface import Surface
from failover.daemon.validate import refusals
from failover.health import HealthTracker
from failover.metrics import Metrics
from failover.model import Plan, ProbeResult, Signals
from failover.planner import plan as make_plan
from failover.probes import PROBES
from failover.probes.base import ProbeFn
from failover.probes.scheduler import Scheduler
from failover.registry import (
    RegistrationRefused,
    Registry,
    RegistryUnreadable,
    cluster_from_body,
    compose,
    discovery,
    problems,
)
from failover.registry.discovery import Discovery
from failover.registry.provisioning import ProvisioningHook
from failover.signals import PrometheusSource, SignalMetrics

log = logging.getLogger("failover.daemon")


def _loop_time() -> float:
    return asyncio.get_running_loop().time()

STALL_AFTER = 10.0
"""Seconds an essential loop may go without progress (beyond its own period) before
/healthz answers 503."""


class Daemon:
    """``run()`` serves until ``stop()`` or SIGTERM; raises TaskDied when an essential task
    dies and StartupError when something it needs is missing."""

    def __init__(self, config: Config, config_path: Path | None = None,
                 registry: CollectorRegistry | None = None, *,
                 planner: Planner = make_plan, probes: Mapping[ProbeKind, ProbeFn] = PROBES,
                 watch_every: float = WATCH_EVERY, stall_after: float = STALL_AFTER) -> None:
        self.file_config = config
        """The config file's own, without the clusters registered or discovered."""
        self.metrics = Metrics(registry or CollectorRegistry())
        self.registry = Registry(config.state_dir)
        try:
            self.registry.load()
        except RegistryUnreadable as exc:
            raise StartupError(str(exc)) from exc
        self.discovery = Discovery()
        if config.discovery is not None:
            # Before the first plan: a restart must not plan, for a moment, without them.
            self._scan(discovery.read(config.discovery.files))
        config = self.config = self._composed(config)
        self.stopping = asyncio.Event()
        self._stall_after = stall_after
        self.health = HealthTracker(config)
        self.overrides = Overrides()
        self.replica: Replica | None = None
        self.shared: SharedOverrides | None = None
        self.shared_registry: SharedRegistry | None = None
        self._registry_unsaved = False
        self._adopt_refused: str | None = None
        if config.coordination is not None:
            self.replica, self.shared, self.shared_registry = distributed.build(
                config.coordination, config.policy.tick, self.overrides, self.metrics,
                lambda: {c.name for c in self.config.clusters}, self._adopt)
        fence = None if self.replica is None else self.replica.still_leading
        self.runners = [
            ActuatorRunner(actuator, self.metrics, config.policy.tick, timeout=spec.timeout,
                           fence=fence)
            for actuator, spec in zip(build_actuators(config), config.actuators, strict=True)]
        self.state = StateKeeper(config.state_file, self.metrics)
        self.publisher = Publisher(self.metrics)
        # The loop's clock, as every other bound here: a fake one in tests moves them all.
        self.heartbeats = Heartbeats(_loop_time)
        self.reloader = Reloader(config_path, lambda: self.config, self._take_config,
                                 self.metrics, watch_every)
        self.planning = Planning(
            config=lambda: self.config, health=self.health, overrides=self.overrides,
            signals=self._tick_signals, runners=self.runners, state=self.state,
            publisher=self.publisher, heartbeats=self.heartbeats, metrics=self.metrics,
            planner=planner, replica=self.replica, shared=self.shared)
        self.signals: PrometheusSource | None = None
        if config.signals.prometheus is not None:
            self.signals = PrometheusSource(config.signals.prometheus,
                                            self.planning.signal_order,
                                            SignalMetrics(self.metrics.registry))
        self.scheduler = Scheduler(all_jobs(config.clusters, config.vantage), config.probing,
                                   self.metrics, self._record, probes)
        self.surface = Surface(
            config=lambda: self.config, config_path=config_path, plan=lambda: self.planning.plan,
            signals=self._plan_signals, health=self.health, runners=self.runners,
            overrides=self.overrides, publisher=self.publisher, heartbeats=self.heartbeats,
            metrics=self.metrics, state=self.state, reloader=self.reloader,
            replica=self.replica, shared=self.shared, register=self.register,
            deregister=self.deregister, save_registered=self.save_registered,
            sources=self._sources)
        replica = self.replica
        self.provisioning = ProvisioningHook(
            lambda: self.config, lambda: self.planning.plan, self.metrics,
            leading=lambda: replica is None or replica.leading())
        self.tls = serving_tls(config, self.metrics)
        self.tokens = admin_tokens_of(config, self.metrics)
        self.status, self.admin = listeners(config, self.surface, self.metrics, self.tokens,
                                            self.tls)

    @property
    def plan(self) -> Plan | None:
        return self.planning.plan

    @property
    def reload_requested(self) -> asyncio.Event:
        return self.reloader.requested

    def reload(self) -> bool:
        return self.reloader.reload()

    def extra_status(self) -> dict[str, object]:
        return self.surface.extra_status()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.state.check_writable()
        log.info("starting with %d clusters, %d probe jobs", len(self.config.clusters),
                 len(self.scheduler.jobs))
        self._restore(loop.time())
        for signum, handler in ((signal.SIGTERM, self.stop), (signal.SIGINT, self.stop),
                                (signal.SIGHUP, self.reload_requested.set)):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, handler)
        expect_progress(self.heartbeats, self.config, self._stall_after)
        try:
            async with asyncio.TaskGroup() as tasks:
                def start(name: str, run: Callable[[], Awaitable[None]]) -> None:
                    tasks.create_task(essential(name, run), name=name)

                # Actuators first: a restored plan is re-applied before the first probe.
                for runner in self.runners:
                    start(f"actuator {runner.actuator.name}", runner.run)
                start("status-listener", lambda: listening(self.status))
                if self.admin is not None:
                    admin = self.admin
                    start("admin-listener", lambda: listening(admin))
                tokens = self.tokens
                if tokens is not None and tokens.path is not None:
                    start("token-watch", lambda: tokens.watch(self.reloader.watch_every))
                start("prober", self.scheduler.run)
                if self.replica is not None:
                    start("coordination", self.replica.run)
                start("planner", self.planning.run)
                if self.signals is not None:
                    start("signals", self.signals.run)  # its own session and budget
                start("loop-lag", lambda: lag_loop(self.metrics, self.heartbeats))
                start("reload", self.reloader.run)
                start("deregistration", self._remove_deregistered)
                start("provisioning", self.provisioning.run)
                start("discovery", self._discover)
                start("config-watch", self.reloader.watch)
                await self.stopping.wait()
                raise _Stopping
        except* _Stopping:
            log.info("stopped; the data plane is left as it is")
        except* (StartupError, TaskDied) as group:
            raise group.exceptions[0] from None
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            # The last word on disk: a freeze or drain made since the last tick survives.
            await asyncio.shield(self._final_save())

    async def _final_save(self) -> None:
        await self.state.settle()
        await self.state.save(self.planning.plan, self.overrides)

    def _restore(self, loop_now: float) -> None:
        saved = self.state.restore(loop_now)
        self.overrides.take(saved.overrides, {c.name for c in self.config.clusters})
        self.planning.restore(saved)

    def _composed(self, file_config: Config) -> Config:
        """At start: the file's config with the clusters registered before the restart."""
        try:
            return compose(file_config, self._extra())
        except pydantic.ValidationError as exc:
            msg = (f"the clusters registered in {self.registry.path} no longer fit the "
                   f"config: {problems(exc, len(file_config.clusters))}; edit the config, or "
                   "remove them from that file")
            raise StartupError(msg) from exc

    def _take_config(self, new: Config) -> str | None:
        """A config file read anew, run with the registered clusters."""
        try:
            composed = compose(new, self._extra())
        except pydantic.ValidationError as exc:
            return (f"with the registered clusters: {problems(exc, len(new.clusters))}")
        refused = self._run_config(composed)
        if refused is None:
            self.file_config = new
            self._take_tls(new)
        return refused

    def _take_tls(self, new: Config) -> None:
        """New certificates, keys and client CAs reach new connections at once; turning
        TLS on or off needs the listeners bound anew, at the next restart."""
        tls = new.listen.tls
        if (tls is None) != (self.tls is None):
            log.warning("listen.tls %s takes effect at the next restart",
                        "added" if tls is not None else "removed")
        elif tls is not None and self.tls is not None and self.tls.update(tls.material):
            log.info("TLS certificate, key and client CA reloaded for new connections")

    def register(self, name: str, body: Any) -> bool:
        """Take up (or update) a cluster registered through the admin API; True when it is
        new. Raises RegistrationRefused, and then nothing has changed."""
        cluster = cluster_from_body(name, body)
        self._not_the_files(name)
        if name in self.registry.leaving:
            raise RegistrationRefused(409, f"{name!r} is being deregistered (drained until "
                                           "its share is 0, then removed); register it again "
                                           "once it is gone")
        try:
            composed = compose(self.file_config, self._extra(cluster))
        except pydantic.ValidationError as exc:
            raise RegistrationRefused(
                409, problems(exc, len(self.file_config.clusters))) from exc
        found = refusals(composed)
        if found:
            raise RegistrationRefused(409, "; ".join(r.message for r in found))
        refused = self._run_config(composed)
        if refused is not None:
            raise RegistrationRefused(409, refused)
        created = self.registry.put(cluster, body)
        if self.shared_registry is not None:
            self.shared_registry.registered(name, self.registry.bodies[name], leaving=False)
        return created

    def deregister(self, name: str) -> None:
        """Take a registered cluster's weight to 0; `_remove_deregistered` removes it once
        it carries nothing. Raises RegistrationRefused."""
        self._not_the_files(name)
        if name not in self.registry.clusters:
            raise RegistrationRefused(404, f"no registered cluster named {name!r}")
        if name in self.registry.leaving:
            return
        self.registry.leaving.add(name)
        # Fewer clusters of weight than a config already taken: only can_serve can refuse.
        refused = self._run_config(compose(self.file_config, self._extra()))
        if refused is not None:
            self.registry.leaving.discard(name)
            raise RegistrationRefused(409, f"removing {name!r}: {refused}")
        if self.shared_registry is not None:
            self.shared_registry.registered(name, self.registry.bodies[name], leaving=True)

    async def save_registered(self) -> bool:
        """On disk (and in etcd, in the distributed mode) before an admin call is answered."""
        saved = await self.registry.save()
        if self.shared_registry is not None:
            saved = await self.shared_registry.flush() and saved
        return saved

    def _adopt(self, bodies: dict[str, dict[str, Any]], leaving: set[str]) -> None:
        """The registrations etcd holds (distributed mode), taken up if they fit this
        replica's config; a cluster missing from them leaves gradually, as if deregistered."""
        for name, body in self.registry.bodies.items():
            if name not in bodies:
                bodies[name] = body
                leaving.add(name)
        if bodies == self.registry.bodies and leaving == self.registry.leaving:
            return
        before = (self.registry.bodies, self.registry.clusters, self.registry.leaving)
        try:
            clusters = {name: cluster_from_body(name, body) for name, body in bodies.items()}
            self.registry.bodies, self.registry.clusters, self.registry.leaving = (
                bodies, clusters, leaving)
            refused = self._run_config(compose(self.file_config, self._extra()))
        except (RegistrationRefused, pydantic.ValidationError) as exc:
            refused = str(exc) if isinstance(exc, RegistrationRefused) else problems(
                exc, len(self.file_config.clusters))
        if refused is not None:
            self.registry.bodies, self.registry.clusters, self.registry.leaving = before
            # The mirror hands etcd's keys over at every resync: said once per reason.
            if refused != self._adopt_refused:
                self.metrics.errors.labels("etcd_value").inc()
                log.error("registered clusters in etcd not taken up here: %s", refused)
            self._adopt_refused = refused
            return
        self._adopt_refused = None
        self._registry_unsaved = True

    def _not_the_files(self, name: str) -> None:
        if self.file_config.cluster(name) is not None:
            raise RegistrationRefused(409, f"{name!r} is defined in the config file "
                                           f"{self.reloader.path}; change it there")

    async def _remove_deregistered(self) -> None:
        """Each tick: a deregistered cluster leaves the config once the plan gives it
        nothing and every actuator carries that plan (the data plane sends it nothing)."""
        while True:
            await asyncio.sleep(self.config.policy.tick)
            if self.shared_registry is not None:
                await self.shared_registry.flush()
            if self._registry_unsaved:
                self._registry_unsaved = not await self.registry.save()
            plan = self.planning.plan
            leaving = self.registry.leaving | self.discovery.leaving.keys()
            # A follower actuates nothing: the leader's plan, followed, is what counts.
            follower = self.replica is not None and not self.replica.leading()
            if not leaving or plan is None or not (follower or self.planning.applied()):
                continue
            shares, discovered = plan.shares, self.discovery.active()
            gone = sorted(n for n in leaving if shares.get(n, 0.0) == 0.0
                          and n not in discovered)
            if not gone:
                continue
            for name in gone:
                if name in self.registry.clusters and self.shared_registry is not None \
                        and not follower:
                    self.shared_registry.removed(name)
                self.registry.remove(name)
                self.discovery.leaving.pop(name, None)
            # Fewer clusters than a config already taken: no rule can fail.
            refused = self._run_config(compose(self.file_config, self._extra()))
            if refused is not None:
                log.error("deregistered %s not removed: %s", ", ".join(gone), refused)
                continue
            log.warning("deregistered %s removed at share 0", ", ".join(gone))
            await self.registry.save()

    def _sources(self) -> dict[str, Any]:
        """Where the clusters beyond the config file's come from, for /v1/status."""
        return {"registered": sorted(self.registry.clusters),
                "deregistering": sorted(self.registry.leaving),
                "discovery": {"files": self.discovery.status(),
                              "leaving": sorted(self.discovery.leaving)}}

    def _extra(self, registering: Cluster | None = None) -> list[Cluster]:
        """The clusters beyond the config file's: registered, then discovered."""
        return [*self.registry.running(registering), *self.discovery.running()]

    def _scan(self, found: dict[Path, bytes | None]) -> bool:
        """Take up each changed discovery file that parses and fits with everything else;
        True when any was. The others keep their last good content and are reported."""
        taken = False
        for path, content in self.discovery.changed(found):
            clusters: dict[str, Cluster] | None = None
            digest = None if content is None else discovery.digest_of(content)
            if content is not None:
                try:
                    parsed = discovery.parse(path, content)
                except ConfigError as exc:
                    self._refuse(path, digest, str(exc))
                    continue
                clusters = {c.name: c for c in parsed}
                if len(clusters) < len(parsed):
                    self._refuse(path, digest, f"{path}: a cluster name is given twice")
                    continue
            try:
                compose(self.file_config, [*self.registry.running(),
                                           *self.discovery.running((path, clusters or {}))])
            except pydantic.ValidationError as exc:
                self._refuse(path, digest, f"{path}: does not fit the config: "
                             f"{problems(exc, len(self.file_config.clusters))}")
                continue
            self.discovery.take(path, clusters, digest)
            if clusters is not None:
                log.info("discovery file %s: %s", path, ", ".join(sorted(clusters)) or "empty")
            taken = True
        return taken

    def _refuse(self, path: Path, digest: bytes | None, why: str) -> None:
        self.metrics.errors.labels("discovery").inc()
        if self.discovery.refuse(path, digest, why):
            log.error("%s; its last good content stays", why)

    async def _discover(self) -> None:
        while True:
            spec = self.file_config.discovery
            await asyncio.sleep(WATCH_EVERY if spec is None else spec.refresh)
            found = {} if spec is None else await asyncio.to_thread(discovery.read, spec.files)
            if self._scan(found):
                refused = self._run_config(compose(self.file_config, self._extra()))
                if refused is not None:
                    log.error("discovered clusters not taken up: %s", refused)

    def _run_config(self, new: Config) -> str | None:
        if not can_serve({c.name: c.weight for c in new.clusters},
                         self.surface.drained_clusters()):
            return ("every cluster of weight above 0 in it is drained: nothing could take "
                    "traffic; undrain one first")
        self.config = new
        self.health.update_config(new)
        self.overrides.forget({c.name for c in new.clusters})
        self.scheduler.update(all_jobs(new.clusters, new.vantage), new.probing)
        return None

    def _record(self, job: Job, result: ProbeResult) -> None:
        self.health.record(job.key, result, asyncio.get_running_loop().time())
        self.heartbeats.beat("prober")

    async def _tick_signals(self) -> Signals:
        """`_live_signals` for a planning tick, the probes' taken in batches."""
        if self.signals is not None:
            return self.signals.signals()
        return await batched_probe_signals(self.health)

    def _plan_signals(self) -> Signals:
        """What the last plan was made with; live ones before the first."""
        signals = self.planning.signals
        return self._live_signals() if signals is None else signals

    def _live_signals(self) -> Signals:
        """Prometheus's when it is configured; else what the probes themselves say."""
        if self.signals is not None:
            return self.signals.signals()
        return self.health.probe_signals()


class _Stopping(Exception):
    """Raised inside the TaskGroup to cancel every task once a stop is requested."""
