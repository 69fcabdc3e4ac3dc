"""``dataclasses.replace`` for the planner's values, made by the thousand each tick.

``dataclasses.replace`` introspects the class's fields on every call, as much again as
building the value; the planner replaces lives, ramps and plans of clusters by the thousand.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")


class Replacer:
    """``dataclasses.replace`` for the frozen slots dataclasses it was given, without its
    per-call introspection (fields are read in slot order and passed positionally); any
    other class goes to ``dataclasses.replace``."""

    __slots__ = ("_kinds",)

    def __init__(self, classes: tuple[type[Any], ...]) -> None:
        self._kinds = {cls: (cls, attrgetter(*cls.__slots__),
                             {name: at for at, name in enumerate(cls.__slots__)})
                       for cls in classes}

    def __call__(self, value: T, **changes: object) -> T:
        kind = self._kinds.get(type(value))
        if kind is None:
            return dataclasses.replace(value, **changes)  # type: ignore[type-var]
        make, fields, index = kind
        values = list(fields(value))
        for name, new in changes.items():
            values[index[name]] = new
        return make(*values)  # type: ignore[no-any-return]
