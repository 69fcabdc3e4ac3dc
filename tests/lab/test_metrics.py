"""The lab's /metrics: what reached each cluster and its load, read at scrape time, in the
Prometheus text format; capacity series only for clusters with a capacity."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import dns.asyncquery
import dns.message
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from failover.lab import Lab, LabOptions
from failover.lab.control import control_server
from failover.lab.warmth import WarmthParams, warmth
from tests.lab.clock import FakeClock

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """(sample name and labels -> value, family name -> HELP text)."""
    samples: Samples = {}
    helps = {}
    for family in text_string_to_metric_families(text):
        helps[family.name] = family.documentation
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples, helps


def series(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def scrape(control: str) -> tuple[Samples, dict[str, str]]:
    status, text = await get(f"http://{control}/metrics")
    assert status == 200
    return parse(text)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def capacity_lab(clock: FakeClock) -> AsyncIterator[Lab]:
    options = LabOptions(clusters=2, dns_base_port=0, http_base_port=0, capacity_rps=20,
                         cold_factor=0.25, warm_requests=10, control=None)
    async with Lab(options, clock=clock) as running:
        yield running


async def test_counts_and_load_of_the_last_second(capacity_lab: Lab, clock: FakeClock) -> None:
    """A cold lab-1 offered 8 requests and 2 health checks in one second shows 5 served, 5
    rejected, utilization 2; lab-2's injected 500s and DNS queries are counted by kind."""
    lab1, lab2 = capacity_lab.clusters
    capacity_lab.make_cold("lab-1")
    for path in ["/"] * 8 + ["/healthz"] * 2:
        await get(lab1.http_url + path)
    await capacity_lab.set_fault("lab-2", http="500")
    for _ in range(3):
        assert (await get(lab2.http_url + "/"))[0] == 500
    query = dns.message.make_query("api.default.svc.cluster.local", "A")
    await dns.asyncquery.udp(query, "127.0.0.1", port=lab2.dns.port, timeout=5)
    await dns.asyncquery.tcp(query, "127.0.0.1", port=lab2.dns.port, timeout=5)
    clock.advance(1)  # that second is now the last complete one

    async with control_server(capacity_lab) as control:
        assert control.startswith("127.0.0.1:")
        samples, helps = await scrape(control)

    def one(name: str, cluster: str = "lab-1", **labels: str) -> float | None:
        return series(samples, name, cluster=cluster, **labels)

    assert one("lab_requests_total") == 10
    assert one("lab_responses_total", code="200") == 5
    assert one("lab_responses_total", code="503") == 5
    assert one("lab_responses_total", code="500") == 0
    assert one("lab_over_capacity_total") == 5
    assert one("lab_dns_queries_total", transport="udp") == 0
    assert one("lab_offered_rps") == 10
    assert one("lab_served_rps") == 5
    assert one("lab_utilization") == 2.0
    params = WarmthParams(cold_factor=0.25, warm_requests=10, cold_after=30)
    assert one("lab_warmth") == pytest.approx(warmth(5, params))
    assert one("lab_capacity_rps") == pytest.approx(20 * warmth(5, params))
    assert one("lab_capacity_max_rps") == 20

    assert one("lab_requests_total", "lab-2") == 3
    assert one("lab_responses_total", "lab-2", code="500") == 3
    assert one("lab_dns_queries_total", "lab-2", transport="udp") == 1
    assert one("lab_dns_queries_total", "lab-2", transport="tcp") == 1
    assert one("lab_warmth", "lab-2") == 1
    assert one("lab_utilization", "lab-2") == pytest.approx(3 / 20)
    assert one("lab_served_rps", "lab-2") == 0

    names = {"lab_requests", "lab_responses", "lab_over_capacity", "lab_dns_queries",
             "lab_capacity_rps", "lab_capacity_max_rps", "lab_warmth", "lab_utilization",
             "lab_offered_rps", "lab_served_rps"}
    assert set(helps) == names
    assert all(len(text) > 20 for text in helps.values()), helps


async def test_scrapes_read_the_state_of_the_moment(capacity_lab: Lab,
                                                    clock: FakeClock) -> None:
    """Each scrape reads the lab anew: the load figures follow the clock, counters grow."""
    lab1 = capacity_lab.clusters[0]
    async with control_server(capacity_lab) as control:
        for _ in range(4):
            await get(lab1.http_url + "/")
        samples, _ = await scrape(control)
        assert series(samples, "lab_offered_rps", cluster="lab-1") == 0  # second not over
        clock.advance(1)
        samples, _ = await scrape(control)
        assert series(samples, "lab_offered_rps", cluster="lab-1") == 4
        clock.advance(1)
        samples, _ = await scrape(control)
        assert series(samples, "lab_offered_rps", cluster="lab-1") == 0
        assert series(samples, "lab_requests_total", cluster="lab-1") == 4


@pytest.mark.lab_clusters(1)
async def test_unlimited_cluster_has_no_capacity_series(lab: Lab) -> None:
    """Without a capacity: counters and load rates, no capacity, warmth or utilization."""
    await get(lab.clusters[0].http_url + "/healthz")
    async with control_server(lab) as control:
        samples, _ = await scrape(control)
    assert series(samples, "lab_requests_total", cluster="lab-1") == 1
    assert series(samples, "lab_responses_total", cluster="lab-1", code="200") == 1
    assert series(samples, "lab_offered_rps", cluster="lab-1") is not None
    present = {name for name, _ in samples}
    assert not present & {"lab_capacity_rps", "lab_capacity_max_rps", "lab_warmth",
                          "lab_utilization"}


async def test_each_control_app_has_its_own_registry(lab: Lab) -> None:
    """Two labs in one process, each served: neither scrape shows the other's clusters'
    counts, and nothing lands in the global registry."""
    other_options = LabOptions(clusters=1, dns_base_port=0, http_base_port=0, control=None)
    async with Lab(other_options) as other:
        await get(other.clusters[0].http_url + "/")
        async with control_server(lab) as first, control_server(other) as second:
            assert first != second
            one, _ = await scrape(first)
            two, _ = await scrape(second)
    assert series(one, "lab_requests_total", cluster="lab-1") == 0
    assert series(two, "lab_requests_total", cluster="lab-1") == 1
    assert not any(m.name.startswith("lab_") for m in REGISTRY.collect())
