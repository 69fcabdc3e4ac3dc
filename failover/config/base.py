"""What every config model shares: strictness, located errors, paths relative to the file."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo
from pydantic_core import PydanticCustomError

MIN_PERIOD = 0.001
"""Seconds: the shortest probe interval or timeout accepted."""


def dotted(path: tuple[str | int, ...]) -> str:
    """``clusters[0].checks[1]``: a config path as an operator writes it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def located(path: tuple[str | int, ...], message: str) -> PydanticCustomError:
    """An error the loader reports at ``path`` below the validator's own location."""
    return PydanticCustomError("located", message, {"at": path})


class Strict(BaseModel):
    # No inf or NaN anywhere: an infinite weight or rate is no number an operator means.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True,
                              allow_inf_nan=False)


def resolve(path: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the config file, not to wherever the daemon was started."""
    base = info.context.get("base_dir") if isinstance(info.context, dict) else None
    if path.is_absolute() or base is None:
        return path
    # normpath: `config/../var` reads better in logs and status as `var`.
    return Path(os.path.normpath(Path(base) / path))


def by_key(choices: Mapping[str, tuple[str, type]]) -> Callable[[Any], str | None]:
    """A pydantic discriminator for a union whose members are told apart by which one key
    of ``choices`` a mapping has (key -> (tag, model)): None, the union's own error, when
    it has none or several."""

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            found = [tag for key, (tag, _) in choices.items() if key in value]
            return found[0] if len(found) == 1 else None
        return next((tag for tag, model in choices.values() if isinstance(value, model)), None)

    return tag


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def _name(value: str) -> str:
    if not NAME.fullmatch(value):  # match() would let a trailing newline through
        msg = f"{value!r} must be 1-63 letters, digits, '.', '_' or '-'"
        raise ValueError(msg)
    return value


Name = Annotated[str, AfterValidator(_name)]
"""A cluster's or a vantage's name: also a metric label value and a path segment in etcd."""
