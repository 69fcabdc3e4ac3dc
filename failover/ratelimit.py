"""A token bucket on an injected clock, shared by everything that must not overload a server.

The probes' per-target limiter (`failover.probes.limiter`) and the signal queries'
budget (`failover.signals`) both cap their requests with it, so the two agree on what a
rate means: in any window of T seconds, at most ``burst + rate * T`` takes, with
``burst = max(1, ceil(rate))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = max(1.0, float(math.ceil(rate)))
        self._clock = clock
        self._tokens = self.burst
        self._stamp: float | None = None
        """The clock is first read at first use: a bucket may be built before its loop runs
        (it is full until then either way)."""

    def _refill(self) -> float:
        now = self._clock()
        if self._stamp is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._tokens

    def available(self) -> bool:
        return self._refill() >= 1.0

    def take(self) -> None:
        self._refill()
        self._tokens -= 1.0

    def seconds_until_available(self) -> float:
        return max(0.0, (1.0 - self._refill()) / self.rate)
