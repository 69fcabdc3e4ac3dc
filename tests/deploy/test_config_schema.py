"""`failover config-schema`: the config's JSON Schema, checked by a real JSON Schema validator
(Debian's python3-jsonschema, which the venv does not have) against the shipped configs."""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
from typing import Any

import pytest
import yaml

from failover.cli import main
from tests.deploy.tools import COMPOSE_CONFIG, REPO, SYSTEM_PYTHON, SYSTEMD_CONFIG, run

SHIPPED = [REPO / "config/example.yaml", REPO / "config/lab.yaml", COMPOSE_CONFIG,
           SYSTEMD_CONFIG]
"""Configs the project ships; the schema must describe each of them."""

# Run by the system's python3, which has the jsonschema package; stdin carries the schema and
# the documents, stdout the verdicts.
_VALIDATE = textwrap.dedent("""\
    import json, sys
    from jsonschema import Draft202012Validator
    job = json.load(sys.stdin)
    Draft202012Validator.check_schema(job["schema"])
    validator = Draft202012Validator(job["schema"])
    json.dump({name: sorted(("/".join(map(str, e.absolute_path)), e.message)
                            for e in validator.iter_errors(doc))
               for name, doc in job["documents"].items()}, sys.stdout)
    """)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    # The command as users run it; capsys is function-scoped, so stdout is caught here.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["config-schema"]) == 0
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


def _validate(schema: dict[str, Any], documents: dict[str, Any]) -> dict[str, list[Any]]:
    result = run([SYSTEM_PYTHON, "-c", _VALIDATE],
                 stdin=json.dumps({"schema": schema, "documents": documents}))
    assert result.returncode == 0, (
        f"{result.stderr}\n{SYSTEM_PYTHON} needs Debian's python3-jsonschema "
        "(scripts/setup --test installs it)")
    verdicts: dict[str, list[Any]] = json.loads(result.stdout)
    return verdicts


def _objects(node: Any) -> list[dict[str, Any]]:
    """Every object schema (one with ``properties``) anywhere in ``node``."""
    if isinstance(node, list):
        return [found for item in node for found in _objects(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if "properties" in node else []
    return found + [f for value in node.values() for f in _objects(value)]


def test_config_schema_prints_the_configs_top_level_keys(schema: dict[str, Any]) -> None:
    """The output is JSON whose top-level properties are CONTRACT's sections, clusters
    required."""
    assert schema["type"] == "object"
    assert {"clusters", "probing", "policy", "actuators", "listen", "state_dir"} <= set(
        schema["properties"])
    assert schema["required"] == ["clusters"]


def test_schema_forbids_unknown_keys_everywhere(schema: dict[str, Any]) -> None:
    """Every object in the schema has additionalProperties false, as the loader rejects
    unknown keys."""
    objects = _objects(schema)
    assert len(objects) > 10
    assert all(o.get("additionalProperties") is False for o in objects), [
        o.get("title") for o in objects if o.get("additionalProperties") is not False]


def test_schema_is_valid_json_schema(schema: dict[str, Any]) -> None:
    """A Draft 2020-12 validator accepts the schema itself."""
    assert _validate(schema, {}) == {}


def test_schema_rejects_what_the_loader_rejects(schema: dict[str, Any]) -> None:
    """An unknown key, a missing cluster list and a wrong type are each reported."""
    verdicts = _validate(schema, {
        "unknown": {"clusters": [], "colour": "blue"},
        "no_clusters": {"listen": {}},
        "bad_weight": {"clusters": [{"name": "a", "weight": "heavy", "checks": []}]},
    })
    assert any("colour" in message for _, message in verdicts["unknown"])
    assert any("'clusters' is a required property" in m for _, m in verdicts["no_clusters"])
    assert [path for path, _ in verdicts["bad_weight"]] == ["clusters/0/weight"]


def test_shipped_configs_use_only_keys_the_schema_declares(schema: dict[str, Any]) -> None:
    """No shipped config has a key the schema lacks (type errors aside: see the next test)."""
    documents = {str(p.relative_to(REPO)): yaml.safe_load(p.read_text()) for p in SHIPPED}
    for name, errors in _validate(schema, documents).items():
        unknown = [e for e in errors if "Additional properties" in e[1]
                   or "is a required property" in e[1]]
        assert unknown == [], name


def test_shipped_configs_validate_against_the_schema(schema: dict[str, Any]) -> None:
    """config/example.yaml and the other shipped configs validate as they are."""
    documents = {str(p.relative_to(REPO)): yaml.safe_load(p.read_text()) for p in SHIPPED}
    assert _validate(schema, documents) == {name: [] for name in documents}


