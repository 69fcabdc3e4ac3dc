"""The rate limiter admits at most burst + rate x T requests per target in any window T."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.probes.limiter import Limiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    rate=st.sampled_from([0.5, 1.0, 2.0, 5.0]),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=300),
)
@settings(max_examples=200, deadline=None)
def test_window_bound_holds_for_any_arrival_pattern(rate: float, gaps: list[float]) -> None:
    """Whatever the attempt times, admitted requests in [t, t+T] never exceed burst + rate*T."""
    clock = Clock()
    limiter = Limiter(rate, 10_000, clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.now += gap
        if limiter.try_acquire("t"):
            admitted.append(clock.now)
    burst = max(1, -(-rate // 1))
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= burst + rate * (admitted[j] - start) + 1e-9


def test_targets_are_independent_and_total_caps_all() -> None:
    """Each target has its own bucket; the total bucket caps them together."""
    clock = Clock()
    limiter = Limiter(1, 2, clock)
    assert limiter.try_acquire("a")
    assert not limiter.try_acquire("a")
    assert limiter.try_acquire("b")
    assert not limiter.try_acquire("c")  # total burst of 2 spent
    clock.now = 1.0
    assert limiter.try_acquire("c")


@pytest.mark.looptime
async def test_acquire_waits_for_the_next_token() -> None:
    """acquire() returns once the bucket refills, on the loop clock."""
    loop = asyncio.get_running_loop()
    limiter = Limiter(2, 100, loop.time)
    start = loop.time()
    for _ in range(4):
        await limiter.acquire("t")
    assert loop.time() - start == pytest.approx(1.0, abs=0.01)
