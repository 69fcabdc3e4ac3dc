"""A lab cluster with a capacity returns cold: it serves a fraction of its capacity at first
and more as it serves traffic; health checks use capacity but do not warm it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from failover.lab import Lab, LabOptions
from failover.lab.control import control_app
from failover.lab.lab import NoCapacity, UnknownCluster
from tests.lab.clock import FakeClock

OPTIONS = LabOptions(clusters=1, dns_base_port=0, http_base_port=0, capacity_rps=20,
                     cold_factor=0.25, warm_requests=10, control=None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cold_lab(clock: FakeClock) -> AsyncIterator[Lab]:
    async with Lab(OPTIONS, clock=clock) as running:
        yield running


async def statuses(lab: Lab, count: int, path: str = "/") -> list[int]:
    url = lab.clusters[0].http_url + path
    async with aiohttp.ClientSession() as session:
        got = []
        for _ in range(count):
            async with session.get(url) as response:
                got.append(response.status)
        return got


async def test_cold_cluster_serves_a_fraction_then_more(cold_lab: Lab,
                                                        clock: FakeClock) -> None:
    """Capacity 20, cold factor 0.25: 5 answers then 503s; after serving them, the next
    second admits 20 x warmth(5 served)."""
    cold_lab.make_cold("lab-1")
    assert await statuses(cold_lab, 8) == [200] * 5 + [503] * 3
    clock.advance(1)
    warmer = 20 * (1 - 0.75 * math.exp(-5 / 10))
    assert math.floor(warmer) == 10
    assert await statuses(cold_lab, 12) == [200] * 10 + [503] * 2
    described = cold_lab.clusters[0].describe()
    assert described["warmth"] == pytest.approx(1 - 0.75 * math.exp(-15 / 10))
    assert described["load"] == {"offered_rps": 8, "served_rps": 5, "rejected_rps": 3,
                                 "capacity_rps": 5.0, "utilization": 1.6}


async def test_health_checks_use_capacity_but_do_not_warm(cold_lab: Lab,
                                                          clock: FakeClock) -> None:
    """Health checks answered 200 leave a cold cluster cold, second after second."""
    cold_lab.make_cold("lab-1")
    for _ in range(3):
        assert await statuses(cold_lab, 7, "/healthz") == [200] * 5 + [503] * 2
        clock.advance(1)
    assert cold_lab.clusters[0].describe()["warmth"] == 0.25


async def test_idle_cluster_goes_cold_even_with_health_checks(cold_lab: Lab,
                                                              clock: FakeClock) -> None:
    """Started warm (capacity 20 at once); 30 s with only health checks and it is cold."""
    assert await statuses(cold_lab, 21) == [200] * 20 + [503]
    for _ in range(3):
        clock.advance(10)
        assert await statuses(cold_lab, 1, "/healthz") == [200]
    assert cold_lab.clusters[0].describe()["warmth"] == 0.25
    # The last health check took one of this second's 5.
    assert await statuses(cold_lab, 6) == [200] * 4 + [503] * 2


async def test_traffic_keeps_it_warm(cold_lab: Lab, clock: FakeClock) -> None:
    """A request served every 20 s keeps the cluster warm for good."""
    for _ in range(4):
        clock.advance(20)
        assert await statuses(cold_lab, 1) == [200]
    assert cold_lab.clusters[0].describe()["warmth"] == 1


async def test_make_cold_refuses_unknown_and_unlimited(lab: Lab) -> None:
    """Only a cluster with a capacity can be cold; a name the lab lacks is UnknownCluster."""
    with pytest.raises(NoCapacity, match="lab-1 has no capacity limit"):
        lab.make_cold("lab-1")
    with pytest.raises(UnknownCluster):
        lab.make_cold("lab-9")


async def test_cold_control_call(cold_lab: Lab, lab: Lab) -> None:
    """POST /v1/clusters/NAME/cold makes it cold and shows it; 404 unknown, 409 unlimited."""
    async with TestClient(TestServer(control_app(cold_lab))) as client:
        response = await client.post("/v1/clusters/lab-1/cold")
        assert response.status == 200
        doc = await response.json()
        assert (doc["warmth"], doc["effective_capacity_rps"], doc["capacity_rps"]) == \
            (0.25, 5.0, 20)
        listed = await (await client.get("/v1/clusters")).json()
        assert listed["clusters"][0]["warmth"] == 0.25
        response = await client.post("/v1/clusters/lab-7/cold")
        assert response.status == 404
        assert "no cluster named 'lab-7'" in (await response.json())["error"]
    async with TestClient(TestServer(control_app(lab))) as client:
        response = await client.post("/v1/clusters/lab-1/cold")
        assert response.status == 409
        assert "--capacity" in (await response.json())["error"]
        doc = (await (await client.get("/v1/clusters")).json())["clusters"][0]
        assert (doc["warmth"], doc["effective_capacity_rps"], doc["load"]["utilization"]) == \
            (None, None, None)
