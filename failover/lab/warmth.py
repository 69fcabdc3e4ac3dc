"""How warm a lab cluster is: the fraction of its capacity it can serve now.

A cluster that comes back after a while without traffic has empty caches (and, in real life,
scaled-in replicas), so it serves only ``cold_factor`` of its capacity at first and grows
back with the traffic it serves, not with the time that passes:

    warmth = 1 - (1 - cold_factor) * exp(-served / warm_requests)

where ``served`` counts requests answered 200 since it last went cold. It goes cold again
after ``cold_after`` seconds without serving, or when told to. Health checks never count:
they are cheap, fill no cache, and a drained cluster still gets them.

Pure: times and counts are passed in, so tests drive it with made-up numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmthParams:
    """Checked by `failover.lab.LabOptions`, the one place they come in."""

    cold_factor: float
    """Warmth of a cold cluster, in (0, 1]."""
    warm_requests: float
    """Served requests that take a cold cluster ~63% of the way back to full capacity."""
    cold_after: float
    """Seconds without serving after which a cluster is cold."""


def warmth(served: float, params: WarmthParams) -> float:
    """Warmth after serving ``served`` requests since going cold: cold_factor up towards 1."""
    # The module docstring's formula, rearranged so that 0 served gives cold_factor exactly
    # (1 - (1 - 0.3) is 0.30000000000000004 in floating point).
    filled = -math.expm1(-served / params.warm_requests)
    return params.cold_factor + (1.0 - params.cold_factor) * filled


class Warmth:
    """One cluster's warmth over time. Starts warm, as a cluster that has been serving."""

    def __init__(self, params: WarmthParams, now: float) -> None:
        self.params = params
        self._served: int | None = None
        """Requests served since it last went cold; None while still warm from the start."""
        self._last_served = now
        """When it last served (the start, before any): the idle clock runs from here."""

    def served(self, now: float) -> int | None:
        """Requests served since it last went cold; None if it never has."""
        return 0 if self._idle(now) else self._served

    def level(self, now: float) -> float:
        """Warmth at ``now``, in [cold_factor, 1]."""
        served = self.served(now)
        return 1.0 if served is None else warmth(served, self.params)

    def record_served(self, now: float) -> None:
        """A request that is traffic (not a health check) was answered 200 at ``now``."""
        served = self.served(now)  # first: a request after a long idle finds it cold
        self._served = None if served is None else served + 1
        self._last_served = now

    def make_cold(self) -> None:
        """Cold now: caches emptied, whatever it served before."""
        self._served = 0

    def _idle(self, now: float) -> bool:
        return now - self._last_served >= self.params.cold_after
