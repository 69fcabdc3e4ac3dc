"""Registered clusters in the distributed mode: one etcd key each, ``cluster/<name>`` beside
the operator overrides, so that a registration made on any replica runs on every one (each
probes it; the leader plans it) and survives a change of leader.

A change made here is pending until etcd has it, written again at each `flush` (each tick and
each admin call), as the shared overrides are. What etcd holds, with this replica's own
pending changes on top, is handed to ``adopt``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from failover.daemon.shared_overrides import PendingWrites, Put

log = logging.getLogger("failover.daemon")

PREFIX = "cluster/"

Adopt = Callable[[dict[str, dict[str, Any]], set[str]], None]
"""The bodies registered, by name, and the names being deregistered."""


def _encode(body: Mapping[str, Any], leaving: bool) -> bytes:
    return json.dumps({"body": dict(body), "leaving": leaving}, sort_keys=True).encode()


class SharedRegistry(PendingWrites):
    def __init__(self, put: Put, adopt: Adopt, on_bad: Callable[[str], None]) -> None:
        super().__init__(put)
        self._adopt = adopt
        self._on_bad = on_bad
        self._held: dict[str, bytes] = {}
        """What etcd held at the last change seen."""

    def registered(self, name: str, body: Mapping[str, Any], *, leaving: bool) -> None:
        self._pending[PREFIX + name] = _encode(body, leaving)

    def removed(self, name: str) -> None:
        self._pending[PREFIX + name] = None

    def take(self, values: Mapping[str, bytes]) -> None:
        """The ``cluster/`` keys etcd holds now (other override keys are not ours)."""
        self._held = {k: v for k, v in values.items() if k.startswith(PREFIX)}
        merged: dict[str, bytes | None] = {**self._held, **self._pending}
        bodies: dict[str, dict[str, Any]] = {}
        leaving: set[str] = set()
        for key, value in sorted(merged.items()):
            if value is None:
                continue
            name = key.removeprefix(PREFIX)
            try:
                doc = json.loads(value)
                body, gone = doc["body"], doc["leaving"]
                if not isinstance(body, dict) or not isinstance(gone, bool):
                    msg = "expected {'body': {...}, 'leaving': true|false}"
                    raise TypeError(msg)
            except (ValueError, KeyError, TypeError) as exc:
                self._on_bad(f"{key}: {type(exc).__name__}: {exc}")
                continue
            bodies[name] = body
            if gone:
                leaving.add(name)
        self._adopt(bodies, leaving)
