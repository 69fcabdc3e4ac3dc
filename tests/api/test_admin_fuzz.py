"""Hostile admin bodies: whatever arrives, the answer is a clear 4xx (never a 500), nothing
changes on a refused body, and every call is in the audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover.api.admin import admin_app
from failover.api.audit import AuditLog
from tests.api.test_admin import AUTH, TOKEN, FakeTarget

ROUTES = ["/v1/clusters/a/drain", "/v1/clusters/a/undrain", "/v1/freeze", "/v1/unfreeze",
          "/v1/reload", "/v1/clusters/zz/drain"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["reason", "expires_in", "x", ""]) | st.text(max_size=8), inner,
        max_size=4),
    max_leaves=12)
bodies = st.binary(max_size=300) | json_values.map(
    lambda value: json.dumps(value, allow_nan=True).encode())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=bodies)
async def test_any_body_gets_a_clear_answer(tmp_path: Path, route: str, body: bytes) -> None:
    """Each route answers 2xx or 4xx with a JSON error, never 500; the call is audited."""
    target = FakeTarget()
    audit_path = tmp_path / "audit.jsonl"  # shared by the examples: count what this one adds
    before = len(audit_path.read_text().splitlines()) if audit_path.exists() else 0
    async with TestClient(TestServer(admin_app(target, TOKEN, AuditLog(audit_path)))) as client:
        response = await client.post(route, data=body, headers=AUTH)
        doc: Any = await response.json()
    assert response.status in (200, 400, 404, 409, 413), (route, body, doc)
    if response.status >= 400:
        assert isinstance(doc.get("error"), str)
        assert doc["error"]
        if route.endswith("/drain"):
            assert target.drained == {}
        if route == "/v1/freeze":
            assert target.frozen is None
    lines = audit_path.read_text().splitlines()
    assert len(lines) == before + 1
    assert json.loads(lines[-1])["status"] == response.status
