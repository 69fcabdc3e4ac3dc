"""Health score: success ratio times latency factor, in [0, 1]."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from failover.health.score import NO_DATA, Score, check_score, cluster_score, latency_factor


def test_fast_passes_score_one() -> None:
    """All passes well under the timeout score exactly 1."""
    score = check_score([(True, 0.01)] * 10, timeout=0.8)
    assert score == Score(1.0, 1.0)
    assert score.value == 1.0


def test_failures_lower_the_success_ratio() -> None:
    """Three failures in ten recent results give a success ratio of 0.7."""
    score = check_score([(True, 0.01)] * 7 + [(False, 0.8)] * 3, timeout=0.8)
    assert score.success_ratio == pytest.approx(0.7)
    assert score.latency_factor == 1.0


def test_latency_factor_shape() -> None:
    """Free up to a quarter of the timeout, half at the timeout, no lower beyond it."""
    assert latency_factor(0.2, 0.8) == 1.0
    assert latency_factor(0.8, 0.8) == pytest.approx(0.5)
    assert latency_factor(5.0, 0.8) == pytest.approx(0.5)
    assert 0.5 < latency_factor(0.5, 0.8) < 1.0


def test_failed_probes_latency_is_ignored() -> None:
    """Only passing probes' latency counts toward the latency factor."""
    assert check_score([(True, 0.01), (False, 0.8)], timeout=0.8).latency_factor == 1.0


def test_no_results_is_no_data() -> None:
    """Without results the score is 0, with no latency penalty."""
    assert check_score([], timeout=1.0) == NO_DATA
    assert cluster_score([]) == NO_DATA


def test_cluster_takes_the_weakest_components() -> None:
    """A cluster's ratio and factor are the lowest among its checks."""
    combined = cluster_score([Score(0.9, 0.6), Score(0.5, 1.0)])
    assert combined == Score(0.5, 0.6)
    assert combined.value == pytest.approx(0.3)


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 100)), max_size=20),
       st.floats(0.001, 10))
def test_score_is_bounded(results: list[tuple[bool, float]], timeout: float) -> None:
    """Every component and the score stay within [0, 1]."""
    score = check_score(results, timeout)
    for value in (score.success_ratio, score.latency_factor, score.value):
        assert 0.0 <= value <= 1.0


@given(st.floats(0, 10), st.floats(0, 10), st.floats(0.001, 10))
def test_slower_never_scores_higher(a: float, b: float, timeout: float) -> None:
    """The latency factor never rises with latency."""
    low, high = sorted((a, b))
    assert latency_factor(high, timeout) <= latency_factor(low, timeout)
