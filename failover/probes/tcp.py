"""TCP probe: the port accepts a connection; it is closed again at once, cleanly."""

from __future__ import annotations

import asyncio
import logging

from failover.config import Job
from failover.model import ProbeResult
from failover.probes.base import ProbeContext, failed, passed

log = logging.getLogger(__name__)


async def probe_tcp(job: Job, ctx: ProbeContext) -> ProbeResult:
    host, port = job.endpoint
    await ctx.permit()
    try:
        _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        raise  # an OSError subclass, but run_probe owns the timeout verdict
    except ConnectionRefusedError:
        return failed("refused", f"connection refused by {job.endpoint}")
    except OSError as exc:
        return failed("network_error", f"{type(exc).__name__}: {exc}")
    writer.close()
    try:
        await writer.wait_closed()
    except OSError as exc:
        # The handshake completed, which is what this check asks; a reset while
        # closing says nothing more about whether the port accepts connections.
        log.debug("closing probe connection to %s: %r", job.endpoint, exc,
                  extra={"job": job.label})
    return passed(f"connected to {job.endpoint}")
