"""``failover simulate``: replay a scenario on a simulated clock with the daemon's own code."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from failover.config import ConfigError, load
from failover.simulate.engine import simulate
from failover.simulate.plot import INSTALL_HINT, available, write_plot
from failover.simulate.policies import POLICIES
from failover.simulate.report import render
from failover.simulate.result import Result
from failover.simulate.scenario import load_scenario

OK, USER_ERROR = 0, 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate_parser = sub.add_parser(
        "simulate", help="replay a scenario on a simulated clock with the same decision code",
        description="Run the planner and health code on synthetic probe results from the "
                    "scenario's faults, with a load model, on a simulated clock; print a "
                    "summary (or --json), optionally write a plot. See docs/simulate.md.")
    simulate_parser.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    simulate_parser.add_argument("-c", "--config", required=True, help="YAML config file")
    simulate_parser.add_argument("--plot", metavar="PNG", type=Path,
                                 help=f"write a figure here (needs {INSTALL_HINT})")
    simulate_parser.add_argument("--json", action="store_true",
                                 help="print the full result, time series included, as JSON")
    simulate_parser.add_argument(
        "--compare", type=_policies, default=[], metavar="P[,P...]",
        help="also run these policies on the same scenario and seed, side by side: naive "
             "(snap back on every verdict), timed (recovery.mode timed: the open-loop ramp)")
    simulate_parser.add_argument("--seed", type=int, default=0,
                                 help="seed of the probe jitter (default 0)")
    simulate_parser.add_argument(
        "--evidence", action="store_true",
        help="the orchestrator's view is proven (passing vantage checks, or a quorum of "
             "vantages): a fleet-wide failure is acted on instead of failed static")
    simulate_parser.set_defaults(func=_run)


def _policies(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES or name == "planner"]
    if unknown or not names:
        known = ", ".join(name for name in POLICIES if name != "planner")
        msg = f"unknown policy {', '.join(unknown) or text!r}: choose from {known}"
        raise argparse.ArgumentTypeError(msg)
    return list(dict.fromkeys(names))


def _run(args: argparse.Namespace) -> int:
    if args.plot is not None and not available():
        print(f"failover simulate: --plot needs matplotlib: {INSTALL_HINT}", file=sys.stderr)
        return USER_ERROR
    try:
        config = load(args.config)
        scenario = load_scenario(args.scenario, config)
        if args.evidence:
            scenario = scenario.model_copy(update={"evidence": True})
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return USER_ERROR
    results: list[Result] = []
    walls: list[float] = []
    for policy in ("planner", *args.compare):
        started = time.perf_counter()
        results.append(simulate(scenario, config, policy, seed=args.seed))
        walls.append(time.perf_counter() - started)
    if args.json:
        print(json.dumps({"runs": [result.as_dict() for result in results]}))
        # Wall time varies from run to run; stdout stays identical for one seed.
        print("simulated in " + ", ".join(f"{r.policy} {w:.2f}s" for r, w in
                                          zip(results, walls, strict=True)), file=sys.stderr)
    else:
        print(render(results, walls))
    if args.plot is not None:
        try:
            write_plot(results, args.plot)
        except OSError as exc:
            print(f"failover simulate: cannot write {args.plot}: {exc}", file=sys.stderr)
            return USER_ERROR
        if not args.json:
            print(f"plot written to {args.plot}")
    return OK
