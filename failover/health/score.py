"""A health score in [0, 1] from recent results: success ratio times a latency factor."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WINDOW = 10
"""Recent results per check that the score looks at."""
LATENCY_FREE = 0.25
"""Mean latency, as a fraction of the probe timeout, below which latency costs nothing."""
LATENCY_WEIGHT = 0.5
"""Factor lost at a mean latency equal to the timeout: slow but answering is worth half."""


@dataclass(frozen=True, slots=True)
class Score:
    success_ratio: float
    """Fraction of recent probes that passed."""
    latency_factor: float
    """1.0 when passing probes are fast, down to ``1 - LATENCY_WEIGHT`` at the timeout."""

    @property
    def value(self) -> float:
        return self.success_ratio * self.latency_factor


NO_DATA = Score(0.0, 1.0)
"""Nothing seen yet: no evidence of success, none of slowness."""


def latency_factor(mean_latency: float, timeout: float) -> float:
    """Linear penalty from ``LATENCY_FREE`` of the timeout up to the timeout, flat beyond."""
    excess = (mean_latency / timeout - LATENCY_FREE) / (1 - LATENCY_FREE)
    return 1.0 - LATENCY_WEIGHT * min(1.0, max(0.0, excess))


def check_score(recent: Iterable[tuple[bool, float]], timeout: float) -> Score:
    """Score ``(ok, latency)`` pairs; only passing probes' latency counts, failures already do."""
    results = list(recent)
    if not results:
        return NO_DATA
    passed = [latency for ok, latency in results if ok]
    ratio = len(passed) / len(results)
    factor = latency_factor(sum(passed) / len(passed), timeout) if passed else 1.0
    return Score(ratio, factor)


def cluster_score(scores: Iterable[Score]) -> Score:
    """A cluster is as good as its weakest check: the lowest ratio times the lowest factor.

    A mean would let one bad dependency among many checks hide; taking each minimum keeps a
    single flaky or slow check visible in the ranking.
    """
    seen = list(scores)
    if not seen:
        return NO_DATA
    return Score(min(s.success_ratio for s in seen), min(s.latency_factor for s in seen))
