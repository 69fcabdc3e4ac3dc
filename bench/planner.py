"""Milliseconds per planning tick for 100, 1,000 and 10,000 clusters, and how it grows.

Each tick is a realistic one: a tenth of the fleet failing, some recovering through the gate,
capacity-aware planning on. Prints the median of several ticks per size.

    .venv/bin/python bench/planner.py [--ticks 20]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from failover.config import Policy
from failover.config.models import Recovery
from failover.planner import Plan, plan
from failover.planner.model import ClusterState, ClusterView

SIZES = (100, 1_000, 10_000)


def fleet(size: int, tick: int, rng: random.Random) -> list[ClusterView]:
    """A tenth failing, chosen anew every 5 ticks so recoveries and evacuations keep coming."""
    failing = set(random.Random(tick // 5).sample(range(size), size // 10))  # noqa: S311
    return [ClusterView(f"c{i}", ClusterState.UNHEALTHY if i in failing else ClusterState.HEALTHY,
                        rng.uniform(0.8, 1.0), 1 + i % 7, "r", 50.0 + i % 11)
            for i in range(size)]


def measure(size: int, ticks: int) -> list[float]:
    policy = Policy(min_healthy_fraction=0.3, max_shift_per_tick=0.25,
                    recovery=Recovery(max_concurrent=max(1, size // 50), slow_start=30))
    rng = random.Random(size)  # noqa: S311 - benchmark inputs, not secrets
    demand = 40.0 * size  # about the fleet's capacity x headroom: the caps bind
    previous: Plan | None = None
    times = []
    for tick in range(ticks):
        views = fleet(size, tick, rng)
        start = time.perf_counter()
        previous = plan(views, policy, previous, float(tick), demand_rps=demand)
        times.append((time.perf_counter() - start) * 1000)
    return times[1:]  # the first tick has no previous plan: not the steady state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args()
    print(f"{'clusters':>9} {'ms/tick (median)':>17} {'max':>9} {'per cluster (us)':>17}")
    previous_ms = None
    for size in SIZES:
        times = measure(size, args.ticks)
        median = statistics.median(times)
        growth = "" if previous_ms is None else \
            f"  x{median / previous_ms:.1f} for x10 clusters (log-log slope " \
            f"{math.log10(median / previous_ms):.2f})"
        print(f"{size:>9} {median:>17.2f} {max(times):>9.2f} {median / size * 1000:>17.2f}"
              f"{growth}")
        previous_ms = median


if __name__ == "__main__":
    main()
