"""The recovery goal on the shipped incident replays: on December 11 and scenarios of its kind
(a fleet-wide outage, then a mass cold return), the planner's avoidable errors (errored
minus the floor) are at most a fifth of naive snap-back's and half of the timed ramp's; it
never plans a cluster past its effective capacity; and every cluster ends at its base share.

    failover simulate scenarios/december-11.yaml -c scenarios/fleet.yaml --compare naive,timed
"""

from __future__ import annotations

import pytest

from failover.config import load
from failover.simulate import load_scenario, simulate
from failover.simulate.result import Result
from tests.simulate.fixtures import FLEET, SCENARIOS

GOAL_NAIVE, GOAL_TIMED = 0.2, 0.5


def final_shares_are_base(result: Result, weights: dict[str, float]) -> bool:
    total = sum(weights.values())
    return all(series.share[-1] == pytest.approx(weights[name] / total, abs=1e-6)
               for name, series in result.clusters.items())


@pytest.mark.parametrize("name", ["december-11.yaml", "december-11-surge.yaml",
                                  "regional-outage.yaml"])
def test_planner_beats_snap_back_and_the_timed_ramp(name: str) -> None:
    """Avoidable errors at most 0.2 x naive's and 0.5 x timed's; planned load never above
    effective capacity; base shares at the end."""
    config = load(FLEET)
    scenario = load_scenario(SCENARIOS / name, config)
    runs = {policy: simulate(scenario, config, policy) for policy in ("planner", "naive",
                                                                      "timed")}
    avoidable = {policy: run.requests.avoidable for policy, run in runs.items()}
    planner = runs["planner"]
    assert avoidable["planner"] <= GOAL_NAIVE * avoidable["naive"], avoidable
    assert avoidable["planner"] <= GOAL_TIMED * avoidable["timed"], avoidable
    assert all(run.requests.floor == planner.requests.floor for run in runs.values())
    planned = max(p.planned for p in planner.peaks.values() if p.planned is not None)
    assert planned <= 1 + 1e-6
    assert final_shares_are_base(planner, {c.name: c.weight for c in config.clusters})
