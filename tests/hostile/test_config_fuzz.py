"""Hostile config files: whatever the text, the loader returns a Config or raises a
ConfigError whose every problem has a line and a message; never another exception, never a
hang, never memory out of proportion to the file."""

from __future__ import annotations

import copy
import re
import textwrap
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover.config import Config, ConfigError, load, parse
from failover.config.loader import MAX_DEPTH, MAX_VALUES

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
EXAMPLE_TEXT = (CONFIG_DIR / "example.yaml").read_text()
EXAMPLE: dict[str, Any] = yaml.safe_load(EXAMPLE_TEXT)

MINIMAL = """\
clusters:
  - name: a
    weight: 1
    checks:
      - tcp: 127.0.0.1:8101
"""

QUICK = 1.0
"""Seconds any one hostile file may take to be refused (they take milliseconds)."""

FUZZ = settings(max_examples=150, deadline=1000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
"""A deadline of 1 s per file: far above what a file takes, far below a hang."""


def outcome(text: str) -> Config | ConfigError:
    """The loader's verdict on ``text``; fails the test on anything but the two allowed."""
    try:
        return parse(text, "fuzz.yaml", CONFIG_DIR)
    except ConfigError as exc:
        error = exc
    assert_located(error, text)
    return error


def assert_located(error: ConfigError, text: str) -> None:
    """Every problem has a message and a line of ``text`` (or the one just past its end)."""
    # splitlines() breaks on every YAML line break (\r, \x85, \u2028 ...) and a few more.
    last_line = len(text.splitlines()) + 2
    assert error.problems, "a ConfigError lists its problems"
    for problem in error.problems:
        assert 1 <= problem.line <= last_line, (problem, str(error))
        assert problem.message.strip(), problem


def refused(text: str) -> ConfigError:
    started = time.monotonic()
    verdict = outcome(text)
    assert time.monotonic() - started < QUICK
    assert isinstance(verdict, ConfigError), "expected the file to be refused"
    return verdict


# --- Strategies ---------------------------------------------------------------------------

KEYS = ["listen", "status", "admin", "state_dir", "probing", "interval", "timeout", "jitter",
        "budget", "policy", "clusters", "name", "weight", "dns", "server", "names", "checks",
        "http", "tcp", "expect", "expect_status", "expect_body", "actuators", "type", "path",
        "<<", "=", "vantage", "recovery", "tsig", "secret_file", "addresses", "servers"]

keys = st.sampled_from(KEYS) | st.text(max_size=12) | st.integers() | st.booleans() | st.none()

scalars = (
    st.none() | st.booleans()
    | st.integers() | st.integers(min_value=2**1000, max_value=2**1400)  # past float range
    | st.floats()
    | st.text(max_size=64)
    | st.text(alphabet="ab-.!", min_size=20, max_size=60)  # host-like, for backtracking
    | st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{1,12})?(ms|s|m|h)?\Z")  # duration-shaped
    | st.sampled_from(["127.0.0.1:1", "[::1]:53", "http://127.0.0.1:1/", ".inf", "-1s", "0"])
    | st.binary(max_size=16) | st.dates() | st.datetimes()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def places(data: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in ``data``, each container once: sharing may have
    made the data a graph, cycles included."""
    found: list[tuple[Any, Any]] = []
    pending, seen = [data], {id(data)}
    while pending:
        node = pending.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            found.append((node, key))
            if isinstance(value, dict | list) and id(value) not in seen:
                seen.add(id(value))
                pending.append(value)
    return found


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    """config/example.yaml with a few values replaced, keys added or removed, or subtrees
    shared (dumped as anchors and aliases), then dumped back to YAML."""
    data = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        container, key = draw(st.sampled_from(places(data)))
        operation = draw(st.sampled_from(["replace", "add", "remove", "share"]))
        if operation == "replace":
            container[key] = draw(values)
        elif operation == "add" and isinstance(container, dict):
            container[draw(keys)] = draw(values)
        elif operation == "remove":
            del container[key]
        elif operation == "share":
            other, other_key = draw(st.sampled_from(places(data)))
            if other is not container or other_key != key:
                # One object in two places: an anchor and an alias; a cycle when it holds
                # the container.
                container[key] = other[other_key]
        if not data:
            break
    return yaml.safe_dump(data, default_flow_style=draw(st.sampled_from([False, True, None])),
                          sort_keys=draw(st.booleans()), allow_unicode=draw(st.booleans()))


@st.composite
def with_duplicate_key(draw: st.DrawFn) -> str:
    """The example with one ``key:`` line written twice in its mapping."""
    lines = EXAMPLE_TEXT.splitlines()
    keyed = [i for i, line in enumerate(lines) if re.match(r"^\s*(- )?[a-z_]+:", line)]
    index = draw(st.sampled_from(keyed))
    line = lines[index].replace("- ", "  ", 1)
    return "\n".join([*lines[:index + 1], line, *lines[index + 1:]]) + "\n"


TOKENS = [
    "clusters:", "name:", "weight:", "checks:", "tcp:", "http:", "dns:", "probing:", "interval:",
    " ", "  ", "\n", "\n  ", "- ", ": ", "[", "]", "{", "}", ",", "? ", "|", ">", "'", '"', "#",
    "&a ", "*a", "&b ", "*b", "<<: ", "!!binary ", "!!int ", "!!float ", "!!timestamp ",
    "!!python/object:os.system ", "!!set ", "!!omap ", "!x ", "---", "...", "%YAML 1.1\n",
    "1", "-1", "0x1f", "1:30", ".inf", ".nan", "2001-13-01", "1e400", "500ms", "127.0.0.1:1",
    "\t", "\r", "\x00", "\x85", "\ufeff", "\\", "é", "~", "null", "yes",
]
yamlish = st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=60).map("".join)
yamlish_value = (
    st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=6).map("".join)
    | st.sampled_from(["2001-13-01", "2001-12-14 21:59:43 +99:00", "!!int x", "!!float",
                       "!!bool maybe", "9" * 400, "0x" + "f" * 300, ".nan", ".inf", "*nowhere"])
)


@st.composite
def rewritten_example(draw: st.DrawFn) -> str:
    """config/example.yaml with the values of a few ``key: value`` lines rewritten as
    YAML-ish text: values no dumper writes (``2001-13-01``, ``!!int x``, ``&a``, ``*a``)."""
    lines = EXAMPLE_TEXT.splitlines()
    valued = [i for i, line in enumerate(lines) if re.match(r"^\s*(- )?[a-z_]+: \S", line)]
    for index in draw(st.lists(st.sampled_from(valued), min_size=1, max_size=3)):
        key = lines[index].split(":", 1)[0]
        lines[index] = f"{key}: {draw(yamlish_value)}"
    return "\n".join(lines) + "\n"


# --- Fuzzing ------------------------------------------------------------------------------


def test_the_example_loads() -> None:
    """The unmutated starting point is a valid config, so mutations test what they change."""
    assert isinstance(outcome(EXAMPLE_TEXT), Config)
    assert isinstance(outcome(yaml.safe_dump(EXAMPLE)), Config)


@FUZZ
@given(mutated_example())
def test_mutated_example_loads_or_is_refused_with_located_problems(text: str) -> None:
    """Random values, keys and aliases anywhere in a valid config: a Config or a ConfigError."""
    outcome(text)


@FUZZ
@given(rewritten_example())
def test_rewritten_example_loads_or_is_refused_with_located_problems(text: str) -> None:
    """Values of a valid config rewritten as odd YAML: a Config or a located ConfigError."""
    outcome(text)


@FUZZ
@given(with_duplicate_key())
def test_duplicate_keys_are_refused_at_the_repeat(text: str) -> None:
    """A key written twice in one mapping is refused, at the line of the second."""
    error = refused(text)
    [problem] = error.problems
    assert problem.message == "duplicate key"


@FUZZ
@given(yamlish)
def test_yamlish_text_loads_or_is_refused(text: str) -> None:
    """Fragments of YAML syntax, tags, anchors and odd characters in any order."""
    outcome(text)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_loads_or_is_refused(text: str) -> None:
    """Any text at all."""
    outcome(text)


@FUZZ
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=len(MINIMAL)))
def test_binary_junk_in_a_valid_file_is_refused(tmp_path_factory: pytest.TempPathFactory,
                                                junk: bytes, at: int) -> None:
    """Bytes spliced into a valid file: unreadable as UTF-8, or read and judged; refused or
    loaded, never anything else."""
    raw = MINIMAL.encode()
    spliced = raw[:at] + junk + raw[at:]
    path = tmp_path_factory.mktemp("junk") / "c.yaml"
    path.write_bytes(spliced)
    try:
        load(path)
    except ConfigError as exc:
        error: ConfigError | None = exc
    else:
        error = None
    if error is not None:
        assert_located(error, spliced.decode(errors="replace"))
    outcome(spliced.decode("latin-1"))


# --- Aliases ------------------------------------------------------------------------------


def laughs(levels: int, *, merge: bool = False) -> str:
    """The billion laughs: each level is nine aliases of the one before (9**levels leaves)."""
    if merge:
        lines = ["l0: &l0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol}"]
        lines += [f"l{i}: &l{i} {{<<: [{', '.join([f'*l{i - 1}'] * 9)}]}}"
                  for i in range(1, levels)]
    else:
        lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return MINIMAL + "\n".join(lines) + f"\nbomb: *l{levels - 1}\n"


@pytest.mark.parametrize("merge", [False, True], ids=["lists", "merge-keys"])
def test_billion_laughs_is_refused_quickly_in_little_memory(merge: bool) -> None:
    """Nine levels of nine aliases (387 million values) are refused before being expanded."""
    tracemalloc.start()
    try:
        error = refused(laughs(9, merge=merge))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"more than {MAX_VALUES} values once aliases are expanded" in str(error)
    assert peak < 20 * 1024 * 1024, f"peak {peak} bytes"


def test_alias_inside_its_own_anchor_is_refused() -> None:
    """An alias to the node that contains it (a cycle) is refused, not recursed into."""
    for text in ("x: &a [*a]\n", "x: &a {y: *a}\n", "x: &a {<<: *a}\n", "clusters: &a [*a]\n"):
        assert "is inside its own anchor" in str(refused(MINIMAL + text if "clusters" not in text
                                                          else text))


def test_aliases_and_merge_keys_within_bounds_work() -> None:
    """A shared check list and merged settings with an override load as written."""
    config = outcome(textwrap.dedent("""\
        clusters:
          - &a {name: a, weight: 1, checks: &checks [{tcp: "127.0.0.1:8101"}]}
          - <<: *a
            name: b
            weight: 3
          - {name: c, weight: 1, checks: *checks}
        """))
    assert isinstance(config, Config), config
    assert [(c.name, c.weight, len(c.checks)) for c in config.clusters] == [
        ("a", 1, 1), ("b", 3, 1), ("c", 1, 1)]


# --- Sizes and numbers --------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    MINIMAL + "x: " + "[" * 100_000 + "\n",
    MINIMAL + "x: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
    MINIMAL + "".join(" " * i + f"k{i}:\n" for i in range(2000)),
], ids=["flow-lists", "flow-mappings", "block-mappings"])
def test_deep_nesting_is_refused_with_its_line(text: str) -> None:
    """Nesting far deeper than any config is refused as such, not with a RecursionError:
    by our bound, or by libyaml's own (it stops a flow 1,000 levels deep) when PyYAML has
    it, on a line of the nesting (which starts on line 6)."""
    error = refused(text)
    assert f"nested deeper than {MAX_DEPTH} levels" in str(error) \
        or "invalid YAML: exceeded maximum nesting depth" in str(error)
    assert all(p.line >= 6 for p in error.problems)


@pytest.mark.parametrize("value", [
    "9" * 400, "9" * 5000, "-" + "9" * 400, "0x" + "f" * 400, "0b" + "1" * 2000,
    str(2**1030), "1" + ":59" * 200,
], ids=["400-digits", "5000-digits", "negative", "hex", "binary", "past-float", "sexagesimal"])
@pytest.mark.parametrize("where", [
    "probing: {{interval: {}}}", "probing: {{rise: {}}}", "demand_rps: {}",
    "probing: {{budget: {{max_in_flight: {}}}}}",
])
def test_huge_integers_are_refused(value: str, where: str) -> None:
    """Integers beyond any float, wherever they are, are refused with their line."""
    error = refused(MINIMAL + where.format(value) + "\n")
    assert [p.line for p in error.problems] == [6]
    assert "too large for a number" in str(error)


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf", "1.0e+400", "'1e999s'",
                                   "'" + "9" * 400 + "h'"])
@pytest.mark.parametrize("key", ["interval", "timeout"])
def test_nan_and_infinite_durations_are_refused(key: str, value: str) -> None:
    """A duration that is NaN or infinite, as a number or a string, is a located error."""
    error = refused(MINIMAL + f"probing: {{{key}: {value}}}\n")
    assert any(p.path == f"probing.{key}" and p.line == 6 for p in error.problems), str(error)


@pytest.mark.parametrize("value", [
    "2001-13-01", "2001-02-30", "0000-01-01", "2001-12-14t99:59:43", "2001-12-14 21:59:43 +99:00",
    "!!int abc", "!!int", "!!int 0x", "!!float abc", "!!float", "!!float 1:a",
    "!!bool maybe", "!!timestamp soon", "!!binary '###'", "!!python/object:os.system {}",
])
def test_impossible_or_mistagged_scalars_are_refused(value: str) -> None:
    """Scalars YAML recognises but cannot make (month 13, ``!!int abc``) are located errors."""
    error = refused(MINIMAL + f"state_dir: {value}\n")
    assert [p.line for p in error.problems] == [6], str(error)


LONG = "a" * 1_000_000


@pytest.mark.parametrize("cluster", [
    f"{{name: {LONG}, weight: 1, checks: [{{tcp: '127.0.0.1:1'}}]}}",
    f"{{name: c, weight: 1, checks: [{{tcp: '{LONG}:1'}}]}}",
    f"{{name: c, weight: 1, checks: [{{http: 'http://{LONG}/'}}]}}",
    f"{{name: c, weight: 1, dns: {{server: '127.0.0.1:53', names: [{LONG}]}}}}",
    f"{{name: c, weight: 1, checks: [{{tcp: '127.0.0.1:1'}}], {LONG}: 1}}",
], ids=["name", "host", "url", "dns-name", "key"])
def test_very_long_strings_are_refused_quickly(cluster: str) -> None:
    """A megabyte-long name, host, URL, DNS name or key is refused in time."""
    refused(f"clusters: [{cluster}]\n")


def test_binary_file_is_refused(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is refused with line 1, not a UnicodeDecodeError."""
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert [p.line for p in info.value.problems] == [1]


# --- Found by fuzzing, fixed in the models and address checks -----------------------------


def test_long_bad_host_is_refused_quickly() -> None:
    """A 24-letter host name ending in a bad character is refused in well under a second."""
    refused(MINIMAL.replace("127.0.0.1:8101", "a" * 24 + "!:80"))


def test_tiny_interval_with_large_jitter_is_refused() -> None:
    """An interval of 5e-324 s with jitter 0.9 is refused, not a ZeroDivisionError."""
    refused(MINIMAL + "probing: {interval: 5.0e-324, timeout: 5.0e-324, jitter: 0.9}\n")


@pytest.mark.parametrize("line", [
    "demand_rps: .inf", "probing: {budget: {per_target_per_second: .inf}}",
])
def test_infinite_rates_are_refused(line: str) -> None:
    """An infinite demand or budget is no number an operator means: refused."""
    refused(MINIMAL + line + "\n")


def test_infinite_weight_is_refused() -> None:
    """An infinite cluster weight (shares would be inf/inf) is refused."""
    refused(MINIMAL.replace("weight: 1", "weight: .inf"))
