"""The planner's fast paths against the plain algorithms they stand in for, to the last bit.

Each fast path (water-filling in columns, ranking by stable passes, frozen values built
through a twin, a cluster's plan reused from the previous tick) must give exactly what the
plain version gives: the same values, the same types, zeros of the same sign. Results are
compared by ``repr``, which tells 0.0 from -0.0 and 1 from 1.0 where ``==`` does not.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.config import Policy
from failover.config.models import Recovery
from failover.model import ClusterPlan, ClusterState, ClusterView, Ramp, Sample, Signals
from failover.planner import plan
from failover.planner.build import Replacer

# The walk as first written, kept in fill.py for parts not in name order: the oracle here.
from failover.planner.fill import Parts, fill, plain_fill
from failover.planner.lifecycle import Life, replace
from failover.planner.rank import rank_key, rank_order
from failover.planner.shift import moved

S = ClusterState


NAMES = [f"c{i:02d}" for i in range(40)]
weights_ = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, 3.0, 7.0, 1e-12, 1e6, 1e16, 1, 3])
bounds_ = st.one_of(st.sampled_from([0.0, -0.0, 0, math.inf, 1e-320, 0.5, 1.0, 1]),
                    st.floats(min_value=-0.1, max_value=2.0, allow_nan=False))
totals = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 0.3, 1e-9, -1.0, 1, 0]),
                   st.floats(min_value=0.0, max_value=3.0, allow_nan=False))


@st.composite
def splits(draw: st.DrawFn) -> tuple[dict[str, float], dict[str, float], float]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=0, max_size=40, unique=True))
    weights = {name: draw(weights_) for name in names}
    bounds = {name: draw(bounds_) for name in names if draw(st.booleans())}
    # Many parts bound at exactly 0 (room already taken) is the case the fast walk is for.
    if names and draw(st.booleans()):
        bounds |= dict.fromkeys(names[: draw(st.integers(0, len(names)))], 0.0)
    return weights, bounds, draw(totals)


@settings(max_examples=400, deadline=None)
@given(splits())
def test_fill_is_the_plain_walk(split: tuple[dict[str, float], dict[str, float], float]) -> None:
    weights, bounds, total = split
    assert repr(fill(weights, bounds, total)) == repr(plain_fill(weights, bounds, total))


@settings(max_examples=600, deadline=None)
@given(splits())
def test_parts_fill_is_the_plain_walk(
        split: tuple[dict[str, float], dict[str, float], float]) -> None:
    """In name order, as the planner fills, NaN bounds included."""
    weights, bounds, total = split
    names = sorted(weights)
    ordered = {name: weights[name] for name in names}
    nan = {name: math.nan for name in names[::3]} if names and len(names) % 2 else {}
    bounds = bounds | nan
    shares, unplaced = Parts(names, list(ordered.values())).fill(
        [bounds.get(name, math.inf) for name in names], total)
    assert repr((dict(zip(names, shares, strict=True)), unplaced)) == \
        repr(plain_fill(ordered, bounds, total))


@settings(max_examples=200, deadline=None)
@given(splits(), st.randoms(use_true_random=False))
def test_fill_whatever_the_order(split: tuple[dict[str, float], dict[str, float], float],
                                 rng: random.Random) -> None:
    weights, bounds, total = split
    names = list(weights)
    rng.shuffle(names)
    shuffled = {name: weights[name] for name in names}
    shares, unplaced = fill(shuffled, bounds, total)
    assert list(shares) == names  # the mapping's own order
    assert repr((dict(sorted(shares.items())), unplaced)) == \
        repr((dict(sorted(plain_fill(weights, bounds, total)[0].items())),
              plain_fill(weights, bounds, total)[1]))


def test_parts_fill_again_and_again() -> None:
    """A Parts is filled several times a tick, each fill as if it were the only one."""
    weights = {name: 1.0 + i % 7 for i, name in enumerate(NAMES)}
    parts = Parts(NAMES, list(weights.values()))
    for seed in range(20):
        rng = random.Random(seed)
        bounds = {name: rng.choice([0.0, rng.random() / 20]) for name in NAMES}
        total = rng.choice([0.1, 0.5, 1.0, 2.0])
        shares, unplaced = parts.fill([bounds[name] for name in NAMES], total)
        assert repr((dict(zip(NAMES, shares, strict=True)), unplaced)) == \
            repr(plain_fill(weights, bounds, total))


def test_a_walk_that_runs_out_of_weight_stops_where_it_always_did() -> None:
    """Weights whose float sum loses the small one: the walk finds no weight left before the
    last part, which then keeps its 0.0 (not its bound, -0.0)."""
    weights = {"a": 1e16, "b": 0.5, "c": 1.0}
    bounds = {"a": 0.0, "b": -0.0, "c": 0.0}
    assert repr(fill(weights, bounds, 1.0)) == repr(plain_fill(weights, bounds, 1.0))
    tiny = {"a": 1e-300, "b": 1e-300}  # fair shares that underflow to 0: nothing bound at 0
    assert repr(fill(tiny, {"a": 0.0, "b": -0.0}, 1e-300)) == \
        repr(plain_fill(tiny, {"a": 0.0, "b": -0.0}, 1e-300))


def test_nan_bounds_fall_where_they_always_did() -> None:
    weights = {"a": 1.0, "b": 2.0, "c": 1.0, "d": 3.0}
    bounds = {"a": math.nan, "b": 0.1, "c": math.nan, "d": 0.05}
    assert repr(fill(weights, bounds, 1.0)) == repr(plain_fill(weights, bounds, 1.0))


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[ClusterView], list[ClusterState]]:
    names = sorted(draw(st.lists(st.sampled_from(NAMES), min_size=0, max_size=40,
                                 unique=True)))
    scores = st.sampled_from([1.0, 0.5, 0.0, -0.0, 0.9, 0.25])
    views = [ClusterView(name, draw(st.sampled_from(list(S))), draw(scores),
                         draw(weights_), "r") for name in names]
    return views, [draw(st.sampled_from(list(S))) for _ in views]


@settings(max_examples=300, deadline=None)
@given(fleets())
def test_rank_order_is_rank_key(fleet: tuple[list[ClusterView], list[ClusterState]]) -> None:
    views, states = fleet
    as_planned = [dataclasses.replace(v, state=state) for v, state in zip(views, states,
                                                                          strict=True)]
    expected = sorted(range(len(views)), key=lambda i: rank_key(as_planned[i]))
    assert rank_order(views, states) == expected


def test_rank_order_with_nan_scores_as_tuples_order() -> None:
    views = [ClusterView(name, S.HEALTHY, score, 1.0, "r")
             for name, score in zip("abcde", [0.5, math.nan, 1.0, math.nan, 0.5], strict=True)]
    states = [v.state for v in views]
    assert rank_order(views, states) == sorted(range(5), key=lambda i: rank_key(views[i]))


def test_moved_counts_gains_or_losses() -> None:
    assert moved({"a": 0.5, "b": 0.5}, {"a": 0.25, "b": 0.5, "c": 0.25}) == 0.25
    assert moved({"a": 1.0}, {"a": 0.75}) == 0.25  # shed: only losses


PLAN_FIELDS = ("c", 0.25, -0.0, S.RECOVERING, 3, 0.5, 1, "why", 1.0, None, 2, True, False,
               Ramp(0.5, 0.1, reason="r", sample=Sample(1.0, 0.2, 0.0, 1.0)), None, 4.0)


def test_replace_is_dataclasses_replace() -> None:
    life = Life(S.RECOVERING, 1.0, None, 1, "recovery_start", Ramp(0.2))
    assert repr(replace(life, state=S.HEALTHY, ramp=None)) == \
        repr(dataclasses.replace(life, state=S.HEALTHY, ramp=None))
    plain = ClusterPlan(*PLAN_FIELDS)
    assert repr(replace(plain, share=1)) == repr(dataclasses.replace(plain, share=1))
    view = ClusterView("a", S.HEALTHY, 1.0, 1.0, "r")  # not one it builds: the plain way
    assert replace(view, score=0.5) == dataclasses.replace(view, score=0.5)
    assert type(Replacer(())(life, event=None)) is Life


def _fleet(tick: int, scores: list[float]) -> list[ClusterView]:
    failing = {i for i in range(len(scores)) if (i + tick // 4) % 9 == 0}
    return [ClusterView(f"c{i}", S.UNHEALTHY if i in failing else S.HEALTHY, score,
                        1 + i % 3, "r", 50.0 + i % 5) for i, score in enumerate(scores)]


@pytest.mark.parametrize("mode", ["timed", "adaptive"])
def test_an_unchanged_cluster_keeps_its_plan(mode: str) -> None:
    """Where nothing of a cluster changed, its plan is the previous one, the object itself;
    and the plan is what a planner starting from scratch on equal inputs makes."""
    policy = Policy(recovery=Recovery(mode=mode, max_concurrent=2, slow_start=5))  # type: ignore[arg-type]
    scores = [1.0] * 30
    signals = Signals({f"c{i}": Sample(0.0, 0.3, 0.0, 1.0) for i in range(30)},
                      Sample(0.0, 0.3, 0.0, 1.0), True, "test")
    previous = None
    reused = 0
    for tick in range(16):
        now = float(tick)
        views = _fleet(tick, scores)
        made = plan(views, policy, previous, now, demand_rps=1000.0, signals=signals)
        if previous is not None:
            # Nothing is reused from a previous plan whose scores differ: made from scratch.
            other = tuple(dataclasses.replace(c, score=c.score + 1) for c in previous.clusters)
            fresh = plan(views, policy, dataclasses.replace(previous, clusters=other), now,
                         demand_rps=1000.0, signals=signals)
            assert repr(fresh) == repr(made)
            kept = {id(c) for c in previous.clusters}
            assert not {id(c) for c in fresh.clusters} & kept
            # Equal is the same object: reused.
            assert all(id(c) in kept for c in made.clusters if c in previous.clusters)
            reused += sum(id(c) in kept for c in made.clusters)
        previous = made
    assert reused > 0


def test_a_reused_plan_keeps_the_sign_of_its_zeros() -> None:
    """A previous plan whose fields compare equal but print otherwise (an int for a float,
    -0.0 for 0.0) is not reused: the new plan is as the planner makes it."""
    policy = Policy()
    views = [ClusterView("a", S.HEALTHY, 1.0, 1.0, "r"),
             ClusterView("b", S.DRAINED, 1.0, 1.0, "r")]
    first = plan(views, policy, None, 0.0)
    first = plan(views, policy, first, 1.0)
    assert [c.share for c in first.clusters] == [1.0, 0.0]
    odd = tuple(dataclasses.replace(c, share=-0.0 if c.share == 0 else int(c.share))
                for c in first.clusters)
    made = plan(views, policy, dataclasses.replace(first, clusters=odd), 2.0)
    other = tuple(dataclasses.replace(c, score=c.score + 1) for c in odd)
    fresh = plan(views, policy, dataclasses.replace(first, clusters=other), 2.0)
    assert repr(made) == repr(fresh)
    assert [repr(c.share) for c in made.clusters] == ["1.0", "0.0"]
