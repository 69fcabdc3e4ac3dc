"""Each cluster's planner state: unhealthy -> waiting -> recovering -> healthy, with cooldowns.

After its ramp a cluster stays on probation for one more ``slow_start``: failing then counts
as a failed recovery too, and the count of consecutive failed recoveries resets to 0 once the
cluster has passed through all of it (on the first tick at or past its end, even if the
cluster fails on that tick: that is a plain failure). Drained during its probation, a
cluster keeps its count; one whose verdicts lapse across the end resets when it passes again.

Health says whether a cluster passes; this module says what the planner does about it: a
cluster that passes again after failing waits for a recovery slot, ramps up while it holds
one (`ramp`), and if it fails during the ramp may not try again before a cooldown that
doubles with each consecutive failed recovery (flap damping). A cluster that carried traffic
while it was counted failing (a freeze kept its share) keeps that share through the gate: a
recovery never takes traffic away from a cluster that had it all along.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from failover.config.models import Recovery
from failover.model import ClusterPlan, ClusterState, ClusterView, Ramp
from failover.planner.build import Replacer
from failover.planner.rank import rank_key
from failover.planner.states import (
    DEGRADED,
    DRAINED,
    HEALTHY,
    RECOVERING,
    UNHEALTHY,
    UNKNOWN,
    WAITING,
)

SERVING_SHARE = 1e-9
"""A share above this is traffic, not float noise."""

RECOVERY_START = "recovery_start"
RECOVERY_FAILED = "recovery_failed"
RECOVERED = "recovered"
RESUMED = "resumed"
STEERED = ("advance", "await", "hold", "back_off")
"""Ramp moves made on usable signals (failover.planner.ramp)."""


@dataclass(frozen=True, slots=True)
class Life:
    """A cluster's planner state after this tick, and what happened to it."""

    state: ClusterState
    recovery_started: float | None = None
    cooldown_until: float | None = None
    failed_recoveries: int = 0
    event: str | None = None
    """``recovery_start``, ``recovery_failed``, ``recovered`` or ``resumed`` (a ramp taken up
    again after its verdict lapsed, e.g. across a restart) when that happened this tick."""
    ramp: Ramp | None = None
    probation_until: float | None = None
    guard: Ramp | None = None


replace = Replacer((Life, Ramp, ClusterPlan))
"""``dataclasses.replace`` for lives, ramps and plans of clusters, at a fraction of the cost."""


def cooldown(recovery: Recovery, failed: int) -> float:
    """Seconds to wait after the ``failed``-th consecutive failed recovery (from 1)."""
    # The doublings are capped before the power is taken: from the 1,025th failure on, a
    # float would overflow (OverflowError on every tick, the plan wedged). 2**1000 times any
    # cooldown is past any max_cooldown.
    doublings = min(max(failed - 1, 0), 1000)
    return float(min(recovery.cooldown * 2 ** doublings, recovery.max_cooldown))


def cooling(life: Life, now: float) -> bool:
    """Still inside the cooldown after a failed recovery."""
    return life.cooldown_until is not None and now < life.cooldown_until


def _passing_state(view: ClusterView) -> ClusterState:
    # Health reports healthy or degraded; the gate's own states arriving in a view are
    # taken as plain passing.
    return view.state if view.state in (HEALTHY, DEGRADED) else HEALTHY


def advance(  # noqa: PLR0911 - one return per transition reads best
        view: ClusterView, before: ClusterPlan | None, recovery: Recovery, now: float, *,
        started: bool) -> Life:
    """The cluster's state from health's verdict and its planner state on the previous tick.

    ``started``: a plan has been actuated. Before that, passing clusters are simply in (the
    first plan is the base weights of the passing clusters, no ramp). Ramps move later in the
    tick (`ramp.step`); this only carries them.
    """
    failed = before.failed_recoveries if before else 0
    until = before.cooldown_until if before else None
    was = before.state if before else None
    ramp = before.ramp if before else None
    probation = before.probation_until if before else None
    on_probation = probation is not None and now < probation
    began = before.recovery_started if before else None
    if probation is not None and not on_probation and was in (HEALTHY, DEGRADED):
        # Seen passing through all of its probation: the count starts over now, whatever
        # this tick's verdict (a failure from here on is a plain one).
        failed, probation, began = 0, None, None
    if view.state == DRAINED:
        return Life(DRAINED, None, until, failed)
    if view.state == UNHEALTHY:
        if was == RECOVERING or (was in (HEALTHY, DEGRADED) and on_probation):
            failed += 1
            return Life(UNHEALTHY, None, now + cooldown(recovery, failed), failed,
                             RECOVERY_FAILED)
        return Life(UNHEALTHY, None, until, failed)
    if view.state == UNKNOWN:
        # Keep the ramp: after a restart the cluster resumes its recovery where it stood,
        # instead of starting over or snapping to its full share.
        return Life(UNKNOWN, began, until, failed, ramp=ramp, probation_until=probation)
    passing = _passing_state(view)
    if not started:
        return Life(passing, None, until, failed)
    if was in (HEALTHY, DEGRADED) or (was == UNKNOWN and ramp is None
                                      and before is not None
                                      and before.share > SERVING_SHARE):
        # Served until now (or until its verdict lapsed: a restart, a reload that changed its
        # checks): it is not cold, so there is nothing to ramp.
        limit = before.guard if before is not None else None
        if on_probation:
            return Life(passing, began, until, failed, probation_until=probation,
                             guard=limit)
        # Through its probation (seen above; or here, back from a lapse of verdicts in which
        # it ended): the failure count starts over. Never recovering: nothing to reset.
        return Life(passing, None, until, 0 if probation is not None else failed,
                         guard=limit)
    if was in (RECOVERING, UNKNOWN) and ramp is not None:
        return Life(RECOVERING, began, until, failed, RESUMED if was == UNKNOWN else None,
                         ramp=ramp)
    # Unhealthy, waiting, drained, new or unknown without traffic: through the gate.
    return Life(WAITING, None, until, failed)


def finish(life: Life, recovery: Recovery, now: float) -> Life:
    """A recovering cluster whose ramp reached its target is healthy, on probation for one
    more slow start: a failure then still counts as a failed recovery, so a cluster that
    flaps slower than its ramp is damped too."""
    ramp = life.ramp
    if life.state != RECOVERING or ramp is None or ramp.level < 1.0:
        return life
    # An adaptive ramp reached its target, not necessarily the capacity its cluster is
    # configured with: a cold cluster may still serve less. What its signals allowed stays
    # as its limit, lifted once the signals show it no longer binds.
    # A ramp that went at the timed pace for want of signals knows nothing of that, and a
    # timed one assumes the configured capacity: neither leaves a limit.
    steered = ramp.limit is not None and ramp.action in STEERED
    limit = replace(
        ramp, action="hold", reason="ramp done; its limit stays until it no longer binds") \
        if steered else None
    return replace(life, state=HEALTHY, event=RECOVERED, ramp=None, cooldown_until=None,
                   probation_until=now + recovery.slow_start, guard=limit)


def demote(views: Sequence[ClusterView], lives: dict[str, Life],
           slots: int) -> dict[str, Life]:
    """When more ramps run than there are slots (ramps resumed after a lapse of verdicts
    found their slots taken meanwhile), the latest resumed go back to waiting, with the share
    they carry, so no more ramps run than there are slots. ``views``: at least every
    recovering cluster (`advance_all`'s ``special``)."""
    busy = sum(lives[v.name].state == RECOVERING for v in views)
    if busy <= slots:
        return lives
    resumed = sorted((v for v in views if lives[v.name].event == RESUMED),
                     key=rank_key, reverse=True)[:busy - slots]
    demoted = dict(lives)
    for view in resumed:
        life = lives[view.name]
        demoted[view.name] = Life(WAITING, None, life.cooldown_until, life.failed_recoveries)
    return demoted


def admit(views: Sequence[ClusterView], lives: dict[str, Life], slots: int, now: float,
          held: Mapping[str, float]) -> dict[str, Life]:
    """Give free recovery slots to waiting clusters past their cooldown, best ranked first.
    ``held``: the share each cluster carries now; a ramp starts from it. ``views``: at least
    every recovering or waiting cluster (`advance_all`'s ``special``), in name order."""
    lives = demote(views, lives, slots)
    free = slots - sum(lives[v.name].state == RECOVERING for v in views)
    if free <= 0:
        return lives
    ready = [v for v in views if lives[v.name].state == WAITING
             and not cooling(lives[v.name], now)]
    admitted = dict(lives)
    for view in sorted(ready, key=rank_key)[:free]:
        life = lives[view.name]
        ramp = Ramp(0.0, held=held.get(view.name, 0.0), changed_at=now, since=now,
                         action="start", reason="took a recovery slot")
        admitted[view.name] = Life(RECOVERING, now, life.cooldown_until,
                                        life.failed_recoveries, RECOVERY_START, ramp=ramp)
    return admitted


_PLAIN = {state: Life(state) for state in (HEALTHY, DEGRADED, UNHEALTHY, DRAINED)}
"""The life of most clusters on most ticks, shared: at 10,000 clusters a Life apiece would
cost more than the rest of the lifecycle."""
_PASSING = frozenset({HEALTHY, DEGRADED})
_NO_FAILURES = 0


def advance_all(views: Sequence[ClusterView], before: Mapping[str, ClusterPlan],
                recovery: Recovery, now: float, *,
                started: bool) -> tuple[dict[str, Life], list[ClusterView]]:
    """`advance` for every view (in their order), and the views whose cluster is anything
    but plainly healthy, degraded, unhealthy or drained: waiting, recovering, without a
    verdict, on probation, limited by a guard, or with an event this tick. Only those can
    ramp, be admitted or held; the rest of the tick looks at them alone.

    A cluster in the same state as on the previous tick, with nothing else going on, comes
    out as it went in, whatever the clock says: that case is decided here without `advance`.
    """
    lives: dict[str, Life] = {}
    special: list[ClusterView] = []
    plain = _PLAIN
    for view in views:
        state = view.state
        was = before.get(view.name)
        if (was is not None and state in plain and was.probation_until is None
                and was.ramp is None and was.guard is None
                and (was.state is state or (state in _PASSING and was.state in _PASSING))):
            until, failed = was.cooldown_until, was.failed_recoveries
            # ``is``: a plain int 0, not another zero that would print differently.
            life = plain[state] if until is None and failed is _NO_FAILURES else \
                Life(state, None, until, failed)
        else:
            life = advance(view, was, recovery, now, started=started)
            if not (life.state in plain and life.event is None and life.ramp is None
                    and life.guard is None and life.probation_until is None
                    and life.recovery_started is None):
                special.append(view)
        lives[view.name] = life
    return lives, special
