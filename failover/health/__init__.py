"""Health: probe results through rise/fall hysteresis to cluster states, scores and reasons.

Pure: no I/O, no clock reads, no asyncio; time comes in as ``now``.
"""

from failover.health.check import CheckRecord, CheckStatus
from failover.health.cluster import ALL_PASSING, DEGRADED_BELOW, ClusterHealth, assess
from failover.health.hysteresis import Hysteresis
from failover.health.score import WINDOW, Score, check_score, cluster_score, latency_factor
from failover.health.tracker import HealthTracker
from failover.model import FailureClass, ProbeResult

__all__ = [
    "ALL_PASSING",
    "DEGRADED_BELOW",
    "WINDOW",
    "CheckRecord",
    "CheckStatus",
    "ClusterHealth",
    "FailureClass",
    "HealthTracker",
    "Hysteresis",
    "ProbeResult",
    "Score",
    "assess",
    "check_score",
    "cluster_score",
    "latency_factor",
]
