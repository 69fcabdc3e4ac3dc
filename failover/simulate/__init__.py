"""Simulation: replay a scenario on a simulated clock through the daemon's own decision code.

``failover simulate SCENARIO -c CONFIG`` drives the real ``HealthTracker`` and the real
``planner.plan`` (or the naive policy, for comparison) with synthetic probe results and a
load model. The model, in short (docs/simulate.md has it in full):

- **Clock.** Simulated seconds from 0 to the scenario's ``duration``, from one event heap;
  nothing sleeps. The planner runs every ``policy.tick`` with ``demand_rps`` = the demand at
  that instant. Each probe job runs every ``probing.interval``, moved by up to ± ``jitter``
  with a seeded ``random.Random`` (``--seed``), new jobs spread over the first interval, as
  the daemon's scheduler does. The run starts in steady state: every check has passed
  ``rise`` times before 0.
- **Probes.** Each run reports what the cluster's faults at that instant give: a DNS fault
  fails its dns jobs with that class; an HTTP fault fails its http and tcp jobs (``bad_status``
  only http; ``down`` fails every job, dns included). Timeouts take ``probing.timeout``,
  other answers 5 ms; the result is recorded when the probe ends.
- **Data plane.** The shares of the latest plan of version >= 1 apply at once (version 0 is
  never actuated); before any, the base weights.
- **Load.** Demand is linear between the scenario's points. A cluster is offered
  ``share x demand``; it serves up to ``capacity_rps x warmth`` (unlimited without
  ``capacity_rps``). A cluster that has not served (share 0, or down) for ``cold_after`` is
  cold, as is a new one: its warmth is ``cold_factor`` and rises linearly to 1 over
  ``warmup`` of serving. Requests above effective capacity error; every request to a down
  cluster (any fault) errors; demand the shares leave unplaced errors. Errors are integrated
  exactly between changes, as every quantity is linear there.
- **Outputs.** Per tick: shares, offered load, effective capacity, states. Per fault: the
  time to share 0 (evacuation). Per cluster: peak load/capacity overall and while the fleet
  recovers (up again but cold, waiting or recovering). Errored requests by cause.
"""

from failover.controller import Planner
from failover.simulate.engine import Simulation, simulate
from failover.simulate.naive import naive_plan
from failover.simulate.policies import POLICIES
from failover.simulate.result import Result
from failover.simulate.scenario import Scenario, load_scenario, parse_scenario

__all__ = [
    "POLICIES",
    "Planner",
    "Result",
    "Scenario",
    "Simulation",
    "load_scenario",
    "naive_plan",
    "parse_scenario",
    "simulate",
]
