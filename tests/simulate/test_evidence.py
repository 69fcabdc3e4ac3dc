"""Both cases of a fleet-wide outage (six of eight clusters down): without evidence the
planner fails static and keeps sending traffic to down clusters; with it (vantage checks or
a quorum of vantages proving our view) it moves traffic to the survivors within their
capacity, and errs fewer requests than snap-back in both.

    failover simulate scenarios/fleet-wide-outage.yaml -c scenarios/fleet.yaml \
        --compare naive [--evidence]
"""

from __future__ import annotations

from failover.config import load
from failover.simulate import load_scenario, simulate
from tests.simulate.fixtures import FLEET, SCENARIOS


def test_evidence_turns_a_fleet_wide_freeze_into_an_evacuation() -> None:
    config = load(FLEET)
    doubted = load_scenario(SCENARIOS / "fleet-wide-outage.yaml", config)
    proven = doubted.model_copy(update={"evidence": True})
    without, with_ = simulate(doubted, config, "planner"), simulate(proven, config, "planner")
    naive = simulate(doubted, config, "naive")
    assert with_.requests.down < without.requests.down / 10
    assert with_.requests.avoidable < without.requests.avoidable / 2
    assert with_.requests.avoidable < naive.requests.avoidable / 4
    assert without.requests.avoidable < naive.requests.avoidable
    planned = max(p.planned for p in with_.peaks.values() if p.planned is not None)
    assert planned <= 1 + 1e-6  # within capacity, shedding the rest
