"""What the status and admin listeners see of the daemon, and what an operator may change:
views of the parts, nothing that plans."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from failover.actuators.runner import ActuatorRunner
from failover.api.history import Series
from failover.config import Config
from failover.coordination.replica import Replica
from failover.daemon.overrides import Drain, Freeze, Overrides
from failover.daemon.publish import Publisher
from failover.daemon.reload import Reloader
from failover.daemon.shared_overrides import SharedOverrides
from failover.daemon.state import StateKeeper
from failover.daemon.supervisor import Heartbeats
from failover.health import HealthTracker
from failover.metrics import Metrics
from failover.model import Plan, Signals
from failover.registry import RegistrationRefused


class Surface:
    """The daemon as `StatusSource` and `AdminTarget`. An operator's change is saved before
    it is answered (`persist`), not at the next tick."""

    def __init__(self, *, config: Callable[[], Config], config_path: Path | None,
                 plan: Callable[[], Plan | None], signals: Callable[[], Signals],
                 health: HealthTracker, runners: Sequence[ActuatorRunner],
                 overrides: Overrides, publisher: Publisher, heartbeats: Heartbeats,
                 metrics: Metrics, state: StateKeeper, reloader: Reloader,
                 replica: Replica | None = None, shared: SharedOverrides | None = None,
                 register: Callable[[str, Any], bool] | None = None,
                 deregister: Callable[[str], None] | None = None,
                 save_registered: Callable[[], Awaitable[bool]] | None = None,
                 sources: Callable[[], dict[str, Any]] | None = None) -> None:
        self._config = config
        self._config_path = config_path
        self._plan = plan
        self._signals = signals
        self._health = health
        self._runners = runners
        self.overrides = overrides
        self._publisher = publisher
        self._heartbeats = heartbeats
        self._state = state
        self._reloader = reloader
        self._metrics = metrics
        self._replica = replica
        self._shared = shared
        self._register = register
        self._deregister = deregister
        self._sources = sources
        self._save_registered = save_registered

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    # -- StatusSource ------------------------------------------------------------------------

    def current_plan(self) -> Plan | None:
        return self._plan()

    def cluster_checks(self, cluster: str) -> list[dict[str, Any]]:
        return self._health.checks(cluster)

    def cluster_vantages(self, cluster: str) -> dict[str, str] | None:
        return None if self._replica is None else self._replica.cluster_vantages(cluster)

    def score_components(self, cluster: str) -> dict[str, float]:
        try:
            score = self._health.score(cluster)
        except KeyError:  # a cluster removed by a reload, still in the plan for a tick
            return {}
        return {"success_ratio": round(score.success_ratio, 4),
                "latency_factor": round(score.latency_factor, 4)}

    def share_series(self, cluster: str) -> Series | None:
        return self._publisher.history.series(cluster)

    def decisions(self, limit: int) -> list[dict[str, Any]]:
        return self._publisher.decisions(limit)

    def extra_status(self) -> dict[str, Any]:
        plan = self._plan()
        return {
            "actuators": [
                {"name": r.actuator.name, "applied_version": r.applied_version,
                 "planned_version": None if plan is None else plan.version,
                 "last_error": r.last_error, "last_drift": r.last_drift,
                 "last_drift_at": r.last_drift_at}
                for r in self._runners
            ],
            "config": {"path": str(self._config_path) if self._config_path else None,
                       "last_reload": self._reloader.last},
            "overrides": self.overrides.as_dict(),
            "sources": {} if self._sources is None else self._sources(),
            "signals": self._signals_status(),
            "liveness": {"stalled": self._heartbeats.stalled(),
                         "state_save": self._state.failing},
            **self._coordination(),
        }

    def _coordination(self) -> dict[str, Any]:
        """CONTRACT v2's role, leader and vantages; standalone without etcd."""
        if self._replica is None:
            return {"role": "standalone", "leader": None, "vantages": []}
        return self._replica.status()

    def _signals_status(self) -> dict[str, Any]:
        """Where the closed loop's signals come from and how fresh they are."""
        signals, plan = self._signals(), self._plan()
        # Ages against the plan's clock: what the last tick saw, and no loop needed.
        now = plan.at if plan is not None else max(
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
        """Every essential loop made progress within its bound, and the state is saved."""
        return not self._heartbeats.stalled() and self._state.failing is None

    def ready(self) -> bool:
        return self._health.all_have_verdicts()

    # -- AdminTarget -------------------------------------------------------------------------

    def has_cluster(self, name: str) -> bool:
        return self._config().cluster(name) is not None

    def base_weights(self) -> dict[str, float]:
        return {c.name: c.weight for c in self._config().clusters}

    def drained_clusters(self) -> set[str]:
        now = time.time()  # drains expire on wall time, as drain() sets them
        return {name for name, d in self.overrides.drains.items()
                if d.until is None or d.until > now}

    def drain(self, name: str, reason: str, expires_in: float | None) -> dict[str, Any]:
        now = time.time()
        drain = Drain(reason, now, None if expires_in is None else now + expires_in)
        self.overrides.drains[name] = drain
        if self._shared is not None:
            self._shared.drained(name, drain)
        return {"reason": drain.reason, "until": drain.until}

    def undrain(self, name: str) -> bool:
        if self._shared is not None:
            self._shared.drained(name, None)
        return self.overrides.drains.pop(name, None) is not None

    def freeze(self, reason: str) -> dict[str, Any]:
        self.overrides.freeze = Freeze(reason, time.time())
        if self._shared is not None:
            self._shared.frozen(self.overrides.freeze)
        return {"reason": reason}

    def unfreeze(self) -> bool:
        was, self.overrides.freeze = self.overrides.freeze, None
        if self._shared is not None:
            self._shared.frozen(None)
        return was is not None

    def register(self, name: str, body: Any) -> bool:
        if self._register is None:
            raise RegistrationRefused(409, "this daemon takes no registrations")
        return self._register(name, body)

    def deregister(self, name: str) -> None:
        if self._deregister is None:
            raise RegistrationRefused(404, f"no registered cluster named {name!r}")
        self._deregister(name)

    async def save_registered(self) -> bool:
        return self._save_registered is not None and await self._save_registered()

    async def persist(self) -> bool:
        """Saved where it counts: etcd in the distributed mode (then state.json), else
        state.json."""
        shared = self._shared is None or await self._shared.flush()
        await self._state.save(self._plan(), self.overrides)
        return shared and self._state.failing is None

    async def reload(self) -> bool:
        return await self._reloader.reload_off_loop()

    def reload_error(self) -> str | None:
        return self._reloader.error()
