"""The admin API: bearer token, strict bodies, clear errors, and an audit line per call."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from failover.api.admin import MAX_BODY, admin_app
from failover.api.audit import AuditLog
from failover.api.server import Listener
from failover.api.token import Tokens
from failover.metrics import Metrics

TOKEN = "s3cret-token"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeTarget:
    def __init__(self) -> None:
        self.metrics = Metrics(CollectorRegistry())
        self.weights = {"a": 50.0, "b": 50.0}
        self.drains: dict[str, tuple[str, float | None]] = {}
        self.frozen: str | None = None
        self.reload_ok = True
        self.fail: Exception | None = None
        """Raised by freeze(): a bug in the daemon, as the admin app sees one."""

    def has_cluster(self, name: str) -> bool:
        return name in self.weights

    def base_weights(self) -> dict[str, float]:
        return dict(self.weights)

    def drained_clusters(self) -> set[str]:
        return set(self.drains)

    def drain(self, name: str, reason: str, expires_in: float | None) -> dict[str, Any]:
        self.drains[name] = (reason, expires_in)
        return {"reason": reason}

    def undrain(self, name: str) -> bool:
        return self.drains.pop(name, None) is not None

    def freeze(self, reason: str) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        self.frozen = reason
        return {"reason": reason}

    def unfreeze(self) -> bool:
        was, self.frozen = self.frozen, None
        return was is not None

    async def persist(self) -> bool:
        return True

    async def reload(self) -> bool:
        return self.reload_ok

    def reload_error(self) -> str | None:
        return None if self.reload_ok else "c.yaml:3: clusters[0].weight: bad"


@pytest.fixture
def target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
async def client(target: FakeTarget, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = admin_app(target, Tokens((TOKEN,)), AuditLog(tmp_path / "audit.jsonl"))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def audit(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"},
])
async def test_no_valid_token_is_401_and_audited(
        client: TestClient[Any, Any], target: FakeTarget, tmp_path: Path,
        headers: dict[str, str]) -> None:
    """Without the exact bearer token nothing happens, the answer is 401, the try is logged."""
    response = await client.post("/v1/freeze", json={"reason": "x"}, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert target.frozen is None
    assert audit(tmp_path)[-1]["result"] == "unauthorized"


async def test_drain_with_reason_and_expiry_is_applied_and_audited(
        client: TestClient[Any, Any], target: FakeTarget, tmp_path: Path) -> None:
    """A drain reaches the daemon with its reason and expiry, and the audit line says so."""
    response = await client.post("/v1/clusters/a/drain", headers=AUTH,
                                 json={"reason": "bad deploy", "expires_in": "30m"})
    assert response.status == 200
    assert target.drains == {"a": ("bad deploy", 1800.0)}
    line = audit(tmp_path)[-1]
    assert (line["action"], line["cluster"], line["reason"], line["result"], line["status"]) == (
        "drain", "a", "bad deploy", "ok", 200)
    assert "at" in line


async def test_unknown_cluster_is_404(client: TestClient[Any, Any]) -> None:
    """Draining a cluster the config does not have: 404 naming it."""
    response = await client.post("/v1/clusters/zz/drain", headers=AUTH, json={"reason": "x"})
    assert response.status == 404
    assert "'zz'" in (await response.json())["error"]


@pytest.mark.parametrize(("body", "message"), [
    (b'{"reason": ""}', "reason: String should have at least 1 character"),
    (b'{}', "reason: Field required"),
    (b'{"reason": "x", "why": 1}', "why: Extra inputs are not permitted"),
    (b'{"reason": 5}', "reason: Input should be a valid string"),
    (b'{"reason": "x", "expires_in": "soon"}', "expires_in"),
    (b"reason=x", "body is not JSON"),
    (b'["x"]', "body: Input should be"),
])
async def test_bad_drain_body_is_400_naming_the_problem(
        client: TestClient[Any, Any], target: FakeTarget, body: bytes, message: str) -> None:
    """A bad body changes nothing and the 400 says which field and why."""
    response = await client.post("/v1/clusters/a/drain", headers=AUTH, data=body)
    assert response.status == 400
    assert message in (await response.json())["error"]
    assert target.drains == {}


async def test_oversized_body_is_refused(client: TestClient[Any, Any],
                                         target: FakeTarget) -> None:
    """A body over the limit is refused with 413 before anything changes."""
    response = await client.post("/v1/freeze", headers=AUTH,
                                 data=b'{"reason": "' + b"x" * MAX_BODY + b'"}')
    assert response.status == 413
    assert target.frozen is None


async def test_undrain_and_unfreeze_say_when_there_was_nothing_to_undo(
        client: TestClient[Any, Any], target: FakeTarget) -> None:
    """Undoing what is not in effect is a 409; undoing what is, a 200."""
    assert (await client.post("/v1/clusters/b/undrain", headers=AUTH)).status == 409
    assert (await client.post("/v1/unfreeze", headers=AUTH)).status == 409
    await client.post("/v1/clusters/b/drain", headers=AUTH, json={"reason": "x"})
    await client.post("/v1/freeze", headers=AUTH, json={"reason": "incident"})
    assert target.frozen == "incident"
    assert (await client.post("/v1/clusters/b/undrain", headers=AUTH)).status == 200
    assert (await client.post("/v1/unfreeze", headers=AUTH)).status == 200
    assert (target.drains, target.frozen) == ({}, None)


async def test_refused_reload_is_400_with_the_config_error(
        client: TestClient[Any, Any], target: FakeTarget) -> None:
    """A reload whose config is refused reports where, and keeps the running one."""
    target.reload_ok = False
    response = await client.post("/v1/reload", headers=AUTH)
    assert response.status == 400
    assert "c.yaml:3: clusters[0].weight: bad" in (await response.json())["error"]
    target.reload_ok = True
    assert (await client.post("/v1/reload", headers=AUTH)).status == 200


async def test_unknown_route_is_json_404(client: TestClient[Any, Any]) -> None:
    """Even a wrong path gets a JSON error, after the token check."""
    response = await client.post("/v1/explode", headers=AUTH)
    assert response.status == 404
    assert "error" in await response.json()


# -- every call audited once, whoever refuses it --------------------------------------------


async def test_handler_bug_is_json_500_counted_logged_and_audited(
        client: TestClient[Any, Any], target: FakeTarget, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception in a handler: 500 with a JSON error, one more
    failover_errors_total{where="admin"}, a logged traceback, and the audit line."""
    target.fail = RuntimeError("boom")
    response = await client.post("/v1/freeze", headers=AUTH, json={"reason": "x"})
    assert response.status == 500
    assert "RuntimeError" in (await response.json())["error"]
    errors = target.metrics.registry.get_sample_value("failover_errors_total", {"where": "admin"})
    assert errors == 1
    assert any(r.exc_info and "POST /v1/freeze" in r.getMessage() for r in caplog.records)
    line = audit(tmp_path)[-1]
    assert (line["action"], line["status"], line["result"], line["error"]) == (
        "freeze", 500, "error", "RuntimeError: boom")


@pytest.fixture
async def listener(target: FakeTarget, tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    """The admin app on a real Listener at 127.0.0.1:0, as the daemon runs it."""
    app = admin_app(target, Tokens((TOKEN,)), AuditLog(tmp_path / "audit.jsonl"))
    server = Listener("admin", app, "127.0.0.1:0")
    task = asyncio.create_task(server.serve())
    await server.ready.wait()
    host, port = server.bound[0].rsplit(":", 1)
    yield host, int(port)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # the runner's cleanup flushes the audit log


async def exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Send raw bytes and read the answer until the server closes the connection."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


GOOD = (b"POST /v1/freeze HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
        + TOKEN.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
        b'{"reason": "x"}')


@pytest.mark.parametrize("request_bytes", [
    pytest.param(b"NOT HTTP AT ALL\r\n\r\n", id="garbage request line"),
    pytest.param(b"POST /v1/freeze HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
                 id="header line too long"),
    pytest.param(b"POST /v1/freeze HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
                 id="bad content-length"),
    pytest.param(b"POST /v1/freeze HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n", id="content-length and chunked"),
    pytest.param(b"POST /v1/freeze HTTP/1.1\r\nBad Header: x\r\n\r\n", id="space in name"),
])
async def test_request_aiohttp_refuses_before_the_app_is_audited(
        listener: tuple[str, int], target: FakeTarget, tmp_path: Path,
        request_bytes: bytes) -> None:
    """A request the HTTP parser refuses never reaches a handler, and still has its line."""
    answer = await exchange(listener, request_bytes)
    assert answer[:10] in (b"HTTP/1.0 4", b"HTTP/1.1 4")
    assert target.frozen is None
    lines = await _flushed(listener, tmp_path)
    assert [(line["result"], line["method"], line["status"]) for line in lines] == [
        ("rejected", None, int(answer[9:12]))]
    assert lines[0]["error"]
    assert lines[0]["remote"] == "127.0.0.1"


async def _flushed(listener: tuple[str, int], tmp_path: Path) -> list[dict[str, Any]]:
    """The audit lines of the calls answered so far. Their lines were queued before their
    connections closed, and a good call's line is written after them, in order, before its
    answer: so once it is answered, every earlier line is on disk."""
    assert (await exchange(listener, GOOD)).startswith(b"HTTP/1.1 200")
    lines = audit(tmp_path)
    assert lines[-1]["action"] == "freeze"
    return lines[:-1]


async def head_of(address: tuple[str, int], request: bytes,
                  body: bytes | None = None) -> tuple[bytes, bytes]:
    """Send a request head and read the first answer head; on ``100 Continue``, send ``body``
    and read the final head. Returns (first head, final head)."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(request)
        first = final = await reader.readuntil(b"\r\n\r\n")
        if first.startswith(b"HTTP/1.1 100") and body is not None:
            writer.write(body)
            final = await reader.readuntil(b"\r\n\r\n")
        return first, final
    finally:
        writer.close()
        await writer.wait_closed()


def expecting(path: str, length: int, auth: bool, expect: str = "100-continue") -> bytes:
    token = f"Authorization: Bearer {TOKEN}\r\n" if auth else ""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Expect: {expect}\r\nContent-Length: {length}\r\n{token}\r\n").encode()


@pytest.mark.parametrize(("path", "length", "auth", "expect", "status"), [
    ("/v1/freeze", 15, False, "100-continue", 401),
    ("/v1/no-such-route", 15, False, "100-continue", 401),
    ("/v1/freeze", MAX_BODY + 1, True, "100-continue", 413),
    ("/v1/freeze", 15, True, "something-else", 417),
])
async def test_expect_is_refused_before_the_body_is_invited(
        listener: tuple[str, int], target: FakeTarget, tmp_path: Path, path: str,
        length: int, auth: bool, expect: str, status: int) -> None:
    """An Expect request that would be refused (no token, body over the limit, unknown
    expectation) gets its final answer instead of 100 Continue, with the connection closed,
    and one audit line: no body is invited, none is read."""
    first, _ = await head_of(listener, expecting(path, length, auth, expect))
    assert first.startswith(f"HTTP/1.1 {status}".encode())
    assert b"Connection: close" in first
    assert target.frozen is None
    lines = await _flushed(listener, tmp_path)
    assert [(line["path"], line["status"], line["expect"]) for line in lines] == [
        (path, status, expect)]


async def test_expect_with_token_continues_and_is_applied(
        listener: tuple[str, int], target: FakeTarget, tmp_path: Path) -> None:
    """An authenticated Expect request within the limit is told to continue, then served."""
    first, final = await head_of(listener, expecting("/v1/freeze", 15, auth=True),
                                 b'{"reason": "x"}')
    assert first.startswith(b"HTTP/1.1 100 Continue")
    assert final.startswith(b"HTTP/1.1 200")
    assert target.frozen == "x"
    assert [line["result"] for line in audit(tmp_path)] == ["ok"]


async def test_every_call_has_exactly_one_audit_line(
        listener: tuple[str, int], target: FakeTarget, tmp_path: Path) -> None:
    """Whoever answers (a route, the token check, the router, the Expect handler, the HTTP
    parser), each call adds one line and only one."""
    calls = [
        expecting("/v1/freeze", 15, auth=False),                       # Expect: 401
        b"GET /v1/freeze HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
        + TOKEN.encode() + b"\r\n\r\n",                                  # 405
        b"POST /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # 401
        b"POST /v1/clusters/zz/drain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer "
        + TOKEN.encode() + b"\r\nContent-Length: 2\r\n\r\n{}",           # 404
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",       # TLS to plain HTTP: 400
        b"POST /v1/freeze HTTP/1.1\r\n\r\n",                             # no Host: 400
    ]
    for call in calls:
        first, _ = await head_of(listener, call)
        assert first[9:10] == b"4"
    lines = await _flushed(listener, tmp_path)
    assert [line["status"] for line in lines] == [401, 405, 401, 404, 400, 400]


# -- a drain never leaves nothing to take traffic -------------------------------------------


async def test_draining_the_last_serving_cluster_is_409(
        client: TestClient[Any, Any], target: FakeTarget, tmp_path: Path) -> None:
    """With every other cluster drained, draining the last is refused with 409 and why, and
    nothing changes; the refusal is audited."""
    assert (await client.post("/v1/clusters/a/drain", headers=AUTH,
                              json={"reason": "one"})).status == 200
    response = await client.post("/v1/clusters/b/drain", headers=AUTH, json={"reason": "two"})
    assert response.status == 409
    assert "no cluster that can take traffic" in (await response.json())["error"]
    assert set(target.drains) == {"a"}
    line = audit(tmp_path)[-1]
    assert (line["action"], line["cluster"], line["status"], line["result"]) == (
        "drain", "b", 409, "refused")


async def test_clusters_of_weight_zero_do_not_count_as_taking_traffic(
        client: TestClient[Any, Any], target: FakeTarget) -> None:
    """A cluster with base weight 0 takes no traffic: draining the only weighted one is 409,
    while draining the weight-0 one is allowed."""
    target.weights = {"a": 50.0, "b": 0.0}
    assert (await client.post("/v1/clusters/a/drain", headers=AUTH,
                              json={"reason": "x"})).status == 409
    assert (await client.post("/v1/clusters/b/drain", headers=AUTH,
                              json={"reason": "x"})).status == 200
    assert set(target.drains) == {"b"}


async def test_redraining_with_others_serving_and_undrain_stay_allowed(
        client: TestClient[Any, Any], target: FakeTarget) -> None:
    """The rule refuses only the drain that would leave none: a re-drain (new reason) while
    another serves is fine, and undrain is always allowed."""
    for reason in ("first", "second"):
        assert (await client.post("/v1/clusters/a/drain", headers=AUTH,
                                  json={"reason": reason})).status == 200
    assert target.drains["a"][0] == "second"
    assert (await client.post("/v1/clusters/a/undrain", headers=AUTH)).status == 200
    assert (await client.post("/v1/clusters/b/drain", headers=AUTH,
                              json={"reason": "x"})).status == 200
