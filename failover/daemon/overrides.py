"""Operator overrides: drained clusters and a frozen plan, with reasons and optional expiry.

Times are wall-clock (unix seconds): overrides are persisted and must mean the same after a
restart, when the loop clock starts again from an arbitrary value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Drain:
    reason: str
    since: float
    until: float | None = None
    """Unix time at which the drain lifts by itself; None: until undrained."""


@dataclass(frozen=True)
class Freeze:
    reason: str
    since: float


@dataclass
class Overrides:
    drains: dict[str, Drain] = field(default_factory=dict)
    freeze: Freeze | None = None

    def expire(self, now: float) -> list[str]:
        """Lift drains whose time is up; return their clusters."""
        lapsed = sorted(n for n, d in self.drains.items() if d.until is not None and d.until <= now)
        for name in lapsed:
            del self.drains[name]
        return lapsed

    def drain_reasons(self) -> dict[str, str]:
        """Drained clusters and why, as the controller takes them."""
        return {name: drain.reason for name, drain in self.drains.items()}

    def take(self, saved: Overrides, names: set[str]) -> None:
        """Take up what a saved state held, in place (the listeners hold this object), for
        the clusters still configured."""
        self.drains.clear()
        self.drains.update(saved.drains)
        self.freeze = saved.freeze
        self.forget(names)

    def forget(self, names: set[str]) -> None:
        """Drop drains of clusters no longer configured."""
        for name in set(self.drains) - names:
            del self.drains[name]

    def as_dict(self) -> dict[str, Any]:
        return {"drains": {n: dataclasses.asdict(d) for n, d in sorted(self.drains.items())},
                "freeze": None if self.freeze is None else dataclasses.asdict(self.freeze)}

    @staticmethod
    def from_dict(doc: dict[str, Any]) -> Overrides:
        """Raises KeyError, TypeError or ValueError on a document not made by `as_dict`."""
        drains = {str(n): Drain(str(d["reason"]), float(d["since"]),
                                None if d.get("until") is None else float(d["until"]))
                  for n, d in dict(doc.get("drains", {})).items()}
        frozen = doc.get("freeze")
        freeze = None if frozen is None else Freeze(str(frozen["reason"]), float(frozen["since"]))
        return Overrides(drains, freeze)
