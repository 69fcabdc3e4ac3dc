"""Water-filling: split a total by weight, no part above its bound.

A tick fills the same parts several times (targets, ramps, overflow), at 10,000 clusters, so
the parts are prepared once (`Parts`) and each fill is one sort and one pass over the parts
it bounds. The arithmetic is the plain walk's, step for step: parts visited by
bound-to-weight ratio then name, the rest split at once by weight; only the bookkeeping
around it is cheaper.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from functools import reduce
from itertools import accumulate, compress, islice, repeat
from operator import ge, mul, sub, truediv

INF = math.inf
POSITIVE = (0.0).__lt__
"""``x > 0``, for C-speed passes (map, filter) over a column."""
NEGATIVE = (0.0).__gt__


def ascending(names: Sequence[str]) -> bool:
    """Strictly ascending, as the parts of a fill must come."""
    return not any(map(ge, names, islice(names, 1, None)))


class Parts:
    """The parts of a split: names in ascending order, with their weights; those of weight 0
    (or less) get nothing. Immutable once made: fill as often as needed."""

    __slots__ = ("live", "names", "weight", "weights")

    def __init__(self, names: Sequence[str], weights: Sequence[float]) -> None:
        self.names = names
        self.weights = weights
        # Positions of the parts with weight, None when every part has some (the usual case:
        # no index to go through).
        self.live: list[int] | None = None
        if not all(map(POSITIVE, weights)):
            self.live = [i for i, weight in enumerate(weights) if weight > 0]
        self.weight = math.fsum(weights if self.live is None else
                                [weights[i] for i in self.live])

    def fill(self, bounds: Sequence[float], total: float) -> tuple[list[float], float]:
        """Shares ``min(bound, level * weight)`` summing to ``total`` if the bounds allow it,
        aligned with the names; and what could not be placed (0 when the bounds leave
        room). ``bounds`` is aligned with the names too (``inf``: unbounded)."""
        count = len(self.names)
        live = self.live
        if total <= 0 or self.weight <= 0 or (live is not None and not live):
            return [0.0] * count, max(0.0, total)
        if live is None:
            weights, caps = self.weights, bounds
        else:
            weights, caps = [self.weights[i] for i in live], [bounds[i] for i in live]
        walk = _Walk(caps, weights, total, self.weight)
        if not any(caps):
            # Every bound is 0 (room already taken, say): every ratio ties at 0, so the
            # parts come in name order, and no ratio needs working out.
            walk.nothing(range(len(caps)))
        else:
            for segment, nothing in _segments(caps, weights, self.names, live):
                if not (walk.nothing(segment) if nothing else walk.through(segment)):
                    break
        if walk.rest:
            # No later part (a larger ratio) is bound either: split the rest by weight at
            # once. Computed for every part, then overwritten where bound: the same value.
            shares = list(map(truediv, map(mul, repeat(walk.remaining), weights),
                              repeat(walk.weight_left)))
            unplaced = 0.0
        elif len(walk.bound) == len(weights):
            return self._spread(list(caps)), max(0.0, walk.remaining)  # every part at its bound
        else:
            shares, unplaced = [0.0] * len(weights), max(0.0, walk.remaining)
        for part in walk.bound:
            shares[part] = caps[part]
        return self._spread(shares), unplaced

    def _spread(self, shares: list[float]) -> list[float]:
        """Shares of the live parts over all the parts."""
        if self.live is None:
            return shares
        out = [0.0] * len(self.names)
        for position, share in zip(self.live, shares, strict=True):
            out[position] = share
        return out


class _Walk:
    """The walk of a fill, step for step, over the parts in order: while a part's bound is
    below its fair share of what remains, it gets its bound, and the next is looked at."""

    __slots__ = ("bound", "caps", "remaining", "rest", "weight_left", "weights")

    def __init__(self, caps: Sequence[float], weights: Sequence[float], total: float,
                 weight: float) -> None:
        self.caps, self.weights = caps, weights
        self.remaining, self.weight_left = total, weight
        self.bound: list[int] = []
        """The parts at their bound, in order."""
        self.rest = False
        """Stopped at a part below its bound: the rest split by weight."""

    def through(self, parts: Sequence[int]) -> bool:
        """Walk ``parts``; whether the walk goes on past them."""
        caps, weights, bound = self.caps, self.weights, self.bound
        remaining, weight_left = self.remaining, self.weight_left
        going = True
        for part in parts:
            if remaining <= 0 or weight_left <= 0:
                going = False
                break
            weight = weights[part]
            cap = caps[part]
            if cap < remaining * weight / weight_left:
                remaining -= cap
                weight_left -= weight
                bound.append(part)
                continue
            self.rest = True
            going = False
            break
        self.remaining, self.weight_left = remaining, weight_left
        return going

    def nothing(self, parts: Sequence[int]) -> bool:
        """`through` for parts that are all bound at 0, at C speed: each step takes 0 off what
        remains and the part's weight off what is left, so the steps are running
        differences; every part is bound as long as something remains, weight is left, and
        the smallest fair share is above 0."""
        remaining, weight_left = self.remaining, self.weight_left
        if not parts or remaining <= 0 or weight_left <= 0:
            return self.through(parts)
        weights = list(map(self.weights.__getitem__, parts))
        lefts = list(accumulate(weights, sub, initial=weight_left))
        # Both only shrink along the way (weights are positive): the last step checks them.
        if not (lefts[-2] > 0 and remaining * min(weights) / weight_left > 0):
            return self.through(parts)
        # Minus 0 changes nothing, bar an int total turning float: subtract as the walk does.
        self.remaining = reduce(sub, map(self.caps.__getitem__, parts), remaining)
        self.weight_left = lefts[-1]
        self.bound += parts
        return True


def _segments(caps: Sequence[float], weights: Sequence[float], names: Sequence[str],
              live: Sequence[int] | None) -> Iterator[tuple[Sequence[int], bool]]:
    """The live parts (positions among them) by bound-to-weight ratio, then name, in runs:
    negative ratios, zero ones, positive ones; each run with whether all its bounds are 0.

    The names ascend, so a stable sort on the ratio breaks ties by name; the zeros are
    already in order, and the positive ratios are only sorted if the walk gets that far.
    """
    ratios = list(map(truediv, caps, weights))
    every = range(len(ratios))
    if math.isnan(sum(ratios)):
        # A NaN ratio compares neither way: sort as tuples do, so it lands where it always did.
        named = names if live is None else [names[i] for i in live]
        yield sorted(every, key=lambda part: (ratios[part], named[part])), False
        return
    least = min(ratios)
    if least > 0:
        yield sorted(every, key=ratios.__getitem__), False
        return
    if least < 0:
        yield sorted(compress(every, map(NEGATIVE, ratios)), key=ratios.__getitem__), False
    zeros = list(compress(every, map(0.0 .__eq__, ratios)))
    if zeros:
        yield zeros, not any(map(caps.__getitem__, zeros))
    if len(zeros) < len(ratios):
        yield sorted(compress(every, map(POSITIVE, ratios)), key=ratios.__getitem__), False


def fill(weights: Mapping[str, float], bounds: Mapping[str, float],
         total: float) -> tuple[dict[str, float], float]:
    """Shares ``min(bound, level * weight)`` summing to ``total`` if the bounds allow it.

    Returns the shares and what could not be placed (0 when the bounds leave room). Parts with
    weight 0 get nothing. Deterministic whatever the mappings' order: parts are visited by
    bound-to-weight ratio, then name.
    """
    names = list(weights)
    if ascending(names):
        values, unplaced = Parts(names, list(weights.values())).fill(
            [bounds.get(name, INF) for name in names], total)
        return dict(zip(names, values, strict=True)), unplaced
    return plain_fill(weights, bounds, total)


def plain_fill(weights: Mapping[str, float], bounds: Mapping[str, float],
               total: float) -> tuple[dict[str, float], float]:
    """`fill` one step per part: what `Parts.fill` does faster. Kept for parts in another
    order than their names': a NaN bound compares neither way, so where it lands in the sort
    depends on the order the parts come in."""
    shares = dict.fromkeys(weights, 0.0)
    live = sorted((name for name, weight in weights.items() if weight > 0),
                  key=lambda name: (bounds.get(name, INF) / weights[name], name))
    remaining, weight_left = total, math.fsum(weights[name] for name in live)
    for index, name in enumerate(live):
        if remaining <= 0 or weight_left <= 0:
            break
        fair = remaining * weights[name] / weight_left
        bound = bounds.get(name, INF)
        if bound < fair:
            shares[name] = bound
            remaining -= bound
            weight_left -= weights[name]
            continue
        # No later part (a larger ratio) is bound either: split the rest by weight at once.
        for other in live[index:]:
            shares[other] = remaining * weights[other] / weight_left
        return shares, 0.0
    return shares, max(0.0, remaining)
