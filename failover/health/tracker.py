"""All checks of all clusters: results in, planner views and status out; survives reloads."""

from __future__ import annotations

import math
from typing import Any

from failover.config.budget import VANTAGE, Job, all_jobs
from failover.config.models import Cluster, Config
from failover.config.probing import Probing
from failover.health.check import CheckRecord, CheckStatus
from failover.health.cluster import ClusterHealth, assess
from failover.health.score import Score, cluster_score
from failover.health.signals import probe_sample
from failover.model import ClusterState, ClusterView, ProbeResult, Signals


class HealthTracker:
    """Feeds probe results through each check's hysteresis and sums them up per cluster.

    Pure bookkeeping: no clock is read (``now`` comes with each result) and nothing is awaited,
    so the daemon calls it from the loop and the simulator from its fake clock alike.
    """

    def __init__(self, config: Config) -> None:
        self._records: dict[str, CheckRecord] = {}
        self._clusters: list[Cluster] = []
        self._by_cluster: dict[str, list[CheckRecord]] = {}
        self._probing = config.probing
        self.generation = 0
        """Counts config updates: a reader working in batches can tell it changed between."""
        self.update_config(config)

    def update_config(self, config: Config) -> None:
        """Keep the record of every check whose key survives; new checks start without verdict.

        Changed rise/fall apply from the next result on: a verdict moves only on evidence, never
        because a number in the config did.
        """
        self.generation += 1
        jobs: list[Job] = all_jobs(config.clusters, config.vantage)
        old = self._records
        self._records = {job.key: old.get(job.key) or CheckRecord(job) for job in jobs}
        for job in jobs:
            self._records[job.key].job = job  # same key, maybe another spec (expect, status)
        self._clusters = list(config.clusters)
        self._by_cluster = {cluster.name: [] for cluster in config.clusters}
        self._by_cluster[VANTAGE] = []
        for record in self._records.values():
            self._by_cluster[record.job.cluster].append(record)
        self._probing = config.probing

    @property
    def probing(self) -> Probing:
        return self._probing

    @property
    def gap(self) -> float:
        """Seconds without a result after which a check counts as unobserved: two jittered
        intervals and a timeout (one run skipped by the budget is no gap)."""
        probing = self._probing
        return 2 * probing.interval * (1 + probing.jitter) + probing.timeout

    @property
    def stale_after(self) -> float:
        """Seconds after its last result at which a check's verdict lapses: three jittered
        intervals and a timeout, so one or two runs skipped by the budget never do it."""
        probing = self._probing
        return 3 * probing.interval * (1 + probing.jitter) + probing.timeout

    def record(self, job_key: str, result: ProbeResult, now: float) -> bool:
        """Count one result; False when the job is gone (a probe that outlived a reload)."""
        check = self._records.get(job_key)
        if check is None:
            return False
        check.record(result, now, self._probing.rise, self._probing.fall, self.gap)
        return True

    def observed_since(self, name: str, now: float) -> float:
        """Since when every check of the cluster has reported without a gap; ``inf`` while
        one has no result yet or is overdue at ``now``."""
        since = -math.inf
        for check in self._by_cluster[name]:
            if check.last_at is None or check.observed_since is None \
                    or now - check.last_at > self.gap:
                return math.inf
            since = max(since, check.observed_since)
        return since

    def cluster(self, name: str, now: float | None = None) -> ClusterHealth:
        """State, score components and reason of one configured cluster; KeyError otherwise.
        With ``now``, checks that have gone stale count as having no verdict."""
        checks = self._by_cluster[name]
        return assess(name, checks, self._probing.rise, self._probing.timeout, now,
                      self.stale_after)

    def score(self, name: str) -> Score:
        """The cluster's score alone (what `cluster` computes along with much else);
        KeyError for a name not configured."""
        timeout = self._probing.timeout
        return cluster_score([c.score(timeout) for c in self._by_cluster[name] if c.recent])

    def vantage_ok(self) -> bool:
        """False only while the vantage checks fail; without them, or before a verdict, True
        (no evidence that our own view is broken)."""
        checks = self._by_cluster[VANTAGE]
        if not checks:
            return True
        health = assess(VANTAGE, checks, self._probing.rise, self._probing.timeout)
        return health.state != ClusterState.UNHEALTHY

    def clusters(self) -> list[ClusterHealth]:
        return [self.cluster(cluster.name) for cluster in self._clusters]

    @property
    def cluster_count(self) -> int:
        return len(self._clusters)

    def views(self, now: float | None = None, part: slice | None = None) -> list[ClusterView]:
        """What the planner needs, one view per configured cluster (or those of ``part``), in
        config order; with ``now``, each says since when its cluster has been observed
        without a gap."""
        views = []
        for cluster in self._clusters if part is None else self._clusters[part]:
            health = self.cluster(cluster.name, now)
            since = -math.inf if now is None else self.observed_since(cluster.name, now)
            views.append(ClusterView(cluster.name, health.state, health.score.value,
                                     cluster.weight, health.reason, cluster.capacity_rps,
                                     since, health.stale))
        return views

    def probe_signals(self, part: slice | None = None) -> Signals:
        """Per-cluster load signals from the probes' own results (`signals`), of every
        cluster or those of ``part``."""
        samples = {}
        for cluster in self._clusters if part is None else self._clusters[part]:
            sample = probe_sample(self._by_cluster[cluster.name], self._probing.timeout)
            if sample is not None:
                samples[cluster.name] = sample
        return Signals(samples, source="probes")

    def check_statuses(self, cluster: str) -> list[CheckStatus]:
        """The cluster's checks in config order; empty for a name not configured."""
        timeout = self._probing.timeout
        return [check.status(timeout) for check in self._by_cluster.get(cluster, [])]

    def checks(self, cluster: str) -> list[dict[str, Any]]:
        """``check_statuses`` as JSON-ready dicts, CONTRACT's /v1/status ``checks``."""
        return [status.as_dict() for status in self.check_statuses(cluster)]

    def all_have_verdicts(self) -> bool:
        """True once no cluster is unknown (what /readyz reports)."""
        return all(health.state != ClusterState.UNKNOWN for health in self.clusters())
