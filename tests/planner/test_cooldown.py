"""Cooldowns after failed recoveries double up to max_cooldown, however many failures."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from failover.config.models import Recovery
from failover.planner.lifecycle import cooldown


def test_cooldown_doubles_then_caps() -> None:
    recovery = Recovery(cooldown=30, max_cooldown=600)
    assert [cooldown(recovery, n) for n in (1, 2, 3, 5, 6)] == [30, 60, 120, 480, 600]


def test_the_1025th_failure_does_not_overflow() -> None:
    """30 x 2**1024 is past a float: it raised OverflowError on every tick."""
    recovery = Recovery(cooldown=30, max_cooldown=600)
    assert cooldown(recovery, 1025) == 600
    assert cooldown(recovery, 10**9) == 600


@given(st.integers(min_value=0, max_value=10**12))
def test_cooldown_is_between_the_first_and_the_cap(failed: int) -> None:
    recovery = Recovery(cooldown=30, max_cooldown=600)
    assert 30 <= cooldown(recovery, failed) <= 600
