"""Runs every probe job on its interval with jitter, within the in-flight cap and rate budget."""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections.abc import Callable, Mapping, Sequence

from failover.config import Job, ProbeKind, Probing
from failover.metrics import Metrics
from failover.model import ProbeResult
from failover.probes.base import ProbeContext, ProbeFn, run_probe
from failover.probes.limiter import Limiter
from failover.probes.series import JobSeries
from failover.waiting import wait_event

log = logging.getLogger(__name__)

ResultSink = Callable[[Job, ProbeResult], None]

DISPATCH_BATCH = 32
"""Probes started between two turns of the loop."""

_EARLY = 1e-3
"""Seconds before its due time that a run may start."""


def _now() -> float:
    return asyncio.get_running_loop().time()


class Scheduler:
    """One dispatcher over a heap of due times; each due job runs as its own task.

    A job never overlaps itself: a run that falls due while the previous one is
    still going is skipped and counted. A run the rate budget cannot admit right
    now is skipped too, never queued, so a failing target cannot build a backlog.
    """

    def __init__(
        self,
        jobs: list[Job],
        probing: Probing,
        metrics: Metrics,
        sink: ResultSink,
        probes: Mapping[ProbeKind, ProbeFn],
        rng: random.Random | None = None,
    ) -> None:
        self._metrics = metrics
        self._sink = sink
        self._probes = probes
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._started = False
        """Due times are set once run() has the loop's clock: a scheduler can be built first."""
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._jobs: dict[str, Job] = {}
        self._running: set[str] = set()
        self._starved: set[str] = set()
        """Targets whose probes are being skipped for budget, warned about once."""
        self._changed = asyncio.Event()
        self._series_of: dict[str, JobSeries] = {}
        self._probing = probing
        self._limiter = self._new_limiter(probing)
        self._in_flight = asyncio.Semaphore(probing.budget.max_in_flight)
        self.update(jobs, probing)

    def _new_limiter(self, probing: Probing) -> Limiter:
        budget = probing.budget
        return Limiter(budget.per_target_per_second, budget.total_per_second, _now)

    @property
    def jobs(self) -> Mapping[str, Job]:
        return self._jobs

    def update(self, jobs: list[Job], probing: Probing) -> None:
        """Swap in a new job list (reload): kept jobs keep their schedule, new ones are spread."""
        if probing.budget != self._probing.budget:
            self._limiter = self._new_limiter(probing)
            self._in_flight = asyncio.Semaphore(probing.budget.max_in_flight)
        self._probing = probing
        old = self._jobs
        self._jobs = {job.key: job for job in jobs}
        if self._started:
            self._spread(self._jobs.keys() - old.keys())
        self._limiter.forget({job.target for job in jobs})
        for key in old.keys() - self._jobs.keys():
            self._series_of.pop(key, None)
        self._changed.set()

    def _spread(self, keys: set[str] | Sequence[str]) -> None:
        now = _now()
        for key in sorted(keys):
            self._push(now + self._rng.uniform(0, self._probing.interval), key)

    def _push(self, due: float, key: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, key))

    def _next_due(self, due: float, now: float) -> float:
        interval, jitter = self._probing.interval, self._probing.jitter
        following = due + interval * (1 + self._rng.uniform(-jitter, jitter))
        # After a stall (suspend, overload) resume from now instead of firing a burst of catch-ups.
        return following if following > now else now + interval * self._rng.uniform(1 - jitter, 1)

    async def run(self) -> None:
        if not self._started:
            self._started = True
            self._spread(list(self._jobs))
        dispatched = 0
        async with asyncio.TaskGroup() as tasks:
            while True:
                key = await self._wait_for_due()
                job = self._jobs.get(key)
                if job is None:
                    continue  # removed by a reload
                if key in self._running:
                    self._metrics.probes_skipped.labels(job.cluster, job.kind, "overlap").inc()
                    continue
                await self._in_flight.acquire()
                target = job.target
                if not self._limiter.try_acquire(target):
                    self._in_flight.release()
                    self._metrics.probes_skipped.labels(job.cluster, job.kind, "budget").inc()
                    if target not in self._starved:  # once per episode, not once per skip
                        self._starved.add(target)
                        log.warning("probes to %s skipped: its rate budget is spent (counted "
                                    "in failover_probes_skipped_total)", target,
                                    extra={"job": job.label})
                    continue
                self._starved.discard(target)
                self._running.add(key)
                tasks.create_task(self._probe(job, self._in_flight), name=f"probe {key}")
                dispatched += 1
                if dispatched % DISPATCH_BATCH == 0:
                    # After any stall many runs are due at once; started all in one go,
                    # they and their first steps would hold the loop for tens of ms.
                    await asyncio.sleep(0)

    async def _wait_for_due(self) -> str:
        while True:
            self._changed.clear()
            if self._heap:
                due, _, key = self._heap[0]
                now = _now()
                # Up to a millisecond early counts as due: a timer may wake a hair before
                # its deadline (clock resolution, fake clocks in tests), and waiting again for
                # the remainder could spin without time advancing.
                if due <= now + _EARLY:
                    heapq.heappop(self._heap)
                    if key in self._jobs:
                        self._push(self._next_due(due, now), key)
                    return key
                timeout: float | None = due - now
            else:
                timeout = None
            await wait_event(self._changed, timeout)

    def _series(self, job: Job) -> JobSeries:
        series = self._series_of.get(job.key)
        if series is None:
            series = self._series_of[job.key] = JobSeries(self._metrics, job)
        return series

    async def _probe(self, job: Job, slot: asyncio.Semaphore) -> None:
        first = True
        target = job.target
        series = self._series(job)

        async def permit() -> None:
            nonlocal first
            if not first:  # the first request's token was taken at dispatch
                await self._limiter.acquire(target)
            first = False
            series.requests.inc()

        try:
            ctx = ProbeContext(permit, _now() + self._probing.timeout)
            result = await run_probe(job, ctx, self._probes[job.kind])
            series.count(result)
            self._sink(job, result)
        finally:
            self._running.discard(job.key)
            slot.release()
