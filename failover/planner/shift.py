"""From the previous shares to the desired ones: evacuations at once, other moves phased.

An evacuation (a cluster losing traffic because it failed or was drained) happens in full on
the tick it is decided, and the traffic it frees goes at once to the clusters the desired plan
grows. Every other move (ramps, weight changes, clusters coming or going) shifts at most
``max_shift_per_tick`` of all traffic per tick, by moving each share the same fraction of the
way to its target: sums are preserved and no share leaves [0, 1].

Shares come as columns aligned with the tick's names (ascending). Most ticks move nothing, or
a few clusters: the passes below pick out the clusters a step concerns at C speed (``map``,
``compress``) and walk only those, in name order, so every sum is made in the order it
always was.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from itertools import compress
from operator import gt, sub

from failover.planner.fill import INF, Parts
from failover.planner.shares import EPSILON

ABOVE_NOISE = EPSILON.__lt__
NEGATIVE = (0.0).__gt__
POSITIVE = (0.0).__lt__


def moved(old: Mapping[str, float], new: Mapping[str, float]) -> float:
    """Traffic that changes cluster: what some clusters gain or others lose, whichever is
    more (they differ when the shed fraction changes too)."""
    deltas = [new.get(n, 0.0) - old.get(n, 0.0) for n in {*old, *new}]
    return _moved(deltas)


def _moved(deltas: Sequence[float]) -> float:
    return max(math.fsum(compress(deltas, map(POSITIVE, deltas))),
               -math.fsum(compress(deltas, map(NEGATIVE, deltas))))


def _where(flags: Sequence[object]) -> list[int]:
    return list(compress(range(len(flags)), flags))


def phase(names: Sequence[str], old: Sequence[float], removed: float, desired: Sequence[float],
          evacuated: Sequence[bool], max_shift: float, ceilings: Sequence[float],
          ramping: Collection[int] = ()) -> list[float]:
    """The shares for this tick, aligned with ``names``. ``old``: each cluster's share before
    (0 if new); ``removed``: what clusters no longer planned held before.

    ``evacuated``: whether each cluster sheds what it holds above its target at once.
    ``ceilings``: shares no cluster may keep even for a tick (headroom x capacity); what lies
    above one moves at once, like an evacuation. ``ramping``: positions of the recovering
    clusters, which take freed traffic only when nobody else can, so a ramp stays gentle
    through an evacuation.
    """
    if not removed and old == desired:
        return list(desired)  # nothing to move: the walk below would find just that
    start = list(old)
    freed = removed
    floors = list(map(max, desired, ceilings))
    for i in _where(evacuated):
        floors[i] = desired[i]
    for i in _where(list(map(gt, start, floors))):
        freed += start[i] - floors[i]
        start[i] = floors[i]
    # What is freed goes where the desired plan grows. Freed at most noise (most ticks), it
    # would go nowhere, here and below: not even the gaps are worth working out.
    if not freed <= EPSILON:
        gaps = list(map(sub, desired, start))
        freed = _give(start, [i for i in _where(list(map(ABOVE_NOISE, gaps)))
                              if i not in ramping], gaps, freed)
    # What ramping clusters are owed goes, for now, to steady ones beyond their targets
    # (within capacity); the phased move below hands it over gently.
    ramp_gap = math.fsum(max(0.0, desired[i] - start[i]) for i in ramping)
    if not min(freed, ramp_gap) <= 0:  # NaN too: a fill of NaN spreads NaN, as it always did
        steady = [i for i in range(len(names)) if i not in ramping]
        parts = Parts([names[i] for i in steady], [desired[i] for i in steady])
        extra, _ = parts.fill([max(0.0, ceilings[i] - start[i]) for i in steady],
                              min(freed, ramp_gap))
        # An extra of 0 changes neither (and never is -0.0): only the others are walked.
        for j in _where(extra):
            start[steady[j]] += extra[j]
            freed -= extra[j]
    ramp_gaps = {i: desired[i] - start[i] for i in sorted(ramping)}
    freed = _give(start, [i for i, gap in ramp_gaps.items() if gap > EPSILON], ramp_gaps, freed)
    # Still less placed than the plan serves: within capacity if possible, else anywhere.
    # Beyond that, freed traffic is what the plan sheds.
    owed = freed if freed <= EPSILON else min(freed, math.fsum(desired) - math.fsum(start))
    if owed > EPSILON:
        everyone = Parts(names, desired)
        extra, owed = everyone.fill([max(0.0, ceiling - share)
                                     for ceiling, share in zip(ceilings, start, strict=True)],
                                    owed)
        if owed > EPSILON:
            more, _ = everyone.fill([INF] * len(names), owed)
            extra = [part + further for part, further in zip(extra, more, strict=True)]
        for i in _where(extra):
            start[i] += extra[i]
    shift = _moved(list(map(sub, desired, start)))
    if shift <= max_shift + EPSILON:
        return list(desired)
    step = max_shift / shift
    return [share + step * (target - share) for share, target in zip(start, desired, strict=True)]


def _give(shares: list[float], open_gaps: Sequence[int],
          gaps: Sequence[float] | Mapping[int, float], amount: float) -> float:
    """Spread ``amount`` over the gaps above noise (``open_gaps``, by position, in order) in
    proportion, none beyond its gap; return what is left."""
    if amount <= EPSILON or not open_gaps:
        return amount
    total = math.fsum(gaps[i] for i in open_gaps)
    if total <= EPSILON:
        return amount
    given = min(amount, total)
    for i in open_gaps:
        shares[i] += given * gaps[i] / total
    return amount - given
