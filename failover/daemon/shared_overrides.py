"""Operator overrides in the distributed mode: one etcd key each (``drain/<cluster>``,
``freeze``), so that two operators acting at once on two replicas never overwrite each
other. Every replica mirrors the keys into its `Overrides`; an admin call on any replica is
written there, and the leader plans from what etcd holds, whoever took the call."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from failover.daemon.overrides import Drain, Freeze, Overrides

log = logging.getLogger("failover.daemon")

FREEZE = "freeze"
DRAIN = "drain/"

Put = Callable[[str, bytes | None], Awaitable[bool]]


def _encode(value: Drain | Freeze) -> bytes:
    return json.dumps(dataclasses.asdict(value), sort_keys=True).encode()


def parse(values: Mapping[str, bytes]) -> tuple[Overrides, list[str]]:
    """The overrides etcd holds, and what was wrong with any key that could not be used
    (it is left out)."""
    found = Overrides()
    problems = []
    for key, data in sorted(values.items()):
        try:
            doc = json.loads(data)
            if key == FREEZE:
                found.freeze = Freeze(str(doc["reason"]), float(doc["since"]))
            elif key.startswith(DRAIN) and len(key) > len(DRAIN):
                until = doc.get("until")
                found.drains[key.removeprefix(DRAIN)] = Drain(
                    str(doc["reason"]), float(doc["since"]),
                    None if until is None else float(until))
            else:
                problems.append(f"{key}: not an override failover writes")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"{key}: {type(exc).__name__}: {exc}")
    return found, problems


class PendingWrites:
    """Changes made here are pending until etcd has them; pending ones are written again at
    each `flush` (each tick and each admin call) until it does."""

    def __init__(self, put: Put) -> None:
        self._put = put
        self._pending: dict[str, bytes | None] = {}

    async def flush(self) -> bool:
        """Write every pending change; True when none is left."""
        for key, value in list(self._pending.items()):
            if not await self._put(key, value):
                return False
            if self._pending.get(key) == value:  # not changed again meanwhile
                del self._pending[key]
        return not self._pending


class SharedOverrides(PendingWrites):
    def __init__(self, overrides: Overrides, put: Put, clusters: Callable[[], set[str]],
                 on_bad: Callable[[str], None]) -> None:
        super().__init__(put)
        self._overrides = overrides
        self._clusters = clusters
        self._on_bad = on_bad

    def drained(self, name: str, drain: Drain | None) -> None:
        self._pending[DRAIN + name] = None if drain is None else _encode(drain)

    def frozen(self, freeze: Freeze | None) -> None:
        self._pending[FREEZE] = None if freeze is None else _encode(freeze)

    def take(self, values: Mapping[str, bytes]) -> None:
        """What etcd holds now, with this replica's own pending changes on top (they are on
        their way there)."""
        found, problems = parse(values)
        for problem in problems:
            self._on_bad(problem)
        for key, value in self._pending.items():
            if key == FREEZE:
                found.freeze = None if value is None else parse({key: value})[0].freeze
            else:
                name = key.removeprefix(DRAIN)
                found.drains.pop(name, None)
                if value is not None:
                    found.drains.update(parse({key: value})[0].drains)
        self._overrides.take(found, self._clusters())
