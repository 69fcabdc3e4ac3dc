"""YAML to a validated Config, with every error reported as ``file:line: key.path: message``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from failover.config.models import Config

M = TypeVar("M", bound=BaseModel)

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    line: int
    path: str
    message: str


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` lists every error found, each with its line."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(
            f"{self.source}:{p.line}: {p.path + ': ' if p.path else ''}{p.message}"
            for p in self.problems
        )


def _walk(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], source: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in seen:
                raise ConfigError(source, [Problem(
                    key_node.start_mark.line + 1, _dotted((*path, key)), "duplicate key")])
            seen.add(key)
            _walk(value_node, (*path, key), lines, source)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, source)


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _data_path(data: Any, loc: PathKey) -> PathKey:
    """Drop pydantic's union tags from ``loc``, keeping the longest path that exists in ``data``."""
    if not loc:
        return ()
    head, rest = loc[0], loc[1:]
    best: PathKey = _data_path(data, rest)  # head may be a union tag, not a key
    exists = (isinstance(data, dict) and head in data) or (
        isinstance(data, list) and isinstance(head, int) and 0 <= head < len(data))
    if exists:
        below = (head, *_data_path(data[head], rest))
        if len(below) >= len(best):
            return below
    return best


def error_message(error: Any) -> str:
    kind, message = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _line_for(path: PathKey, lines: dict[PathKey, int]) -> int:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1


def parse_model(model: type[M], text: str, source: str,
                context: dict[str, Any] | None = None) -> M:
    """YAML ``text`` validated as ``model``; every problem reported as ``file:line: path:
    message`` in one ConfigError. Shared by the config and the simulator's scenarios."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(source, [Problem(line, "", f"invalid YAML: {exc.problem}")]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(source, [Problem(1, "", f"invalid YAML: {exc}")]) from exc
    if node is None or not isinstance(data, dict):
        raise ConfigError(source, [Problem(1, "", "expected a mapping at the top level")])
    lines: dict[PathKey, int] = {}
    _walk(node, (), lines, source)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"]) + tuple(error.get("ctx", {}).get("at", ()))
            path = _data_path(data, loc)
            if error["type"] in ("extra_forbidden", "missing") and loc and loc[-1] not in path:
                path = (*path, loc[-1])
            problems.append(Problem(_line_for(path, lines), _dotted(path), error_message(error)))
        raise ConfigError(source, problems) from exc


def parse(text: str, source: str = "<config>", base_dir: Path | None = None) -> Config:
    return parse_model(Config, text, source, {"base_dir": base_dir})


def load(path: Path | str) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [Problem(1, "", f"cannot read config: {exc}")]) from exc
    return parse(text, str(path), path.resolve().parent)
