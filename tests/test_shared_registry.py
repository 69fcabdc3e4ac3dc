"""Registrations as etcd holds them: read back with this replica's own pending changes on top,
and a value that cannot be used left out and reported."""

from __future__ import annotations

import json
from typing import Any

from failover.daemon.shared_registry import SharedRegistry

BODY = {"name": "new-1", "weight": 5, "checks": [{"tcp": "127.0.0.1:8109"}]}


class Etcd:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.up = True

    async def put(self, key: str, value: bytes | None) -> bool:
        if not self.up:
            return False
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value
        return True


def shared() -> tuple[SharedRegistry, Etcd, list[tuple[dict[str, Any], set[str]]], list[str]]:
    etcd, adopted, bad = Etcd(), [], []
    registry = SharedRegistry(etcd.put, lambda bodies, leaving: adopted.append((bodies, leaving)),
                              bad.append)
    return registry, etcd, adopted, bad


async def test_a_registration_is_written_and_read_back() -> None:
    registry, etcd, adopted, _ = shared()
    registry.registered("new-1", BODY, leaving=False)
    assert await registry.flush()
    assert json.loads(etcd.values["cluster/new-1"]) == {"body": BODY, "leaving": False}
    registry.take({**etcd.values, "drain/x": b"{}"})  # the overrides' keys are not ours
    assert adopted[-1] == ({"new-1": BODY}, set())
    registry.registered("new-1", BODY, leaving=True)
    assert await registry.flush()
    registry.take(etcd.values)
    assert adopted[-1] == ({"new-1": BODY}, {"new-1"})
    registry.removed("new-1")
    assert await registry.flush()
    registry.take(etcd.values)
    assert adopted[-1] == ({}, set())


async def test_pending_changes_count_until_etcd_has_them() -> None:
    registry, etcd, adopted, _ = shared()
    etcd.up = False
    registry.registered("new-1", BODY, leaving=False)
    assert not await registry.flush()
    registry.take({})  # etcd has nothing yet; the replica's own change still counts
    assert adopted[-1] == ({"new-1": BODY}, set())
    etcd.up = True
    assert await registry.flush()
    assert "cluster/new-1" in etcd.values


def test_a_value_that_cannot_be_used_is_left_out_and_reported() -> None:
    registry, _, adopted, bad = shared()
    registry.take({"cluster/a": b"not json", "cluster/b": b'{"body": [], "leaving": false}',
                   "cluster/c": json.dumps({"body": BODY, "leaving": False}).encode()})
    assert adopted[-1] == ({"c": BODY}, set())
    assert [line.split(":")[0] for line in bad] == ["cluster/a", "cluster/b"]
