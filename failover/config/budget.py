"""What probes will send, worked out from the config alone, so an over-budget config is refused."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from failover.config.addresses import Endpoint, split_hostport, url_endpoint

if TYPE_CHECKING:
    from failover.config.models import Cluster, DnsCheck, HttpCheck, Probing, TcpCheck

ProbeKind = Literal["dns", "http", "tcp"]

ATTEMPTS_PER_PROBE: dict[ProbeKind, int] = {"dns": 2, "http": 1, "tcp": 1}
"""Requests one probe may send at most: DNS retries over TCP when the UDP answer is truncated."""


@dataclass(frozen=True)
class Job:
    """One thing probed on a schedule: a DNS name at a server, an HTTP URL or a TCP address."""

    cluster: str
    kind: ProbeKind
    endpoint: Endpoint
    label: str
    """What an operator reads in a reason: ``dns 127.0.0.1:5301 api.local``."""
    spec: DnsCheck | HttpCheck | TcpCheck
    name: str | None = None
    """The DNS name queried, for dns jobs."""
    path: tuple[str | int, ...] = ()
    """Where the job comes from in the config, for errors."""

    @property
    def key(self) -> str:
        """Stable identity of the job across reloads."""
        return f"{self.cluster}/{self.kind}/{self.label}"


def cluster_jobs(cluster: Cluster, index: int) -> list[Job]:
    jobs: list[Job] = []
    if cluster.dns is not None:
        endpoint = split_hostport(cluster.dns.server)
        jobs.extend(
            Job(cluster.name, "dns", endpoint, f"dns {endpoint} {name}", cluster.dns, name,
                ("clusters", index, "dns"))
            for name in cluster.dns.names
        )
    for position, check in enumerate(cluster.checks):
        path: tuple[str | int, ...] = ("clusters", index, "checks", position)
        if hasattr(check, "http"):
            jobs.append(Job(cluster.name, "http", url_endpoint(check.http), f"http {check.http}",
                            check, None, path))
        else:
            endpoint = split_hostport(check.tcp)
            jobs.append(Job(cluster.name, "tcp", endpoint, f"tcp {endpoint}", check, None, path))
    return jobs


def all_jobs(clusters: list[Cluster]) -> list[Job]:
    return [job for index, cluster in enumerate(clusters) for job in cluster_jobs(cluster, index)]


@dataclass(frozen=True)
class Rates:
    per_target: dict[str, float]
    """Worst-case requests per second to each address."""
    total: float
    in_flight: float
    """Worst-case probes running at once: total probe rate times the timeout."""


def worst_case_rates(jobs: list[Job], probing: Probing) -> Rates:
    """Requests/s if every probe runs as early as jitter allows and every one needs its retry."""
    shortest_gap = probing.interval * (1 - probing.jitter)
    per_target: dict[str, float] = defaultdict(float)
    probes_per_second = 0.0
    for job in jobs:
        per_target[str(job.endpoint)] += ATTEMPTS_PER_PROBE[job.kind] / shortest_gap
        probes_per_second += 1 / shortest_gap
    return Rates(dict(per_target), sum(per_target.values()), probes_per_second * probing.timeout)
