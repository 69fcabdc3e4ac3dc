"""A serving cluster's limit grows back as fast as what its signals can tell allows."""

from __future__ import annotations

import math

import pytest

from failover.config.models import Recovery
from failover.model import Ramp, Sample
from failover.planner.ramp import PROBE_UP, step_guard


def grown(utilization: float | None) -> float:
    limit = Ramp(1.0, limit=0.2, mark=0.2, changed_at=0.0)
    sample = Sample(10.0, utilization, 0.0, 1.0)
    after = step_guard(limit, sample, 11.0, 1.0, Recovery(), 0.2, 1.0)
    assert after is not None
    assert after.limit is not None
    return after.limit / 0.2


def test_with_errors_alone_a_limit_grows_as_a_ramp_does() -> None:
    """The probes' signals carry no utilization: 2 % a sample left a restarted daemon's
    limited cluster minutes from its share; it grows by the square root of max_growth."""
    assert grown(None) == pytest.approx(math.sqrt(Recovery().adaptive.max_growth))


def test_near_its_target_utilization_a_limit_is_probed_up_a_little() -> None:
    assert grown(0.9) == pytest.approx(PROBE_UP)


def test_with_room_a_limit_follows_the_gradient() -> None:
    assert grown(0.5) == pytest.approx(0.85 / 0.5)
