"""How a recovering cluster's ramp moves each tick, how live signals bound a serving cluster,
and how many ramps may run at once.

``timed``: a ramp's level (the fraction of its target share it may take) grows by observed
time over ``slow_start``, whatever the cluster says.

``adaptive`` (docs/recovery.md has the why): a ramp is an absolute share ``limit`` moved by
its cluster's latest sample.
- Past a limit (utilization, error ratio or latency inflation at its maximum) it backs off at
  once, by what the sample says it has too much (``target x (1 - errors) / utilization``,
  between a quarter and 0.9; a half without utilization), never below ``initial`` of its
  target, and once per sample.
- Near the limit (at or above the targets) it holds.
- With room, and a sample taken after its last move, it grows by the gradient
  ``target_utilization / utilization`` (capped at ``max_growth``; ``sqrt(max_growth)`` per
  sample when only errors and latency are known), which puts it at the target in one step
  if load is linear in share: a gradient controller, as Envoy's adaptive concurrency, rather
  than AIMD, because a cold cluster pushed past its capacity loses goodput, warms more
  slowly and stays degraded until its load falls well below it: probing past the limit, as
  AIMD does, costs more than it finds.
- Without a usable sample (missing, stale, or without an error ratio and one of utilization
  or latency: fast errors look like low latency) it goes at the timed pace: never faster
  than ``timed`` on missing data. After a move it waits for a sample taken since: the move
  went as far as the last one pointed.

A serving cluster whose sample shows it failing requests (errors past their maximum: a
survivor pushed past what it serves by the retries of traffic shed elsewhere) gets a *guard*:
a share limit at what it served, which grows back on samples with room (by the gradient, or
a few percent at a time near its capacity) and is lifted once it no longer binds. An adaptive
ramp that reaches its target hands its limit on as a guard the same way: its target is not
the capacity a still cold cluster has.

Only observed time counts (``dt``): a ramp does not move while its cluster's checks are
overdue or the data plane lags the plan.

Admission (``slots``): ``timed`` keeps ``max_concurrent``. ``adaptive`` starts there and, while
every slot is taken, every ramp has usable signals and none backs off, and the shared
dependency (if one is watched) is below ``shared_target``, grows by one a tick and one more
for every ramp that advanced on a fresh sample (a slow start on the number of ramps, as
TCP's congestion window), at most by the dependency's gradient; it halves when that
dependency is past ``shared_max``, and the newest ramp backs off first; it falls back to
``max_concurrent`` while a watched dependency's signal is missing or a ramp has none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from failover.config.models import Adaptive, Recovery
from failover.model import Ramp, Sample, Signals
from failover.planner.lifecycle import Life, replace
from failover.planner.states import RECOVERING

T = TypeVar("T")
TIMED, FALLBACK, AWAIT, ADVANCE, HOLD, BACK_OFF = (
    "timed", "fallback", "await", "advance", "hold", "back_off")
"""A ramp's moves: the timed mode's pace; the timed pace for want of usable signals; the timed
pace while awaiting a sample at the new share; growth on a sample; holding; backing off."""

BREACH, NEAR, ROOM = "breach", "near", "room"
MISSING, NONE = "missing", "none"
PROBE_UP = 1.02
"""Growth of a guard per sample with room but utilization at or above its target: near its
capacity a cluster is probed upward a little at a time."""
GUARD_MARGIN = 0.95
"""A guard backs off to this fraction of what the cluster served."""


def changed(value: T, **fields: object) -> T:
    """``value`` with ``fields`` replaced; ``value`` itself when they are already so, as they
    are most ticks for most clusters: at 10,000 clusters the copies would cost more in
    garbage collection than all the rest of an adaptive tick."""
    if all(getattr(value, name) == new for name, new in fields.items()):
        return value
    return replace(value, **fields)


def usable(sample: Sample | None, now: float, adaptive: Adaptive) -> str | None:
    """None when ``sample`` can steer a ramp, else why not."""
    if sample is None:
        return "no signals"
    age = now - sample.measured_at
    if age > adaptive.max_signal_age:
        return f"signals {age:.0f}s old"
    if sample.error_ratio is None:
        return "no error ratio"
    if sample.utilization is None and sample.latency_ratio is None:
        return "no utilization or latency"
    return None


def assess(sample: Sample, adaptive: Adaptive) -> tuple[str, str]:  # noqa: PLR0911 - a rule per line
    """(breach, near or room; what says so) for a usable sample."""
    u, e, lat = sample.utilization, sample.error_ratio or 0.0, sample.latency_ratio
    if e >= adaptive.max_error_ratio:
        return BREACH, f"errors {e:.1%}"
    if u is not None and u >= adaptive.max_utilization:
        return BREACH, f"utilization {u:.0%}"
    if lat is not None and lat >= adaptive.max_latency_ratio:
        return BREACH, f"latency x{lat:.2f}"
    if e >= adaptive.error_ok and e > 0:
        return NEAR, f"errors {e:.1%}"
    if u is not None and u >= adaptive.target_utilization:
        return NEAR, f"utilization {u:.0%}"
    if lat is not None and lat >= adaptive.latency_ok:
        return NEAR, f"latency x{lat:.2f}"
    return ROOM, "utilization " + (f"{u:.0%}" if u is not None else "unknown") + \
        f", errors {e:.1%}" + (f", latency x{lat:.2f}" if lat is not None else "")


def failing(sample: Sample, adaptive: Adaptive) -> str | None:
    """What says a serving cluster fails requests it is sent, None if nothing does. Only
    errors: a warm cluster near its capacity is slower, and serving slower beats shedding."""
    e = sample.error_ratio or 0.0
    if e >= adaptive.max_error_ratio:
        return f"errors {e:.1%}"
    return None


@dataclass(frozen=True, slots=True)
class Shared:
    """The shared dependency this tick: ``none`` (not watched), ``missing``, or its verdict."""

    state: str
    reason: str = ""
    growth: float = math.inf
    """Largest factor by which ramps (and admission) may grow on its account."""


def shared_view(signals: Signals, adaptive: Adaptive, now: float) -> Shared:
    """The dependency's verdict: ``breach`` at ``shared_max`` (or errors at their maximum),
    ``near`` from ``shared_target`` (no more admissions; ramps may still grow toward just
    under ``shared_max``, all together by at most its gradient), else ``room``."""
    if not signals.shared_expected:
        return Shared(NONE)
    why = usable(signals.shared, now, adaptive)
    if why is not None or signals.shared is None:
        return Shared(MISSING, f"shared dependency: {why}")
    sample = signals.shared
    u, e = sample.utilization, sample.error_ratio or 0.0
    aim = GUARD_MARGIN * adaptive.shared_max
    growth = math.inf if u is None or u <= 0 else max(1.0, aim / u)
    what = "utilization " + ("unknown" if u is None else f"{u:.0%}") + f", errors {e:.1%}"
    if e >= adaptive.max_error_ratio or (u is not None and u >= adaptive.shared_max):
        return Shared(BREACH, f"shared dependency {what}", 1.0)
    if u is not None and u >= adaptive.shared_target:
        return Shared(NEAR, f"shared dependency {what}", growth)
    return Shared(ROOM, f"shared dependency {what}", growth)


def _paced(share: float, full: float, dt: float, recovery: Recovery) -> float:
    """``share`` after ``dt`` more seconds of slow start toward ``full``."""
    if recovery.slow_start <= 0:
        return max(share, full)
    return min(max(share, full), share + full * dt / recovery.slow_start)


def start_level(ramp: Ramp, full: float, recovery: Recovery, sample: Sample | None,
                now: float) -> Ramp:
    """A ramp just admitted: from the share it holds; when adaptive with usable signals,
    from at least ``initial`` of its target (without them, as a timed one would)."""
    adaptive = recovery.mode == "adaptive"
    first = recovery.adaptive.initial if adaptive and usable(
        sample, now, recovery.adaptive) is None else 0.0
    level = max(first, min(1.0, ramp.held / full)) if full > 0 else first
    if not adaptive:
        return replace(ramp, level=level, mark=level)
    limit = max(ramp.held, level * full)
    return replace(ramp, level=level, limit=limit, mark=limit)


def _moved(ramp: Ramp, limit: float, full: float, **changes: object) -> Ramp:
    level = 1.0 if full <= 0 else min(1.0, limit / full)
    return replace(ramp, limit=limit, level=level, **changes)


def step(ramp: Ramp, sample: Sample | None, shared: Shared, now: float, dt: float,  # noqa: PLR0911 - a move per return
         recovery: Recovery, full: float, *, newest: bool) -> Ramp:
    """One tick of a ramp that was already recovering; ``dt``: observed seconds since the
    last tick; ``full``: its target share. ``newest``: the latest admitted ramp, the first to
    back off for the shared dependency."""
    if recovery.mode == "timed" or ramp.limit is None:
        level = min(1.0, ramp.level + dt / recovery.slow_start) if recovery.slow_start > 0 \
            else 1.0
        return replace(ramp, level=level, action=TIMED, reason="slow start", sample=None)
    adaptive = recovery.adaptive
    limit = ramp.limit
    if sample is not None and ramp.since is not None and sample.measured_at <= ramp.since:
        sample = None  # from before its admission: nothing about this ramp yet
    why = usable(sample, now, adaptive)
    if why is None and shared.state == MISSING:
        why = shared.reason
    if why is not None or sample is None:
        # Exactly the timed ramp: its level of the target, at the slow-start pace.
        pace = dt / recovery.slow_start if recovery.slow_start > 0 else 1.0
        level = min(1.0, ramp.level + pace)
        return replace(ramp, limit=level * full, level=level, action=FALLBACK,
                       reason=f"{why}: slow-start pace", sample=sample)
    verdict, what = assess(sample, adaptive)
    if shared.state == BREACH and newest:
        verdict, what = BREACH, shared.reason
    elif shared.state == BREACH and verdict == ROOM:
        verdict, what = NEAR, shared.reason
    if verdict == ROOM and limit < adaptive.initial * full:
        # Its first usable sample (admitted without one): start where an adaptive ramp does.
        start = adaptive.initial * full
        return _moved(ramp, start, full, mark=start, changed_at=now, action=ADVANCE,
                      sample=sample, reason=f"{what}: first usable signals, initial share")
    if verdict == BREACH:
        if ramp.backoff_at is not None and sample.measured_at <= ramp.backoff_at:
            return changed(ramp, action=HOLD, sample=sample,
                                       reason=f"{what}: backed off, awaiting a sample since")
        lowered = max(adaptive.initial * full, limit * _backoff(sample, adaptive))
        return _moved(ramp, min(limit, lowered), full, mark=min(limit, lowered), held=0.0,
                      backoff_at=now, changed_at=now, action=BACK_OFF, sample=sample,
                      reason=f"{what}: backing off")
    if verdict == NEAR:
        return changed(ramp, action=HOLD, sample=sample, reason=f"{what}: holding")
    growth = min(_growth(sample, adaptive), shared.growth)
    # A sample describes the share before a change until it is taken after it: the last
    # move already went as far as it pointed, so the ramp waits for one that shows where
    # the move landed (creeping on meanwhile overshot a cold cluster, in the lab).
    if ramp.changed_at is not None and sample.measured_at <= ramp.changed_at:
        return changed(ramp, action=AWAIT, sample=sample,
                                   reason=f"{what}; awaiting a sample at the new share")
    grown = min(max(full, limit), max(limit, ramp.mark * growth))
    return _moved(ramp, grown, full, mark=grown, changed_at=now, action=ADVANCE,
                  sample=sample, reason=f"{what}: advancing x{growth:.2f}")


def step_guard(limit: Ramp | None, sample: Sample | None, now: float, dt: float,  # noqa: PLR0911 - a move per return
          recovery: Recovery, share: float, bound: float) -> Ramp | None:
    """A serving cluster's share limit after this tick; None: no limit. ``share``: what it
    carries now; ``bound``: its share at full capacity, where a limit no longer binds."""
    if recovery.mode != "adaptive":
        return None
    adaptive = recovery.adaptive
    why = usable(sample, now, adaptive)
    if limit is None:
        # Only evidence of failing requests sets a limit; utilization alone never does.
        what = None if why is not None or sample is None else failing(sample, adaptive)
        if what is None or share <= 0:
            return None
        lowered = share * _guard_backoff(sample)  # type: ignore[arg-type]
        return Ramp(1.0, limit=lowered, mark=lowered, changed_at=now, backoff_at=now,
                         action=BACK_OFF, reason=f"{what}: limited to what it serves",
                         sample=sample)
    current = limit.limit if limit.limit is not None else share
    if why is not None or sample is None:
        relaxed = _paced(current, bound, dt, recovery)
        if relaxed >= bound:
            return None
        return replace(limit, limit=relaxed, action=FALLBACK, sample=sample,
                       reason=f"{why}: relaxing at the slow-start pace")
    what = failing(sample, adaptive)
    if what is not None:
        if limit.backoff_at is not None and sample.measured_at <= limit.backoff_at:
            return changed(limit, action=HOLD, sample=sample,
                                       reason=f"{what}: limited, awaiting a sample since")
        lowered = min(current, share * _guard_backoff(sample))
        return replace(limit, limit=lowered, mark=lowered, changed_at=now, backoff_at=now,
                       action=BACK_OFF, sample=sample,
                       reason=f"{what}: limited to what it serves")
    errors = sample.error_ratio or 0.0
    if errors >= adaptive.error_ok and errors > 0:
        return changed(limit, action=HOLD, sample=sample,
                                   reason=f"errors {errors:.1%}: holding its limit")
    if limit.changed_at is not None and sample.measured_at <= limit.changed_at:
        return changed(limit, action=HOLD, sample=sample,
                                   reason="awaiting a sample at its limit")
    growth = _guard_growth(sample.utilization, adaptive)
    grown = max(current, limit.mark * growth)
    if grown >= bound:
        return None
    return replace(limit, limit=grown, mark=grown, changed_at=now, action=ADVANCE,
                   sample=sample, reason=f"room again: limit x{growth:.2f}")


def _guard_growth(u: float | None, adaptive: Adaptive) -> float:
    if u is None:
        # Errors alone (the probes' signals): no gradient to follow and no sign of being near
        # capacity, so as a ramp does; errors coming back hold it or cut it again. (At 2 % a
        # sample a restarted daemon's limited cluster took minutes to get its share back.)
        return math.sqrt(adaptive.max_growth)
    if u >= adaptive.target_utilization:
        return PROBE_UP
    return min(adaptive.max_growth, adaptive.target_utilization / max(u, 1e-9))


def _guard_backoff(sample: Sample) -> float:
    return min(GUARD_MARGIN, max(0.25, (1 - (sample.error_ratio or 0.0)) * GUARD_MARGIN))


def _growth(sample: Sample, adaptive: Adaptive) -> float:
    u = sample.utilization
    if u is None:
        return math.sqrt(adaptive.max_growth)
    if u <= 0:
        return adaptive.max_growth
    return max(1.0, min(adaptive.max_growth, adaptive.target_utilization / u))


def _backoff(sample: Sample, adaptive: Adaptive) -> float:
    """What share of the current one the cluster can take, as far as the sample tells."""
    errors = sample.error_ratio or 0.0
    if sample.utilization is None:
        return 0.5
    factor = adaptive.target_utilization * (1 - errors) / max(sample.utilization,
                                                              adaptive.target_utilization)
    return min(0.9, max(0.25, factor))


@dataclass(frozen=True, slots=True)
class Round:
    """How this tick's ramps fared, for admission."""

    advanced: int = 0
    """Ramps that grew on a fresh sample."""
    held: int = 0
    """Ramps that backed off on their signals (holding near the target is no trouble: it
    is where a cold cluster's ramp spends its warm-up)."""
    blind: int = 0
    """Ramps without usable signals (on the timed pace for that reason)."""


def step_all(lives: dict[str, Life], recovering: Sequence[str], signals: Signals,
             shared: Shared, now: float, observed: Mapping[str, float],
             full: Mapping[str, float], recovery: Recovery) -> tuple[Round, set[str]]:
    """Step every ramp of ``recovering`` (ascending; clusters not recovering are skipped), in
    ``lives``; returns how they fared, and those that backed off. ``full``: each cluster's
    target share (adaptive only)."""
    ramps = {name: life.ramp for name in recovering
             if (life := lives[name]).state == RECOVERING and life.ramp is not None}
    newest = max(ramps, key=lambda n: (lives[n].recovery_started or 0.0, n), default=None)
    advanced = held = blind = 0
    backed: set[str] = set()
    for name, before in ramps.items():
        ramp = step(before, signals.clusters.get(name), shared, now,
                    observed.get(name, 0.0), recovery, full.get(name, 0.0),
                    newest=name == newest)
        lives[name] = changed(lives[name], ramp=ramp)
        if ramp.action == ADVANCE:
            advanced += 1
        elif ramp.action == BACK_OFF:
            held += 1
        elif ramp.action == FALLBACK:
            blind += 1
        if ramp.action == BACK_OFF:
            backed.add(name)
    return Round(advanced, held, blind), backed


def slots(previous: int | None, recovery: Recovery, fared: Round, shared: Shared, *,
          busy: int, waiting: int) -> tuple[int, str]:
    """Recoveries that may run at once after this tick, and why."""
    base = recovery.max_concurrent
    if recovery.mode == "timed":
        return base, "timed: max_concurrent"
    k = base if previous is None else previous
    cap = recovery.adaptive.max_concurrent or math.inf
    if shared.state == MISSING:
        k, why = min(k, base), f"{shared.reason}: max_concurrent"
    elif shared.state == BREACH:
        k, why = max(1, k // 2), f"{shared.reason}: halved"
    elif shared.state == NEAR:
        why = f"{shared.reason}: holding"
    elif fared.held:
        why = f"{fared.held} ramp(s) backed off: holding"
    elif fared.blind:
        k, why = min(k, max(base, busy)), "ramps without signals: no more admissions"
    elif busy and k <= busy:
        # Every ramp has usable signals and none backs off: one more each tick, and one
        # more for every ramp that advanced (slow start on the number of ramps).
        grown = k + max(1, fared.advanced)
        if shared.growth < math.inf:
            grown = min(grown, max(k + 1, math.floor(k * shared.growth)))
        k, why = grown, "ramps on fresh signals, none backing off: growing"
    else:
        why = "slots free"
    # Slots nobody needs are not banked: once the fleet is back, admission starts over.
    k = int(max(1, min(k, cap, max(base, busy + waiting))))
    return k, why
