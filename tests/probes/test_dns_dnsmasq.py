"""The DNS probe against a real dnsmasq: each kind of answer gets its own verdict."""

from __future__ import annotations

import asyncio
from pathlib import Path

from failover.lab import Lab, LabOptions
from tests.dnsmasq import Dnsmasq, running_dnsmasq
from tests.probes.conftest import Prober, dns_job


async def test_answer_passes_with_addresses_in_detail(dnsmasq: Dnsmasq, probe: Prober) -> None:
    """An A answer passes, names the address, and sent exactly one request."""
    result = await probe(dns_job(dnsmasq.address, "ok.test", expect=["10.9.9.9"]))
    assert result.ok, result
    assert result.failure_class is None
    assert result.detail == "10.9.9.9"
    assert 0 <= result.latency < 1
    assert probe.permit.calls == 1


async def test_query_reaches_the_server_with_no_search_domain(
        dnsmasq: Dnsmasq, probe: Prober) -> None:
    """The name is queried as given, with no search domain appended."""
    await probe(dns_job(dnsmasq.address, "host.test"))
    assert "query[A] host.test from 127.0.0.1" in dnsmasq.log()


async def test_missing_expected_address_is_unexpected_answer(
        dnsmasq: Dnsmasq, probe: Prober) -> None:
    """An answer lacking an expected address fails, listing what came and what was wanted."""
    result = await probe(dns_job(dnsmasq.address, "ok.test", expect=["10.9.9.9", "10.9.9.10"]))
    assert not result.ok
    assert result.failure_class == "unexpected_answer"
    assert result.detail == "got 10.9.9.9; expected 10.9.9.9, 10.9.9.10"


async def test_unknown_name_is_nxdomain(dnsmasq: Dnsmasq, probe: Prober) -> None:
    """A name dnsmasq knows does not exist is nxdomain."""
    result = await probe(dns_job(dnsmasq.address, "nope.test"))
    assert (result.ok, result.failure_class) == (False, "nxdomain")
    assert "NXDOMAIN" in result.detail


async def test_name_without_the_asked_type_is_no_answer(dnsmasq: Dnsmasq, probe: Prober) -> None:
    """AAAA for a name with only an A record is NOERROR without data: no_answer."""
    result = await probe(dns_job(dnsmasq.address, "host.test", qtype="AAAA"))
    assert (result.ok, result.failure_class) == (False, "no_answer")
    assert "AAAA" in result.detail


async def test_name_without_upstream_is_refused(dnsmasq: Dnsmasq, probe: Prober) -> None:
    """dnsmasq with no upstream answers REFUSED for names it would forward."""
    result = await probe(dns_job(dnsmasq.address, "www.example.com"))
    assert (result.ok, result.failure_class) == (False, "refused")
    assert "REFUSED" in result.detail


async def test_stopped_server_times_out_at_the_deadline(dnsmasq: Dnsmasq, probe: Prober) -> None:
    """A server that holds its socket but never answers yields timeout, on time."""
    dnsmasq.pause()
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe(dns_job(dnsmasq.address, "ok.test"), within=0.3)
    elapsed = loop.time() - started
    assert (result.ok, result.failure_class) == (False, "timeout")
    assert 0.3 <= elapsed < 0.3 + 0.15
    assert 0.25 <= result.latency < 0.45
    assert probe.permit.calls == 1


async def test_exited_server_is_a_network_error_at_once(dnsmasq: Dnsmasq, probe: Prober) -> None:
    """With the process gone, ICMP port-unreachable fails the probe well before the deadline."""
    dnsmasq.stop()
    result = await probe(dns_job(dnsmasq.address, "ok.test"), within=5)
    assert (result.ok, result.failure_class) == (False, "network_error")
    assert "refused" in result.detail
    assert result.latency < 1


async def test_upstream_failure_is_servfail(tmp_path: Path, probe: Prober) -> None:
    """dnsmasq forwarding to a cluster DNS that fails answers SERVFAIL: servfail."""
    async with Lab(LabOptions(clusters=1, dns_base_port=0, http_base_port=0,
                              control=None)) as lab:
        cluster = lab.clusters[0]
        await lab.set_fault(cluster.name, dns="servfail")
        upstream = cluster.dns_address.replace(":", "#")
        with running_dnsmasq(tmp_path, f"--server=/cluster.local/{upstream}") as forwarder:
            result = await probe(dns_job(forwarder.address, "api.svc.cluster.local"))
            assert (result.ok, result.failure_class) == (False, "servfail")
            assert "SERVFAIL" in result.detail
            assert cluster.counters.dns_udp >= 1, "the query went through dnsmasq to the lab"
            await lab.reset(cluster.name)
            result = await probe(dns_job(forwarder.address, "api.svc.cluster.local",
                                         expect=[cluster.answer]))
            assert result.ok, result
