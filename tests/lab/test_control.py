"""The lab's control API changes faults and reports what reached each cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import dns.asyncquery
import dns.message
import pytest
from aiohttp.test_utils import TestClient, TestServer

from failover.lab import Lab
from failover.lab.control import control_app
from failover.lab.dns_server import HEARTBEAT
from tests.lab.clock import FakeClock

pytestmark = pytest.mark.lab_clusters(2)


@pytest.fixture
async def client(lab: Lab) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(control_app(lab))) as test_client:
        yield test_client


async def test_lists_clusters_with_addresses(lab: Lab, client: TestClient[object, object]) -> None:
    """GET /v1/clusters names every cluster with its addresses, answer and faults."""
    response = await client.get("/v1/clusters")
    assert response.status == 200
    doc = await response.json()
    assert [c["name"] for c in doc["clusters"]] == ["lab-1", "lab-2"]
    first = doc["clusters"][0]
    assert first["dns"] == lab.clusters[0].dns_address
    assert first["http"] == lab.clusters[0].http_url
    assert first["answer"] == "10.0.1.1"
    assert first["faults"] == {"dns": "ok", "http": "ok", "delay": 1.0}


async def test_fault_changes_only_what_is_given(
        lab: Lab, client: TestClient[object, object]) -> None:
    """A fault body sets the fields it names and leaves the others; reset lifts them all."""
    response = await client.post("/v1/clusters/lab-2/fault", json={"dns": "servfail"})
    assert response.status == 200
    assert (await response.json())["faults"] == {"dns": "servfail", "http": "ok", "delay": 1.0}
    await client.post("/v1/clusters/lab-2/fault", json={"http": "slow", "delay": 0.5})
    assert (lab.clusters[1].faults.dns, lab.clusters[1].faults.http) == ("servfail", "slow")
    assert lab.clusters[1].faults.delay == 0.5
    assert lab.clusters[0].faults.dns == "ok"
    response = await client.post("/v1/clusters/lab-2/reset")
    assert (await response.json())["faults"] == {"dns": "ok", "http": "ok", "delay": 1.0}


async def test_stale_freezes_the_heartbeat_when_set(
        lab: Lab, client: TestClient[object, object]) -> None:
    """{"dns": "stale"} is a fault like the others: the heartbeat of that cluster stops at the
    moment of the call, not of the next query, while its A answers stay; reset thaws it."""
    cluster = lab.clusters[0]
    clock = FakeClock(1796165399.0)
    cluster.dns.clock = clock

    async def heartbeat() -> int:
        reply = await dns.asyncquery.udp(dns.message.make_query(HEARTBEAT, "TXT"), "127.0.0.1",
                                         port=cluster.dns.port, timeout=5)
        return int(reply.answer[0][0].strings[0])

    response = await client.post("/v1/clusters/lab-1/fault", json={"dns": "stale"})
    assert response.status == 200
    assert (await response.json())["faults"] == {"dns": "stale", "http": "ok", "delay": 1.0}
    clock.advance(90)
    assert await heartbeat() == 1796165399
    reply = await dns.asyncquery.udp(dns.message.make_query("api.cluster.local", "A"),
                                     "127.0.0.1", port=cluster.dns.port, timeout=5)
    assert [rdata.to_text() for rdata in reply.answer[0]] == [cluster.answer]
    await client.post("/v1/clusters/lab-1/reset")
    assert await heartbeat() == 1796165489


@pytest.mark.parametrize(("body", "message"), [
    ({"dns": "broken"}, "dns: Input should be"),
    ({"dsn": "timeout"}, "dsn: Extra inputs are not permitted"),
    ({"delay": -1}, "delay: Input should be greater than or equal to 0"),
    ([1, 2], "body: Input should be"),
])
async def test_bad_body_is_400_naming_the_field(
        lab: Lab, client: TestClient[object, object], body: object, message: str) -> None:
    """A bad fault body is refused with the field and the problem, and changes nothing."""
    response = await client.post("/v1/clusters/lab-1/fault", json=body)
    assert response.status == 400
    assert message in (await response.json())["error"]
    assert lab.clusters[0].faults.dns == "ok"


async def test_body_that_is_not_json_is_400(client: TestClient[object, object]) -> None:
    """Text that is not JSON gets 400 saying so."""
    response = await client.post("/v1/clusters/lab-1/fault", data=b"dns=timeout")
    assert response.status == 400
    assert "not JSON" in (await response.json())["error"]


async def test_unknown_cluster_is_404(client: TestClient[object, object]) -> None:
    """Faults for a cluster the lab does not have: 404 naming it."""
    for path in ("/v1/clusters/lab-9/fault", "/v1/clusters/lab-9/reset"):
        response = await client.post(path, json={"dns": "timeout"})
        assert response.status == 404
        assert "lab-9" in (await response.json())["error"]
