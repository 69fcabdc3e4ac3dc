"""A cluster's state, score and reason from its checks' records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from failover.health.check import CheckRecord
from failover.health.score import Score, cluster_score
from failover.model import ClusterState

DEGRADED_BELOW = 0.75
"""A passing cluster scoring under this is degraded: recent failures or slow answers."""
REASONS_SHOWN = 2
"""Failing checks named in a reason; the rest are counted, so the text stays one line."""
ALL_PASSING = "all checks passing"


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    name: str
    state: ClusterState
    score: Score
    reason: str
    stale: bool = False


def assess(name: str, checks: Sequence[CheckRecord], rise: int, timeout: float,
           now: float | None = None, stale_after: float = math.inf) -> ClusterHealth:
    """Unhealthy if any check fails (even while others have no verdict: one failure is enough
    evidence), else unknown until every check has a verdict, else healthy or degraded by score.

    With ``now``, a check whose last result is older than ``stale_after`` has no verdict any
    more: a prober that stalled must not leave the planner acting on what it last saw.
    """
    stale = [] if now is None else [
        c for c in checks if c.last_at is not None and now - c.last_at > stale_after]
    fresh = [c for c in checks if c not in stale] if stale else checks
    scores = [check.score(timeout) for check in fresh if check.recent]
    score = cluster_score(scores)
    failing = [c for c in fresh if c.hysteresis.passing is False]
    if failing:
        reasons = [c.failing_reason(rise) for c in failing[:REASONS_SHOWN]]
        more = len(failing) - REASONS_SHOWN
        reason = "; ".join(reasons) + (f" (+{more} more failing)" if more > 0 else "")
        return ClusterHealth(name, ClusterState.UNHEALTHY, score, reason)
    if stale and now is not None:
        oldest = min(stale, key=lambda c: c.last_at or 0.0)
        others = f" (+{len(stale) - 1} more stale)" if len(stale) > 1 else ""
        reason = (f"stale: {oldest.job.label} last reported {now - (oldest.last_at or now):.0f}s"
                  f" ago (bound {stale_after:.0f}s){others}")
        return ClusterHealth(name, ClusterState.UNKNOWN, score, reason, stale=True)
    waiting = sum(c.hysteresis.passing is None for c in checks)
    if waiting or not checks:
        reason = f"no verdict yet from {waiting} of {len(checks)} checks"
        return ClusterHealth(name, ClusterState.UNKNOWN, score, reason)
    if score.value < DEGRADED_BELOW:
        return ClusterHealth(name, ClusterState.DEGRADED, score, _weakest(checks, score, timeout))
    return ClusterHealth(name, ClusterState.HEALTHY, score, ALL_PASSING)


def _weakest(checks: Sequence[CheckRecord], score: Score, timeout: float) -> str:
    """Name the check that pulls the score down, by whichever component is lower."""
    with_data = [c for c in checks if c.recent]
    if score.success_ratio <= score.latency_factor:
        worst = min(with_data, key=lambda c: c.score(timeout).success_ratio)
        passed = sum(ok for ok, _ in worst.recent)
        last = f", last {worst.last_failure}" if worst.last_failure else ""
        return f"{worst.job.label} {passed}/{len(worst.recent)} recent probes passed{last}"
    slowest = min(with_data, key=lambda c: c.score(timeout).latency_factor)
    latencies = [latency for ok, latency in slowest.recent if ok]
    mean_ms = sum(latencies) / len(latencies) * 1000
    return f"{slowest.job.label} slow: {mean_ms:.0f}ms mean, timeout {timeout * 1000:.0f}ms"
