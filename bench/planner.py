"""Milliseconds per planning tick for 100, 1,000 and 10,000 clusters, timed and adaptive.

Each tick is a realistic one: a tenth of the fleet failing, some recovering through the gate,
capacity-aware planning on. Adaptive ticks read a live sample per cluster (and a shared
dependency's) that says there is room, so its ramps, admission and limits all do their work.
Prints the median of several ticks per size and mode, and what adaptive costs over timed.

    .venv/bin/python bench/planner.py [--ticks 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import time

from failover.config import Policy
from failover.config.models import Recovery
from failover.model import ClusterState, ClusterView, Sample, Signals
from failover.planner import Plan, plan

SIZES = (100, 1_000, 10_000)
GOALS = {1_000: 2.0, 10_000: 10.0}
"""Milliseconds a tick should take at most, by fleet size."""


def fleet(size: int, tick: int, rng: random.Random) -> list[ClusterView]:
    """A tenth failing, chosen anew every 5 ticks so recoveries and evacuations keep coming."""
    failing = set(random.Random(tick // 5).sample(range(size), size // 10))  # noqa: S311
    return [ClusterView(f"c{i}", ClusterState.UNHEALTHY if i in failing else ClusterState.HEALTHY,
                        rng.uniform(0.8, 1.0), 1 + i % 7, "r", 50.0 + i % 11)
            for i in range(size)]


def signals(size: int, now: float, rng: random.Random) -> Signals:
    room = {f"c{i}": Sample(now - 1, rng.uniform(0.2, 0.8), 0.0, 1.0) for i in range(size)}
    return Signals(room, Sample(now - 1, 0.3, 0.0, 1.0), True, "bench")


def measure(size: int, ticks: int, mode: str) -> list[float]:
    """Per tick of one run; the garbage of building the inputs is collected before each
    timed call, so a collection it set off does not land on the tick measured."""
    policy = Policy(min_healthy_fraction=0.3, max_shift_per_tick=0.25,
                    recovery=Recovery(mode=mode, max_concurrent=max(1, size // 50),  # type: ignore[arg-type]
                                      slow_start=30))
    rng = random.Random(size)  # noqa: S311 - benchmark inputs, not secrets
    demand = 40.0 * size  # about the fleet's capacity x headroom: the caps bind
    previous: Plan | None = None
    times = []
    for tick in range(ticks):
        views = fleet(size, tick, rng)
        live = signals(size, float(tick), rng) if mode == "adaptive" else Signals()
        gc.collect()
        start = time.perf_counter()
        previous = plan(views, policy, previous, float(tick), demand_rps=demand, signals=live)
        times.append((time.perf_counter() - start) * 1000)
    return times[1:]  # the first tick has no previous plan: not the steady state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20,
                        help="ticks per run at 1,000 clusters and up; more below")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each mode per size")
    args = parser.parse_args()
    print(f"{'clusters':>9} {'timed ms/tick':>14} {'adaptive ms/tick':>17} {'adaptive/timed':>15}"
          f" {'per cluster (us)':>17}")
    previous_ms = None
    against: list[str] = []
    for size in SIZES:
        # Runs of each mode in turn: this machine's noise only ever adds time, so the best
        # median of each mode is its cost, and the cost of adaptive over timed is the median
        # of the ratios of runs made back to back (a burst of noise lands on one pair).
        runs: dict[str, list[float]] = {"timed": [], "adaptive": []}
        # Small fleets get more ticks, so that one burst of noise cannot cover a whole run.
        ticks = max(args.ticks, args.ticks * 1_000 // size)
        for _ in range(args.repeat):
            for mode, medians in runs.items():
                medians.append(statistics.median(measure(size, ticks, mode)))
        timed, adaptive = min(runs["timed"]), min(runs["adaptive"])
        ratio = statistics.median(a / t for t, a in zip(runs["timed"], runs["adaptive"],
                                                        strict=True))
        growth = "" if previous_ms is None else \
            f"  x{adaptive / previous_ms:.1f} for x10 clusters (log-log slope " \
            f"{math.log10(adaptive / previous_ms):.2f})"
        print(f"{size:>9} {timed:>14.2f} {adaptive:>17.2f} {ratio:>14.2f}x"
              f" {adaptive / size * 1000:>17.2f}{growth}")
        previous_ms = adaptive
        if size in GOALS:
            against.append(f"{size:,} clusters: timed {timed:.2f} ms, adaptive {adaptive:.2f} ms"
                           f" (goal <= {GOALS[size]:g} ms: "
                           f"{'met' if max(timed, adaptive) <= GOALS[size] else 'not met'})")
    for line in against:
        print(line)


if __name__ == "__main__":
    main()
