"""Admin authentication: several tokens for rotation, re-read when the file changes, known
to the audit only by fingerprint; wrong tokens limited per peer, a right one never held."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from failover.api.admin import admin_app
from failover.api.audit import AuditLog
from failover.api.auth_limit import FailedAuth
from failover.api.server import Listener
from failover.api.token import Tokens, fingerprint, read_tokens
from tests.api.test_admin import FakeTarget

OLD, NEW = "old-token-0123456789abcdef", "new-token-fedcba9876543210"


def audit_lines(folder: Path) -> list[dict[str, Any]]:
    path = folder / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() \
        else []


class Admin:
    def __init__(self, url: str, tokens: Tokens) -> None:
        self.url = url
        self.tokens = tokens

    async def freeze(self, token: str, session: aiohttp.ClientSession | None = None) -> int:
        async def call(s: aiohttp.ClientSession) -> int:
            async with s.post(self.url + "/v1/freeze", json={"reason": "test"},
                              headers={"Authorization": f"Bearer {token}"}) as response:
                await response.read()
                return response.status

        if session is not None:
            return await call(session)
        async with aiohttp.ClientSession() as own:
            return await call(own)


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    path = tmp_path / "tokens"
    path.write_text(f"# rotated monthly\n{OLD}\n")
    tokens = Tokens(read_tokens(path), path)
    app = admin_app(FakeTarget(), tokens, AuditLog(tmp_path / "audit.jsonl"))
    server = Listener("admin", app, "127.0.0.1:0")
    task = asyncio.create_task(server.serve())
    await server.ready.wait()
    try:
        yield Admin(f"http://{server.bound[0]}", tokens)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_rotated_token_works_and_the_removed_one_stops(
        admin: Admin, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Both during the overlap, then only the new one; the audit names each by fingerprint;
    neither token appears in the audit log or the logs."""
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "tokens"
    assert await admin.freeze(OLD) == 200
    assert await admin.freeze(NEW) == 401
    path.write_text(f"{OLD}\n{NEW}\n")
    assert admin.tokens.refresh()
    assert (await admin.freeze(OLD), await admin.freeze(NEW)) == (200, 200)
    path.write_text(f"{NEW}\n")
    assert admin.tokens.refresh()
    assert (await admin.freeze(OLD), await admin.freeze(NEW)) == (401, 200)
    assert not admin.tokens.refresh()  # unchanged: not read again
    lines = audit_lines(tmp_path)
    assert [line.get("token") for line in lines if line["status"] == 200] == [
        fingerprint(OLD), fingerprint(OLD), fingerprint(NEW), fingerprint(NEW)]
    everything = (tmp_path / "audit.jsonl").read_text() + caplog.text
    assert OLD not in everything
    assert NEW not in everything
    assert fingerprint(NEW) in caplog.text  # the log says which tokens came and went


async def test_a_token_file_left_empty_keeps_the_tokens_before(
        admin: Admin, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A half-written or emptied file must not lock the operators out: refused, logged,
    counted; the tokens read before stay."""
    failures: list[int] = []
    admin.tokens.failed = lambda: failures.append(1)
    (tmp_path / "tokens").write_text("\n")
    assert not admin.tokens.refresh()
    assert failures == [1]
    assert "the admin tokens read before stay in force" in caplog.text
    assert await admin.freeze(OLD) == 200


async def test_the_watch_takes_up_a_change_within_its_interval(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{OLD}\n")
    tokens = Tokens(read_tokens(path), path)
    watch = asyncio.create_task(tokens.watch(0.05))
    try:
        path.write_text(f"{NEW}\n")
        start = time.monotonic()
        while tokens.match(NEW.encode()) is None:
            assert time.monotonic() - start < 5, "the new token was not taken up"
            await asyncio.sleep(0.01)
        assert tokens.match(OLD.encode()) is None
    finally:
        watch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watch


async def test_a_burst_of_wrong_tokens_is_limited_and_a_right_one_still_gets_in_at_once(
        admin: Admin, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """1,000 wrong tokens from one peer: the first few 401, the rest 429 with Retry-After,
    one warning and one audit line for the limit; a right token from the same peer, sent
    in the middle of the burst, is answered 200 within 100 ms."""
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def wrong(n: int) -> tuple[int, str | None]:
            async with session.post(admin.url + "/v1/freeze", json={"reason": "x"},
                                    headers={"Authorization": f"Bearer guess-{n}"}) as r:
                await r.read()
                return r.status, r.headers.get("Retry-After")

        burst_started = time.monotonic()
        burst = [asyncio.create_task(wrong(n)) for n in range(1000)]
        await asyncio.sleep(0)  # the burst is under way
        async with aiohttp.ClientSession() as own:
            started = time.monotonic()
            assert await admin.freeze(OLD, own) == 200
            took = time.monotonic() - started
        answers = await asyncio.gather(*burst)
        burst_took = time.monotonic() - burst_started
    statuses = [status for status, _ in answers]
    assert statuses.count(401) == FailedAuth().failures
    assert statuses.count(429) == 1000 - FailedAuth().failures
    assert all(int(retry) > 0 for status, retry in answers if status == 429 and retry)
    assert took < 0.1, f"the right token took {took * 1000:.0f} ms"
    # A sanity bound, not a benchmark: refusals are cheap, so the burst is soon answered.
    assert burst_took < 20, f"1,000 refusals took {burst_took:.1f} s"
    limits = [line for line in audit_lines(tmp_path) if line["result"] == "rate_limited"]
    assert len(limits) == 1
    assert [r for r in caplog.records if "wrong tokens from" in r.getMessage()] != []
    assert len([r for r in caplog.records if "wrong tokens from" in r.getMessage()]) == 1


def test_a_limit_lasts_its_window_and_the_next_one_reports_what_the_last_refused() -> None:
    now = [0.0]
    limiter = FailedAuth(failures=3, window=60, clock=lambda: now[0])
    assert [limiter.failed("p") for _ in range(3)] == [None, None, None]
    blocked = limiter.failed("p")
    assert blocked is not None
    assert (blocked.failures, blocked.left, blocked.refused) == (4, 60, 0)
    now[0] = 30
    assert limiter.retry_after("p") == 30
    assert limiter.retry_after("other") is None  # per peer
    now[0] = 60
    assert limiter.retry_after("p") is None
    for _ in range(3):
        assert limiter.failed("p") is None
    again = limiter.failed("p")
    assert again is not None
    assert again.refused == 1


def test_peers_remembered_are_bounded() -> None:
    limiter = FailedAuth(max_peers=100)
    for n in range(1000):
        limiter.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._peers) == 100
