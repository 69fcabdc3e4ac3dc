"""Admin API latency while the daemon probes at its full budget and every target times out.

Starts a lab of N clusters (another process, another core) whose DNS and HTTP both hang,
and the daemon on a config whose worst-case probe rate fills its budget; then calls the
admin API (freeze/unfreeze) at a steady pace and prints p50/p99/max latency, the probe
request rate the daemon sustained, and its event-loop lag.

    .venv/bin/python bench/admin_latency.py [--clusters 100] [--calls 600]
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.error

from support import call, fleet, probe_rate_and_lag

TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local benchmark


def freeze_and_unfreeze(admin: str, calls: int, pace: float) -> tuple[list[float], list[int]]:
    """Milliseconds per admin call, and the status of each call answered with an error."""
    latencies, errors = [], []
    for i in range(calls):
        route = "/v1/freeze" if i % 2 == 0 else "/v1/unfreeze"
        body = {"reason": "bench"} if i % 2 == 0 else {}
        t0 = time.perf_counter()
        try:
            call(f"{admin}{route}", body, TOKEN)
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
    with fleet(args.clusters, hanging=True, token=TOKEN) as daemon:
        time.sleep(5)  # let the probe load reach its steady state
        before = call(f"{daemon.status}/metrics").decode()
        started = time.monotonic()
        latencies, errors = freeze_and_unfreeze(daemon.admin, args.calls, args.pace)
        elapsed = time.monotonic() - started
        after = call(f"{daemon.status}/metrics").decode()
    rate, lag = probe_rate_and_lag(before, after, elapsed)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{args.clusters} clusters, every DNS and HTTP target hanging; daemon on one core")
    print(f"probe requests sent: {rate:.0f}/s "
          f"(budget {args.clusters * 3.75 + 1:.0f}/s worst case)")
    print(f"event loop lag: mean {lag * 1000:.1f} ms")
    if errors:
        print(f"admin calls answered with an error: {len(errors)} (HTTP {sorted(set(errors))})")
    print(f"admin calls: {len(latencies)}, p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")


if __name__ == "__main__":
    main()
