"""What a new plan shows the world: the decision log and the plan's metrics."""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from failover.api.history import ShareHistory
from failover.metrics import RAMP_ACTIONS, Metrics
from failover.model import ClusterPlan, ClusterState, Decision, Plan

log = logging.getLogger("failover.daemon")

KEPT_DECISIONS = 1000


def _wall(at: float, loop_now: float) -> str:
    stamp = datetime.fromtimestamp(time.time() - (loop_now - at), UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ClusterSeries:
    """One cluster's plan gauges, looked up once and set only when their value changes: at
    a thousand clusters, setting all of them every tick took tens of milliseconds."""

    __slots__ = ("_last", "_rank", "_score", "_share", "_state", "_states", "_target")

    def __init__(self, metrics: Metrics, name: str) -> None:
        self._share = metrics.cluster_share.labels(name)
        self._target = metrics.cluster_target_share.labels(name)
        self._score = metrics.cluster_health_score.labels(name)
        self._rank = metrics.cluster_rank.labels(name)
        self._states = {state: metrics.cluster_state.labels(name, str(state))
                        for state in ClusterState}
        self._last: tuple[float, float, float, int] | None = None
        self._state: ClusterState | None = None

    def show(self, c: ClusterPlan) -> None:
        values = (c.share, c.target_share, c.score, c.rank)
        if values != self._last:
            self._share.set(c.share)
            self._target.set(c.target_share)
            self._score.set(c.score)
            self._rank.set(c.rank)
            self._last = values
        if c.state != self._state:
            for state, gauge in self._states.items():
                gauge.set(1 if c.state == state else 0)
            self._state = c.state


class Publisher:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._decisions: deque[dict[str, Any]] = deque(maxlen=KEPT_DECISIONS)
        self._ramp_series: set[str] = set()
        self._limit_series: set[str] = set()
        self._shown: dict[str, ClusterSeries] = {}
        self.history = ShareHistory()

    def decisions(self, limit: int) -> list[dict[str, Any]]:
        return list(self._decisions)[:limit]

    def publish(self, new: Plan, previous: Plan | None, now: float) -> None:
        for decision in new.decisions:
            self._log_decision(decision, now)
        self._export(new, previous)
        self.history.record(new)

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
                self._shown.pop(old.name, None)
                for gauge in (m.cluster_share, m.cluster_target_share, m.cluster_health_score,
                              m.cluster_rank):
                    gauge.remove(old.name)
                for state in ClusterState:
                    m.cluster_state.remove(old.name, str(state))
        for c in new.clusters:
            shown = self._shown.get(c.name)
            if shown is None:
                shown = self._shown[c.name] = ClusterSeries(m, c.name)
            shown.show(c)
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
