"""What probes will send, worked out from the config alone, so an over-budget config is refused."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from failover.config.addresses import Endpoint
from failover.config.probing import Check, DnsCheck, HttpCheck, Probing, TcpCheck

ProbeKind = Literal["dns", "http", "tcp"]



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
    heartbeat: bool = False
    """A dns job that reads the check's freshness TXT record instead of resolving a name."""

    # Cached: the scheduler and the tracker read these on every probe (the instance is
    # frozen; cached_property stores beside the fields, not through __setattr__).
    @functools.cached_property
    def target(self) -> str:
        """The address the budget caps, one spelling per address (an IP is already in
        canonical form): a name in lower case without its final dot, and ``localhost`` as
        the loopback address it names, so two spellings of one target never get two
        budgets. (A name and the address it resolves to still do: names are resolved when
        probed, never at load.)"""
        host = self.endpoint.host.lower().removesuffix(".")
        if host == "localhost" or host.endswith(".localhost"):  # RFC 6761
            host = "127.0.0.1"
        return str(Endpoint(host, self.endpoint.port))

    @functools.cached_property
    def key(self) -> str:
        """Stable identity of the job across reloads."""
        return f"{self.cluster}/{self.kind}/{self.label}"


VANTAGE = "@vantage"
"""The owner of the vantage checks' jobs: no cluster can be named so (names start with a
letter or digit)."""


def probe_jobs(owner: str, dns: DnsCheck | None, checks: Sequence[Check],
               where: tuple[str | int, ...]) -> list[Job]:
    """The jobs of one cluster's (or the vantage point's) ``dns`` and ``checks``."""
    jobs: list[Job] = []
    if dns is not None:
        endpoint = dns.server
        jobs.extend(Job(owner, "dns", endpoint, f"dns {endpoint} {name}", dns, name,
                        (*where, "dns"))
                    for name in dns.names)
        if dns.freshness is not None:
            # One more name at the same server, under the same budget as the others.
            name = dns.freshness.name
            jobs.append(Job(owner, "dns", endpoint, f"dns {endpoint} {name} heartbeat", dns,
                            name, (*where, "dns", "freshness"), heartbeat=True))
    for position, check in enumerate(checks):
        path: tuple[str | int, ...] = (*where, "checks", position)
        if isinstance(check, HttpCheck):
            jobs.append(Job(owner, "http", check.http.endpoint, f"http {check.http}",
                            check, None, path))
        else:
            endpoint = check.tcp
            jobs.append(Job(owner, "tcp", endpoint, f"tcp {endpoint}", check, None, path))
    return jobs


class Probed(Protocol):
    """What jobs are made of: a cluster, or the vantage point (whose name is not used)."""

    @property
    def dns(self) -> DnsCheck | None: ...

    @property
    def checks(self) -> Sequence[Check]: ...


class Named(Probed, Protocol):
    @property
    def name(self) -> str: ...


def cluster_jobs(cluster: Named, index: int) -> list[Job]:
    return probe_jobs(cluster.name, cluster.dns, cluster.checks, ("clusters", index))


def all_jobs(clusters: Sequence[Named], vantage: Probed | None = None) -> list[Job]:
    """Every job of every cluster, then the vantage point's (owner `VANTAGE`)."""
    jobs = [job for index, cluster in enumerate(clusters) for job in cluster_jobs(cluster, index)]
    if vantage is not None:
        jobs += probe_jobs(VANTAGE, vantage.dns, vantage.checks, ("vantage",))
    return jobs


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
        per_target[job.target] += job.spec.REQUESTS_PER_PROBE / shortest_gap
        probes_per_second += 1 / shortest_gap
    return Rates(dict(per_target), sum(per_target.values()), probes_per_second * probing.timeout)
