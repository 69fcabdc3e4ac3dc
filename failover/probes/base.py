"""What every probe kind shares: its signature, its context, and the wrapper that makes it safe.

A probe function does one check and returns a `ProbeResult`; it may raise, but only
`run_probe` ever calls it, and `run_probe` turns every outcome into a result: the
deadline into ``timeout``, anything unexpected into ``network_error`` or
``protocol_error``. Latency is measured here too, so the probe kinds cannot disagree on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from failover.config import Job
from failover.model import FailureClass, ProbeResult

log = logging.getLogger(__name__)


class Permit(Protocol):
    async def __call__(self) -> None:
        """Wait until the budget allows one more request to the job's target.

        A probe awaits it before every request it sends, the first and any retry alike.
        """


@dataclass(frozen=True)
class ProbeContext:
    permit: Permit
    deadline: float
    """``loop.time()`` by which the probe must be done: its timeout, retries included."""


ProbeFn = Callable[[Job, ProbeContext], Awaitable[ProbeResult]]
"""One probe kind. The ``latency`` of the result it returns is replaced by `run_probe`."""


def passed(detail: str) -> ProbeResult:
    """A passing result from a probe function; `run_probe` fills in the latency."""
    return ProbeResult.passed(0.0, detail)


def failed(failure_class: FailureClass, detail: str) -> ProbeResult:
    """A failing result from a probe function; `run_probe` fills in the latency."""
    return ProbeResult.failed(0.0, failure_class, detail)


async def run_probe(job: Job, ctx: ProbeContext, probe_fn: ProbeFn) -> ProbeResult:
    """Run ``probe_fn`` within ``ctx.deadline`` and always return a result.

    Only a cancellation from outside propagates. Latency runs from the first request
    (when the first permit is granted), so time spent waiting for the budget is not
    blamed on the target; a probe that never got to send counts from the start.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    first_request: float | None = None

    async def permit() -> None:
        nonlocal first_request
        await ctx.permit()
        if first_request is None:
            first_request = loop.time()

    def latency() -> float:
        return loop.time() - (start if first_request is None else first_request)

    try:
        async with asyncio.timeout_at(ctx.deadline):
            result = await probe_fn(job, ProbeContext(permit, ctx.deadline))
    except TimeoutError:
        # Also reached by a library's own timeout firing first (aiohttp's ServerTimeoutError
        # is a TimeoutError); either way the target did not answer in time.
        return ProbeResult.failed(latency(), "timeout",
                                  f"no answer within {max(ctx.deadline - start, 0):.3g}s")
    except OSError as exc:
        log.warning("probe %s failed with an unclassified socket error: %r", job.label, exc,
                    extra={"job": job.label})
        return ProbeResult.failed(latency(), "network_error", _describe(exc))
    except Exception as exc:
        # A probe kind classifies what it expects; reaching here means a gap in that
        # classification or a bug, so the traceback is logged for the developer to see.
        log.exception("probe %s raised unexpectedly", job.label, extra={"job": job.label})
        return ProbeResult.failed(latency(), "protocol_error", _describe(exc))
    # Built directly: dataclasses.replace introspects the class on every call, twice a probe.
    return ProbeResult(result.ok, latency(), result.failure_class, result.detail)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
