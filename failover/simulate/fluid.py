"""Load model v2: a fluid model of clusters under overload, stepped on a fixed grid.

Per step of ``step`` seconds, with demand λ (fresh requests/s) and the shares of the plan in
force (docs/simulate.md gives each mechanism with its source):

- **Retries.** Clients retry a failed attempt through the same load balancer, so attempts
  ``A = λ + retries`` are split by the shares like fresh requests, and what the shares leave
  unplaced fails at once. A failure of attempt k < ``max_attempts`` comes back one step later
  as attempt k + 1, within a budget of ``budget x λ`` retries per second; a request errors
  when its last attempt fails, or when the budget drops its retry.
- **Congestion collapse.** A cluster with capacity C offered A > C serves
  ``S = max(0, (C - c A) / (1 - c))``: refusing a request costs ``c = reject_cost`` of
  serving one, so goodput falls below capacity as load rises past it, to nothing at C / c.
  With retries this is metastable: once tipped over, the retries of its own failures keep it
  overloaded until λ falls well below C (the hysteresis of Bronson et al. and Huang et al.).
- **Cold caches.** A cluster's hit ratio h rises toward ``hit_ratio`` with the misses it
  serves (a miss the dependency fails fills nothing): per request served,
  ``h <- H - (H - h) exp(-requests / N)`` with N = capacity x warmup / 3 (so ``warmup``
  seconds at full capacity fill it to 95 %); it drops to 0 after ``cold_after`` without
  serving. A miss costs more than a hit, so capacity is
  ``C(h) = C cost(H) / cost(h)``, ``cost(h) = h k + (1 - h)``, with k set so that
  ``C(0) = cold_factor x C``.
- **Shared dependency.** The misses of the clusters that depend on it load it; past its
  capacity it collapses as a cluster does, and a miss it fails is a failed request, after
  costing its cluster a full miss: every cluster that depends on it loses capacity.
- **Down.** Every attempt sent to a down cluster fails; it completes nothing.

It also gives what a Prometheus would see (utilization, error ratio, latency inflation, the
dependency's load) and how often an HTTP health check of each cluster fails.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from failover.model import Sample
from failover.simulate.load import SERVING, DemandCurve, Peaks, Requests
from failover.simulate.scenario import LoadParams

WARM = 0.99
"""A cluster serving this fraction of its warm capacity or more counts as warm (the hit ratio
approaches its steady state and never quite gets there)."""
SERVERS = 16
"""Workers per cluster in the queueing delay estimate (Sakasegawa's M/M/c approximation)."""
MAX_LATENCY_RATIO = 50.0


def goodput(offered: float, capacity: float, reject_cost: float) -> float:
    """Requests/s served of ``offered`` by a server of ``capacity`` that pays ``reject_cost``
    of a request's work to refuse one."""
    if offered <= capacity:
        return offered
    return max(0.0, (capacity - reject_cost * offered) / (1.0 - reject_cost))


def queueing_inflation(utilization: float) -> float:
    """Latency over unloaded latency: 1 + Wq / S for M/M/c, Sakasegawa's approximation."""
    if utilization >= 1:
        return MAX_LATENCY_RATIO
    rho = max(0.0, utilization)
    wait = float(rho ** (math.sqrt(2 * (SERVERS + 1)) - 1)) / (SERVERS * (1 - rho))
    return min(MAX_LATENCY_RATIO, 1.0 + wait)


@dataclass
class Warmth:
    """The cache arithmetic of one model, from its parameters."""

    hit_ratio: float
    cold_factor: float
    warmup: float
    hit_cost: float = field(init=False)

    def __post_init__(self) -> None:
        # cost(H) / cost(0) = cold_factor, with a miss costing 1.
        self.hit_cost = (self.cold_factor - (1 - self.hit_ratio)) / self.hit_ratio

    def cost(self, hits: float) -> float:
        return hits * self.hit_cost + (1 - hits)

    def capacity(self, capacity: float, hits: float) -> float:
        return capacity * self.cost(self.hit_ratio) / self.cost(hits)

    def fill(self, hits: float, filled: float, capacity: float) -> float:
        """The hit ratio after ``filled`` more misses were served (and cached).

        A cache holds what its misses brought in; hits change nothing. Served requests of a
        cluster that misses ``1 - h`` of them fill ``(1 - h)`` each, so counted in requests
        this is ``h <- H - (H - h) exp(-requests / N)``: the independent-reference model's
        warm-up (When is the Cache Warm?, HotCloud'20) with N = capacity x warmup / 3.
        """
        if self.warmup <= 0:
            return self.hit_ratio
        requests_per_e = capacity * self.warmup / 3.0
        requests = filled / max(1.0 - hits, 1.0 - self.hit_ratio)
        return self.hit_ratio - (self.hit_ratio - hits) * math.exp(-requests / requests_per_e)


@dataclass
class FluidCluster:
    """Mutable on purpose: stepped many times a second of simulated time."""

    capacity_rps: float | None
    hits: float
    share: float = 0.0
    down: bool = False
    idle: float = 0.0
    """Seconds it has not served (share 0 or down)."""
    depends: bool = False
    offered: float = 0.0
    """Attempts/s in the last step, retries included."""
    served: float = 0.0
    completed: float = 0.0
    """Goodput of the last step: requests served and not failed by the dependency."""
    warmth_now: float = 1.0
    """Capacity now over warm capacity (0 while down)."""

    @property
    def serving(self) -> bool:
        return self.share > SERVING and not self.down

    @property
    def warmth(self) -> float:
        return self.warmth_now

    @property
    def cold(self) -> bool:
        return self.capacity_rps is not None and self.warmth_now < WARM

    def effective_capacity(self) -> float | None:
        if self.down:
            return 0.0
        if self.capacity_rps is None:
            return None
        return self.capacity_rps * self.warmth_now


@dataclass
class Shared:
    capacity_rps: float
    names: frozenset[str] | None
    load: float = 0.0
    served: float = 0.0


class FluidModel:
    """Same calls as the v1 `LoadModel`, plus the signals and health-check failure odds."""

    def __init__(self, params: LoadParams) -> None:
        self.params = params
        self.warm = Warmth(params.hit_ratio, params.cold_factor, params.warmup)
        self.clusters: dict[str, FluidCluster] = {}
        self.requests = Requests()
        self.peaks = Peaks()
        spec = params.shared
        self.shared = None if spec is None else Shared(
            spec.capacity_rps, None if spec.clusters is None else frozenset(spec.clusters))
        self.retrying = [0.0] * (params.retries.max_attempts - 1)
        """Attempts/s of attempt 2, 3, ... coming this step (failures of the last one)."""
        self.clock: float | None = None
        self.demand_now = 0.0

    # -- the v1 calls --------------------------------------------------------------------

    def add(self, name: str, capacity_rps: float | None, now: float, *, warm: bool) -> None:
        spec = self.params.shared
        depends = spec is not None and (spec.clusters is None or name in spec.clusters)
        hits = self.params.hit_ratio if warm else 0.0
        cluster = FluidCluster(capacity_rps, hits, depends=depends)
        cluster.warmth_now = self._warmth(cluster)
        self.clusters[name] = cluster

    def set_shares(self, shares: Mapping[str, float], now: float) -> None:
        for name, cluster in self.clusters.items():
            cluster.share = shares.get(name, 0.0)

    def set_down(self, name: str, down: bool, now: float) -> None:
        cluster = self.clusters[name]
        cluster.down = down
        cluster.warmth_now = self._warmth(cluster)

    def due(self, t1: float) -> bool:
        """Whether a step ends by ``t1`` (else `advance` would do nothing)."""
        return self.clock is None or self.clock + self.params.step <= t1 + 1e-9

    def advance(self, t0: float, t1: float, demand: DemandCurve, *,
                recovering: Collection[str] = ()) -> None:
        """Run every step that ends by ``t1``, with the shares and faults set now."""
        step = self.params.step
        if self.clock is None:
            self.clock = t0
        while self.clock + step <= t1 + 1e-9:
            self._step(self.clock, step, demand(self.clock + step / 2), recovering)
            self.clock += step

    # -- v2 ----------------------------------------------------------------------------

    def failure_ratio(self, name: str) -> float:
        """Fraction of the attempts the cluster failed in the last step (0 unloaded)."""
        cluster = self.clusters[name]
        if cluster.down:
            return 1.0
        if cluster.offered <= 0:
            return 0.0
        return max(0.0, 1.0 - cluster.completed / cluster.offered)

    def sample(self, name: str, at: float) -> Sample | None:
        """What a Prometheus scraping the cluster reads now; None while it is down (its
        service discovery is broken, so is the scrape)."""
        cluster = self.clusters[name]
        if cluster.down:
            return None
        capacity = cluster.effective_capacity()
        utilization = 0.0 if capacity is None else min(1.0, cluster.offered / capacity) \
            if capacity > 0 else 1.0
        return Sample(at, utilization, self.failure_ratio(name),
                      queueing_inflation(utilization))

    def shared_sample(self, at: float) -> Sample | None:
        shared = self.shared
        if shared is None:
            return None
        utilization = min(1.0, shared.load / shared.capacity_rps)
        errors = 0.0 if shared.load <= 0 else max(0.0, 1 - shared.served / shared.load)
        return Sample(at, utilization, errors, queueing_inflation(utilization))

    # -- the step ------------------------------------------------------------------------

    def _warmth(self, cluster: FluidCluster) -> float:
        if cluster.down:
            return 0.0
        if cluster.capacity_rps is None:
            return 1.0
        return self.warm.capacity(1.0, cluster.hits)

    def _step(self, t: float, dt: float, fresh: float, recovering: Collection[str]) -> None:
        params = self.params
        self.demand_now = fresh
        attempts = fresh + math.fsum(self.retrying)
        placed = math.fsum(c.share for c in self.clusters.values())
        unplaced_share = max(0.0, 1.0 - placed) if placed < 1 - SERVING else 0.0
        fails = {"down": 0.0, "overload": 0.0, "unplaced": attempts * unplaced_share,
                 "dependency": 0.0}
        misses = 0.0
        for cluster in self.clusters.values():
            cluster.offered = cluster.share * attempts
            if cluster.down:
                cluster.served = cluster.completed = 0.0
                fails["down"] += cluster.offered
                continue
            if cluster.capacity_rps is None:
                cluster.served = cluster.offered
            else:
                capacity = self.warm.capacity(cluster.capacity_rps, cluster.hits)
                cluster.served = goodput(cluster.offered, capacity, params.reject_cost)
                fails["overload"] += cluster.offered - cluster.served
            if cluster.depends:
                misses += cluster.served * (1 - cluster.hits)
        success = 1.0
        if self.shared is not None:
            self.shared.load = misses
            self.shared.served = goodput(misses, self.shared.capacity_rps, params.reject_cost)
            success = self.shared.served / misses if misses > 0 else 1.0
        for cluster in self.clusters.values():
            if cluster.down:
                continue
            lost = cluster.served * (1 - cluster.hits) * (1 - success) if cluster.depends \
                else 0.0
            cluster.completed = cluster.served - lost
            fails["dependency"] += lost
        failed = math.fsum(fails.values())
        p = min(1.0, failed / attempts) if attempts > 0 else 0.0
        self._retry(fresh, p, fails, failed, dt)
        for name, cluster in self.clusters.items():
            self._account(name, cluster, fresh, dt, recovering)

    def _retry(self, fresh: float, p: float, fails: Mapping[str, float], failed: float,
               dt: float) -> None:
        """Failures of this step: retried next step within the budget, else user errors,
        which are split by cause in proportion to what failed."""
        generations = [fresh, *self.retrying]
        failures = [rate * p for rate in generations]
        wanted = math.fsum(failures[:-1])
        budget = self.params.retries.budget
        allowed = math.inf if budget is None else budget * fresh
        kept = 1.0 if wanted <= allowed else allowed / wanted
        self.retrying = [rate * kept for rate in failures[:-1]]
        errored = (failures[-1] + wanted * (1 - kept)) * dt
        self.requests.total += fresh * dt
        if failed > 0 and errored > 0:
            for cause, amount in fails.items():
                part = errored * amount / failed
                if cause == "down":
                    self.requests.down += part
                elif cause == "overload":
                    self.requests.overload += part
                elif cause == "unplaced":
                    self.requests.unplaced += part
                else:
                    self.requests.dependency += part

    def _account(self, name: str, cluster: FluidCluster, fresh: float, dt: float,
                 recovering: Collection[str]) -> None:
        """Warm-up, cooling and peaks after a step."""
        if cluster.capacity_rps is not None and not cluster.down:
            filled = cluster.completed - cluster.served * cluster.hits  # misses served
            cluster.hits = self.warm.fill(cluster.hits, max(0.0, filled) * dt,
                                          cluster.capacity_rps)
        if cluster.serving:
            cluster.idle = 0.0
        else:
            cluster.idle += dt
            if cluster.idle >= self.params.cold_after - 1e-9:
                cluster.hits = 0.0
        capacity = cluster.effective_capacity()
        cluster.warmth_now = self._warmth(cluster)
        if capacity is None or cluster.down or not cluster.share > SERVING:
            return
        if capacity <= 0:
            return
        peak = cluster.offered / capacity
        self.peaks.overall[name] = max(self.peaks.overall.get(name, 0.0), peak)
        if name in recovering:
            self.peaks.recovery[name] = max(self.peaks.recovery.get(name, 0.0), peak)
