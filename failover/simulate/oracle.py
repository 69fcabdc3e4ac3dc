"""``requests.floor``: the fewest errored requests any policy could have on a scenario.

An oracle that knows every fault and capacity ahead does no better than this, because each
part of it is an upper bound on what any policy can serve:

- a cluster's capacity is at most what it would have had serving its full capacity ever since
  it came up (warmth grows only with the misses a cluster serves, no more than its capacity
  allows nor than the shared dependency serves; a cluster goes cold only by not serving, and
  a down one serves nothing);
- what the clusters together serve is at most the sum of those capacities, with the misses
  they send a shared dependency at most its capacity (it serves no more, and a miss it fails
  is a failed request);
- a request can only be served between its arrival and its last retry: the requests that
  bound leaves unserved, earliest deadline first (which serves the most of any order, on one
  server of varying capacity), are the floor.

Steps are the model's own; within a step, demand and capacity are taken at their means,
which bounds the errors of the exact integral from below too (the positive part is convex).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from failover.simulate.fluid import Warmth
from failover.simulate.load import DemandCurve
from failover.simulate.scenario import LoadParams


@dataclass
class _Best:
    capacity_rps: float | None
    warmth: float
    """v1: fraction of capacity; v2: hit ratio."""
    down: bool = False
    idle: float = 0.0
    depends: bool = False
    """It sends its misses to the shared dependency."""


class Oracle:
    """Stepped beside a model run; fed the same faults and additions, never the plans."""

    def __init__(self, params: LoadParams, step: float) -> None:
        self.params = params
        self.step = step
        self.v2 = params.model == "v2"
        self.warm = Warmth(params.hit_ratio, params.cold_factor, params.warmup)
        self.window = params.retries.max_attempts - 1 if self.v2 else 0
        """Steps after its arrival in which a request can still be served (its retries)."""
        self.clusters: dict[str, _Best] = {}
        spec = params.shared if self.v2 else None
        self.dependency = None if spec is None else spec.capacity_rps
        self.depends = None if spec is None or spec.clusters is None else set(spec.clusters)
        self.pending: deque[list[float]] = deque()
        """[last step index it can be served in, requests]."""
        self.index = 0
        self.clock: float | None = None
        self.floor = 0.0

    def add(self, name: str, capacity_rps: float | None, *, warm: bool) -> None:
        if self.v2:
            depends = self.dependency is not None and (self.depends is None
                                                       or name in self.depends)
            self.clusters[name] = _Best(capacity_rps, self.params.hit_ratio if warm else 0.0,
                                        depends=depends)
        else:
            self.clusters[name] = _Best(capacity_rps, 1.0 if warm else self.params.cold_factor)

    def set_down(self, name: str, down: bool) -> None:
        self.clusters[name].down = down

    def advance(self, t1: float, demand: DemandCurve, start: float = 0.0) -> None:
        if self.clock is None:
            self.clock = start
        while self.clock + self.step <= t1 + 1e-9:
            self._step(self.clock, demand)
            self.clock += self.step

    def _capacity(self, best: _Best) -> tuple[float, float]:
        """(requests/s it could serve at most, of which misses) over this step."""
        assert best.capacity_rps is not None  # noqa: S101 - unlimited handled by the caller
        if not self.v2:
            end = min(1.0, best.warmth + self._v1_rate() * self.step)
            return best.capacity_rps * (best.warmth + end) / 2, 0.0
        capacity = self.warm.capacity(best.capacity_rps, best.warmth)
        return capacity, capacity * (1 - best.warmth)

    def _v1_rate(self) -> float:
        warmup = self.params.warmup
        return math.inf if warmup <= 0 else (1.0 - self.params.cold_factor) / warmup

    def _bound(self) -> float:
        """Requests/s all clusters together could serve at most this step."""
        total = misses = 0.0
        for name, best in self.clusters.items():
            if best.down:
                continue
            if best.capacity_rps is None:
                return math.inf
            capacity, missing = self._capacity(best)
            if self.dependency is not None and (self.depends is None or name in self.depends):
                total += capacity - missing
                misses += missing
            else:
                total += capacity
        if self.dependency is not None:
            total += min(misses, self.dependency)
        return total

    def _step(self, t: float, demand: DemandCurve) -> None:
        dt = self.step
        self.pending.append([self.index + self.window, demand(t + dt / 2) * dt])
        room = self._bound() * dt
        while self.pending and room > 0:
            head = self.pending[0]
            served = min(room, head[1])
            head[1] -= served
            room -= served
            if head[1] <= 1e-12:
                self.pending.popleft()
        while self.pending and self.pending[0][0] <= self.index:
            self.floor += self.pending.popleft()[1]
        self.index += 1
        for best in self.clusters.values():
            self._warm(best, dt)

    def _warm(self, best: _Best, dt: float) -> None:
        if best.down:
            best.idle += dt
            if best.idle >= self.params.cold_after - 1e-9:
                best.warmth = 0.0 if self.v2 else self.params.cold_factor
            return
        best.idle = 0.0
        if best.capacity_rps is None:
            return
        if self.v2:
            capacity = self.warm.capacity(best.capacity_rps, best.warmth)
            misses = capacity * (1 - best.warmth)
            if self.dependency is not None and best.depends:
                misses = min(misses, self.dependency)  # it fills no more than it serves
            best.warmth = self.warm.fill(best.warmth, misses * dt, best.capacity_rps)
        else:
            best.warmth = min(1.0, best.warmth + self._v1_rate() * dt)
