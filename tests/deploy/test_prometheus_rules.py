"""deploy/prometheus: promtool accepts the config and the rules, the rules' unit tests pass,
and every rule is tested and names only what failover exports."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.tools import (
    PROMETHEUS_YML,
    REPO,
    RULES,
    RULES_TEST,
    run,
    unknown_references,
)

SEVERITIES = {"warning", "critical"}


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_config_and_its_rule_files() -> None:
    """`promtool check config` passes, and finds the rule file the config names."""
    result = run(["promtool", "check", "config", str(PROMETHEUS_YML)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` passes and counts every rule."""
    result = run(["promtool", "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_rules_unit_tests_pass() -> None:
    """`promtool test rules` runs rules_test.yml without a failure."""
    result = run(["promtool", "test", "rules", str(RULES_TEST)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_has_a_unit_test() -> None:
    """Each alert appears in an alert_rule_test, and each recorded series in a
    promql_expr_test."""
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    alerts_tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])}
    exprs_tested = {case["expr"] for t in tests for case in t.get("promql_expr_test", [])}
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    assert alerts <= alerts_tested, sorted(alerts - alerts_tested)
    assert recorded <= exprs_tested, sorted(recorded - exprs_tested)


def test_every_alert_says_how_bad_and_what() -> None:
    """Each alert has a severity the docs define, a summary, a description, and a section of
    docs/production.md naming it."""
    docs = (REPO / "docs/production.md").read_text()
    for rule in _rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        assert f"`{rule['alert']}`" in docs, f"{rule['alert']} is not in docs/production.md"


def test_rules_name_only_exported_metrics_and_labels() -> None:
    """Every failover_* series and label the rules match on is one failover's Metrics
    exports."""
    for rule in _rules():
        assert unknown_references(rule["expr"]) == [], rule.get("alert") or rule.get("record")
