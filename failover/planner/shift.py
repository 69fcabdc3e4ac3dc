"""From the previous shares to the desired ones: evacuations at once, other moves phased.

An evacuation (a cluster losing traffic because it failed or was drained) happens in full on
the tick it is decided, and the traffic it frees goes at once to the clusters the desired plan
grows. Every other move (ramps, weight changes, clusters coming or going) shifts at most
``max_shift_per_tick`` of all traffic per tick, by moving each share the same fraction of the
way to its target: sums are preserved and no share leaves [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from failover.planner.fill import fill
from failover.planner.shares import EPSILON


def moved(old: Mapping[str, float], new: Mapping[str, float]) -> float:
    """Traffic that changes cluster: what some clusters gain or others lose, whichever is
    more (they differ when the shed fraction changes too)."""
    deltas = [new.get(n, 0.0) - old.get(n, 0.0) for n in {*old, *new}]
    return max(math.fsum(d for d in deltas if d > 0), -math.fsum(d for d in deltas if d < 0))


def phase(old: Mapping[str, float], desired: Mapping[str, float], evacuated: Collection[str],
          max_shift: float, ceilings: Mapping[str, float],
          ramping: Collection[str] = ()) -> dict[str, float]:
    """The shares for this tick. ``old`` may name clusters ``desired`` no longer has.

    ``ceilings``: shares no cluster may keep even for a tick (headroom x capacity); what lies
    above one moves at once, like an evacuation. ``ramping``: recovering clusters, which take
    freed traffic only when nobody else can, so a ramp stays gentle through an evacuation.
    """
    names = sorted(desired)
    start = {n: old.get(n, 0.0) for n in names}
    freed = math.fsum(old.get(n, 0.0) for n in old if n not in desired)  # removed clusters
    for name in names:
        floor = desired[name] if name in evacuated else max(desired[name], ceilings[name])
        if start[name] > floor:
            freed += start[name] - floor
            start[name] = floor
    steady = [n for n in names if n not in ramping]
    freed = _give(start, {n: desired[n] - start[n] for n in steady}, freed)
    # What ramping clusters are owed goes, for now, to steady ones beyond their targets
    # (within capacity); the phased move below hands it over gently.
    ramp_gap = math.fsum(max(0.0, desired[n] - start[n]) for n in names if n in ramping)
    room = {n: max(0.0, ceilings[n] - start[n]) for n in steady}
    extra, _ = fill({n: desired[n] for n in steady}, room, min(freed, ramp_gap))
    for name, part in extra.items():
        start[name] += part
        freed -= part
    freed = _give(start, {n: desired[n] - start[n] for n in names if n in ramping}, freed)
    # Still less placed than the plan serves: within capacity if possible, else anywhere.
    # Beyond that, freed traffic is what the plan sheds.
    owed = min(freed, math.fsum(desired.values()) - math.fsum(start.values()))
    if owed > EPSILON:
        bounds = {n: max(0.0, ceilings[n] - start[n]) for n in names}
        extra, owed = fill(dict(desired), bounds, owed)
        if owed > EPSILON:
            more, _ = fill(dict(desired), {}, owed)
            extra = {n: extra[n] + more[n] for n in extra}
        for name, part in extra.items():
            start[name] += part
    shift = moved(start, desired)
    if shift <= max_shift + EPSILON:
        return dict(desired)
    step = max_shift / shift
    return {n: start[n] + step * (desired[n] - start[n]) for n in names}


def _give(shares: dict[str, float], gaps: Mapping[str, float], amount: float) -> float:
    """Spread ``amount`` over the positive ``gaps`` in proportion, none beyond its gap; return
    what is left."""
    open_gaps = {n: gap for n, gap in gaps.items() if gap > EPSILON}
    total = math.fsum(open_gaps.values())
    if amount <= EPSILON or total <= EPSILON:
        return amount
    given = min(amount, total)
    for name, gap in open_gaps.items():
        shares[name] += given * gap / total
    return amount - given
