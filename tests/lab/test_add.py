"""Clusters added to a running lab: numbered after the highest, started with the lab's options
and ports, serving DNS and HTTP like the first ones, and stopped with the lab."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import dns.asyncquery
import dns.message
import pytest
from aiohttp.test_utils import TestClient, TestServer

from failover.config.addresses import split_hostport
from failover.lab import ClusterExists, ClusterStartError, Lab, LabOptions
from failover.lab.control import control_app, control_server
from failover.lab.lab import BadClusterName, wrong_address
from tests.lab.clock import FakeClock
from tests.servers import free_udp_tcp_port

pytestmark = pytest.mark.lab_clusters(2)

NAME = "api.default.svc.cluster.local"


@pytest.fixture
async def client(lab: Lab) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(control_app(lab))) as test_client:
        yield test_client


async def resolve(dns_address: str) -> list[str]:
    """The A answer for `NAME` over UDP from the DNS server at ``host:port``."""
    host, port = split_hostport(dns_address)
    reply = await dns.asyncquery.udp(dns.message.make_query(NAME, "A"), host, port=port,
                                     timeout=5)
    return [rdata.to_text() for rrset in reply.answer for rdata in rrset]


async def get(url: str) -> tuple[int, str, str | None]:
    """Status, body and the X-Lab-Cluster header of a GET."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text(), response.headers.get("X-Lab-Cluster")


def bindable(port: int) -> bool:
    """Whether UDP and TCP can both bind ``port`` on 127.0.0.1 now: nobody holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        try:
            udp.bind(("127.0.0.1", port))
            tcp.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_run(count: int) -> int:
    """The first of ``count`` ports in a row free for UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        first = free_udp_tcp_port()
        if all(bindable(first + i) for i in range(1, count)):
            return first
    msg = f"no {count} free ports in a row on 127.0.0.1"
    raise RuntimeError(msg)


async def test_added_cluster_serves_dns_and_http(
        lab: Lab, client: TestClient[object, object]) -> None:
    """POST /v1/clusters {} starts lab-3: 201 with where it serves, its DNS answers
    10.0.3.1 there, its /healthz answers 200 there, and the listing has it."""
    response = await client.post("/v1/clusters", json={})
    assert response.status == 201
    doc = await response.json()
    assert (doc["name"], doc["answer"]) == ("lab-3", "10.0.3.1")
    assert doc["faults"] == {"dns": "ok", "http": "ok", "delay": 1.0}
    assert doc["dns"].startswith("127.0.0.1:")
    assert doc["http"].startswith("http://127.0.0.1:")
    assert await resolve(doc["dns"]) == ["10.0.3.1"]
    assert await get(doc["http"] + "/healthz") == (200, "ok\n", "lab-3")
    assert doc["dns"] not in {c.dns_address for c in lab.clusters[:2]}
    assert doc["http"] not in {c.http_url for c in lab.clusters[:2]}
    listed = await (await client.get("/v1/clusters")).json()
    assert [c["name"] for c in listed["clusters"]] == ["lab-1", "lab-2", "lab-3"]
    assert listed["clusters"][2]["counters"]["dns_udp"] == 1


async def test_added_cluster_takes_faults(client: TestClient[object, object]) -> None:
    """An added cluster's faults are set and reset like the first ones': ``wrong`` answers
    its own wrong address, 10.255.3.1."""
    doc = await (await client.post("/v1/clusters", json={})).json()
    response = await client.post("/v1/clusters/lab-3/fault", json={"dns": "wrong", "http": "500"})
    assert response.status == 200
    assert await resolve(doc["dns"]) == [wrong_address(3)] == ["10.255.3.1"]
    assert (await get(doc["http"] + "/healthz"))[0] == 500
    await client.post("/v1/clusters/lab-3/reset")
    assert await resolve(doc["dns"]) == ["10.0.3.1"]
    assert (await get(doc["http"] + "/"))[:2] == (200, "lab-3\n")


async def test_numbers_continue_after_the_highest(
        lab: Lab, client: TestClient[object, object]) -> None:
    """A named cluster takes the next number too (its addresses follow it); the next without a
    name is lab-4; two at once get different numbers."""
    response = await client.post("/v1/clusters", json={"name": "edge-1"})
    assert response.status == 201
    doc = await response.json()
    assert (doc["name"], doc["answer"]) == ("edge-1", "10.0.3.1")
    assert await get(doc["http"] + "/") == (200, "edge-1\n", "edge-1")
    assert await resolve(doc["dns"]) == ["10.0.3.1"]
    doc = await (await client.post("/v1/clusters", json={})).json()
    assert (doc["name"], doc["answer"]) == ("lab-4", "10.0.4.1")
    both = await asyncio.gather(lab.add(), lab.add("edge-2"))
    assert sorted(c.number for c in both) == [5, 6]
    assert [c.name for c in lab.clusters] == ["lab-1", "lab-2", "edge-1", "lab-4",
                                              *(c.name for c in both)]


async def test_no_body_is_an_empty_one(client: TestClient[object, object]) -> None:
    """As reset and cold, the route takes no body at all for {}."""
    response = await client.post("/v1/clusters")
    assert response.status == 201
    assert (await response.json())["name"] == "lab-3"


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"name": "lab-1"}, 400, "'lab-1' is a name the lab gives itself"),
    ({"name": "lab-3"}, 400, "'lab-3' is a name the lab gives itself"),
    ({"name": "Edge"}, 400, "'Edge' must be 1-63 lower-case letters, digits or '-'"),
    ({"name": "-edge"}, 400, "must be 1-63 lower-case letters"),
    ({"name": "edge_1"}, 400, "must be 1-63 lower-case letters"),
    ({"name": "edge.1"}, 400, "must be 1-63 lower-case letters"),
    ({"name": "edge\n"}, 400, "must be 1-63 lower-case letters"),
    ({"name": ""}, 400, "must be 1-63 lower-case letters"),
    ({"name": "a" * 64}, 400, "must be 1-63 lower-case letters"),
    ({"name": 7}, 400, "name: Input should be a valid string"),
    ({"nmae": "edge"}, 400, "nmae: Extra inputs are not permitted"),
    ([], 400, "body: Input should be"),
])
async def test_bad_request_starts_nothing(
        lab: Lab, client: TestClient[object, object], body: object, status: int,
        message: str) -> None:
    """A bad name or body is refused saying why; no cluster is added and no number used."""
    response = await client.post("/v1/clusters", json=body)
    assert response.status == status
    assert message in (await response.json())["error"]
    assert len(lab.clusters) == 2
    assert (await lab.add()).name == "lab-3"


async def test_body_that_is_not_json_is_400(lab: Lab, client: TestClient[object, object]) -> None:
    response = await client.post("/v1/clusters", data=b"name=edge")
    assert response.status == 400
    assert "not JSON" in (await response.json())["error"]
    assert len(lab.clusters) == 2


async def test_clashing_name_is_409(lab: Lab, client: TestClient[object, object]) -> None:
    """A name already in use is a conflict: the first keeps it, nothing else starts."""
    assert (await client.post("/v1/clusters", json={"name": "edge"})).status == 201
    response = await client.post("/v1/clusters", json={"name": "edge"})
    assert response.status == 409
    assert "already a cluster named 'edge'" in (await response.json())["error"]
    assert [c.name for c in lab.clusters] == ["lab-1", "lab-2", "edge"]
    with pytest.raises(ClusterExists):
        await lab.add("edge")
    with pytest.raises(BadClusterName):
        await lab.add("EDGE")
    assert len(lab.clusters) == 3


async def test_added_cluster_has_the_lab_options() -> None:
    """Capacity, warm-up and the lab's clock apply to an added cluster as to the first: made
    cold, it answers 5 of 8 requests in a second (20 x 0.25), and warms as it serves."""
    clock = FakeClock()
    options = LabOptions(clusters=1, dns_base_port=0, http_base_port=0, capacity_rps=20,
                         cold_factor=0.25, warm_requests=10, control=None)
    async with Lab(options, clock=clock) as lab:
        cluster = await lab.add()
        assert (cluster.describe()["capacity_rps"], cluster.describe()["warmth"]) == (20, 1)
        lab.make_cold("lab-2")
        statuses = [(await get(cluster.http_url + "/"))[0] for _ in range(8)]
        assert statuses == [200] * 5 + [503] * 3
        clock.advance(1)
        assert cluster.describe()["load"]["served_rps"] == 5
        assert 0.25 < cluster.describe()["warmth"] < 1
        assert lab.clusters[0].describe()["warmth"] == 1


async def test_fixed_ports_follow_the_number() -> None:
    """With base ports, cluster N takes base + N - 1; a taken one fails naming it, stops what
    it had started and adds nothing, and once free the same number gets it."""
    dns_base, http_base = free_run(3), free_run(3)
    options = LabOptions(clusters=1, dns_base_port=dns_base, http_base_port=http_base,
                         control=None)
    async with Lab(options) as lab:
        added = await lab.add()
        assert (added.dns.port, added.http.port) == (dns_base + 1, http_base + 1)
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", http_base + 2))
            holder.listen()
            with pytest.raises(ClusterStartError,
                               match=f"^cannot start lab-3 on DNS port {dns_base + 2} and "
                                     f"HTTP port {http_base + 2}: "):
                await lab.add()
            assert len(lab.clusters) == 2
            assert bindable(dns_base + 2)  # its DNS server, started first, is stopped again
        third = await lab.add()
        assert (third.name, third.dns.port, third.http.port) == \
            ("lab-3", dns_base + 2, http_base + 2)
        assert await resolve(third.dns_address) == ["10.0.3.1"]


async def test_taken_port_over_the_control_api_is_409() -> None:
    http_base = free_run(2)
    options = LabOptions(clusters=1, dns_base_port=0, http_base_port=http_base, control=None)
    async with Lab(options) as lab, TestClient(TestServer(control_app(lab))) as client:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", http_base + 1))
            holder.listen()
            response = await client.post("/v1/clusters", json={})
        assert response.status == 409
        assert f"cannot start lab-2 on HTTP port {http_base + 1}" in \
            (await response.json())["error"]
        assert len(lab.clusters) == 1


async def test_port_beyond_the_last_is_a_start_error() -> None:
    """Base port + N - 1 past 65535 fails as a taken port does, not with another port."""
    options = LabOptions(clusters=1, dns_base_port=0, http_base_port=65535, control=None)
    async with Lab(options) as lab:
        with pytest.raises(ClusterStartError, match=r"^cannot start lab-2 on HTTP port 65536: "):
            await lab.add()
        assert len(lab.clusters) == 1


async def test_close_stops_added_clusters() -> None:
    """Closing the lab releases an added cluster's ports too; it takes no more adds."""
    options = LabOptions(clusters=1, dns_base_port=0, http_base_port=0, control=None)
    async with Lab(options) as lab:
        added = [await lab.add(), await lab.add("edge")]
        ports = [port for c in added for port in (c.dns.port, c.http.port)]
        assert not any(bindable(port) for port in ports)
    assert all(bindable(port) for port in ports)
    with pytest.raises(RuntimeError, match="the lab is closed"):
        await lab.add()


async def test_metrics_include_added_clusters(lab: Lab) -> None:
    """/metrics reads the clusters at scrape time: one added after the server started has
    its series in the next scrape."""
    async with control_server(lab) as control:
        cluster = await lab.add("edge")
        await get(cluster.http_url + "/healthz")
        status, text, _ = await get(f"http://{control}/metrics")
    assert status == 200
    assert 'lab_requests_total{cluster="edge"} 1.0' in text
    assert 'lab_responses_total{cluster="edge",code="200"} 1.0' in text
    assert 'lab_requests_total{cluster="lab-1"} 0.0' in text
