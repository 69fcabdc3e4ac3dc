"""Each cluster's planner state: unhealthy -> waiting -> recovering -> healthy, with cooldowns.

After its ramp a cluster stays on probation for one more ``slow_start``: failing then counts
as a failed recovery too, and the count of consecutive failures only resets once it is past.

Health says whether a cluster passes; this module says what the planner does about it: a
cluster that passes again after failing waits for a recovery slot, ramps up while it holds
one, and if it fails during the ramp may not try again before a cooldown that doubles with
each consecutive failed recovery (flap damping).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from failover.config.models import Recovery
from failover.planner.model import ClusterPlan, ClusterState, ClusterView
from failover.planner.rank import rank_key

S = ClusterState
SERVING_SHARE = 1e-9
"""A share above this is traffic, not float noise."""


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


def cooldown(recovery: Recovery, failed: int) -> float:
    """Seconds to wait after the ``failed``-th consecutive failed recovery (from 1)."""
    return float(min(recovery.cooldown * 2 ** max(failed - 1, 0), recovery.max_cooldown))


def cooling(life: Life, now: float) -> bool:
    """Still inside the cooldown after a failed recovery."""
    return life.cooldown_until is not None and now < life.cooldown_until


def ramp_fraction(life: Life, recovery: Recovery, now: float) -> float:
    """How far along its slow start a recovering cluster is, 0..1; 1 for any other state."""
    if life.state != S.RECOVERING or life.recovery_started is None:
        return 1.0
    if recovery.slow_start <= 0:
        return 1.0
    return min(1.0, max(0.0, (now - life.recovery_started) / recovery.slow_start))


def _passing_state(view: ClusterView) -> ClusterState:
    # Health reports healthy or degraded; the gate's own states arriving in a view are
    # taken as plain passing.
    return view.state if view.state in (S.HEALTHY, S.DEGRADED) else S.HEALTHY


def advance(  # noqa: PLR0911 - one return per transition reads best
        view: ClusterView, before: ClusterPlan | None, recovery: Recovery, now: float, *,
        started: bool) -> Life:
    """The cluster's state from health's verdict and its planner state on the previous tick.

    ``started``: a plan has been actuated. Before that, passing clusters are simply in (the
    first plan is the base weights of the passing clusters, no ramp).
    """
    failed = before.failed_recoveries if before else 0
    until = before.cooldown_until if before else None
    was = before.state if before else None
    if view.state == S.DRAINED:
        return Life(S.DRAINED, None, until, failed)
    on_probation = (was in (S.HEALTHY, S.DEGRADED) and before is not None
                    and before.recovery_started is not None)
    if view.state == S.UNHEALTHY:
        if was == S.RECOVERING or on_probation:
            failed += 1
            return Life(S.UNHEALTHY, None, now + cooldown(recovery, failed), failed,
                        "recovery_failed")
        return Life(S.UNHEALTHY, None, until, failed)
    if view.state == S.UNKNOWN:
        # Keep a ramp's start: after a restart the cluster resumes its recovery where the
        # clock says it is, instead of starting over or snapping to its full share.
        started_at = before.recovery_started if before else None
        return Life(S.UNKNOWN, started_at, until, failed)
    passing = _passing_state(view)
    if not started:
        return Life(passing, None, until, failed)
    if was in (S.HEALTHY, S.DEGRADED):
        if on_probation and before is not None and before.recovery_started is not None \
                and now < before.recovery_started + 2 * recovery.slow_start:
            return Life(passing, before.recovery_started, until, failed)
        # Through its probation (or never recovering): the failure count starts over.
        return Life(passing, None, until, 0 if on_probation else failed)
    if was in (S.RECOVERING, S.UNKNOWN) and before is not None \
            and before.recovery_started is not None:
        life = Life(S.RECOVERING, before.recovery_started, until, failed,
                    "resumed" if was == S.UNKNOWN else None)
        if ramp_fraction(life, recovery, now) >= 1.0:
            # On probation for one more slow start: a failure now still counts as a failed
            # recovery, so a cluster that flaps slower than its ramp is damped too.
            return Life(passing, before.recovery_started, None, failed, "recovered")
        return life
    if was == S.UNKNOWN and before is not None and before.share > SERVING_SHARE:
        # Served until its verdict lapsed (a restart, a reload that changed its checks): it
        # is not cold, so there is nothing to ramp. Traffic a freeze or a spill left on a
        # failing cluster does not count: it failed there, so the cluster is cold all the same.
        return Life(passing, None, until, failed)
    # Unhealthy, waiting, drained, new or unknown without traffic: through the gate.
    return Life(S.WAITING, None, until, failed)


def admit(views: Sequence[ClusterView], lives: dict[str, Life], recovery: Recovery,
          now: float) -> dict[str, Life]:
    """Give free recovery slots to waiting clusters past their cooldown, best ranked first."""
    busy = sum(life.state == S.RECOVERING for life in lives.values())
    free = recovery.max_concurrent - busy
    if free < 0:
        # Ramps resumed after a lapse of verdicts may find their slots taken meanwhile:
        # the latest resumed go back to waiting, so the cap always holds.
        resumed = sorted((v for v in views if lives[v.name].event == "resumed"),
                         key=rank_key, reverse=True)[:-free]
        demoted = dict(lives)
        for view in resumed:
            life = lives[view.name]
            demoted[view.name] = Life(S.WAITING, None, life.cooldown_until,
                                      life.failed_recoveries)
        return demoted
    if free == 0:
        return lives
    ready = [v for v in views if lives[v.name].state == S.WAITING
             and not cooling(lives[v.name], now)]
    admitted = dict(lives)
    for view in sorted(ready, key=rank_key)[:free]:
        life = lives[view.name]
        admitted[view.name] = Life(S.RECOVERING, now, life.cooldown_until,
                                   life.failed_recoveries, "recovery_start")
    return admitted
