"""Durations as operators write them: ``500ms``, ``2s``, ``5m``, ``1h`` or bare seconds."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(value: object) -> float:
    """Return seconds; reject negatives, booleans and anything not in the documented forms."""
    if isinstance(value, bool):
        msg = f"expected a duration like 500ms, 2s or 5m, got {value!r}"
        raise ValueError(msg)
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError as exc:  # an int beyond float range
            msg = f"duration is too large: {str(value)[:20]}..."
            raise ValueError(msg) from exc
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            msg = f"expected a duration like 500ms, 2s or 5m, got {value!r}"
            raise ValueError(msg)
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        msg = f"expected a duration like 500ms, 2s or 5m, got {type(value).__name__}"
        raise ValueError(msg)
    if not math.isfinite(seconds) or seconds < 0:
        msg = f"duration must be a non-negative number of seconds, got {value!r}"
        raise ValueError(msg)
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    # What the loader takes, not the float it makes: editors validate YAML as written.
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": _PATTERN.pattern}]},
                   mode="validation"),
]
"""Seconds as a float; accepts the YAML forms above."""


def _positive(seconds: float) -> float:
    if seconds <= 0:
        msg = "must be greater than 0"
        raise ValueError(msg)
    return seconds


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
"""A Duration that may not be 0: a period, a tick, a length of time something lasts."""
