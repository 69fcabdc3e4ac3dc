"""The supervisor: one TaskGroup of named tasks that probe, plan, actuate and serve status."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from failover import controller, persist
from failover.actuators.base import Actuator, ActuatorError
from failover.actuators.dns import DnsUpdateActuator
from failover.actuators.file import FileActuator, write_atomically
from failover.actuators.haproxy import HaproxyActuator
from failover.actuators.runner import ActuatorRunner
from failover.api.admin import admin_app
from failover.api.audit import AuditLog
from failover.api.server import Listener
from failover.api.status import status_app
from failover.api.token import TOKEN_ENV, admin_token
from failover.config import Config, ConfigError, all_jobs, load
from failover.config.budget import Job
from failover.config.models import FileActuator as FileActuatorConfig
from failover.config.models import HaproxyActuator as HaproxyActuatorConfig
from failover.controller import Inputs
from failover.health import HealthTracker
from failover.health.results import ProbeResult
from failover.metrics import RAMP_ACTIONS, Metrics
from failover.overrides import Drain, Freeze, Overrides
from failover.planner import plan as make_plan
from failover.planner.model import ClusterState, Decision, Plan, Signals
from failover.probes import PROBES
from failover.probes.scheduler import Scheduler
from failover.signals import PrometheusSource, SignalMetrics

log = logging.getLogger(__name__)

LAG_PERIOD = 0.25
"""Seconds between two loop-lag samples."""
STALL_AFTER = 10.0
"""Seconds without a planner tick or lag sample before /healthz reports a stall."""


RESTART_BACKOFF = (0.5, 30.0)
"""Seconds before restarting a crashed task: first delay, and the cap it doubles up to."""
PERSIST_WAIT = 1.0
"""Seconds a tick waits for its state to be saved before applying the plan anyway."""
WATCH_EVERY = 2.0
"""Seconds between two looks at the config file's content."""


class UnsupportedActuator(Exception):
    pass


def _digest(path: Path) -> bytes | None:
    """The file's content hash; None while it cannot be read (mid-rename, deleted)."""
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


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


def _wall(at: float, loop_now: float) -> str:
    stamp = datetime.fromtimestamp(time.time() - (loop_now - at), UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Daemon:
    """Owns the running state; ``run()`` serves until ``stop()`` or SIGTERM."""

    def __init__(self, config: Config, config_path: Path | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.metrics = Metrics(registry or CollectorRegistry())
        self.health = HealthTracker(config)
        self.runners = [
            # The runner's limit a little beyond the actuator's own: its message is clearer.
            ActuatorRunner(actuator, self.metrics, config.policy.tick, timeout=spec.timeout + 1)
            for actuator, spec in zip(build_actuators(config), config.actuators, strict=True)]
        self.plan: Plan | None = None
        self.stopping = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self._decisions: deque[dict[str, Any]] = deque(maxlen=1000)
        self._last_reload: dict[str, Any] = {"result": None, "at": None, "error": None}
        self._heartbeats: dict[str, float] = {}
        self._ramp_series: set[str] = set()
        self._limit_series: set[str] = set()
        self._scheduler: Scheduler | None = None
        self.status = Listener("status", status_app(self, self.metrics), config.listen.status)
        self.overrides = Overrides()
        self.audit = AuditLog(config.audit_file)
        self.state_path = config.state_file
        self._saved: dict[str, Any] | None = None
        self._saving: asyncio.Future[None] | None = None
        self.signals: PrometheusSource | None = None
        if config.signals.prometheus is not None:
            self.signals = PrometheusSource(config.signals.prometheus, self._signal_clusters,
                                            SignalMetrics(self.metrics.registry))
        token = admin_token(config)
        self.admin: Listener | None = None
        if token is None:
            log.warning("admin API disabled: no token (set listen.admin_token_file or %s)",
                        TOKEN_ENV)
        else:
            self.admin = Listener("admin", admin_app(self, token, self.audit),
                                  config.listen.admin)

    # -- StatusSource ------------------------------------------------------------------------

    def current_plan(self) -> Plan | None:
        return self.plan

    def cluster_checks(self, cluster: str) -> list[dict[str, Any]]:
        return self.health.checks(cluster)

    def score_components(self, cluster: str) -> dict[str, float]:
        try:
            score = self.health.cluster(cluster).score
        except KeyError:  # a cluster removed by a reload, still in the plan for a tick
            return {}
        return {"success_ratio": round(score.success_ratio, 4),
                "latency_factor": round(score.latency_factor, 4)}

    def decisions(self, limit: int) -> list[dict[str, Any]]:
        return list(self._decisions)[:limit]

    def extra_status(self) -> dict[str, Any]:
        return {
            "actuators": [
                {"name": r.actuator.name, "applied_version": r.applied_version,
                 "planned_version": None if self.plan is None else self.plan.version,
                 "last_error": r.last_error, "last_drift": r.last_drift,
                 "last_drift_at": r.last_drift_at}
                for r in self.runners
            ],
            "config": {"path": str(self.config_path) if self.config_path else None,
                       "last_reload": self._last_reload},
            "overrides": self.overrides.as_dict(),
            "signals": self._signals_status(),
        }

    def _signals_status(self) -> dict[str, Any]:
        """Where the closed loop's signals come from and how fresh they are."""
        signals = self._live_signals()
        # Ages against the plan's clock: what the last tick saw, and no loop needed.
        now = self.plan.at if self.plan is not None else max(
            (s.measured_at for s in signals.clusters.values()), default=0.0)
        ages = [now - s.measured_at for s in signals.clusters.values()]
        shared = signals.shared
        return {"source": signals.source, "clusters": len(signals.clusters),
                "oldest_age_s": round(max(ages), 3) if ages else None,
                "shared_expected": signals.shared_expected,
                "shared": None if shared is None else {
                    "utilization": shared.utilization, "error_ratio": shared.error_ratio,
                    "age_s": round(now - shared.measured_at, 3)}}

    def alive(self) -> bool:
        now = asyncio.get_running_loop().time()
        return all(now - beat < STALL_AFTER for beat in self._heartbeats.values())

    def ready(self) -> bool:
        return self.health.all_have_verdicts()

    # -- AdminTarget -------------------------------------------------------------------------

    def has_cluster(self, name: str) -> bool:
        return any(c.name == name for c in self.config.clusters)

    def drain(self, name: str, reason: str, expires_in: float | None) -> dict[str, Any]:
        now = time.time()
        drain = Drain(reason, now, None if expires_in is None else now + expires_in)
        self.overrides.drains[name] = drain
        return {"reason": drain.reason, "until": drain.until}

    def undrain(self, name: str) -> bool:
        return self.overrides.drains.pop(name, None) is not None

    def freeze(self, reason: str) -> dict[str, Any]:
        self.overrides.freeze = Freeze(reason, time.time())
        return {"reason": reason}

    def unfreeze(self) -> bool:
        was, self.overrides.freeze = self.overrides.freeze, None
        return was is not None

    def reload_error(self) -> str | None:
        error: str | None = self._last_reload.get("error")
        return error

    # -- loops -------------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._scheduler = Scheduler(all_jobs(self.config.clusters, self.config.vantage),
                                    self.config.probing,
                                    self.metrics, self._record, PROBES)
        log.info("starting with %d clusters, %d probe jobs", len(self.config.clusters),
                 len(self._scheduler.jobs))
        self._restore(loop.time())
        for signum, handler in ((signal.SIGTERM, self.stop), (signal.SIGINT, self.stop),
                                (signal.SIGHUP, self.reload_requested.set)):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, handler)
        try:
            async with asyncio.TaskGroup() as tasks:
                # Actuators first: a restored plan is re-applied before the first probe.
                for runner in self.runners:
                    name = f"actuator {runner.actuator.name}"
                    tasks.create_task(self._supervised(name, runner.run), name=name)
                # Listeners are not restarted: a port that cannot be bound is a fatal error.
                tasks.create_task(self.status.serve(), name="status-listener")
                if self.admin is not None:
                    tasks.create_task(self.admin.serve(), name="admin-listener")
                scheduler = self._scheduler
                tasks.create_task(self._supervised("prober", scheduler.run), name="prober")
                tasks.create_task(self._supervised("planner", self._plan_loop), name="planner")
                if self.signals is not None:
                    # Its own task, session and budget: never on the probe path.
                    tasks.create_task(self._supervised("signals", self.signals.run),
                                      name="signals")
                tasks.create_task(self._supervised("loop-lag", self._lag_loop), name="loop-lag")
                tasks.create_task(self._supervised("reload", self._reload_loop), name="reload")
                tasks.create_task(self._supervised("config-watch", self._watch_loop),
                                  name="config-watch")
                await self.stopping.wait()
                raise _Stopping
        except* _Stopping:
            log.info("stopped; the data plane is left as it is")
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            if self._saving is not None and not self._saving.done():
                # A save under way finishes (or is given up on) before the loop goes.
                await asyncio.wait({self._saving}, timeout=PERSIST_WAIT)

    def _restore(self, loop_now: float) -> None:
        """Take up the plan and overrides the last run left, and re-apply that plan at once:
        after a crash the data plane may lag what was decided. Nothing moves until verdicts
        come in (unknown clusters keep their shares)."""
        saved = persist.load(self.state_path, persist.Clocks(loop_now, time.time()))
        self.overrides = saved.overrides
        self.overrides.forget({c.name for c in self.config.clusters})
        if saved.plan is None:
            return
        self.plan = saved.plan
        log.info("restored plan %d from %s; re-applying it", saved.plan.version, self.state_path)
        for runner in self.runners:
            runner.submit(saved.plan)

    async def _persist(self, plan: Plan | None) -> None:
        """Save the state before the plan is applied, waiting at most `PERSIST_WAIT`: a disk
        that hangs must not hold back an evacuation (the write goes on; the next tick saves
        again once it is done)."""
        loop = asyncio.get_running_loop()
        doc = persist.document(plan, self.overrides, persist.Clocks(loop.time(), time.time()))
        if doc == self._saved:
            return
        if self._saving is not None and not self._saving.done():
            self.metrics.errors.labels("persist").inc()
            log.warning("state save to %s still running; this tick's state is not saved",
                        self.state_path)
            return
        self._saving = asyncio.ensure_future(
            asyncio.to_thread(write_atomically, self.state_path, persist.encode(doc)))
        done, _ = await asyncio.wait({self._saving}, timeout=PERSIST_WAIT)
        if not done:
            self.metrics.errors.labels("persist").inc()
            log.error("saving state to %s takes over %gs; applying the plan meanwhile",
                      self.state_path, PERSIST_WAIT)
            return
        try:
            self._saving.result()
        except OSError as exc:
            # The plan still holds in memory; only a restart would lose it. Say so loudly.
            self.metrics.errors.labels("persist").inc()
            log.error("cannot save state to %s: %s", self.state_path, exc)
            return
        self._saved = doc

    def _record(self, job: Job, result: ProbeResult) -> None:
        self.health.record(job.key, result, asyncio.get_running_loop().time())

    async def _plan_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self._heartbeats["planner"] = now
            try:
                for name in self.overrides.expire(time.time()):
                    log.warning("drain of %s expired", name)
                freeze = self.overrides.freeze
                inputs = Inputs(self.health.views(now), self.config.demand_rps,
                                self.health.vantage_ok(), self.overrides.drain_reasons(),
                                None if freeze is None else freeze.reason,
                                self._live_signals(), applied=self._applied())
                step = controller.tick(self.config.policy, self.plan, inputs, now, make_plan)
                # Saved before it is applied: a restart never resumes from behind what the
                # data plane already carries.
                await self._persist(step.plan)
                self._publish(step, now)
            except Exception:
                # A planner bug must not take the daemon down: the last plan stays applied
                # (static stability) and the next tick tries again. /healthz shows no stall,
                # so the counter and the log are what tell.
                self.metrics.errors.labels("planner").inc()
                log.exception("planning failed; keeping the last plan")
            await asyncio.sleep(self.config.policy.tick)

    def _live_signals(self) -> Signals:
        """Prometheus's when it is configured; else what the probes themselves say."""
        if self.signals is not None:
            return self.signals.signals()
        return self.health.probe_signals()

    def _signal_clusters(self) -> list[str]:
        """Clusters to query, most important first: those recovering, then waiting, then
        held to a limit, then the rest (the query budget may not reach the last)."""
        if self.plan is None:
            return [c.name for c in self.config.clusters]
        order = {ClusterState.RECOVERING: 0, ClusterState.WAITING: 1}
        return [c.name for c in sorted(
            self.plan.clusters,
            key=lambda c: (order.get(c.state, 2 if c.guard is not None else 3), c.rank))]

    def _applied(self) -> bool:
        """Every actuator carries the current plan (what a ramp needs to count the time)."""
        if self.plan is None or self.plan.version < 1:
            return True
        version = self.plan.version
        return all(r.applied_version is not None and r.applied_version >= version
                   for r in self.runners)

    def _publish(self, step: controller.Step, now: float) -> None:
        previous, self.plan = self.plan, step.plan
        for decision in step.plan.decisions:
            self._log_decision(decision, now)
        self._export(step.plan, previous)
        if step.actuate:
            for runner in self.runners:
                runner.submit(step.plan)

    def _log_decision(self, d: Decision, now: float) -> None:
        entry = {"at": _wall(d.at, now), "version": d.version, "cluster": d.cluster,
                 "action": d.action, "from_share": round(d.from_share, 6),
                 "to_share": round(d.to_share, 6), "reason": d.reason, "cause": d.cause}
        self._decisions.appendleft(entry)
        # The free-text reason would make a series per failure detail; the cause is bounded.
        self.metrics.decisions.labels(d.cluster, d.action, d.cause).inc()
        log.info("decision %s %s %.3f -> %.3f: %s", d.action, d.cluster, d.from_share,
                 d.to_share, d.reason, extra={"decision": entry})

    def _export(self, new: Plan, previous: Plan | None) -> None:
        m = self.metrics
        names = {c.name for c in new.clusters}
        for old in () if previous is None else previous.clusters:
            if old.name not in names:
                for gauge in (m.cluster_share, m.cluster_target_share, m.cluster_health_score,
                              m.cluster_rank):
                    gauge.remove(old.name)
                for state in ClusterState:
                    m.cluster_state.remove(old.name, str(state))
        for c in new.clusters:
            m.cluster_share.labels(c.name).set(c.share)
            m.cluster_target_share.labels(c.name).set(c.target_share)
            m.cluster_health_score.labels(c.name).set(c.score)
            m.cluster_rank.labels(c.name).set(c.rank)
            for state in ClusterState:
                m.cluster_state.labels(c.name, str(state)).set(1 if c.state == state else 0)
        m.plan_version.set(new.version)
        self._export_ramps(new)
        m.recoveries_active.set(sum(c.state == ClusterState.RECOVERING for c in new.clusters))
        m.recoveries_queued.set(sum(c.state == ClusterState.WAITING for c in new.clusters))
        # Every freeze reason seen keeps its series, at 0 when not in force: alerts and
        # dashboards then see a 1 -> 0 edge instead of a series that vanishes.
        if previous is not None and previous.frozen_reason not in (None, new.frozen_reason):
            m.frozen.labels(previous.frozen_reason).set(0)
        if new.frozen_reason is not None:
            m.frozen.labels(new.frozen_reason).set(1 if new.frozen else 0)

    def _export_ramps(self, new: Plan) -> None:
        """Ramp levels and limits per cluster while they exist, ramps by their last move."""
        m = self.metrics
        actions = dict.fromkeys(RAMP_ACTIONS, 0)
        levels = {c.name: c.ramp.level for c in new.clusters
                  if c.ramp is not None and c.state == ClusterState.RECOVERING}
        limits = {c.name: c.guard.limit for c in new.clusters
                  if c.guard is not None and c.guard.limit is not None}
        for c in new.clusters:
            if c.name in levels and c.ramp is not None:
                actions[c.ramp.action] = actions.get(c.ramp.action, 0) + 1
        for gauge, values, shown in ((m.recovery_ramp_level, levels, self._ramp_series),
                                     (m.cluster_limit_share, limits, self._limit_series)):
            for name in shown - values.keys():
                gauge.remove(name)
            for name, value in values.items():
                gauge.labels(name).set(value)
            shown.clear()
            shown.update(values)
        for action, count in actions.items():
            m.recovery_ramps.labels(action).set(count)
        if new.slots is not None:
            m.recovery_slots.set(new.slots)

    async def _lag_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            self._heartbeats["loop-lag"] = start
            await asyncio.sleep(LAG_PERIOD)
            self.metrics.event_loop_lag.observe(max(0.0, loop.time() - start - LAG_PERIOD))

    async def _supervised(self, name: str, loop_fn: Callable[[], Awaitable[None]]) -> None:
        """Run a loop that should never end; if it crashes, log, count and restart it with
        backoff, so one bug does not take the daemon (and the data plane's care) down."""
        delay = RESTART_BACKOFF[0]
        while True:
            started = asyncio.get_running_loop().time()
            try:
                await loop_fn()
            except Exception:
                self.metrics.errors.labels(f"task:{name}").inc()
                log.exception("task %s crashed; restarting it in %.1fs", name, delay)
            else:
                self.metrics.errors.labels(f"task:{name}").inc()
                log.error("task %s returned; restarting it in %.1fs", name, delay)
            if asyncio.get_running_loop().time() - started > RESTART_BACKOFF[1]:
                delay = RESTART_BACKOFF[0]  # it ran well for a while: a fresh failure
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_BACKOFF[1])

    async def _watch_loop(self) -> None:
        """Reload when the config file's content changes. The path is read anew each time,
        so an editor's write-to-temp-then-rename is seen like an in-place write."""
        if self.config_path is None:
            await asyncio.Event().wait()  # nothing to watch; park until cancelled
            return
        last = _digest(self.config_path)
        while True:
            await asyncio.sleep(WATCH_EVERY)
            current = _digest(self.config_path)
            if current is not None and current != last:
                last = current
                log.info("config file %s changed; reloading", self.config_path)
                self.reload_requested.set()

    async def _reload_loop(self) -> None:
        while True:
            await self.reload_requested.wait()
            self.reload_requested.clear()
            try:
                self.reload()
            except Exception:
                # Anything reload() did not foresee keeps the running config, like a bad file.
                self.metrics.errors.labels("reload").inc()
                self.metrics.config_reloads.labels("error").inc()
                log.exception("config reload failed unexpectedly; keeping the running config")

    def reload(self) -> bool:
        """Re-read the config; a bad one keeps the running one and is reported, never applied."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if self.config_path is None:
            return False
        try:
            new = load(self.config_path)
            build_actuators(new)
        except (ConfigError, UnsupportedActuator) as exc:
            self.metrics.config_reloads.labels("error").inc()
            self._last_reload = {"result": "error", "at": now, "error": str(exc)}
            log.error("config reload failed, keeping the running config:\n%s", exc)
            return False
        if new.actuators != self.config.actuators or new.listen != self.config.listen \
                or new.signals != self.config.signals:
            log.warning("listener, actuator and signals changes take effect at the next restart")
        self.config = new
        self.health.update_config(new)
        self.overrides.forget({c.name for c in new.clusters})
        if self._scheduler is not None:
            self._scheduler.update(all_jobs(new.clusters, new.vantage), new.probing)
        self.metrics.config_reloads.labels("ok").inc()
        self._last_reload = {"result": "ok", "at": now, "error": None}
        log.info("config reloaded from %s", self.config_path)
        return True


class _Stopping(Exception):
    """Raised inside the TaskGroup to cancel every task once a stop is requested."""
