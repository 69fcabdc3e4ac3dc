"""Share arithmetic: proportional splits and change detection, exact regardless of input order."""

from __future__ import annotations

import math
from collections.abc import Mapping

EPSILON = 1e-9
"""Share differences at or below this are float noise, not a change."""


def proportional(weights: Mapping[str, float], total_share: float) -> dict[str, float]:
    """Split ``total_share`` by weight; all 0 when the weights are.

    ``math.fsum`` is correctly rounded, so the same weights give the same shares to the last bit
    whatever the mapping's order: a plan must not change version over float noise.
    """
    total = math.fsum(weights.values())
    if total <= 0:
        return dict.fromkeys(weights, 0.0)
    return {name: total_share * weight / total for name, weight in weights.items()}


def differ(old: Mapping[str, float], new: Mapping[str, float]) -> bool:
    """True when some cluster's share moved by more than ``EPSILON``; absent counts as 0."""
    return any(abs(old.get(name, 0.0) - new.get(name, 0.0)) > EPSILON for name in {*old, *new})


def below(part: float, fraction: float, total: float) -> bool:
    """``part < fraction * total``, with float noise at the boundary counting as reached."""
    return part < fraction * total - EPSILON * max(total, 1.0)
