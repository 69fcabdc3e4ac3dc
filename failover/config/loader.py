"""YAML to a validated Config, with every error reported as ``file:line: key.path: message``."""

from __future__ import annotations

import reprlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from failover.config.base import dotted
from failover.config.files import CONFIG_LIMIT, FileProblem, read_limited
from failover.config.models import Config

M = TypeVar("M", bound=BaseModel)

PathKey = tuple[str | int, ...]

MAX_DEPTH = 32
"""Levels of nesting, aliases expanded. A config needs 6; PyYAML composes recursively, so
without a bound a deeply nested file ended in RecursionError instead of a ConfigError."""
MAX_VALUES = 100_000
"""Values (scalars, lists, mappings) once aliases are expanded; a config with hundreds of
clusters holds a few thousand. Aliases are shared when constructed, so a "billion laughs"
costs nothing to build, but walking and validating it took exponential time and memory."""
MAX_INT_CHARS = 300
"""Longest integer, in characters. Every number in a config ends up a float (at most about
1e308), so no meaningful integer is longer; longer ones made ``int()`` raise ValueError (past
4300 digits) and, past 1e308, the duration parser raise OverflowError: both escaped as
something other than a ConfigError. Shorter ones in hex, binary or base 60 can still pass
1e308 and are checked by value."""


def _mark(mark: Any) -> yaml.Mark | None:
    """libyaml's marks as PyYAML's own (line and column are what errors use)."""
    if mark is None or isinstance(mark, yaml.Mark):
        return mark
    return yaml.Mark(mark.name, mark.index, mark.line, mark.column, None, 0)


class _Bounds(yaml.composer.Composer, yaml.constructor.SafeConstructor):
    """Composing and constructing that refuse, as a located YAML error, input whose cost is
    out of proportion to its size: deep nesting, alias expansion beyond MAX_VALUES, an alias
    inside its own anchor (a cycle: endless recursion later) and integers longer than
    MAX_INT_CHARS; and scalars the constructors cannot read."""

    def _start_bounds(self) -> None:
        self._depth = 0
        self._shape: dict[int, tuple[int, int]] = {}
        """id(node) -> (values, height) with aliases expanded; set when the node is complete."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[attr-defined]  # the parser's
        mark = _mark(event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            anchored = self.anchors.get(event.anchor)
            if anchored is not None and id(anchored) not in self._shape:
                raise ComposerError(None, None, f"alias *{event.anchor} is inside its own "
                                    "anchor (a cycle)", mark)
            return super().compose_node(parent, index)  # the anchored node, already counted
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:  # not reached: only an alias composes to anything but a new node
            return None
        children: list[yaml.Node] = (
            [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode)
            else list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        shapes = [self._shape[id(child)] for child in children]
        values = 1 + sum(count for count, _ in shapes)
        height = 1 + max((levels for _, levels in shapes), default=0)
        if height > MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels once "
                                "aliases are expanded", _mark(node.start_mark))
        if values > MAX_VALUES:
            raise ComposerError(None, None, f"more than {MAX_VALUES} values once aliases "
                                "are expanded", _mark(node.start_mark))
        self._shape[id(node)] = (values, height)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return super().construct_object(node, deep)
        try:
            return super().construct_object(node, deep)
        except (ValueError, LookupError, AttributeError, ArithmeticError) as exc:
            # PyYAML's scalar constructors trust their regexes and leak Python's errors when
            # a value matches but is impossible (`2001-13-01`, a +99:00 offset) or an explicit
            # tag is given a wrong value (`!!int abc`, `!!bool x`, an empty `!!float`).
            kind = node.tag.removeprefix("tag:yaml.org,2002:")
            raise ConstructorError(None, None, f"cannot read {reprlib.repr(node.value)} as "
                                   f"{kind}: {exc}", _mark(node.start_mark)) from exc

    def construct_bounded_int(self, node: yaml.ScalarNode) -> int:
        """An integer that fits a float, or a located error; its text is bounded first, so
        the conversion never costs more than a few hundred digits."""
        if len(node.value) > MAX_INT_CHARS:
            raise ConstructorError(None, None, f"integer of {len(node.value)} characters is "
                                   "too large for a number", _mark(node.start_mark))
        value = self.construct_yaml_int(node)
        if abs(value) > sys.float_info.max:
            raise ConstructorError(None, None, "integer too large for a number",
                                   _mark(node.start_mark))
        return value


class _SlowLoader(_Bounds, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                  yaml.resolver.Resolver):
    """The pure-Python scanner and parser, where PyYAML was built without libyaml."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._start_bounds()

    def dispose(self) -> None:
        pass


# The stubs bound a constructor's loader to PyYAML's own Loader classes.
_SlowLoader.add_constructor("tag:yaml.org,2002:int",
                            _SlowLoader.construct_bounded_int)  # type: ignore[type-var]
_BoundedLoader: type[_SlowLoader] = _SlowLoader
if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastLoader(_Bounds, CParser, yaml.resolver.Resolver):
        """libyaml's scanner and parser (PyYAML's wheels and Debian's carry it): 20 to 50
        times faster than the pure-Python ones, where a large config spent most of its
        load. Composing stays in Python (`_Bounds` comes first), so the bounds hold."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._start_bounds()

    _FastLoader.add_constructor("tag:yaml.org,2002:int",
                                _FastLoader.construct_bounded_int)  # type: ignore[type-var]
    _BoundedLoader = _FastLoader  # type: ignore[assignment]  # the same calls, in C


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
                    key_node.start_mark.line + 1, dotted((*path, key)), "duplicate key")])
            seen.add(key)
            _walk(value_node, (*path, key), lines, source)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, source)


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
        # A tag can also be a key (an http check's tag is its `http` key): on a tie, the
        # path that reaches the key the error is about wins.
        if len(below) > len(best) or (len(below) == len(best) and (
                below[-1:] == loc[-1:] or best[-1:] != loc[-1:])):
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
    lines: dict[PathKey, int] = {}
    try:
        loader = _BoundedLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                # Before constructing: merge keys (`<<: *defaults`) are resolved by rewriting
                # the nodes in place, merged keys first, so walked afterwards a key overriding
                # a merged one looked like a duplicate. Walked here, duplicates are keys written
                # twice in one mapping; a merged key's line is that of the mapping merging it.
                _walk(node, (), lines, source)
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
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"]) + tuple(error.get("ctx", {}).get("at", ()))
            path = _data_path(data, loc)
            if error["type"] in ("extra_forbidden", "missing") and loc and loc[-1] not in path:
                path = (*path, loc[-1])
            problems.append(Problem(_line_for(path, lines), dotted(path), error_message(error)))
        raise ConfigError(source, problems) from exc


def parse(text: str, source: str = "<config>", base_dir: Path | None = None) -> Config:
    return parse_model(Config, text, source, {"base_dir": base_dir})


def load(path: Path | str) -> Config:
    path = Path(path)
    try:
        text = read_limited(path, CONFIG_LIMIT).decode("utf-8")
    except FileProblem as exc:
        raise ConfigError(str(path), [Problem(1, "", f"cannot read config: {exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [Problem(1, "", f"cannot read config: {exc}")]) from exc
    return parse(text, str(path), path.resolve().parent)
