"""N simulated clusters on loopback, each a DNS server and an HTTP service with its own faults."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Self

from failover.config.addresses import Endpoint, split_hostport
from failover.config.base import NAME as CONFIG_NAME
from failover.lab.dns_server import DnsServer
from failover.lab.faults import Counters, DnsFault, Faults, HttpFault
from failover.lab.service import HttpService
from failover.lab.warmth import WarmthParams

log = logging.getLogger(__name__)

WARM_SECONDS = 30.0
"""Default ``warm_requests`` in seconds of full load: half a minute at capacity fills it."""


class LabOptionsError(ValueError):
    """An option out of range: ``option`` names the LabOptions field, ``problem`` says what
    is wrong with it (so the CLI can name its flag instead)."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option} {problem}")
        self.option = option
        self.problem = problem


@dataclass(frozen=True)
class LabOptions:
    clusters: int = 3
    host: str = "127.0.0.1"
    dns_base_port: int = 5301
    """Cluster N (from 1) answers DNS on base + N - 1; 0 picks free ports."""
    http_base_port: int = 8101
    """Cluster N (from 1) serves HTTP on base + N - 1; 0 picks free ports."""
    capacity_rps: float | None = None
    """Per-cluster requests per second of a warm cluster before 503s; None: unlimited, and
    the warm-up options below do not apply."""
    cold_factor: float = 0.3
    """Fraction of ``capacity_rps`` a cold cluster serves, in (0, 1]: empty caches."""
    warm_requests: float | None = None
    """Served requests for a cold cluster to get ~63% of the way back to full capacity;
    None: ``WARM_SECONDS x capacity_rps``."""
    cold_after: float = 30.0
    """Seconds without serving traffic (health checks do not count) before a cluster is cold."""
    reject_cost: float = 0.0
    """Work a 503 costs, as a fraction of serving a request, taken from the next second's
    capacity: refusing is not free (the SRE book), so an overloaded cluster's goodput falls
    below its capacity, as in the simulator's model. 0: refusals are free."""
    control: str | None = "127.0.0.1:9480"
    """Address of the control API, or None for none (tests drive the Lab object directly)."""

    def __post_init__(self) -> None:
        if self.clusters < 1:
            raise LabOptionsError("clusters", f"must be at least 1, got {self.clusters}")
        if self.capacity_rps is not None and not _positive(self.capacity_rps):
            raise LabOptionsError("capacity_rps", _positive_message(self.capacity_rps))
        if not (math.isfinite(self.cold_factor) and 0 < self.cold_factor <= 1):
            raise LabOptionsError(
                "cold_factor", f"must be above 0 and at most 1, got {self.cold_factor:g}")
        if self.warm_requests is not None and not _positive(self.warm_requests):
            raise LabOptionsError("warm_requests", _positive_message(self.warm_requests))
        if not _positive(self.cold_after):
            raise LabOptionsError("cold_after", _positive_message(self.cold_after))
        if not (math.isfinite(self.reject_cost) and 0 <= self.reject_cost < 1):
            raise LabOptionsError(
                "reject_cost", f"must be at least 0 and below 1, got {self.reject_cost:g}")
        if self.control is not None:
            try:
                split_hostport(self.control, listen=True)
            except ValueError as exc:
                raise LabOptionsError("control", str(exc)) from exc

    def warmth(self) -> WarmthParams | None:
        """The warm-up model's parameters; None without a capacity (nothing to warm)."""
        if self.capacity_rps is None:
            return None
        warm_requests = self.warm_requests
        if warm_requests is None:
            warm_requests = WARM_SECONDS * self.capacity_rps
        return WarmthParams(cold_factor=self.cold_factor, warm_requests=warm_requests,
                            cold_after=self.cold_after)


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _positive_message(value: float) -> str:
    return f"must be a finite number above 0, got {value:g}"


def answer_address(number: int) -> str:
    """What cluster ``number`` (from 1) resolves names to: 10.0.N.1 for N < 256."""
    return str(ipaddress.IPv4Address(0x0A000000 + number * 256 + 1))


def wrong_address(number: int) -> str:
    """What cluster ``number`` answers under a ``wrong`` fault: 10.255.N.1-like, never expected."""
    return str(ipaddress.IPv4Address(0x0AFF0000 + number * 256 + 1))


LAB_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
"""What a cluster added by name may be called (whole string); the daemon's config must also
take it (`CONFIG_NAME`), since whoever asked for it registers it there next."""

NUMBERED = re.compile(r"lab-[0-9]+")
"""The lab's own names: one given to `Lab.add` could take the name of a later numbered
cluster, and every add without a name would then fail."""


MAX_PORT = 65535


class BadClusterName(ValueError):
    pass


class ClusterExists(ValueError):
    pass


class ClusterStartError(OSError):
    """An added cluster could not bind its ports; the lab is as it was before."""


def check_name(name: str) -> str:
    """``name`` if a cluster may be added under it, else BadClusterName saying why."""
    if NUMBERED.fullmatch(name):
        msg = f"{name!r} is a name the lab gives itself: leave the name out for the next one"
        raise BadClusterName(msg)
    if not (LAB_NAME.fullmatch(name) and CONFIG_NAME.fullmatch(name)):
        msg = (f"{name!r} must be 1-63 lower-case letters, digits or '-', starting with a "
               "letter or digit")
        raise BadClusterName(msg)
    return name


class LabCluster:
    def __init__(self, number: int, options: LabOptions,
                 clock: Callable[[], float] | None = None, name: str | None = None) -> None:
        """``name``: ``lab-{number}`` by default; the number alone sets its addresses."""
        self.name = f"lab-{number}" if name is None else name
        self.number = number
        self.answer = answer_address(number)
        self.faults = Faults()
        self.counters = Counters()
        self.dns = DnsServer(self.name, self.answer, wrong_address(number), self.faults,
                             self.counters)
        self.http = HttpService(self.name, self.faults, self.counters, options.capacity_rps,
                                options.warmth(), clock, reject_cost=options.reject_cost)

    @property
    def dns_address(self) -> str:
        return str(Endpoint(self.http.host, self.dns.port))

    @property
    def http_url(self) -> str:
        return f"http://{Endpoint(self.http.host, self.http.port)}"

    def describe(self, now: float | None = None) -> dict[str, Any]:
        """``now``: the lab's clock by default. Capacities in requests/s; ``load`` is the
        last complete one-second window."""
        now = self.http.clock() if now is None else now
        load = self.http.load
        window = load.last_window(now)
        return {"name": self.name, "dns": self.dns_address, "http": self.http_url,
                "answer": self.answer, "faults": asdict(self.faults),
                "counters": asdict(self.counters), "capacity_rps": self.http.capacity_rps,
                "warmth": load.warmth_level(now),
                "effective_capacity_rps": load.capacity(now),
                "load": {"offered_rps": window.offered, "served_rps": window.served,
                         "rejected_rps": window.rejected, "capacity_rps": window.capacity,
                         "utilization": window.utilization}}

    async def close(self) -> None:
        await asyncio.gather(self.dns.close(), self.http.close())


class UnknownCluster(KeyError):
    pass


class NoCapacity(ValueError):
    """A cluster without a capacity limit has nothing to warm up, so it cannot be cold."""


class Lab:
    """Use as ``async with Lab(options) as lab``; ``lab.clusters`` are then serving, and
    `add` starts more."""

    def __init__(self, options: LabOptions, clock: Callable[[], float] | None = None) -> None:
        """``clock``: seconds for the capacity model; the running loop's by default (tests
        pass a fake one)."""
        self.options = options
        self.clusters = [LabCluster(n, options, clock) for n in range(1, options.clusters + 1)]
        self._clock = clock
        self._changing = asyncio.Lock()
        """Held by `add` and `close`: two adds would pick the same number, and a close
        during an add would leave the new cluster serving."""
        self._closed = False

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

    def _ports(self, number: int) -> tuple[int, int]:
        """Cluster ``number``'s DNS and HTTP ports; 0 for a free one."""
        options, offset = self.options, number - 1
        return (options.dns_base_port + offset if options.dns_base_port else 0,
                options.http_base_port + offset if options.http_base_port else 0)

    async def _start(self, cluster: LabCluster) -> None:
        dns_port, http_port = self._ports(cluster.number)
        await cluster.dns.start(self.options.host, dns_port)
        await cluster.http.start(self.options.host, http_port)

    async def add(self, name: str | None = None) -> LabCluster:
        """Start one more cluster, numbered one above the highest, with the lab's options and
        ports, and named ``name`` or ``lab-N``. Raises BadClusterName, ClusterExists, or
        ClusterStartError if a port is taken: a cluster's fixed port follows its number, so
        none other is tried. Nothing is added when it raises."""
        if name is not None:
            check_name(name)
        async with self._changing:
            if self._closed:
                msg = "the lab is closed"
                raise RuntimeError(msg)
            number = max((c.number for c in self.clusters), default=0) + 1
            cluster = LabCluster(number, self.options, self._clock, name)
            if any(c.name == cluster.name for c in self.clusters):
                msg = f"there is already a cluster named {cluster.name!r}"
                raise ClusterExists(msg)
            fixed = [f"{kind} port {port}" for kind, port in
                     zip(("DNS", "HTTP"), self._ports(number), strict=True) if port]
            on = f" on {' and '.join(fixed)}" if fixed else ""
            if max(self._ports(number)) > MAX_PORT:
                msg = f"cannot start {cluster.name}{on}: no such port"
                raise ClusterStartError(msg)
            try:
                await self._start(cluster)
            except OSError as exc:
                await cluster.close()
                msg = f"cannot start {cluster.name}{on}: {exc}"
                raise ClusterStartError(msg) from exc
            # Only now: listings and /metrics read its load, which exists once it serves.
            self.clusters.append(cluster)
        log.info("lab %s: added, dns %s (answers %s), http %s", cluster.name,
                 cluster.dns_address, cluster.answer, cluster.http_url)
        return cluster

    async def close(self) -> None:
        async with self._changing:
            self._closed = True
            # All at once: each HTTP service may wait out its held requests' shutdown grace.
            await asyncio.gather(*(c.close() for c in self.clusters))

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
        cluster.dns.apply_faults()
        await cluster.http.apply_faults()
        log.info("lab %s: dns=%s http=%s delay=%gs", name, faults.dns, faults.http, faults.delay)
        return cluster

    async def reset(self, name: str) -> LabCluster:
        defaults = Faults()
        return await self.set_fault(name, dns=defaults.dns, http=defaults.http,
                                    delay=defaults.delay)

    def make_cold(self, name: str) -> LabCluster:
        """Empty a cluster's caches now: its capacity drops to ``cold_factor`` at once and grows
        back with the traffic it serves. Raises UnknownCluster, or NoCapacity without one."""
        cluster = self.cluster(name)
        if cluster.http.capacity_rps is None:
            msg = f"{name} has no capacity limit (start the lab with --capacity), so no warm-up"
            raise NoCapacity(msg)
        cluster.http.load.make_cold(cluster.http.clock())
        log.info("lab %s: cold", name)
        return cluster
