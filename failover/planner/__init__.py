"""Planner: pure, deterministic functions from cluster views to a traffic plan.

No I/O, no clock reads, no asyncio; time comes in as ``now``.
"""

from failover.model import ClusterPlan, ClusterState, ClusterView, Decision, Plan
from failover.planner.decisions import ALL_CLUSTERS, CAUSES
from failover.planner.guard import AWAITING_VERDICTS, FAIL_STATIC, VANTAGE
from failover.planner.plan import plan
from failover.planner.rank import ranks
from failover.planner.shares import EPSILON

__all__ = [
    "ALL_CLUSTERS",
    "AWAITING_VERDICTS",
    "CAUSES",
    "EPSILON",
    "FAIL_STATIC",
    "VANTAGE",
    "ClusterPlan",
    "ClusterState",
    "ClusterView",
    "Decision",
    "Plan",
    "plan",
    "ranks",
]
