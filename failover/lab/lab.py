"""N simulated clusters on loopback, each a DNS server and an HTTP service with its own faults."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Self

from failover.config.addresses import Endpoint
from failover.lab.dns_server import DnsServer
from failover.lab.faults import Counters, DnsFault, Faults, HttpFault
from failover.lab.service import HttpService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabOptions:
    clusters: int = 3
    host: str = "127.0.0.1"
    dns_base_port: int = 5301
    """Cluster N (from 1) answers DNS on base + N - 1; 0 picks free ports."""
    http_base_port: int = 8101
    """Cluster N (from 1) serves HTTP on base + N - 1; 0 picks free ports."""
    capacity_rps: float | None = None
    """Per-cluster requests per second before 503s; None: unlimited."""
    control: str | None = "127.0.0.1:9480"
    """Address of the control API, or None for none (tests drive the Lab object directly)."""


def answer_address(number: int) -> str:
    """What cluster ``number`` (from 1) resolves names to: 10.0.N.1 for N < 256."""
    return str(ipaddress.IPv4Address(0x0A000000 + number * 256 + 1))


def wrong_address(number: int) -> str:
    """What cluster ``number`` answers under a ``wrong`` fault: 10.255.N.1-like, never expected."""
    return str(ipaddress.IPv4Address(0x0AFF0000 + number * 256 + 1))


class LabCluster:
    def __init__(self, number: int, capacity_rps: float | None) -> None:
        self.name = f"lab-{number}"
        self.number = number
        self.answer = answer_address(number)
        self.faults = Faults()
        self.counters = Counters()
        self.dns = DnsServer(self.name, self.answer, wrong_address(number), self.faults,
                             self.counters)
        self.http = HttpService(self.name, self.faults, self.counters, capacity_rps)

    @property
    def dns_address(self) -> str:
        return str(Endpoint(self.http.host, self.dns.port))

    @property
    def http_url(self) -> str:
        return f"http://{Endpoint(self.http.host, self.http.port)}"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dns": self.dns_address, "http": self.http_url,
                "answer": self.answer, "faults": asdict(self.faults),
                "counters": asdict(self.counters), "capacity_rps": self.http.capacity_rps}


class UnknownCluster(KeyError):
    pass


class Lab:
    """Use as ``async with Lab(options) as lab``; ``lab.clusters`` are then serving."""

    def __init__(self, options: LabOptions) -> None:
        self.options = options
        self.clusters = [LabCluster(n, options.capacity_rps)
                         for n in range(1, options.clusters + 1)]

    async def __aenter__(self) -> Self:
        try:
            for cluster in self.clusters:
                await self._start(cluster)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _start(self, cluster: LabCluster) -> None:
        options = self.options
        offset = cluster.number - 1
        await cluster.dns.start(options.host,
                                options.dns_base_port + offset if options.dns_base_port else 0)
        await cluster.http.start(options.host,
                                 options.http_base_port + offset if options.http_base_port else 0)

    async def close(self) -> None:
        # All at once: each HTTP service may wait out its held requests' shutdown grace.
        await asyncio.gather(*(c.dns.close() for c in self.clusters),
                             *(c.http.close() for c in self.clusters))

    def cluster(self, name: str) -> LabCluster:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise UnknownCluster(name)

    async def set_fault(self, name: str, *, dns: DnsFault | None = None,
                        http: HttpFault | None = None, delay: float | None = None) -> LabCluster:
        """Change a cluster's faults; those not given stay. Raises UnknownCluster."""
        cluster = self.cluster(name)
        faults = cluster.faults
        if dns is not None:
            faults.dns = dns
        if http is not None:
            faults.http = http
        if delay is not None:
            faults.delay = delay
        await cluster.http.apply_faults()
        log.info("lab %s: dns=%s http=%s delay=%gs", name, faults.dns, faults.http, faults.delay)
        return cluster

    async def reset(self, name: str) -> LabCluster:
        defaults = Faults()
        return await self.set_fault(name, dns=defaults.dns, http=defaults.http,
                                    delay=defaults.delay)
