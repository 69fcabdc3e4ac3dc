"""Water-filling: split a total by weight, no part above its bound."""

from __future__ import annotations

import math
from collections.abc import Mapping


def fill(weights: Mapping[str, float], bounds: Mapping[str, float],
         total: float) -> tuple[dict[str, float], float]:
    """Shares ``min(bound, level * weight)`` summing to ``total`` if the bounds allow it.

    Returns the shares and what could not be placed (0 when the bounds leave room). Parts with
    weight 0 get nothing. Deterministic whatever the mappings' order: parts are visited by
    bound-to-weight ratio, then name.
    """
    shares = dict.fromkeys(weights, 0.0)
    live = sorted((name for name, weight in weights.items() if weight > 0),
                  key=lambda name: (bounds.get(name, math.inf) / weights[name], name))
    remaining, weight_left = total, math.fsum(weights[name] for name in live)
    for index, name in enumerate(live):
        if remaining <= 0 or weight_left <= 0:
            break
        fair = remaining * weights[name] / weight_left
        bound = bounds.get(name, math.inf)
        if bound < fair:
            shares[name] = bound
            remaining -= bound
            weight_left -= weights[name]
            continue
        # No later part (a larger ratio) is bound either: split the rest by weight at once.
        rest = live[index:]
        for other in rest:
            shares[other] = remaining * weights[other] / weight_left
        return shares, 0.0
    return shares, max(0.0, remaining)
