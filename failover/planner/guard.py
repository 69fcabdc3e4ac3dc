"""Static stability: when the planner must not move traffic, and why."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Final

from failover.model import ClusterState, ClusterView
from failover.planner.shares import below

AWAITING_VERDICTS: Final = "awaiting_verdicts"
FAIL_STATIC: Final = "fail_static"
VANTAGE: Final = "vantage"
OPERATOR_FREEZE: Final = "operator"
STALE: Final = "stale"
FREEZES = (FAIL_STATIC, VANTAGE, OPERATOR_FREEZE, STALE)
"""Freezes that are alarms, with a decision when they start and end (awaiting is not)."""


@dataclass(frozen=True, slots=True)
class Tally:
    """Base weight by what health knows; drained clusters are left out of ``eligible``, so an
    operator draining most of the fleet does not read as a fleet-wide failure."""

    passing: float
    unknown: float
    eligible: float
    unknown_clusters: int
    stale: float = 0.0
    """Of ``unknown``, the weight whose checks stopped reporting."""

    @staticmethod
    def of(views: Sequence[ClusterView]) -> Tally:
        # Pass by pass at C speed: the sums are exact (fsum), so grouping changes nothing.
        weights = [v.base_weight for v in views]
        states = [v.state for v in views]
        unknown = list(map(ClusterState.UNKNOWN.__eq__, states))
        return Tally(
            passing=math.fsum(compress(weights, map(_PASSING.__contains__, states))),
            unknown=math.fsum(compress(weights, unknown)),
            eligible=math.fsum(compress(weights, map(ClusterState.DRAINED.__ne__, states))),
            unknown_clusters=sum(unknown),
            stale=math.fsum(compress(weights, [v.stale for v in views])),
        )


_PASSING = frozenset({ClusterState.HEALTHY, ClusterState.DEGRADED})


def freeze_reason(tally: Tally, min_fraction: float, *, started: bool,
                  vantage_ok: bool = True, operator: bool = False,
                  evidence: bool = False) -> str | None:
    """None to plan normally, else why the shares stay as they are.

    - ``operator`` when an operator froze automation: their word comes first.
    - ``vantage`` when the vantage checks fail: the orchestrator's own network view is
      broken, so what it sees of the clusters proves nothing.
    - Before the first actuated plan (``started`` False), wait until every cluster has a
      verdict: the data plane's state is unknown to us, and acting on half the verdicts would
      evacuate clusters merely slower to answer. Health bounds the wait (a check without a
      verdict after rise + fall results counts as failing).
    - ``fail_static`` when, even if every unknown cluster turned out passing, less than
      ``min_fraction`` of the eligible base weight would pass, or nothing can take traffic:
      mass failure is more likely a probe-side fault than a real one, so keep the last plan.
      Unless our view is proven (``evidence``: a quorum of vantages agrees, or our own
      vantage checks pass): then a low passing fraction is the fact of a fleet-wide outage,
      acted on, and only nothing passing at all keeps the plan.
    - ``stale`` when the passing weight is too low because checks stopped reporting (a
      stalled prober, a loop starved of CPU): what was last seen is no evidence now, and the
      silence itself is an alarm.
    - ``awaiting_verdicts`` when the passing weight is too low only because verdicts are still
      missing (e.g. after a reload added checks): no evidence of failure, so no alarm, no change.
    """
    if operator:
        return OPERATOR_FREEZE
    if not vantage_ok:
        return VANTAGE
    if not started and tally.unknown_clusters:
        return AWAITING_VERDICTS
    possible = tally.passing + tally.unknown
    proven = evidence and tally.passing > 0  # a fact to act on: survivors to plan on
    if possible <= 0 or (below(possible, min_fraction, tally.eligible) and not proven):
        return FAIL_STATIC
    low = tally.passing <= 0 or below(tally.passing, min_fraction, tally.eligible)
    if not low or (proven and tally.unknown <= 0):
        return None
    return STALE if tally.stale > 0 else AWAITING_VERDICTS
