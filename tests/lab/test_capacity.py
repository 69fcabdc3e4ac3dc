"""The lab's capacity model: requests beyond capacity in a second are answered 503."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from failover.lab import Lab, LabOptions


@pytest.fixture
async def small_lab() -> AsyncIterator[Lab]:
    async with Lab(LabOptions(clusters=1, dns_base_port=0, http_base_port=0, capacity_rps=5,
                              control=None)) as running:
        yield running


async def test_requests_beyond_capacity_get_503(small_lab: Lab) -> None:
    """With capacity 5 rps, 8 requests in one second give 5 answers and 3 refusals."""
    cluster = small_lab.clusters[0]
    async with aiohttp.ClientSession() as session:
        statuses = []
        for _ in range(8):
            async with session.get(cluster.http_url + "/") as response:
                statuses.append(response.status)
                assert response.headers["X-Lab-Cluster"] == "lab-1"
    assert statuses == [200] * 5 + [503] * 3
    assert (cluster.counters.http, cluster.counters.over_capacity) == (8, 3)
