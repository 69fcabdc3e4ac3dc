"""A minute of probing targets that all misbehave at once: file descriptors and asyncio tasks
stay flat, so nothing the probes open is ever left behind."""

from __future__ import annotations

import asyncio
import os
import textwrap

import pytest
from prometheus_client import CollectorRegistry

from failover.config import Budget, Probing, all_jobs, parse
from failover.metrics import Metrics
from failover.probes import PROBES
from failover.probes.scheduler import Scheduler
from tests.hostile import servers
from tests.hostile.conftest import Serve
from tests.hostile.servers import DnsServer, TcpServer

RUN = 60.0
"""Seconds of real probing, sampled every SAMPLE seconds."""
SAMPLE = 5.0
WARM_UP = 10.0
"""Seconds before the baseline: connections and buffers reach their steady level first."""
MARGIN = 8
"""Descriptors or tasks allowed above the warm-up's peak: probes in flight at the sample."""


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.soak
async def test_a_minute_against_misbehaving_targets_leaks_nothing(serve: Serve) -> None:
    """Silent, endless, slowloris and endless-header HTTP servers and garbage or truncating
    DNS servers, probed at 5/s each for a minute: open fds and tasks do not grow."""
    http = [await serve(TcpServer(behaviour)) for behaviour in (
        servers.silent, servers.endless_body, servers.slowloris(0.05),
        servers.slow_endless_body(0.05), servers.endless_headers)]
    dns = [await serve(DnsServer(udp_reply=reply, tcp=tcp)) for reply, tcp in (
        (servers.garbage, servers.tcp_garbage),
        (servers.truncated, servers.tcp_truncated_forever),
        (servers.truncated, servers.tcp_endless_stream),
        (servers.truncated, servers.tcp_silent))]
    clusters = "".join(textwrap.dedent(f"""\
        - name: h{i}
          weight: 1
          checks: [{{http: "{server.url()}", expect_body: "never there"}}]
        """) for i, server in enumerate(http)) + "".join(textwrap.dedent(f"""\
        - name: d{i}
          weight: 1
          dns: {{server: "{server.address}", names: [soak.test]}}
        """) for i, server in enumerate(dns))
    config = parse("probing: {interval: 1s, timeout: 150ms, budget: {per_target_per_second: 3}}"
                   "\nclusters:\n" + textwrap.indent(clusters, "  "))
    probing = Probing(interval=0.2, timeout=0.15, jitter=0.1,
                      budget=Budget(per_target_per_second=20, total_per_second=1000,
                                    max_in_flight=64))
    results: list[bool] = []
    scheduler = Scheduler(all_jobs(config.clusters), probing, Metrics(CollectorRegistry()),
                          lambda job, result: results.append(result.ok), PROBES)
    task = asyncio.create_task(scheduler.run())
    samples: list[tuple[float, int, int]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        while loop.time() - start < RUN:
            await asyncio.sleep(SAMPLE)  # sampling a process over real time is the point
            samples.append((loop.time() - start, open_fds(), len(asyncio.all_tasks())))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for at, fds, tasks in samples:
        print(f"{at:5.1f}s  fds {fds:4d}  tasks {tasks:4d}")
    assert results, "probes ran"
    assert not any(results), "every target misbehaves: no probe may pass"
    baseline = [s for s in samples if s[0] <= WARM_UP + SAMPLE]
    later = [s for s in samples if s[0] > WARM_UP + SAMPLE]
    fd_cap = max(s[1] for s in baseline) + MARGIN
    task_cap = max(s[2] for s in baseline) + MARGIN
    assert all(s[1] <= fd_cap for s in later), samples
    assert all(s[2] <= task_cap for s in later), samples
    print(f"{len(results)} probes, every one failed")
