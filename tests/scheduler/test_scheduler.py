"""The scheduler keeps jobs on their jittered interval, within the in-flight cap and budget."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from failover.config import Job, Probing, all_jobs, parse
from failover.metrics import Metrics
from failover.model import ProbeResult
from failover.probes.base import ProbeContext, ProbeFn
from failover.probes.scheduler import Scheduler


def jobs_for(targets: int, names: int = 1) -> list[Job]:
    dns_names = ", ".join(f"n{i}.test" for i in range(names))
    clusters = "".join(
        f"  - {{name: c{i}, weight: 1, dns: {{server: '127.0.0.1:{5300 + i}', "
        f"names: [{dns_names}]}}}}\n" for i in range(targets))
    return all_jobs(parse("probing: {interval: 10s, timeout: 1s}\nclusters:\n" + clusters).clusters)


def probing(**values: object) -> Probing:
    return Probing.model_validate(values)


class Recorder:
    """A fake probe kind: records start times and permits, behaves as ``behaviour`` says."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 behaviour: Callable[[ProbeContext], object] | None = None) -> None:
        self.loop = loop
        self.starts: dict[str, list[float]] = defaultdict(list)
        self.requests: dict[str, list[float]] = defaultdict(list)
        self.running = 0
        self.peak = 0
        self.results: list[ProbeResult] = []

    def make(self, hold: float = 0.0, attempts: int = 1) -> ProbeFn:
        async def probe(job: Job, ctx: ProbeContext) -> ProbeResult:
            self.starts[job.key].append(self.loop.time())
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                for _ in range(attempts):
                    await ctx.permit()
                    self.requests[str(job.endpoint)].append(self.loop.time())
                await asyncio.sleep(hold)
                return ProbeResult.failed(hold, "timeout", "no answer")
            finally:
                self.running -= 1
        return probe


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def make(jobs: list[Job], config: Probing, probe: ProbeFn,
         sink: list[tuple[Job, ProbeResult]] | None = None) -> Scheduler:
    out = sink if sink is not None else []
    return Scheduler(jobs, config, Metrics(CollectorRegistry()),
                     lambda job, result: out.append((job, result)), {"dns": probe})


@pytest.mark.looptime
async def test_each_job_runs_on_its_jittered_interval() -> None:
    """Over 200 s at 2 s ± 20 %, every gap between runs of a job lies within [1.6, 2.4] s."""
    recorder = Recorder(asyncio.get_running_loop())
    jobs = jobs_for(5)
    results: list[tuple[Job, ProbeResult]] = []
    scheduler = make(jobs, probing(interval=2, timeout=0.5, jitter=0.2), recorder.make(), results)
    await run_for(scheduler, 200)
    for job in jobs:
        starts = recorder.starts[job.key]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert 80 <= len(starts) <= 126
        assert min(gaps) >= 1.6 - 1e-6
        assert max(gaps) <= 2.4 + 1e-6
    assert len(results) == sum(len(s) for s in recorder.starts.values())


@pytest.mark.looptime
async def test_in_flight_never_exceeds_the_cap() -> None:
    """With 40 slow jobs and max_in_flight 8, at most 8 probes ever run at once."""
    recorder = Recorder(asyncio.get_running_loop())
    config = probing(interval=1, timeout=1, jitter=0.1,
                     budget={"max_in_flight": 8, "per_target_per_second": 100})
    await run_for(make(jobs_for(40), config, recorder.make(hold=0.9)), 30)
    assert recorder.peak == 8


@pytest.mark.looptime
async def test_budget_caps_requests_per_target_retries_included() -> None:
    """Jobs wanting 40 requests/s to one address get at most burst + 2/s, retries counted."""
    recorder = Recorder(asyncio.get_running_loop())
    config = probing(interval=0.1, timeout=0.1, jitter=0,
                     budget={"per_target_per_second": 2, "total_per_second": 100})
    scheduler = make(jobs_for(1, names=2), config, recorder.make(attempts=2))
    await run_for(scheduler, 60)
    [times] = recorder.requests.values()
    assert len(times) <= 2 + 2 * 60
    assert len(times) >= 2 * 60 * 0.9  # the cap binds, it does not starve the target
    for i, start in enumerate(times):
        within_one_second = sum(1 for t in times[i:] if t - start <= 1.0)
        assert within_one_second <= 2 + 2
    skipped = scheduler._metrics.registry.get_sample_value(
        "failover_probes_skipped_total", {"cluster": "c0", "kind": "dns", "reason": "budget"})
    assert skipped is not None
    assert skipped > 0


@pytest.mark.looptime
async def test_a_job_never_overlaps_itself() -> None:
    """A probe still running when its next run falls due makes that run skip, not pile up."""
    recorder = Recorder(asyncio.get_running_loop())
    config = probing(interval=1, timeout=1, jitter=0.5,
                     budget={"per_target_per_second": 100})
    jobs = jobs_for(1)
    await run_for(make(jobs, config, recorder.make(hold=0.99)), 50)
    starts = recorder.starts[jobs[0].key]
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(starts))


@pytest.mark.looptime
async def test_update_adds_and_removes_jobs() -> None:
    """After a reload, removed jobs stop and new ones start; kept ones go on."""
    recorder = Recorder(asyncio.get_running_loop())
    config = probing(interval=1, timeout=0.5, jitter=0)
    first, second = jobs_for(2), jobs_for(3)[1:]
    scheduler = make(first, config, recorder.make())
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(10)
    scheduler.update(second, config)
    marker = asyncio.get_running_loop().time()
    await asyncio.sleep(10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    late = Counter(key for key, starts in recorder.starts.items() for t in starts if t > marker)
    assert late[first[0].key] == 0
    assert late[first[1].key] >= 9
    assert late[second[1].key] >= 9
