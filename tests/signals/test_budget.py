"""The query budget: at most max_queries_per_second, whatever the fleet's size; what the
budget cannot cover waits for a later round, the clusters named first served first; and a
few queries in flight at most."""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from failover.signals import PrometheusSource, SignalMetrics
from failover.signals.prometheus import MAX_IN_FLIGHT
from tests.signals.conftest import FakePrometheus, Rig, json_response, one

QUERY = 'u{cluster="{cluster}"}'


def _asked(fake: FakePrometheus) -> list[str]:
    """The clusters queried, in order."""
    return [q.removeprefix('u{cluster="').removesuffix('"}') for q in fake.queries]


async def test_budget_skips_the_clusters_named_last(rig: Rig, fake: FakePrometheus) -> None:
    """With tokens for two queries, the first two clusters are queried and the third is
    skipped (counted); tokens come back with time, served in the given order."""
    rig.clusters = ["a", "b", "c"]
    source = rig.source({"utilization": QUERY}, max_queries_per_second=2)
    await source.run_round()
    assert _asked(fake) == ["a", "b"]
    assert rig.count("skipped") == 1
    assert rig.count("empty") == 2

    fake.queries.clear()
    rig.advance(0.5)  # one token back
    rig.clusters = ["c", "a", "b"]  # c is recovering now: it comes first
    await source.run_round()
    assert _asked(fake) == ["c"]
    assert rig.count("skipped") == 3

    fake.queries.clear()
    rig.advance(60)  # the bucket holds no more than its burst, however long the wait
    await source.run_round()
    assert _asked(fake) == ["c", "a"]


async def test_budget_covers_shared_and_fleet_queries_first(
        rig: Rig, fake: FakePrometheus) -> None:
    """Shared and fleet-wide queries (each covers every cluster) run before per-cluster
    ones."""
    rig.clusters = ["a", "b"]
    source = rig.source({"utilization": QUERY, "error_ratio": "fleet_errors"},
                        shared={"utilization": "db"}, max_queries_per_second=3)
    await source.run_round()
    assert fake.queries == ["db", "fleet_errors", 'u{cluster="a"}']
    assert rig.count("skipped") == 1


async def test_rate_holds_within_a_round(fake: FakePrometheus) -> None:
    """On the real clock, a round waits for tokens until its deadline (interval - timeout),
    and the queries Prometheus sees never exceed burst + rate x T in any window T."""
    rate, interval, timeout = 20.0, 0.6, 0.2
    rig = Rig(fake)
    rig.clusters = [f"c{i}" for i in range(40)]
    fake.replies = {f'u{{cluster="c{i}"}}': one("0.5") for i in range(40)}
    spec = rig.spec({"utilization": QUERY}, max_queries_per_second=rate, interval=interval,
                    timeout=timeout)
    # The real clocks: the round's deadline and the bucket run on the loop's time.
    source = PrometheusSource(spec, lambda: rig.clusters, SignalMetrics(rig.registry))
    await source.run_round()
    sent = len(fake.arrivals)
    skipped = rig.count("skipped")
    assert sent + skipped == 40
    burst = math.ceil(rate)
    assert sent >= burst, "the burst at least, at once"
    # What the bucket can give by the deadline: the burst, then the rate; one token of slack
    # for the clock advancing between the deadline check and the send.
    assert sent <= burst + rate * (interval - timeout) + 1
    arrivals = fake.arrivals
    for i, first in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            # Two queries of slack: arrival is stamped at the server, a little (and not always
            # equally) after the token was taken.
            assert j - i + 1 <= burst + rate * (arrivals[j] - first) + 2, (i, j)
    assert _asked(fake) == rig.clusters[:sent], "in the given order"


async def test_few_queries_in_flight(rig: Rig, fake: FakePrometheus) -> None:
    """However many queries a round has, at most MAX_IN_FLIGHT are outstanding at once."""
    rig.clusters = [f"c{i}" for i in range(3 * MAX_IN_FLIGHT)]
    in_flight = peak = 0
    full = asyncio.Event()

    async def slow(expr: str) -> web.StreamResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == MAX_IN_FLIGHT:
            full.set()
        # Hold each reply until the cap is reached once, so the cap is what is measured.
        await full.wait()
        in_flight -= 1
        return json_response(one("0.1"))

    fake.handler = slow
    source = rig.source({"utilization": QUERY}, interval=5.0, timeout=5.0)
    await source.run_round()
    assert peak == MAX_IN_FLIGHT
    assert rig.count("ok") == 3 * MAX_IN_FLIGHT
