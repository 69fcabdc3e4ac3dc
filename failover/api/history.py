"""Each cluster's share over the last minutes, for the status page's sparklines: in memory,
bounded by the window and by the clusters of the current plan."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from failover.model import Plan

WINDOW = 900.0
"""Seconds of history kept: the last 15 minutes, long enough to show an incident's
evacuation and the ramp back, short enough to stay small at fleet scale."""

STEP = 5.0
"""Seconds per point: the share kept for a step is the last one planned in it, so a
sparkline has at most WINDOW / STEP points whatever the tick."""


@dataclass(frozen=True, slots=True)
class Series:
    """``points`` are (step, share) pairs where the share changed, oldest first; the share
    holds from its step until the next point's. ``first`` is the window's first step."""

    first: int
    last: int
    points: tuple[tuple[int, float], ...]


class ShareHistory:
    """Fed every published plan. A plan stays in force until the next one, so between two
    plans a share carries forward; storing only changes keeps a steady cluster at one point
    and a thousand clusters at a few hundred KB in the worst case."""

    def __init__(self, window: float = WINDOW, step: float = STEP) -> None:
        self.step = step
        self.steps = int(window // step)
        self._points: dict[str, deque[tuple[int, float]]] = {}
        self._frozen: dict[str, tuple[tuple[int, float], ...]] = {}
        """Each cluster's points as last handed out, until they change: a reader that keeps
        what it drew from them can tell by identity that nothing changed."""
        self._now = 0

    def record(self, plan: Plan) -> None:
        now = self._now = int(plan.at // self.step)
        oldest = now - self.steps + 1
        points = self._points
        seen: set[str] = set()
        for c in plan.clusters:
            seen.add(c.name)
            kept = points.get(c.name)
            if kept is None:
                points[c.name] = deque([(now, c.share)])
                continue
            last_step, last_share = kept[-1]
            if last_share != c.share:
                if last_step == now:
                    kept[-1] = (now, c.share)
                else:
                    kept.append((now, c.share))
                self._frozen.pop(c.name, None)
            # The last point before the window says what held at its start: keep it.
            while len(kept) > 1 and kept[1][0] <= oldest:
                kept.popleft()
                self._frozen.pop(c.name, None)
        # A cluster gone from the plan is gone from the page: nothing to draw it for.
        if len(points) != len(seen):
            for name in [name for name in points if name not in seen]:
                del points[name]
                self._frozen.pop(name, None)

    def series(self, cluster: str) -> Series | None:
        kept = self._points.get(cluster)
        if kept is None:
            return None
        frozen = self._frozen.get(cluster)
        if frozen is None:
            frozen = self._frozen[cluster] = tuple(kept)
        return Series(self._now - self.steps + 1, self._now, frozen)
