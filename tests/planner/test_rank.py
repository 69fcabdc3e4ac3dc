"""Ranking: state, then score, then base weight, then name."""

from __future__ import annotations

from failover.planner.rank import ranks
from tests.planner.views import DR, UNK, D, H, R, U, W, view


def test_state_order() -> None:
    """healthy < degraded < recovering < waiting < unknown < unhealthy < drained."""
    states = [DR, U, UNK, W, R, D, H]
    result = ranks([view(f"c{i}", s) for i, s in enumerate(states)])
    assert [result[f"c{i}"] for i in range(len(states))] == [7, 6, 5, 4, 3, 2, 1]


def test_score_then_weight_then_name_break_ties() -> None:
    """Within a state: higher score first, then higher base weight, then name."""
    result = ranks([view("d", H, 10, 0.9), view("c", H, 10, 1.0), view("b", H, 20, 0.9),
                    view("a", H, 10, 0.9)])
    assert result == {"c": 1, "b": 2, "a": 3, "d": 4}
