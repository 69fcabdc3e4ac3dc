"""The load model: demand over time, each cluster's offered load, warmth and errored requests.

Between two instants where something changes (a plan, a fault, a demand point) every
quantity here is linear in time: demand between its points, and warmth while it ramps. So
errors are integrated exactly, piece by piece, not sampled: the errored requests of a
cluster over a piece are the area where ``share x demand`` lies above ``capacity x warmth``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from failover.simulate.scenario import DemandPoint, LoadParams

SERVING = 1e-9
"""A share above this is traffic, not float noise (as the planner counts it)."""


class DemandCurve:
    """Requests per second over time: linear between points, flat before the first and after
    the last."""

    def __init__(self, points: Sequence[DemandPoint]) -> None:
        if not points:
            msg = "a demand curve needs at least one point"
            raise ValueError(msg)
        self._at = [point.at for point in points]
        self._rps = [point.rps for point in points]

    @classmethod
    def constant(cls, rps: float) -> DemandCurve:
        return cls([DemandPoint(at=0.0, rps=rps)])

    @property
    def breakpoints(self) -> list[float]:
        return list(self._at)

    def __call__(self, t: float) -> float:
        right = bisect.bisect_right(self._at, t)
        if right == 0:
            return self._rps[0]
        if right == len(self._at):
            return self._rps[-1]
        t0, t1 = self._at[right - 1], self._at[right]
        r0, r1 = self._rps[right - 1], self._rps[right]
        return r0 + (r1 - r0) * (t - t0) / (t1 - t0)


def excess_area(start: float, end: float, length: float) -> float:
    """The integral of ``max(0, e(t))`` over ``length`` for ``e`` linear from start to end."""
    if start >= 0 and end >= 0:
        return (start + end) / 2 * length
    if start <= 0 and end <= 0:
        return 0.0
    positive, negative = (start, end) if start > 0 else (end, start)
    return positive * positive / (positive - negative) * length / 2


@dataclass
class ClusterLoad:
    """Mutable on purpose: updated at every plan, fault and demand point of a run."""

    capacity_rps: float | None
    """None: unlimited."""
    warmth: float
    """Fraction of ``capacity_rps`` it can serve now, ``cold_factor`` to 1."""
    share: float = 0.0
    down: bool = False
    idle_since: float | None = None
    """When it stopped serving; None while it serves."""

    @property
    def serving(self) -> bool:
        return self.share > SERVING and not self.down

    @property
    def cold(self) -> bool:
        """Not back to its full capacity yet."""
        return self.warmth < 1

    def effective_capacity(self) -> float | None:
        """Requests/s it serves without errors now: 0 when down, None when unlimited."""
        if self.down:
            return 0.0
        return None if self.capacity_rps is None else self.capacity_rps * self.warmth


@dataclass
class Requests:
    """Request counts over a run (rps integrated over seconds)."""

    total: float = 0.0
    down: float = 0.0
    """Sent to clusters that were down: every one errors."""
    overload: float = 0.0
    """Beyond a cluster's effective capacity."""
    unplaced: float = 0.0
    """Sent nowhere: the shares summed below 1 (the planner shed them)."""
    dependency: float = 0.0
    """Failed by the shared dependency (model v2)."""

    @property
    def errored(self) -> float:
        return self.down + self.overload + self.unplaced + self.dependency


@dataclass
class Peaks:
    """Highest offered load / effective capacity per cluster, while it is up."""

    overall: dict[str, float] = field(default_factory=dict)
    recovery: dict[str, float] = field(default_factory=dict)
    """Only over times the cluster is recovering (see ``engine``)."""


class LoadModel:
    def __init__(self, params: LoadParams) -> None:
        self.params = params
        self.clusters: dict[str, ClusterLoad] = {}
        self.requests = Requests()
        self.peaks = Peaks()

    def add(self, name: str, capacity_rps: float | None, now: float, *, warm: bool) -> None:
        """A cluster joins: warm if it was serving before the run, cold if just provisioned."""
        warmth = 1.0 if warm else self.params.cold_factor
        self.clusters[name] = ClusterLoad(capacity_rps, warmth, idle_since=now)

    def set_shares(self, shares: Mapping[str, float], now: float) -> None:
        for name, cluster in self.clusters.items():
            self._update(cluster, now, share=shares.get(name, 0.0))

    def set_down(self, name: str, down: bool, now: float) -> None:
        self._update(self.clusters[name], now, down=down)

    def _update(self, cluster: ClusterLoad, now: float, *, share: float | None = None,
                down: bool | None = None) -> None:
        was = cluster.serving
        cluster.share = cluster.share if share is None else share
        cluster.down = cluster.down if down is None else down
        if was and not cluster.serving:
            cluster.idle_since = now
        elif cluster.serving and not was:
            cluster.idle_since = None

    def unplaced(self) -> float:
        """Fraction of demand no cluster gets."""
        gap = 1.0 - math.fsum(c.share for c in self.clusters.values())
        return gap if gap > SERVING else 0.0

    def ratio(self, name: str, demand_rps: float) -> float | None:
        """Offered load / effective capacity now; None when down, unlimited or unloaded."""
        cluster = self.clusters[name]
        capacity = cluster.effective_capacity()
        if not capacity or cluster.share <= SERVING:
            return None
        return cluster.share * demand_rps / capacity

    def advance(self, t0: float, t1: float, demand: DemandCurve, *,
                recovering: Collection[str] = ()) -> None:
        """Integrate requests over [t0, t1], where shares and faults are constant and demand is
        linear, then move each cluster's warmth to ``t1``. ``recovering``: clusters whose
        peaks also count as recovery peaks."""
        length = t1 - t0
        if length <= 0:
            return
        d0, d1 = demand(t0), demand(t1)
        sent = (d0 + d1) / 2 * length
        self.requests.total += sent
        self.requests.unplaced += self.unplaced() * sent
        for name, cluster in self.clusters.items():
            if cluster.share <= SERVING:
                pass
            elif cluster.down:
                self.requests.down += cluster.share * sent
            elif cluster.capacity_rps is not None:
                self._overload(name, cluster, cluster.capacity_rps, t0, t1, d0, d1,
                               recovering=name in recovering)
            self._warm(cluster, t1, length)

    def _rate(self) -> float:
        """Warmth gained per second of serving."""
        if self.params.warmup <= 0:
            return math.inf
        return (1.0 - self.params.cold_factor) / self.params.warmup

    def _warmth_after(self, cluster: ClusterLoad, seconds: float) -> float:
        """Its warmth after serving ``seconds`` more."""
        rate = self._rate()
        if cluster.warmth >= 1 or math.isinf(rate):
            return 1.0
        return min(1.0, cluster.warmth + rate * seconds)

    def _overload(self, name: str, cluster: ClusterLoad, capacity: float, t0: float,
                  t1: float, d0: float, d1: float, *, recovering: bool) -> None:
        rate = self._rate()
        # Warmth is linear until it reaches 1, then flat: split the piece there.
        full_at = t0 + (1 - cluster.warmth) / rate if cluster.warmth < 1 else t1
        cuts = [t0, full_at, t1] if t0 < full_at < t1 else [t0, t1]
        for a, b in itertools.pairwise(cuts):
            ends = []
            for t in (a, b):
                offered = cluster.share * (d0 + (d1 - d0) * (t - t0) / (t1 - t0))
                warmth = self._warmth_after(cluster, t - t0)
                ends.append((offered, capacity * warmth))
            (offered_a, capacity_a), (offered_b, capacity_b) = ends
            self.requests.overload += excess_area(offered_a - capacity_a,
                                                  offered_b - capacity_b, b - a)
            # offered / capacity is monotonic on a piece: its ends hold the peak.
            peak = max(offered_a / capacity_a, offered_b / capacity_b)
            self.peaks.overall[name] = max(self.peaks.overall.get(name, 0.0), peak)
            if recovering:
                self.peaks.recovery[name] = max(self.peaks.recovery.get(name, 0.0), peak)

    def _warm(self, cluster: ClusterLoad, t1: float, length: float) -> None:
        if cluster.serving:
            cluster.warmth = self._warmth_after(cluster, length)
        elif cluster.idle_since is not None and t1 - cluster.idle_since >= \
                self.params.cold_after:
            cluster.warmth = self.params.cold_factor
