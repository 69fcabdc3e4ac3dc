"""Doubt decided by evidence, not by a fraction: with our view proven (passing vantage checks,
or a quorum of vantages that agrees), a fleet-wide failure is acted on; without, it fails
static as before."""

from __future__ import annotations

from failover.config import Policy
from failover.model import ClusterView
from failover.planner import AWAITING_VERDICTS, FAIL_STATIC, Plan, plan
from tests.planner.views import UNK, H, U, view

POLICY = Policy(min_healthy_fraction=0.3)
NAMES = [f"c{i}" for i in range(10)]


def started() -> Plan:
    return plan([view(n, H, 10) for n in NAMES], POLICY, None, 1.0)


def eight_down() -> list[ClusterView]:
    return [view(n, H if n in ("c8", "c9") else U, 10) for n in NAMES]


def test_without_evidence_a_fleet_wide_failure_fails_static() -> None:
    p = plan(eight_down(), POLICY, started(), 2.0)
    assert (p.frozen, p.frozen_reason) == (True, FAIL_STATIC)
    assert p.share("c0") > 0  # the shares stay where they were


def test_with_evidence_it_is_a_fact_acted_on() -> None:
    p = plan(eight_down(), POLICY, started(), 2.0, evidence=True)
    assert not p.frozen
    assert all(p.share(n) == 0 for n in NAMES[:8])
    assert p.share("c8") + p.share("c9") > 0.2  # moving, phased by max_shift_per_tick


def test_with_evidence_nothing_passing_still_keeps_the_plan() -> None:
    """Nowhere to send traffic: the last plan beats an empty one."""
    p = plan([view(n, U, 10) for n in NAMES], POLICY, started(), 2.0, evidence=True)
    assert (p.frozen, p.frozen_reason) == (True, FAIL_STATIC)


def test_with_evidence_missing_verdicts_are_still_awaited() -> None:
    """Proven vantages say nothing of clusters nobody has a verdict on yet."""
    views = [view(n, H if n in ("c8", "c9") else UNK, 10) for n in NAMES]
    p = plan(views, POLICY, started(), 2.0, evidence=True)
    assert (p.frozen, p.frozen_reason) == (True, AWAITING_VERDICTS)
