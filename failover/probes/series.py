"""A job's metric series, looked up once: ``labels()`` hashes and locks on every call, and a
prober at fleet scale would pay that several times per probe."""

from __future__ import annotations

from typing import TYPE_CHECKING

from failover.config import Job
from failover.metrics import Metrics
from failover.model import ProbeResult

if TYPE_CHECKING:
    from prometheus_client.metrics import Counter, Histogram


class JobSeries:
    __slots__ = ("_job", "_metrics", "_results", "duration", "requests")

    def __init__(self, metrics: Metrics, job: Job) -> None:
        self._metrics = metrics
        self._job = job
        self.requests: Counter = metrics.probe_requests.labels(job.kind)
        self.duration: Histogram = metrics.probe_duration.labels(job.cluster, job.kind)
        self._results: dict[str, Counter] = {}

    def count(self, result: ProbeResult) -> None:
        """One finished probe: its result counted, its latency observed."""
        outcome = result.failure_class or "ok"
        counter = self._results.get(outcome)
        if counter is None:
            job = self._job
            counter = self._results[outcome] = self._metrics.probes.labels(
                job.cluster, job.kind, outcome)
        counter.inc()
        self.duration.observe(result.latency)
