"""``requests.floor``: no policy, however it moves traffic, errs fewer requests than it, on
either load model; and an oracle-like policy comes close to it."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.config.models import Policy
from failover.model import Signals
from failover.planner import ClusterPlan, ClusterView, Plan
from failover.simulate import simulate
from failover.simulate.engine import Simulation
from tests.simulate.fixtures import scenario, small_config

SCENARIO = """\
name: random
duration: 6m
demand: [{{at: 0s, rps: {low}}}, {{at: 3m, rps: {high}}}]
load: {{model: {model}, cold_factor: {cold}, warmup: {warmup}s, reject_cost: {cost},
        retries: {{max_attempts: {attempts}, budget: {budget}}}{shared}}}
events:
  - {{at: {down}s, cluster: a, dns: timeout}}
  - {{at: {up}s, cluster: a, dns: ok}}
  - {{at: {down2}s, cluster: b, http: down}}
  - {{at: {up2}s, cluster: b, http: ok}}
"""


def random_policy(rng: random.Random):  # type: ignore[no-untyped-def]
    """Shares drawn anew each tick, some left unplaced: every kind of move, good and bad."""
    def planner(views: Sequence[ClusterView], policy: Policy, previous: Plan | None,
                now: float, *, demand_rps: float | None = None, vantage_ok: bool = True,
                frozen_by: str | None = None, signals: Signals | None = None,
                applied: bool = True, first_version: int = 1,
                evidence: bool = False) -> Plan:
        raw = {v.name: rng.choice([0.0, rng.random()]) for v in views}
        total = sum(raw.values()) / rng.uniform(0.7, 1.0) or 1.0
        clusters = tuple(ClusterPlan(v.name, raw[v.name] / total, raw[v.name] / total, v.state,
                                     i + 1, 1.0, v.base_weight, "random")
                         for i, v in enumerate(views))
        return Plan((previous.version + 1) if previous else 1, now, clusters)
    return planner


@settings(max_examples=40, deadline=None)
@given(st.fixed_dictionaries({
    "model": st.sampled_from(["v1", "v2"]), "low": st.sampled_from([500, 1500, 2500]),
    "high": st.sampled_from([800, 2000, 3500]), "cold": st.sampled_from([0.2, 0.5, 1.0]),
    "warmup": st.sampled_from([0, 30, 300]), "cost": st.sampled_from([0.0, 0.2, 0.5]),
    "attempts": st.integers(1, 4), "budget": st.sampled_from(["null", "0.1", "1"]),
    "shared": st.sampled_from(["", ", shared: {capacity_rps: 50}",
                               ", shared: {capacity_rps: 400, clusters: [a, c]}"]),
    "down": st.integers(5, 100), "length": st.integers(1, 120),
    "down2": st.integers(5, 200), "length2": st.integers(1, 120)}), st.integers(0, 10**6))
def test_no_policy_beats_the_floor(params: dict[str, object], seed: int) -> None:
    """Random shares every tick, random scenarios: errored requests never fall below the
    floor."""
    fields = dict(params, up=int(params["down"]) + int(params["length"]),  # type: ignore[call-overload]
                  up2=int(params["down2"]) + int(params["length2"]))  # type: ignore[call-overload]
    if fields["model"] == "v1":
        fields["shared"] = ""
    text = SCENARIO.format(**fields)
    run = Simulation(scenario(text), small_config(), random_policy(random.Random(seed)),
                     policy_name="random", seed=seed).run()
    assert run.requests.floor <= run.requests.errored + 1e-6 * run.requests.total, text


def test_floor_is_tight_where_the_oracle_needs_no_foresight() -> None:
    """With no outage and demand within capacity the floor is 0, as are the planner's
    errors; with demand above the fleet's capacity it is what exceeds that capacity (500 rps
    over 3,000 for 2 minutes), but for the requests still retrying when the run ends."""
    calm = simulate(scenario("""\
        name: calm
        duration: 2m
        events: [{at: 1m, cluster: c, dns: ok}]
        """), small_config())
    assert calm.requests.floor == 0
    assert calm.requests.errored == 0
    tight = simulate(scenario("""\
        name: too much
        duration: 2m
        demand: [{at: 0s, rps: 3500}]
        events: [{at: 1m, cluster: c, dns: ok}]
        """), small_config())
    assert tight.requests.floor == pytest.approx(500 * 120, rel=0.03)
    assert tight.requests.floor < 500 * 120
