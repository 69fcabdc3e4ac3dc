"""The live load signals of a simulated run, as the daemon would read them from a Prometheus.

Every ``period`` the model is sampled; each value is off by a relative Gaussian error of
``noise``, a cluster's sample is lost with probability ``dropout``, and a sample can be read
``delay`` after the instant it describes (its ``measured_at``). Until a newer one arrives,
the last one read stays, aging: the planner judges its freshness.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, replace

from failover.model import Sample, Signals
from failover.simulate.fluid import FluidModel
from failover.simulate.scenario import SignalParams


@dataclass(frozen=True, slots=True)
class _Taken:
    visible_at: float
    clusters: dict[str, Sample]
    shared: Sample | None


class SignalFeed:
    def __init__(self, params: SignalParams, rng: random.Random, *,
                 shared_expected: bool) -> None:
        self.params = params
        self.rng = rng
        self.shared_expected = shared_expected
        self.pending: deque[_Taken] = deque()
        self.latest: dict[str, Sample] = {}
        self.latest_shared: Sample | None = None

    def take(self, model: FluidModel, at: float) -> None:
        """Sample every cluster (and the dependency) at ``at``."""
        clusters = {}
        for name in model.clusters:
            sample = model.sample(name, at)
            if sample is not None and self.rng.random() >= self.params.dropout:
                clusters[name] = self._noisy(sample)
        shared = model.shared_sample(at)
        if shared is not None and self.rng.random() < self.params.dropout:
            shared = None
        self.pending.append(_Taken(at + self.params.delay, clusters,
                                   None if shared is None else self._noisy(shared)))

    def _noisy(self, sample: Sample) -> Sample:
        def off(value: float | None, top: float | None) -> float | None:
            if value is None:
                return None
            noisy = max(0.0, value * (1 + self.rng.gauss(0.0, self.params.noise)))
            return noisy if top is None else min(top, noisy)

        return replace(sample, utilization=off(sample.utilization, 1.0),
                       error_ratio=off(sample.error_ratio, 1.0),
                       latency_ratio=off(sample.latency_ratio, None))

    def signals(self, now: float) -> Signals:
        """What can be read at ``now``."""
        while self.pending and self.pending[0].visible_at <= now + 1e-9:
            taken = self.pending.popleft()
            self.latest.update(taken.clusters)
            if taken.shared is not None:
                self.latest_shared = taken.shared
        return Signals(dict(self.latest), self.latest_shared, self.shared_expected, "simulated")
