"""The admin API: bearer token, strict bodies, clear errors, and an audit line per call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from failover.api.admin import MAX_BODY, admin_app
from failover.api.audit import AuditLog

TOKEN = "s3cret-token"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeTarget:
    def __init__(self) -> None:
        self.drained: dict[str, tuple[str, float | None]] = {}
        self.frozen: str | None = None
        self.reload_ok = True

    def has_cluster(self, name: str) -> bool:
        return name in ("a", "b")

    def drain(self, name: str, reason: str, expires_in: float | None) -> dict[str, Any]:
        self.drained[name] = (reason, expires_in)
        return {"reason": reason}

    def undrain(self, name: str) -> bool:
        return self.drained.pop(name, None) is not None

    def freeze(self, reason: str) -> dict[str, Any]:
        self.frozen = reason
        return {"reason": reason}

    def unfreeze(self) -> bool:
        was, self.frozen = self.frozen, None
        return was is not None

    def reload(self) -> bool:
        return self.reload_ok

    def reload_error(self) -> str | None:
        return None if self.reload_ok else "c.yaml:3: clusters[0].weight: bad"


@pytest.fixture
def target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
async def client(target: FakeTarget, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = admin_app(target, TOKEN, AuditLog(tmp_path / "audit.jsonl"))
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
    assert target.drained == {"a": ("bad deploy", 1800.0)}
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
    assert target.drained == {}


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
    assert (target.drained, target.frozen) == ({}, None)


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
