"""Probes against targets that misbehave on purpose: each ends by its deadline (plus SLACK)
with the failure class that names what went wrong, reads a bounded amount, and never loops."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from failover.config import Job
from failover.model import FailureClass, ProbeResult
from failover.probes.http import BODY_LIMIT
from tests.hostile import servers
from tests.hostile.conftest import Serve
from tests.hostile.servers import DnsServer, TcpDns, TcpServer
from tests.probes.conftest import Prober, dns_job, http_job

WITHIN = 1.0
"""Seconds each probe is given, as the scheduler gives it ``probing.timeout``."""
SLACK = 0.25
"""Seconds a probe may end after its deadline: the loop waking the timer, and tearing down
a connection that is still being flooded."""
PROMPT = 0.5
"""Seconds within which a probe that needs no waiting ends (a bad reply is a bad reply)."""
MEMORY = 2 * 1024 * 1024
"""Bytes of Python memory a probe against an endless stream may peak at: 32 times what the
HTTP probe reads of a body (the socket reads and aiohttp's buffer come on top of it)."""


async def timed(probe: Prober, job: Job) -> tuple[ProbeResult, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe(job, within=WITHIN)
    return result, loop.time() - started


def assert_failed(result: ProbeResult, failure_class: FailureClass) -> None:
    assert (result.ok, result.failure_class) == (False, failure_class), result


async def test_http_to_a_server_that_accepts_and_never_answers_times_out(
        serve: Serve, probe: Prober) -> None:
    """A peer that takes the connection and says nothing is a timeout, at the deadline."""
    server = await serve(TcpServer(servers.silent))
    result, elapsed = await timed(probe, http_job(server.url()))
    assert_failed(result, "timeout")
    assert WITHIN <= elapsed < WITHIN + SLACK
    assert server.counters.connections == 1


@pytest.mark.parametrize(("expect_body", "ok", "failure_class"), [
    (None, True, None),          # only the status is asked for: 200 it is
    ("READY", False, "bad_body"),  # the first 64 KiB are searched, not the endless rest
    ("xxxx", True, None),          # found early: no need to read further
])
async def test_endless_body_ends_at_once_with_bounded_memory(
        serve: Serve, probe: Prober, expect_body: str | None, ok: bool,
        failure_class: FailureClass | None) -> None:
    """Headers then a body without end: judged on a bounded prefix, long before the deadline."""
    server = await serve(TcpServer(servers.endless_body))
    tracemalloc.start()
    try:
        result, elapsed = await timed(probe, http_job(server.url(), expect_body=expect_body))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.ok, result.failure_class) == (ok, failure_class), result
    assert elapsed < PROMPT
    assert peak < MEMORY, f"peak {peak} bytes"
    if failure_class == "bad_body":
        assert f"first {BODY_LIMIT} bytes" in result.detail
    assert server.counters.bytes_sent > BODY_LIMIT, "the server offered more than was read"


async def test_endless_body_trickling_in_times_out(serve: Serve, probe: Prober) -> None:
    """A body arriving a byte at a time never reaches 64 KiB: timeout at the deadline."""
    server = await serve(TcpServer(servers.slow_endless_body(0.01)))
    result, elapsed = await timed(probe, http_job(server.url(), expect_body="READY"))
    assert_failed(result, "timeout")
    assert WITHIN <= elapsed < WITHIN + SLACK


async def test_slowloris_answer_times_out(serve: Serve, probe: Prober) -> None:
    """A valid answer sent one byte every 50 ms (2 s in all) is a timeout at the deadline."""
    server = await serve(TcpServer(servers.slowloris(0.05)))
    result, elapsed = await timed(probe, http_job(server.url()))
    assert_failed(result, "timeout")
    assert WITHIN <= elapsed < WITHIN + SLACK
    assert 0 < server.counters.bytes_sent < 40, "the answer was still arriving"


async def test_endless_headers_are_a_protocol_error(serve: Serve, probe: Prober) -> None:
    """Header lines without end are cut off by the parser's limit: protocol_error, promptly."""
    server = await serve(TcpServer(servers.endless_headers))
    result, elapsed = await timed(probe, http_job(server.url()))
    assert_failed(result, "protocol_error")
    assert elapsed < PROMPT


async def test_endless_chunk_size_line_is_a_protocol_error(serve: Serve, probe: Prober) -> None:
    """A chunk-size line that never ends is refused by the parser: protocol_error, promptly."""
    server = await serve(TcpServer(servers.endless_chunk_size))
    result, elapsed = await timed(probe, http_job(server.url(), expect_body="x"))
    assert_failed(result, "protocol_error")
    assert elapsed < PROMPT


async def test_endless_interim_responses_time_out(serve: Serve, probe: Prober) -> None:
    """``100 Continue`` forever, as fast as read, never a final status: timeout at the deadline."""
    server = await serve(TcpServer(servers.endless_interim))
    result, elapsed = await timed(probe, http_job(server.url()))
    assert_failed(result, "timeout")
    assert WITHIN <= elapsed < WITHIN + SLACK


@pytest.mark.parametrize("reply", [servers.garbage, servers.same_id_garbage])
async def test_dns_garbage_over_udp_is_a_dns_error(
        serve: Serve, probe: Prober, reply: servers.DnsReply) -> None:
    """Bytes that are no DNS reply are a dns_error at once, with no retry over TCP."""
    server = await serve(DnsServer(reply))
    result, elapsed = await timed(probe, dns_job(server.address, "api.example"))
    assert_failed(result, "dns_error")
    assert elapsed < PROMPT
    assert probe.permit.calls == 1
    assert (server.counters.udp_queries, server.counters.connections) == (1, 0)


@pytest.mark.parametrize(("tcp", "failure_class", "detail"), [
    (servers.tcp_truncated_forever, "dns_error", "reply truncated even over TCP"),
    (servers.tcp_garbage, "dns_error", "malformed reply"),
    (servers.tcp_endless_stream, "dns_error", "malformed reply"),
    (servers.tcp_silent, "timeout", "no answer"),
])
async def test_truncation_is_retried_over_tcp_once_and_never_again(
        serve: Serve, probe: Prober, tcp: TcpDns, failure_class: FailureClass,
        detail: str) -> None:
    """TC over UDP, then TC, garbage, an endless stream or silence over TCP: one TCP retry,
    no loop, a failure by the deadline."""
    server = await serve(DnsServer(servers.truncated, tcp))
    result, elapsed = await timed(probe, dns_job(server.address, "api.example"))
    assert_failed(result, failure_class)
    assert result.detail.startswith(detail), result.detail
    assert elapsed < (WITHIN + SLACK if failure_class == "timeout" else PROMPT)
    assert probe.permit.calls == 2
    counters = server.counters
    assert (counters.udp_queries, counters.connections, counters.tcp_queries) == (1, 1, 1)
