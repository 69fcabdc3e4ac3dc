"""Token buckets (`failover.ratelimit`) that cap requests per target and in total, on the loop
clock.

Guarantee: in any window of T seconds, requests to one target are at most
``burst + rate * T`` with ``burst = max(1, ceil(rate))``, whatever the targets do.
The burst lets the checks of one target that fall due together all run; the
load-time budget check keeps the steady rate under ``rate``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from failover.ratelimit import TokenBucket


class Limiter:
    """Admits a request only when both its target's bucket and the total bucket allow it."""

    def __init__(self, per_target: float, total: float, clock: Callable[[], float]) -> None:
        self._per_target = per_target
        self._clock = clock
        self._total = TokenBucket(total, clock)
        self._targets: dict[str, TokenBucket] = {}

    def _bucket(self, target: str) -> TokenBucket:
        bucket = self._targets.get(target)
        if bucket is None:
            bucket = self._targets[target] = TokenBucket(self._per_target, self._clock)
        return bucket

    def try_acquire(self, target: str) -> bool:
        bucket = self._bucket(target)
        if not (bucket.available() and self._total.available()):
            return False
        bucket.take()
        self._total.take()
        return True

    async def acquire(self, target: str) -> None:
        """Wait until a request to ``target`` is allowed; the caller's deadline bounds the wait."""
        bucket = self._bucket(target)
        while not self.try_acquire(target):
            wait = max(bucket.seconds_until_available(), self._total.seconds_until_available())
            await asyncio.sleep(max(wait, 0.001))

    def forget(self, keep: set[str]) -> None:
        """Drop buckets of targets no longer probed, so reloads do not grow memory."""
        for target in set(self._targets) - keep:
            del self._targets[target]
