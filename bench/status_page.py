"""How fast the status page is served at fleet scale, while the probes fill their budget.

Starts a lab of N clusters (another process, another core) and the daemon on a config whose
worst-case probe rate fills its budget; by default every DNS and HTTP target hangs, so
every probe runs to its timeout (the heaviest load on the daemon's loop), `--healthy` keeps
them answering. Then, once a second, as an open page does (its script every 2 s; the
daemon renders once a second while anyone watches), it fetches in turn the whole page as a
browser does (gzip), the part the page's script refreshes (gzip), the whole page as curl
does (no compression) and /v1/status; then fifty viewers at once. Prints p50/p99/max
latency (to the last byte) and size of each, and the event-loop lag over the run.

    .venv/bin/python bench/status_page.py [--clusters 1000] [--rounds 30] [--healthy]
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from support import call, fleet, probe_rate_and_lag

TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local benchmark

KINDS = (("page, gzip (a browser)", "/", True), ("?part=main, gzip (a refresh)",
                                                 "/?part=main", True),
         ("page, plain (curl)", "/", False), ("/v1/status", "/v1/status", False))


def fetch(url: str, gzipped: bool) -> tuple[float, int]:
    """Milliseconds to the last byte, and the bytes received."""
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback only
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - same
        size = len(response.read())
    return (time.perf_counter() - started) * 1000, size


def summary(name: str, latencies: list[float], size: int) -> str:
    latencies = sorted(latencies)

    def at(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))]

    return (f"{name:30} n={len(latencies):3} p50 {statistics.median(latencies):6.1f}  "
            f"p90 {at(0.9):6.1f}  p99 {at(0.99):6.1f}  max {latencies[-1]:6.1f} ms  "
            f"{size / 1000:5.0f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--healthy", action="store_true",
                        help="targets answer (default: every target hangs)")
    parser.add_argument("--warm-up", type=float, default=15.0)
    args = parser.parse_args()
    with fleet(args.clusters, hanging=not args.healthy, token=TOKEN) as daemon:
        time.sleep(args.warm_up)  # every cluster's first verdicts; the probe load steady
        before = call(f"{daemon.status}/metrics").decode()
        started = time.monotonic()
        results: dict[str, tuple[list[float], int]] = {name: ([], 0) for name, _, _ in KINDS}
        for _ in range(args.rounds):
            for name, path, gzipped in KINDS:
                took, size = fetch(daemon.status + path, gzipped)
                results[name] = (results[name][0] + [took], size)
                time.sleep(1.0)
        with ThreadPoolExecutor(50) as crowd:
            burst = list(crowd.map(lambda _: fetch(daemon.status + "/", True), range(50)))
        elapsed = time.monotonic() - started
        after = call(f"{daemon.status}/metrics").decode()
    rate, lag = probe_rate_and_lag(before, after, elapsed)
    targets = "answering" if args.healthy else "every DNS and HTTP target hanging"
    print(f"{args.clusters} clusters, {targets}; daemon on one core")
    print(f"probe requests sent: {rate:.0f}/s "
          f"(budget {args.clusters * 3.75 + 1:.0f}/s worst case)")
    print(f"event loop lag: mean {lag * 1000:.1f} ms")
    print("one request a second:")
    for name, (latencies, size) in results.items():
        print("  " + summary(name, latencies, size))
    print("fifty viewers at once:")
    print("  " + summary("page, gzip", [took for took, _ in burst], burst[0][1]))


if __name__ == "__main__":
    main()
