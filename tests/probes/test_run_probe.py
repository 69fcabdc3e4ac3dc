"""run_probe turns every outcome of a probe function into a result, on the loop's clock."""

from __future__ import annotations

import asyncio
import logging

import pytest

from failover.config import Job
from failover.model import ProbeResult
from failover.probes import PROBES
from failover.probes.base import ProbeContext, ProbeFn, failed, passed, run_probe
from tests.probes.conftest import CountingPermit, dns_job

JOB = dns_job("127.0.0.1:5353", "api.example")


def context(timeout: float, permit: object = None) -> ProbeContext:
    deadline = asyncio.get_running_loop().time() + timeout
    return ProbeContext(permit or CountingPermit(), deadline)


def raising(exc: Exception) -> ProbeFn:
    async def probe(job: Job, ctx: ProbeContext) -> ProbeResult:
        await ctx.permit()
        raise exc
    return probe


def test_every_kind_is_registered() -> None:
    """PROBES has a probe for each kind a job can have."""
    assert set(PROBES) == {"dns", "http", "tcp"}


async def test_unexpected_exception_becomes_protocol_error_and_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    """A bug in a probe kind is a protocol_error result, logged with the job's label."""
    with caplog.at_level(logging.WARNING, logger="failover.probes.base"):
        result = await run_probe(JOB, context(1), raising(KeyError("rdata")))
    assert (result.ok, result.failure_class) == (False, "protocol_error")
    assert result.detail == "KeyError: 'rdata'"
    assert JOB.label in caplog.text
    assert caplog.records[0].exc_info is not None


async def test_unclassified_socket_error_becomes_network_error() -> None:
    """An OSError the probe kind did not classify is a network_error."""
    result = await run_probe(JOB, context(1),
                             raising(ConnectionResetError(104, "reset by peer")))
    assert (result.ok, result.failure_class) == (False, "network_error")
    assert "reset by peer" in result.detail


async def test_a_library_timeout_is_a_timeout() -> None:
    """A TimeoutError raised inside the probe is classified as timeout, like the deadline."""
    result = await run_probe(JOB, context(1), raising(TimeoutError()))
    assert (result.ok, result.failure_class) == (False, "timeout")


@pytest.mark.looptime
async def test_deadline_gives_timeout_exactly_on_time() -> None:
    """A probe still running at the deadline ends then with timeout, latency from its request."""
    loop = asyncio.get_running_loop()

    async def hangs(job: Job, ctx: ProbeContext) -> ProbeResult:
        await ctx.permit()
        await asyncio.Event().wait()
        return passed("never")

    started = loop.time()
    result = await run_probe(JOB, context(0.8), hangs)
    assert (result.ok, result.failure_class) == (False, "timeout")
    assert result.detail == "no answer within 0.8s"
    assert loop.time() - started == pytest.approx(0.8)
    assert result.latency == pytest.approx(0.8)


@pytest.mark.looptime
async def test_latency_runs_from_the_first_permit() -> None:
    """Time spent waiting for the budget is not counted as the target's latency."""
    async def slow_permit() -> None:
        await asyncio.sleep(0.3)  # virtual time: the budget makes the probe wait

    async def answers_after(job: Job, ctx: ProbeContext) -> ProbeResult:
        await ctx.permit()
        await asyncio.sleep(0.2)
        await ctx.permit()  # a retry's permit wait is part of the probe's latency
        await asyncio.sleep(0.1)
        return failed("servfail", "SERVFAIL")

    result = await run_probe(JOB, context(2, slow_permit), answers_after)
    assert (result.ok, result.failure_class, result.detail) == (False, "servfail", "SERVFAIL")
    assert result.latency == pytest.approx(0.6)


@pytest.mark.looptime
async def test_probe_that_never_got_a_permit_counts_from_the_start() -> None:
    """A budget wait that outlasts the deadline is a timeout measured from the start."""
    async def never() -> None:
        await asyncio.Event().wait()

    result = await run_probe(JOB, context(0.5, never), PROBES["dns"])
    assert (result.ok, result.failure_class) == (False, "timeout")
    assert result.latency == pytest.approx(0.5)


async def test_cancellation_from_outside_propagates() -> None:
    """Cancelling the caller cancels the probe; it is not turned into a result."""
    started = asyncio.Event()

    async def hangs(job: Job, ctx: ProbeContext) -> ProbeResult:
        started.set()
        await asyncio.Event().wait()
        return passed("never")

    task = asyncio.create_task(run_probe(JOB, context(30), hangs))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_wrong_job_kind_is_a_logged_protocol_error() -> None:
    """Handing a probe kind a job of another kind is reported as a result, not raised."""
    result = await run_probe(JOB, context(1), PROBES["http"])
    assert (result.ok, result.failure_class) == (False, "protocol_error")
    assert "not an HTTP job" in result.detail
