"""Every lab fault shows up as the failure class the probes promise, against the lab's servers."""

from __future__ import annotations

import time
from typing import get_args

import pytest

from failover.config import DnsCheck, Job
from failover.lab import DnsFault, HttpFault, Lab
from failover.lab.dns_server import HEARTBEAT
from failover.lab.faults import Faults
from tests.probes.conftest import Prober, dns_job, http_job, tcp_job

NAME = "api.default.svc.cluster.local"

DNS_VERDICTS: dict[str, str | None] = {
    "ok": None, "timeout": "timeout", "servfail": "servfail", "nxdomain": "nxdomain",
    "refused": "refused", "slow": "timeout", "truncate": None, "wrong": "unexpected_answer",
    "stale": None,  # names still resolve: only the heartbeat (below) sees it
}
HTTP_VERDICTS: dict[str, str | None] = {
    "ok": None, "500": "bad_status", "timeout": "timeout", "refuse": "refused", "slow": "timeout",
}


pytestmark = pytest.mark.lab_clusters(2)


def test_every_fault_has_a_verdict() -> None:
    """The tables below cover every fault the lab offers."""
    assert set(DNS_VERDICTS) == set(get_args(DnsFault))
    assert set(HTTP_VERDICTS) == set(get_args(HttpFault))


@pytest.mark.parametrize(("fault", "verdict"), DNS_VERDICTS.items())
async def test_dns_fault(lab: Lab, probe: Prober, fault: DnsFault, verdict: str | None) -> None:
    """Each DNS fault of lab-1 gives its failure class; lab-2 stays fine."""
    one, two = lab.clusters
    await lab.set_fault(one.name, dns=fault, delay=1.0)
    result = await probe(dns_job(one.dns_address, NAME, expect=[one.answer]), within=0.4)
    assert result.failure_class == verdict, result.detail
    assert (await probe(dns_job(two.dns_address, NAME, expect=[two.answer]))).ok


async def test_a_stale_resolver_still_answers_but_its_heartbeat_fails(
        lab: Lab, probe: Prober) -> None:
    one = lab.clusters[0]
    spec = DnsCheck.model_validate({"server": one.dns_address, "names": [NAME],
                                    "freshness": {"name": HEARTBEAT, "max_age": 60}})
    job = Job(one.name, "dns", spec.server, "heartbeat", spec, HEARTBEAT, heartbeat=True)
    assert (await probe(job)).ok
    # As if the fault had begun ten minutes ago: the heartbeat freezes where it stood then.
    one.dns.clock = lambda: time.time() - 600
    await lab.set_fault(one.name, dns="stale")
    stale = await probe(job)
    assert stale.failure_class == "stale", stale
    assert "s old, over max_age 60s" in stale.detail
    assert (await probe(dns_job(one.dns_address, NAME, expect=[one.answer]))).ok


async def test_truncation_retries_over_tcp_within_the_permit(lab: Lab, probe: Prober) -> None:
    """Under ``truncate`` a probe passes over TCP and asks for two permits: one per request."""
    one = lab.clusters[0]
    await lab.set_fault(one.name, dns="truncate")
    result = await probe(dns_job(one.dns_address, NAME, expect=[one.answer]))
    assert result.ok
    assert "over tcp" in result.detail
    assert probe.permit.calls == 2
    assert (one.counters.dns_udp, one.counters.dns_tcp) == (1, 1)


async def test_names_outside_the_cluster_zone_are_refused(lab: Lab, probe: Prober) -> None:
    """Like a cluster's CoreDNS without upstream, the lab answers only ``cluster.local``."""
    result = await probe(dns_job(lab.clusters[0].dns_address, "example.com"))
    assert result.failure_class == "refused"


async def test_aaaa_is_nodata(lab: Lab, probe: Prober) -> None:
    """The lab publishes A records only; AAAA is NOERROR without records."""
    result = await probe(dns_job(lab.clusters[0].dns_address, NAME, qtype="AAAA"))
    assert result.failure_class == "no_answer"


async def test_slow_dns_answers_after_the_delay(lab: Lab, probe: Prober) -> None:
    """``slow`` is late, not silent: a patient probe gets the answer."""
    one = lab.clusters[0]
    await lab.set_fault(one.name, dns="slow", delay=0.2)
    result = await probe(dns_job(one.dns_address, NAME, expect=[one.answer]), within=2)
    assert result.ok
    assert result.latency >= 0.2


@pytest.mark.parametrize(("fault", "verdict"), HTTP_VERDICTS.items())
async def test_http_fault(lab: Lab, probe: Prober, fault: HttpFault, verdict: str | None) -> None:
    """Each HTTP fault of lab-1 gives its failure class; lab-2 stays fine."""
    one, two = lab.clusters
    await lab.set_fault(one.name, http=fault, delay=1.0)
    result = await probe(http_job(one.http_url + "/healthz"), within=0.4)
    assert result.failure_class == verdict, result.detail
    assert (await probe(http_job(two.http_url + "/healthz"))).ok


async def test_refused_port_serves_again_after_reset(lab: Lab, probe: Prober) -> None:
    """``refuse`` closes the listening socket; reset binds the same port again."""
    one = lab.clusters[0]
    address = one.http_url.removeprefix("http://")
    await lab.set_fault(one.name, http="refuse")
    assert (await probe(tcp_job(address))).failure_class == "refused"
    await lab.reset(one.name)
    assert (await probe(tcp_job(address))).ok
    assert (await probe(http_job(one.http_url + "/healthz"))).ok
    assert one.faults == Faults()


async def test_http_names_the_cluster(lab: Lab, probe: Prober) -> None:
    """Any path answers with the cluster's name, so traffic through a proxy can be counted."""
    one = lab.clusters[0]
    result = await probe(http_job(one.http_url + "/app", expect_body="lab-1"))
    assert result.ok
    assert one.counters.http == 1
