"""HTTP probe: one GET, status compared as received (no redirects), body searched in its head."""

from __future__ import annotations

import ssl

from failover.config import HttpCheck, Job
from failover.model import ProbeResult
from failover.probes.base import ProbeContext, failed, passed
from failover.probes.http_exchange import Disconnected, ProtocolError, Reply, exchange

BODY_LIMIT = 64 * 1024
"""Bytes of the body searched for ``expect_body``; a health page is small, a stream is endless."""


async def probe_http(job: Job, ctx: ProbeContext) -> ProbeResult:
    spec = job.spec
    if not isinstance(spec, HttpCheck):
        msg = f"not an HTTP job: {job.label}"
        raise TypeError(msg)
    needle = None if spec.expect_body is None else spec.expect_body.encode()
    await ctx.permit()
    try:
        reply = await exchange(spec.http, needle, BODY_LIMIT)
    except TimeoutError:
        raise  # an OSError subclass, but run_probe owns the timeout verdict
    except ConnectionRefusedError:
        endpoint = job.endpoint
        return failed("refused", f"connection refused by {endpoint.host}:{endpoint.port}")
    except ProtocolError as exc:
        return failed("protocol_error", str(exc))
    except Disconnected as exc:
        return failed("network_error", str(exc))
    except ssl.SSLError as exc:
        return failed("network_error", f"TLS: {exc}")
    except OSError as exc:
        return failed("network_error", f"{type(exc).__name__}: {exc}")
    return _judge(reply, spec)


def _judge(reply: Reply, spec: HttpCheck) -> ProbeResult:
    if reply.status != spec.expect_status:
        return failed("bad_status", f"status {reply.status}, expected {spec.expect_status}")
    if spec.expect_body is None:
        return passed(f"status {reply.status}")
    if spec.expect_body.encode() in reply.body:
        return passed(f"status {reply.status}, body contains {spec.expect_body!r}")
    note = "" if reply.encoding == "identity" else f" (body is {reply.encoding}-encoded)"
    return failed("bad_body",
                  f"{spec.expect_body!r} not in the first {len(reply.body)} bytes{note}")
