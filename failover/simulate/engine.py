"""The discrete-event loop: probes, planner ticks, scenario events and load on a fake clock.

Everything happens at simulated instants taken from one heap; at one instant scenario events
come first (a fault at t is seen by a probe at t), then probe results, then probe runs, then
the planner tick. Only the seeded ``random.Random`` (probe jitter) varies between seeds.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from failover import controller
from failover.config import Config, Job, all_jobs
from failover.controller import Inputs, Planner
from failover.health import HealthTracker, ProbeResult
from failover.model import Signals
from failover.planner import ClusterState, Plan, plan
from failover.planner.shortfall import ShortfallWatch, shortfall
from failover.simulate.faults import PROBE_LATENCY, Faults, probe_result
from failover.simulate.fluid import FluidCluster, FluidModel
from failover.simulate.load import SERVING, DemandCurve, LoadModel
from failover.simulate.oracle import Oracle
from failover.simulate.policies import POLICIES
from failover.simulate.result import (
    Evacuation,
    Marker,
    Peak,
    RequestTotals,
    Result,
    Series,
)
from failover.simulate.scenario import AddEvent, FaultEvent, Scenario, with_cluster
from failover.simulate.signals import SignalFeed

S = ClusterState
GATED = (S.WAITING, S.RECOVERING)



@dataclass(frozen=True, slots=True)
class _Run:
    job: Job


@dataclass(frozen=True, slots=True)
class _Outcome:
    key: str
    result: ProbeResult


@dataclass(frozen=True, slots=True)
class _Tick:
    """A planner round."""


@dataclass(frozen=True, slots=True)
class _Mark:
    """A demand point: the load integration splits there, as demand bends."""


@dataclass(frozen=True, slots=True)
class _Sample:
    """A scrape of the load signals (model v2)."""


_Item = FaultEvent | AddEvent | _Outcome | _Run | _Sample | _Tick | _Mark
_ORDER = {FaultEvent: 0, AddEvent: 0, _Outcome: 1, _Run: 2, _Sample: 3, _Tick: 4, _Mark: 5}
HEALTH_CHECK_FAILED = "simulated 503: the cluster fails this share of its requests"


@dataclass
class _Pending:
    """A fault waiting for its cluster's share to reach 0."""

    at: float
    cluster: str
    fault: str
    after: float | None = None
    open: bool = True


class Simulation:
    """One run of a scenario under one policy; ``run()`` once."""

    def __init__(self, scenario: Scenario, config: Config, planner: Planner = plan, *,
                 policy_name: str = "planner", seed: int = 0) -> None:
        self.scenario, self.config, self.planner = scenario, config, planner
        self.policy_name, self.seed = policy_name, seed
        # Separate streams, so that what one policy's load does to the health checks or the
        # signals never moves another's probe schedule.
        self.rng = random.Random(seed)  # noqa: S311 - probe jitter, not cryptography
        self.check_rng = random.Random(f"checks-{seed}")  # noqa: S311 - simulation
        self.health = HealthTracker(config)
        self.demand = (DemandCurve(scenario.demand) if scenario.demand
                       else DemandCurve.constant(config.demand_rps or 0.0))
        params = scenario.load
        self.fluid = FluidModel(params) if params.model == "v2" else None
        self.load: LoadModel | FluidModel = self.fluid or LoadModel(params)
        self.oracle = Oracle(params, params.step)
        self.feed = None if self.fluid is None else SignalFeed(
            scenario.signals, random.Random(f"signals-{seed}"),  # noqa: S311 - simulation
            shared_expected=params.shared is not None)
        self.faults: dict[str, Faults] = {}
        self.queue: list[tuple[float, int, int, _Item]] = []
        self._seq = 0
        self.previous: Plan | None = None
        # The data plane before any plan: the base weights, as a running fleet would have.
        total = sum(c.weight for c in config.clusters)
        self.shares = {c.name: c.weight / total for c in config.clusters}
        self.states: dict[str, ClusterState] = {}
        self.last = 0.0
        self.times: list[float] = []
        self.demand_rps: list[float] = []
        self.series: dict[str, Series] = {}
        self.capacity: dict[str, float | None] = {}
        self.pending: list[_Pending] = []
        self.markers: list[Marker] = []
        self.planned_peaks: dict[str, float] = {}
        self.watch = ShortfallWatch()
        self.provisioned = 0
        """Clusters the modelled hook has asked for so far."""

        for cluster in config.clusters:
            self._join(cluster.name, cluster.capacity_rps, 0.0, warm=True)
        self._prime(all_jobs(config.clusters))
        for index in scenario.order():
            event = scenario.events[index]
            self._push(event.at, event)
        for at in self.demand.breakpoints:
            if 0 < at < scenario.duration:
                self._push(at, _Mark())
        if self.feed is not None:
            self._push(0.0, _Sample())
        self._push(0.0, _Tick())

    def _push(self, at: float, item: _Item) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (at, _ORDER[type(item)], self._seq, item))

    def _join(self, name: str, capacity_rps: float | None, now: float, *, warm: bool) -> None:
        self.faults[name] = Faults()
        self.load.add(name, capacity_rps, now, warm=warm)
        self.oracle.add(name, capacity_rps, warm=warm)
        self.capacity[name] = capacity_rps
        series = self.series[name] = Series()
        for column in (series.share, series.offered_rps, series.capacity_rps, series.state,
                       series.recovering):
            column.extend([None] * len(self.times))  # ticks from before it was added

    def _prime(self, jobs: list[Job]) -> None:
        """Start in steady state: each check has passed ``rise`` times before 0, as in a
        daemon that has been running, so the first tick already has every verdict."""
        interval = self.config.probing.interval
        passed = ProbeResult.passed(PROBE_LATENCY)
        for job in jobs:
            for before in range(self.config.probing.rise, 0, -1):
                self.health.record(job.key, passed, -before * interval)
        self._schedule(jobs, 0.0)

    def _schedule(self, jobs: list[Job], now: float) -> None:
        """New jobs spread over one interval, as the daemon's scheduler starts them."""
        for job in jobs:
            self._push(now + self.rng.uniform(0, self.config.probing.interval), _Run(job))

    def run(self) -> Result:
        duration = self.scenario.duration
        while self.queue and self.queue[0][0] < duration:
            at, _, _, item = heapq.heappop(self.queue)
            if isinstance(item, _Run):
                self._probe(item.job, at)
            elif isinstance(item, _Outcome):
                self.health.record(item.key, item.result, at)
            else:
                self._advance(at)
                if isinstance(item, FaultEvent):
                    self._fault(item)
                elif isinstance(item, AddEvent):
                    self._add(item)
                elif isinstance(item, _Tick):
                    self._tick(at)
                elif isinstance(item, _Sample):
                    self._sample_signals(at)
        self._advance(duration)
        for pending in self.pending:
            pending.open = False
        return self._result()

    def _advance(self, now: float) -> None:
        """Integrate load from the last change to ``now``."""
        if self.fluid is not None and not self.fluid.due(now):
            self.oracle.advance(now, self.demand)
            self.last = max(self.last, now)
            return  # no step of the fluid model ends by now: nothing to integrate yet
        self.load.advance(self.last, now, self.demand, recovering=self._recovering())
        self.oracle.advance(now, self.demand)
        self.last = max(self.last, now)

    def _recovering(self) -> set[str]:
        """Clusters up but not back in full: cold, or held by the recovery gate. From the
        instant the fault is lifted, so the seconds health takes to notice count too."""
        return {name for name, load in self.load.clusters.items()
                if not load.down and (load.cold or self.states.get(name) in GATED)}

    def _sample_signals(self, now: float) -> None:
        if self.feed is None or self.fluid is None:  # only scheduled for model v2
            return
        self.feed.take(self.fluid, now)
        self._push(now + self.scenario.signals.period, _Sample())

    def _probe(self, job: Job, now: float) -> None:
        probing = self.config.probing
        result = probe_result(job.kind, self.faults[job.cluster], probing.timeout)
        if result.ok and job.kind == "http" and self.fluid is not None \
                and self.scenario.load.probes_see_load:
            self._advance(now)
            if self.check_rng.random() < self.fluid.failure_ratio(job.cluster):
                result = ProbeResult.failed(PROBE_LATENCY, "bad_status", HEALTH_CHECK_FAILED)
        # The verdict lands when the probe ends: after its timeout, for a timeout.
        self._push(now + result.latency, _Outcome(job.key, result))
        gap = probing.interval * (1 + self.rng.uniform(-probing.jitter, probing.jitter))
        self._push(now + gap, _Run(job))

    def _fault(self, event: FaultEvent) -> None:
        name = event.cluster
        was = self.faults[name]
        now = was.apply(event)
        self.faults[name] = now
        self.load.set_down(name, now.down, event.at)
        self.oracle.set_down(name, now.down)
        self.markers.append(Marker(event.at, name, event.label()))
        if now.down and not was.down:
            self.pending.append(_Pending(event.at, name, event.label()))
        elif was.down and not now.down:
            for pending in self.pending:
                if pending.cluster == name:
                    pending.open = False

    def _add(self, event: AddEvent) -> None:
        """A cluster provisioned mid-run: the config reloads with it, as SIGHUP would."""
        cluster = event.add
        self.config = with_cluster(self.config, cluster)
        self.health.update_config(self.config)
        self._join(cluster.name, cluster.capacity_rps, event.at, warm=False)
        self._schedule([job for job in all_jobs(self.config.clusters)
                        if job.cluster == cluster.name], event.at)
        capacity = "unlimited" if cluster.capacity_rps is None else \
            f"{cluster.capacity_rps:g} rps"
        self.markers.append(Marker(event.at, cluster.name,
                                   f"added (weight {cluster.weight:g}, capacity {capacity})"))

    def _tick(self, now: float) -> None:
        demand = self.demand(now)
        signals = Signals() if self.feed is None else self.feed.signals(now)
        step = controller.tick(self.config.policy, self.previous,
                               Inputs(self.health.views(now), demand, signals=signals,
                                      evidence=self.scenario.evidence), now,
                               self.planner)
        new = self.previous = step.plan
        if step.actuate:  # the data plane takes a plan at once
            self.shares = new.shares
        self.states = {c.name: c.state for c in new.clusters}
        self.load.set_shares(self.shares, now)
        self._provision(new, demand, now)
        self._planned(demand)
        self._sample(now, demand)
        for pending in self.pending:
            if pending.open and self.shares.get(pending.cluster, 0.0) <= SERVING:
                pending.after, pending.open = now - pending.at, False
        ticks = round(now / self.config.policy.tick) + 1
        self._push(ticks * self.config.policy.tick, _Tick())

    def _provision(self, plan: Plan, demand: float, now: float) -> None:
        """The provisioning hook as the daemon runs it (the same shortfall and the same
        after/cooldown rule); the cluster a call brings joins ``delay`` later, cold."""
        wanted = self.scenario.provisioning
        if wanted is None:
            return
        short = shortfall(plan, self.config.clusters, self.config.policy, demand)
        lasted = self.watch.due(short, self.config.provisioning, now)
        if lasted is None or short is None:
            return
        self.watch.called(now)
        if self.provisioned >= len(wanted.clusters):
            self.markers.append(Marker(now, "-", f"webhook called (short {short.rps:.0f} rps);"
                                                 " nothing more to provision"))
            return
        cluster = wanted.clusters[self.provisioned]
        self.provisioned += 1
        self.markers.append(Marker(now, cluster.name, f"webhook called: short "
                                                      f"{short.rps:.0f} rps"))
        self._push(now + wanted.delay, AddEvent(at=now + wanted.delay, add=cluster))

    def _planned(self, demand: float) -> None:
        """Planned load (share x the demand the plan was made for) over the capacity each
        cluster has as the plan takes effect: above 1, planned past what it can serve."""
        for name, load in self.load.clusters.items():
            capacity = load.effective_capacity()
            if load.share > SERVING and not load.down and capacity:
                ratio = load.share * demand / capacity
                self.planned_peaks[name] = max(self.planned_peaks.get(name, 0.0), ratio)

    def _sample(self, now: float, demand: float) -> None:
        self.times.append(now)
        self.demand_rps.append(round(demand, 3))
        recovering = self._recovering()
        for name, series in self.series.items():
            load = self.load.clusters[name]
            capacity = load.effective_capacity()
            series.share.append(round(load.share, 6))
            offered = load.offered if isinstance(load, FluidCluster) else load.share * demand
            series.offered_rps.append(round(offered, 3))
            series.capacity_rps.append(None if capacity is None else round(capacity, 3))
            state = self.states.get(name)
            series.state.append(None if state is None else str(state))
            series.recovering.append(name in recovering)

    def _result(self) -> Result:
        requests = self.load.requests
        peaks = self.load.peaks
        planned = self.planned_peaks
        return Result(
            scenario=self.scenario.name, policy=self.policy_name, seed=self.seed,
            duration=self.scenario.duration, tick=self.config.policy.tick,
            times=self.times, demand_rps=self.demand_rps,
            clusters=self.series, capacity_rps=self.capacity,
            evacuations=[Evacuation(p.at, p.cluster, p.fault, p.after) for p in self.pending],
            peaks={name: Peak(_rounded(peaks.overall.get(name)),
                              _rounded(peaks.recovery.get(name)), _rounded(planned.get(name)))
                   for name in self.series},
            requests=RequestTotals(
                total=round(requests.total, 3), errored=round(requests.errored, 3),
                down=round(requests.down, 3), overload=round(requests.overload, 3),
                unplaced=round(requests.unplaced, 3),
                dependency=round(requests.dependency, 3), floor=round(self.oracle.floor, 3)),
            events=self.markers)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def simulate(scenario: Scenario, config: Config, policy: str = "planner", *,
             seed: int = 0) -> Result:
    """Run ``scenario`` on ``config`` (the config it was validated against) under a policy
    named in ``POLICIES``."""
    return Simulation(scenario, config, POLICIES[policy], policy_name=policy, seed=seed).run()
