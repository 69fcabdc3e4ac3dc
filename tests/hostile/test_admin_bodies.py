"""Hostile admin requests: any body to any route is answered 2xx, 400, 404, 409 or 413 (never
500) exactly as the body's validity says, a refused body never reaches the daemon, and every
call is in the audit log."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from failover.api.admin import MAX_BODY, DrainBody, EmptyBody, FreezeBody, admin_app
from failover.api.audit import AuditLog
from failover.api.token import Tokens
from failover.metrics import Metrics

TOKEN = "hostile-test-token"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}

ROUTES: dict[str, type[BaseModel] | None] = {
    "/v1/clusters/a/drain": DrainBody,
    "/v1/clusters/a/undrain": EmptyBody,
    "/v1/freeze": FreezeBody,
    "/v1/unfreeze": EmptyBody,
    "/v1/reload": EmptyBody,
    "/v1/clusters/zz/drain": None,    # no such cluster: 404 whatever the body
    "/v1/clusters/zz/undrain": None,
}
"""Each route and the body it accepts."""


class SpyTarget:
    """The daemon as the admin routes see it, recording every call that acts."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.drained: set[str] = set()
        self.frozen = False
        self.metrics = Metrics(CollectorRegistry())

    def has_cluster(self, name: str) -> bool:
        return name in ("a", "b")

    def base_weights(self) -> dict[str, float]:
        return {"a": 1.0, "b": 1.0}

    def drained_clusters(self) -> set[str]:
        return set(self.drained)

    def drain(self, name: str, reason: str, expires_in: float | None) -> dict[str, Any]:
        self.calls.append("drain")
        self.drained.add(name)
        return {"reason": reason, "expires_in": expires_in}

    def undrain(self, name: str) -> bool:
        self.calls.append("undrain")
        was = name in self.drained
        self.drained.discard(name)
        return was

    def freeze(self, reason: str) -> dict[str, Any]:
        self.calls.append("freeze")
        self.frozen = True
        return {"reason": reason}

    def unfreeze(self) -> bool:
        self.calls.append("unfreeze")
        was, self.frozen = self.frozen, False
        return was

    async def persist(self) -> bool:
        return True

    async def reload(self) -> bool:
        self.calls.append("reload")
        return True

    def reload_error(self) -> str | None:
        return None


class Admin:
    def __init__(self, client: TestClient[Any, Any], target: SpyTarget, audit: Path) -> None:
        self.client = client
        self.target = target
        self.audit = audit

    def audit_lines(self) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines()]


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    target = SpyTarget()
    audit = tmp_path / "audit.jsonl"
    app = admin_app(target, Tokens((TOKEN,)), AuditLog(audit))
    async with TestClient(TestServer(app)) as client:
        yield Admin(client, target, audit)


def acceptable(model: type[BaseModel], raw: bytes) -> bool:
    """Whether ``raw`` is a body ``model`` accepts: the reference the answers are held to."""
    if len(raw) > MAX_BODY:
        return False
    try:
        model.model_validate(json.loads(raw) if raw.strip() else {})
    except Exception:  # any failure at all means the body must be refused
        return False
    return True


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=40)
    | st.integers() | st.integers(min_value=2**1020, max_value=2**1100),  # near float's end
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["reason", "expires_in", "x", ""]) | st.text(max_size=8),
                      inner, max_size=4),
    max_leaves=12,
)
near_valid = st.fixed_dictionaries(
    {"reason": st.text(max_size=520) | json_values},
    optional={"expires_in": st.sampled_from(["30m", "1s", "-1s", "0", "soon", "1e999s"])
              | json_values,
              "x": json_values},
)
almost_right = st.fixed_dictionaries(
    {"reason": st.text(min_size=1, max_size=500)},
    optional={"expires_in": st.sampled_from(["30m", "1s", 5, 0.5, None, "-1s", "soon", True])},
)
bodies = (
    st.binary(max_size=400)
    | st.one_of(json_values, near_valid, almost_right, almost_right).map(
        lambda value: json.dumps(value, allow_nan=True).encode())
    | st.integers(MAX_BODY - 8, MAX_BODY + 64).map(
        lambda n: b'{"reason": "' + b"x" * (n - 14) + b'"}')   # around the size limit
    | st.sampled_from([b"", b" \n", b"{}", b"{}", b"null", b"[]", b'{"reason": "r"}', b"\xff\xfe{}",
                       b'{"reason": "r", "reason": "s"}', b"NaN", b'"\\ud800"'])
)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(sorted(ROUTES)), body=bodies)
async def test_any_body_is_answered_as_its_validity_says(
        admin: Admin, route: str, body: bytes) -> None:
    """Unknown cluster 404; too big 413; invalid 400 with no call to the daemon; valid: the
    call is made (409 when there was nothing to undo); audited every time."""
    target, model = admin.target, ROUTES[route]
    calls_before, audit_before = list(target.calls), len(admin.audit_lines())
    was_drained, was_frozen = "a" in target.drained, target.frozen
    response = await admin.client.post(route, data=body, headers=AUTH)
    document = await response.json()

    if model is None:
        expected = 404
    elif len(body) > MAX_BODY:
        expected = 413
    elif not acceptable(model, body):
        expected = 400
    elif (route.endswith("/undrain") and not was_drained) or (
            route == "/v1/unfreeze" and not was_frozen):
        expected = 409  # nothing to undo
    else:
        expected = 200
    assert response.status == expected, (route, body, document)
    event(f"{route} {expected}")
    action = route.rsplit("/", 1)[-1]
    if expected in (404, 413, 400):
        assert target.calls == calls_before, "a refused body reached the daemon"
    else:
        assert target.calls == [*calls_before, action]
    if expected >= 400:
        assert isinstance(document["error"], str)
        assert document["error"]
    lines = admin.audit_lines()
    assert len(lines) == audit_before + 1, "every call is audited, once"
    assert (lines[-1]["path"], lines[-1]["status"]) == (route, expected)


# --- Bodies that escaped as unaudited 500s before api/admin.py and durations.py caught them --


async def post_and_expect_400_audited(admin: Admin, route: str, body: bytes,
                                      headers: dict[str, str] | None = None) -> None:
    response = await admin.client.post(route, data=body, headers={**AUTH, **(headers or {})})
    assert response.status == 400
    assert admin.target.calls == []
    assert [line["status"] for line in admin.audit_lines()] == [400]


async def test_deeply_nested_json_is_a_400(admin: Admin) -> None:
    """JSON nested 8 000 deep (within the size limit) is a bad body (400, audited), not an
    unaudited 500."""
    await post_and_expect_400_audited(admin, "/v1/freeze", b"[" * 8_000 + b"]" * 8_000)


async def test_integer_of_5000_digits_is_a_400(admin: Admin) -> None:
    """A JSON number past Python's 4300-digit limit is a bad body, not an unaudited 500."""
    await post_and_expect_400_audited(admin, "/v1/freeze", b"9" * 5000)


async def test_expiry_beyond_float_range_is_a_400(admin: Admin) -> None:
    """An ``expires_in`` of 10**400 seconds is a bad body, not an unaudited 500."""
    body = b'{"reason": "r", "expires_in": 1' + b"0" * 400 + b"}"
    await post_and_expect_400_audited(admin, "/v1/clusters/a/drain", body)


async def test_corrupt_gzip_body_is_a_400(admin: Admin) -> None:
    """A body declared gzip that is not is a bad body, not an unaudited 500."""
    await post_and_expect_400_audited(admin, "/v1/freeze", b"not gzip at all",
                                      {"Content-Encoding": "gzip"})


async def test_gzip_bomb_is_refused_as_too_large(admin: Admin) -> None:
    """A small gzip body inflating to 10 MB is refused at the size limit: 413, audited."""
    body = gzip.compress(b'{"reason": "' + b"x" * 10_000_000 + b'"}')
    assert len(body) < MAX_BODY
    response = await admin.client.post("/v1/freeze", data=body,
                                       headers={**AUTH, "Content-Encoding": "gzip"})
    assert response.status == 413
    assert admin.target.calls == []
    assert [line["status"] for line in admin.audit_lines()] == [413]
