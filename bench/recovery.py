"""Avoidable errors of the planner, naive snap-back and the timed ramp over many seeds, the
strongest timed ramp a grid search finds, and how each holds when the world is not the one
it was tuned for. The figures of docs/simulate.md come from here.

    .venv/bin/python bench/recovery.py                 # 20 seeds, the shipped scenarios
    .venv/bin/python bench/recovery.py --grid          # and the tuned timed ramp, sweeps
    .venv/bin/python bench/recovery.py --seeds 5 --scenarios december-11

Avoidable errors are errored requests minus the floor (the fewest any policy could have on
that run): a ratio of 0.2 means the planner lost a fifth of what the other policy lost.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failover.config import Config, load
from failover.simulate import load_scenario, simulate
from failover.simulate.scenario import Retries, Scenario

ROOT = Path(__file__).resolve().parents[1] / "scenarios"
SCENARIOS = {
    "december-11": ("december-11.yaml", "fleet.yaml"),
    "december-11-surge": ("december-11-surge.yaml", "fleet.yaml"),
    "regional-outage": ("regional-outage.yaml", "fleet.yaml"),
    "december-11-shared": ("december-11-shared.yaml", "fleet.yaml"),
    "mass-return": ("mass-return.yaml", "fleet-100.yaml"),
}
DEFAULT = ("december-11", "december-11-surge", "regional-outage", "december-11-shared")
GRID_CONCURRENT = (1, 2, 3, 6)
GRID_SLOW_START = (60.0, 180.0, 360.0, 600.0, 900.0)
GRID_SEEDS = 5


@dataclass(frozen=True)
class Job:
    scenario: str
    policy: str
    seed: int
    recovery: tuple[tuple[str, Any], ...] = ()
    """Changes to policy.recovery (the timed grid)."""
    world: tuple[tuple[str, Any], ...] = ()
    """Changes to the scenario's load or signals: ``load.cold_factor``, ``signals.delay``..."""
    label: str = ""


def configured(job: Job) -> tuple[Scenario, Config]:
    scenario_file, config_file = SCENARIOS[job.scenario]
    config = load(ROOT / config_file)
    if job.recovery:
        recovery = config.policy.recovery.model_copy(update=dict(job.recovery))
        config = config.model_copy(update={"policy": config.policy.model_copy(
            update={"recovery": recovery})})
    scenario = load_scenario(ROOT / scenario_file, config)
    for key, value in job.world:
        part, field = key.split(".")
        section = getattr(scenario, part).model_copy(update={field: value})
        scenario = scenario.model_copy(update={part: section})
    return scenario, config


def run(job: Job) -> tuple[Job, float, float]:
    scenario, config = configured(job)
    result = simulate(scenario, config, job.policy, seed=job.seed)
    planned = max((p.planned or 0.0) for p in result.peaks.values())
    return job, result.requests.avoidable, planned


def run_all(jobs: Sequence[Job], workers: int) -> list[tuple[Job, float, float]]:
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(run, jobs))


def by(results: Iterable[tuple[Job, float, float]], **match: Any) -> dict[int, float]:
    return {job.seed: avoidable for job, avoidable, _ in results
            if all(getattr(job, k) == v for k, v in match.items())}


def summary(name: str, results: list[tuple[Job, float, float]], policies: Sequence[str],
            labels: dict[str, str]) -> None:
    print(f"\n{name}")
    print(f"  {'policy':34} {'avoidable median':>17} {'min':>12} {'max':>12} "
          f"{'planner/it median':>18} {'worst':>7}")
    planner = by(results, scenario=name, label="planner")
    for label in policies:
        mine = by(results, scenario=name, label=label)
        values = list(mine.values())
        line = (f"  {labels.get(label, label):34} {statistics.median(values):>17,.0f} "
                f"{min(values):>12,.0f} {max(values):>12,.0f}")
        if label != "planner":
            ratios = [planner[s] / max(mine[s], 1.0) for s in mine]
            line += f" {statistics.median(ratios):>18.3f} {max(ratios):>7.3f}"
        print(line)
    planned = max(p for job, _, p in results if job.scenario == name and job.label == "planner")
    print(f"  planner's highest planned load / effective capacity: {planned:.3f}")


def grid(name: str, workers: int) -> tuple[tuple[str, Any], ...]:
    """The timed ramp's best max_concurrent and slow_start for this scenario (mean avoidable
    over a few seeds): the strongest open-loop rival, tuned on the very run it is judged on."""
    jobs = [Job(name, "timed", seed, (("max_concurrent", k), ("slow_start", ss)),
                label=f"timed {k} {ss:g}")
            for k, ss in itertools.product(GRID_CONCURRENT, GRID_SLOW_START)
            for seed in range(GRID_SEEDS)]
    results = run_all(jobs, workers)
    means: dict[tuple[tuple[str, Any], ...], list[float]] = {}
    for job, avoidable, _ in results:
        means.setdefault(job.recovery, []).append(avoidable)
    best = min(means, key=lambda r: statistics.mean(means[r]))
    print(f"\n{name}: timed grid (mean avoidable over {GRID_SEEDS} seeds)")
    for recovery in sorted(means):
        marker = "  <- best" if recovery == best else ""
        print(f"  max_concurrent {recovery[0][1]:>2}, slow_start {recovery[1][1]:>5g}s: "
              f"{statistics.mean(means[recovery]):>13,.0f}{marker}")
    return best


WORLDS = {
    "colder (cold_factor 0.15)": (("load.cold_factor", 0.15),),
    "warmer (cold_factor 0.5)": (("load.cold_factor", 0.5),),
    "slow warm-up (warmup 15m)": (("load.warmup", 900.0),),
    "fast warm-up (warmup 2m)": (("load.warmup", 120.0),),
    "no retry budget (3 attempts)": (("load.retries", Retries(max_attempts=3, budget=None)),),
    "late, noisy signals (15 s, 10 %)": (("signals.delay", 15.0), ("signals.noise", 0.1),
                                         ("signals.dropout", 0.2)),
}


def sweeps(name: str, tuned: tuple[tuple[str, Any], ...], seeds: int, workers: int) -> None:
    """The tuned timed ramp and the planner in worlds other than the one it was tuned for."""
    jobs = []
    for label, world in WORLDS.items():
        for seed in range(seeds):
            jobs.append(Job(name, "planner", seed, world=world, label=f"planner|{label}"))
            jobs.append(Job(name, "naive", seed, world=world, label=f"naive|{label}"))
            jobs.append(Job(name, "timed", seed, tuned, world, label=f"tuned|{label}"))
    results = run_all(jobs, workers)
    print(f"\n{name}: the tuned timed ramp ({dict(tuned)}) in other worlds, {seeds} seeds, "
          "median avoidable")
    print(f"  {'world':34} {'planner':>12} {'naive':>12} {'tuned timed':>12} "
          f"{'planner/naive':>14} {'planner/tuned':>14}")
    for label in WORLDS:
        median = {who: statistics.median(by(results, label=f"{who}|{label}").values())
                  for who in ("planner", "naive", "tuned")}
        print(f"  {label:34} {median['planner']:>12,.0f} {median['naive']:>12,.0f} "
              f"{median['tuned']:>12,.0f} {median['planner'] / median['naive']:>14.3f} "
              f"{median['planner'] / median['tuned']:>14.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=DEFAULT)
    parser.add_argument("--grid", action="store_true",
                        help="also grid-search the timed ramp and sweep the world")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for name in args.scenarios:
        jobs = [Job(name, policy, seed, label=policy) for seed in range(args.seeds)
                for policy in ("planner", "naive", "timed")]
        labels = {"timed": "timed (the config's 2 at once, 6m)"}
        policies = ["planner", "naive", "timed"]
        tuned: tuple[tuple[str, Any], ...] = ()
        if args.grid:
            tuned = grid(name, args.workers)
            jobs += [Job(name, "timed", seed, tuned, label="tuned")
                     for seed in range(args.seeds)]
            labels["tuned"] = (f"timed tuned ({tuned[0][1]} at once, "
                               f"{tuned[1][1]:g}s)")
            policies.append("tuned")
        results = run_all(jobs, args.workers)
        summary(name, results, policies, labels)
        if args.grid:
            sweeps(name, tuned, max(5, args.seeds // 4), args.workers)


if __name__ == "__main__":
    main()
