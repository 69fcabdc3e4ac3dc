"""The per-target cap holds at the servers: requests that arrive, retries included, while
every target fails and the schedule asks for far more than the budget allows."""

from __future__ import annotations

import asyncio
import textwrap

import pytest
from prometheus_client import CollectorRegistry

from failover.config import Budget, Probing, all_jobs, parse
from failover.lab import Lab
from failover.metrics import Metrics
from failover.probes import PROBES
from failover.probes.scheduler import Scheduler

CAP = 5.0
"""Requests per second per target the test allows."""
RUN = 6.0
"""Seconds of real probing: many times the bucket's burst, so the rate, not the burst, shows."""
INTERVAL = 0.05
"""The schedule: 20 probes/s per check, each two requests under ``truncate``: 8x the cap."""


pytestmark = pytest.mark.lab_clusters(2)


async def test_cap_holds_at_the_servers_while_every_target_fails(lab: Lab) -> None:
    """DNS probes that need a TCP retry and HTTP probes that hang never exceed the cap."""
    for cluster in lab.clusters:
        # Over UDP every reply is truncated, so each probe sends a second request over TCP,
        # and then fails: the checks expect an address the lab never gives.
        await lab.set_fault(cluster.name, dns="truncate", http="timeout")
    clusters = "".join(textwrap.dedent(f"""\
        - name: {c.name}
          weight: 1
          dns: {{server: "{c.dns_address}", names: [api.svc.cluster.local], expect: [192.0.2.1]}}
          checks: [{{http: "{c.http_url}/healthz"}}]
        """) for c in lab.clusters)
    config = parse("probing: {interval: 1s, timeout: 500ms, budget: {per_target_per_second: 100}}"
                   "\nclusters:\n" + textwrap.indent(clusters, "  "))
    # Built directly, as a config file asking for this schedule under this cap is refused.
    probing = Probing(interval=INTERVAL, timeout=INTERVAL, jitter=0.1,
                      budget=Budget(per_target_per_second=CAP, total_per_second=1000,
                                    max_in_flight=64))
    registry = CollectorRegistry()
    results = []
    scheduler = Scheduler(all_jobs(config.clusters), probing, Metrics(registry),
                          lambda job, result: results.append(result), PROBES)
    loop = asyncio.get_running_loop()
    start = loop.time()
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(RUN)  # the thing measured is real time at real servers
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    elapsed = loop.time() - start

    allowed = CAP * elapsed + CAP  # the rate over the run, plus one full bucket (burst = CAP)
    for cluster in lab.clusters:
        dns_requests = cluster.counters.dns_udp + cluster.counters.dns_tcp
        assert cluster.counters.dns_tcp > 0, "the TCP retry path was exercised"
        assert dns_requests <= allowed, (cluster.name, dns_requests, allowed)
        assert cluster.counters.http <= allowed, (cluster.name, cluster.counters.http, allowed)
        # Close to the cap: the limit, not a slow scheduler, is what held the rate down.
        assert dns_requests >= 0.8 * CAP * elapsed, (cluster.name, dns_requests)
        print(f"{cluster.name}: {dns_requests} DNS and {cluster.counters.http} HTTP requests "
              f"in {elapsed:.2f}s (cap {allowed:.0f})")
    assert results, "probes ran"
    assert all(not r.ok for r in results)
    skipped = registry.get_sample_value(
        "failover_probes_skipped_total", {"cluster": "lab-1", "kind": "dns", "reason": "budget"})
    assert skipped is not None
    assert skipped > 0
