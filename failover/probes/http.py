"""HTTP probe: one GET, status compared as received (no redirects), body searched in its head."""

from __future__ import annotations

import asyncio

import aiohttp

from failover.config import HttpCheck, Job
from failover.model import ProbeResult
from failover.probes.base import ProbeContext, failed, passed

BODY_LIMIT = 64 * 1024
"""Bytes of the body searched for ``expect_body``; a health page is small, a stream is endless."""


async def probe_http(job: Job, ctx: ProbeContext) -> ProbeResult:
    spec = job.spec
    if not isinstance(spec, HttpCheck):
        msg = f"not an HTTP job: {job.label}"
        raise TypeError(msg)
    await ctx.permit()
    # aiohttp's own timer ends the request at the same deadline run_probe enforces, so
    # the connection is torn down by the library that owns it.
    remaining = max(ctx.deadline - asyncio.get_running_loop().time(), 0.001)
    try:
        async with ctx.http.get(spec.http, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=remaining)) as response:
            return await _judge(response, spec)
    except TimeoutError:
        raise  # aiohttp's timeouts are OSErrors too, but run_probe owns the timeout verdict
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ConnectionRefusedError):
            return failed("refused", f"connection refused by {exc.host}:{exc.port}")
        return failed("network_error", str(exc))
    except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError) as exc:
        return failed("protocol_error", f"{type(exc).__name__}: {exc}")
    except (aiohttp.ClientError, OSError) as exc:
        return failed("network_error", f"{type(exc).__name__}: {exc}")


async def _judge(response: aiohttp.ClientResponse, spec: HttpCheck) -> ProbeResult:
    if response.status != spec.expect_status:
        return failed("bad_status", f"status {response.status}, expected {spec.expect_status}")
    if spec.expect_body is None:
        return passed(f"status {response.status}")
    return await _check_body(response, spec.expect_body)


async def _check_body(response: aiohttp.ClientResponse, expected: str) -> ProbeResult:
    needle = expected.encode()
    head = b""
    while len(head) < BODY_LIMIT:
        chunk = await response.content.read(BODY_LIMIT - len(head))
        if not chunk:
            break
        head += chunk
        if needle in head:
            return passed(f"status {response.status}, body contains {expected!r}")
    encoding = response.headers.get("Content-Encoding", "identity")
    note = "" if encoding == "identity" else f" (body is {encoding}-encoded)"
    return failed("bad_body", f"{expected!r} not in the first {len(head)} bytes{note}")
