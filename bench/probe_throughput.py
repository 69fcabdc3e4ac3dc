"""Probes per second on one core for DNS, HTTP and TCP against loopback servers.

The servers (a `failover lab` cluster) run in another process pinned to another core, so
the figures are the prober's own cost. Prints probes/s and CPU seconds per 1,000 probes.

    .venv/bin/python bench/probe_throughput.py [--probes 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request

from support import free_port

from failover.cli import loops
from failover.config import Job, all_jobs, parse
from failover.probes import PROBES
from failover.probes.base import ProbeContext, run_probe


def start_lab(dns_port: int, http_port: int, control_port: int) -> subprocess.Popen[bytes]:
    lab = subprocess.Popen(
        [sys.executable, "-m", "failover", "lab", "--clusters", "1",
         "--dns-base-port", str(dns_port), "--http-base-port", str(http_port),
         "--control", f"127.0.0.1:{control_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            url = f"http://127.0.0.1:{control_port}/v1/clusters"
            urllib.request.urlopen(url, timeout=1).close()
        except OSError:
            time.sleep(0.1)
            continue
        return lab
    lab.kill()
    raise SystemExit("the lab did not start")


def jobs(dns_port: int, http_port: int) -> dict[str, Job]:
    config = parse(f"""
probing: {{budget: {{per_target_per_second: 1000000, total_per_second: 1000000}}}}
clusters:
  - name: lab-1
    weight: 1
    dns: {{server: "127.0.0.1:{dns_port}", names: [api.default.svc.cluster.local],
          expect: [10.0.1.1]}}
    checks:
      - http: http://127.0.0.1:{http_port}/healthz
      - tcp: "127.0.0.1:{http_port}"
""")
    return {job.kind: job for job in all_jobs(config.clusters)}


async def measure(job: Job, probes: int, concurrency: int) -> tuple[float, float, int]:
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(concurrency)
    failures = 0

    async def permit() -> None:
        return None

    async def one() -> None:
        nonlocal failures
        async with slots:
            ctx = ProbeContext(permit, loop.time() + 5.0)
            result = await run_probe(job, ctx, PROBES[job.kind])
            failures += not result.ok

    for _ in range(min(200, probes)):  # warm-up: imports, caches, first connections
        await one()
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(probes)))
    return time.perf_counter() - wall, time.process_time() - cpu, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--event-loop", default="auto", choices=loops.CHOICES,
                        help="as `failover run --event-loop`: uvloop where installed")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    dns_port, http_port, control_port = free_port(socket.SOCK_DGRAM), free_port(), free_port()
    lab = start_lab(dns_port, http_port, control_port)
    try:
        if len(cores) > 1:
            os.sched_setaffinity(lab.pid, {cores[-1]})
            os.sched_setaffinity(0, {cores[0]})
        print(f"{args.probes} probes per kind, {args.concurrency} in flight, prober on one core")
        print(f"{'kind':<6}{'probes/s':>10}{'CPU s / 1000':>14}{'failed':>8}")
        for kind, job in jobs(dns_port, http_port).items():
            with asyncio.Runner(loop_factory=loops.factory(args.event_loop)) as runner:
                wall, cpu, failed = runner.run(measure(job, args.probes, args.concurrency))
            per_1000 = cpu / args.probes * 1000
            print(f"{kind:<6}{args.probes / wall:>10.0f}{per_1000:>14.3f}{failed:>8}")
    finally:
        lab.terminate()
        lab.wait(10)


if __name__ == "__main__":
    main()
