"""Planner invariants over random fleets and random sequences of ticks."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from failover.config import Policy
from failover.planner import EPSILON, Plan, plan
from failover.planner.model import ClusterState, ClusterView

NAMES = ["a", "b", "c", "d", "e"]


@st.composite
def fleets(draw: st.DrawFn) -> list[ClusterView]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    return [ClusterView(name, draw(st.sampled_from(list(ClusterState))),
                        draw(st.floats(0, 1)), draw(st.sampled_from([0, 1, 10, 33.3, 50])),
                        "reason") for name in names]


policies = st.builds(Policy, min_healthy_fraction=st.sampled_from([0.0, 0.3, 0.5, 1.0]))


def check_invariants(new: Plan, previous: Plan | None) -> None:
    shares = new.shares
    assert all(0.0 <= s <= 1.0 + EPSILON for s in shares.values())
    assert sorted(c.rank for c in new.clusters) == list(range(1, len(new.clusters) + 1))
    if not new.frozen:
        assert math.isclose(math.fsum(shares.values()), 1.0, abs_tol=1e-9)
        for c in new.clusters:
            if not c.state.passing and c.state != ClusterState.UNKNOWN:
                assert c.share == 0.0
    if previous is None or previous.version == 0:
        assert new.version == (0 if new.frozen else 1)
        return
    moved = any(abs(previous.share(n) - new.share(n)) > EPSILON
                for n in {*previous.shares, *shares})
    assert new.version == previous.version + moved
    if new.frozen:
        assert all(s == previous.share(n) for n, s in shares.items())
    if not new.frozen:
        for c in new.clusters:
            if c.state == ClusterState.UNKNOWN:
                assert c.share == previous.share(c.name)
    decided = {d.cluster for d in new.decisions if d.cluster != "*"}
    changed = {n for n in {*previous.shares, *shares}
               if abs(previous.share(n) - new.share(n)) > EPSILON}
    assert decided == changed


@settings(max_examples=300)
@given(st.lists(fleets(), min_size=1, max_size=6), policies)
def test_invariants_hold_over_ticks(ticks: list[list[ClusterView]], policy: Policy) -> None:
    """Shares stay in [0, 1] and sum to 1 unless frozen; failing clusters get 0; unknown keep
    their share; versions grow by one exactly when a share moves; every move is a decision."""
    previous: Plan | None = None
    for now, views in enumerate(ticks):
        new = plan(views, policy, previous, float(now))
        check_invariants(new, previous)
        previous = new


@given(st.lists(fleets(), min_size=1, max_size=4), policies, st.randoms())
def test_same_inputs_same_plan(ticks: list[list[ClusterView]], policy: Policy,
                               rng: random.Random) -> None:
    """The plan depends on the inputs alone, not on the order of the views."""
    previous: Plan | None = None
    for now, views in enumerate(ticks):
        shuffled = list(views)
        rng.shuffle(shuffled)
        new = plan(views, policy, previous, float(now))
        assert plan(shuffled, policy, previous, float(now)) == new
        assert plan(views, policy, previous, float(now)) == new
        previous = new
