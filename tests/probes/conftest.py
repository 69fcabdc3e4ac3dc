"""Fixtures for probe tests: jobs, a counting permit, the shared HTTP session, real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from failover.config import DnsCheck, HttpCheck, Job, TcpCheck, split_hostport, url_endpoint
from failover.model import ProbeResult
from failover.probes import PROBES
from failover.probes.base import ProbeContext, run_probe
from tests.dnsmasq import Dnsmasq, running_dnsmasq
from tests.probes.dns_responder import Responder

DNSMASQ_RECORDS = (
    "--address=/ok.test/10.9.9.9",          # ok.test and any name below it: A 10.9.9.9
    "--host-record=host.test,10.1.1.1",    # host.test: A only, so AAAA is NODATA
    "--local=/test/",                      # the rest of test. is NXDOMAIN, never forwarded
)
"""Names the ``dnsmasq`` fixture answers; anything outside ``test.`` gets REFUSED (no upstream)."""


class CountingPermit:
    """A permit that never waits and counts how often the probe asked for one."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


def dns_job(server: str, name: str, qtype: str = "A", expect: list[str] | None = None) -> Job:
    spec = DnsCheck.model_validate(
        {"server": server, "names": [name], "qtype": qtype, "expect": expect or []})
    endpoint = split_hostport(server)
    return Job("c1", "dns", endpoint, f"dns {endpoint} {name}", spec, name)


def http_job(url: str, expect_status: int = 200, expect_body: str | None = None) -> Job:
    spec = HttpCheck(http=url, expect_status=expect_status, expect_body=expect_body)
    return Job("c1", "http", url_endpoint(url), f"http {url}", spec)


def tcp_job(address: str) -> Job:
    endpoint = split_hostport(address)
    return Job("c1", "tcp", endpoint, f"tcp {endpoint}", TcpCheck(tcp=address))


class Prober:
    """Runs a job through run_probe the way the scheduler does, with a fresh counting permit."""

    def __init__(self) -> None:
        self.permit = CountingPermit()

    async def __call__(self, job: Job, within: float = 2.0) -> ProbeResult:
        self.permit = CountingPermit()
        deadline = asyncio.get_running_loop().time() + within
        return await run_probe(job, ProbeContext(self.permit, deadline),
                               PROBES[job.kind])


@pytest.fixture
def probe() -> Prober:
    return Prober()


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dnsmasq]:
    """A dnsmasq serving DNSMASQ_RECORDS on a free port; stopped (and resumed first) at teardown."""
    with running_dnsmasq(tmp_path / "dnsmasq", *DNSMASQ_RECORDS) as server:
        yield server


@pytest.fixture
async def responder() -> AsyncIterator[Responder]:
    server = Responder()
    await server.start()
    try:
        yield server
    finally:
        await server.close()
