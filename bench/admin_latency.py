"""Admin API latency while the daemon probes at its full budget and every target times out.

Starts a lab of N clusters (another process, another core) whose DNS and HTTP both hang,
and the daemon on a config whose worst-case probe rate fills its budget; then calls the
admin API (freeze/unfreeze) at a steady pace and prints p50/p99/max latency, the probe
request rate the daemon sustained, and its event-loop lag.

    .venv/bin/python bench/admin_latency.py [--clusters 100] [--calls 600]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
from pathlib import Path

from support import call, free_port, metric, wait_for

TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local benchmark


def free_range(count: int, start: int) -> int:
    """A base port from which ``count`` ports are free for both TCP and UDP."""
    base = start
    while base + count < 65000:
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind(("127.0.0.1", port))
        except OSError:
            base += count
            continue
        return base
    msg = f"no {count} free ports in a row above {start}"
    raise SystemExit(msg)


def config(folder: Path, clusters: int, dns_base: int, http_base: int, status: int,
           admin: int) -> Path:
    # DNS (2 attempts) + HTTP (1) per cluster every 1 s, jitter 0.2: 3.75 requests/s worst
    # case per cluster; the budget is set just above the fleet's worst case.
    total = clusters * 3.75
    body = textwrap.dedent(f"""\
        listen: {{status: "127.0.0.1:{status}", admin: "127.0.0.1:{admin}"}}
        state_dir: state
        probing:
          interval: 1s
          timeout: 800ms
          jitter: 0.2
          budget: {{per_target_per_second: 4, total_per_second: {total + 1:.0f},
                   max_in_flight: {int(total) + 8}}}
        policy: {{tick: 1s, min_healthy_fraction: 0.3}}
        actuators: [{{type: file, path: state/weights.json}}]
        clusters:
        """)
    for n in range(1, clusters + 1):
        body += textwrap.indent(textwrap.dedent(f"""\
            - name: lab-{n}
              weight: 1
              dns: {{server: "127.0.0.1:{dns_base + n - 1}", names: [api.svc.cluster.local]}}
              checks: [{{http: "http://127.0.0.1:{http_base + n - 1}/healthz"}}]
            """), "  ")
    path = folder / "config.yaml"
    path.write_text(body)
    return path


def freeze_and_unfreeze(admin: int, calls: int, pace: float) -> tuple[list[float], list[int]]:
    """Milliseconds per admin call, and the status of each call answered with an error."""
    latencies, errors = [], []
    for i in range(calls):
        route = "/v1/freeze" if i % 2 == 0 else "/v1/unfreeze"
        body = {"reason": "bench"} if i % 2 == 0 else {}
        t0 = time.perf_counter()
        try:
            call(f"http://127.0.0.1:{admin}{route}", body, TOKEN)
        except urllib.error.HTTPError as exc:
            errors.append(exc.code)  # counted and shown: a benchmark hides nothing
        latencies.append((time.perf_counter() - t0) * 1000)
        time.sleep(pace)
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between calls")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    dns_base = free_range(args.clusters, 20000)
    http_base = free_range(args.clusters, dns_base + args.clusters)
    control, status, admin = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        lab = subprocess.Popen(
            [sys.executable, "-m", "failover", "lab", "--clusters", str(args.clusters),
             "--dns-base-port", str(dns_base), "--http-base-port", str(http_base),
             "--control", f"127.0.0.1:{control}"], stdout=subprocess.DEVNULL)
        daemon: subprocess.Popen[bytes] | None = None
        try:
            wait_for(f"http://127.0.0.1:{control}/v1/clusters")
            for n in range(1, args.clusters + 1):
                call(f"http://127.0.0.1:{control}/v1/clusters/lab-{n}/fault",
                     {"dns": "timeout", "http": "timeout"})
            path = config(folder, args.clusters, dns_base, http_base, status, admin)
            daemon = subprocess.Popen(
                [sys.executable, "-m", "failover", "run", "-c", str(path), "--log-level",
                 "warning"], env={**os.environ, "FAILOVER_ADMIN_TOKEN": TOKEN},
                stderr=(folder / "daemon.log").open("wb"))
            if len(cores) > 1:
                os.sched_setaffinity(lab.pid, {cores[-1]})
                os.sched_setaffinity(daemon.pid, {cores[0]})
            wait_for(f"http://127.0.0.1:{status}/healthz")
            time.sleep(5)  # let the probe load reach its steady state
            before = call(f"http://127.0.0.1:{status}/metrics").decode()
            started = time.monotonic()
            latencies, errors = freeze_and_unfreeze(admin, args.calls, args.pace)
            elapsed = time.monotonic() - started
            after = call(f"http://127.0.0.1:{status}/metrics").decode()
        finally:
            for process in (daemon, lab):
                if process is not None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(60)
    sent = (metric(after, "failover_probe_requests_total")
            - metric(before, "failover_probe_requests_total"))
    lag_sum = (metric(after, "failover_event_loop_lag_seconds_sum")
               - metric(before, "failover_event_loop_lag_seconds_sum"))
    lag_count = (metric(after, "failover_event_loop_lag_seconds_count")
                 - metric(before, "failover_event_loop_lag_seconds_count"))
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{args.clusters} clusters, every DNS and HTTP target hanging; daemon on one core")
    print(f"probe requests sent: {sent / elapsed:.0f}/s "
          f"(budget {args.clusters * 3.75 + 1:.0f}/s worst case)")
    print(f"event loop lag: mean {lag_sum / max(lag_count, 1) * 1000:.1f} ms")
    if errors:
        print(f"admin calls answered with an error: {len(errors)} (HTTP {sorted(set(errors))})")
    print(f"admin calls: {len(latencies)}, p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")


if __name__ == "__main__":
    main()
