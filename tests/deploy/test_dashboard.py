"""The Grafana dashboard: sound JSON, the issue's panels, and every query run by a real
Prometheus against a running daemon, on metrics the daemon exports."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.deploy.live import WEIGHTS, Stack
from tests.deploy.tools import (
    DASHBOARD,
    DEPLOY,
    metric_names_in_text,
    poll,
    referenced_metrics,
    unknown_references,
)

GRID_WIDTH = 24
WITHIN = 20.0
"""Seconds for a query to return data: first plan, two scrapes (rate() needs two)."""
VARIABLES = {"$__rate_interval": "1m", "$instance": ".*", "$cluster": ".*"}
"""What Grafana would put in place of the dashboard's variables: every daemon and cluster."""
DATA_ON_A_HEALTHY_LAB = {
    "Share by cluster", "Target share by cluster", "Cluster state", "Health score",
    "Probe latency (p50, p99)", "Probe requests per second", "Frozen", "Plan version", "Build",
    "Applied vs planned version", "Versions behind", "Since last successful apply",
    "Applies by result", "Recoveries", "Cluster rank", "Event loop lag (p50, p99)",
    "Config reloads",
}
"""Panels that must show data for a healthy lab; the rest (failed or skipped probes,
decisions, drift, errors) may rightly be empty."""
_LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _queries() -> list[tuple[str, str, bool]]:
    """(where, expr, must return data) for every panel target and annotation query."""
    found = [(f"panel {p['title']!r} {t['refId']}", t["expr"],
              p["title"] in DATA_ON_A_HEALTHY_LAB) for p in _panels() for t in p["targets"]]
    # Annotations mark rare events (a freeze): empty on a healthy lab.
    found += [(f"annotation {a['name']!r}", a["expr"], False)
              for a in _dashboard()["annotations"]["list"] if "expr" in a]
    return found


def _promql(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


def _provisioned_datasource() -> dict[str, Any]:
    doc = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    [datasource] = doc["datasources"]
    assert isinstance(datasource, dict)
    return datasource


def test_dashboard_is_well_formed() -> None:
    """Unique ids and refIds, panels inside the 24-column grid without overlapping, and every
    query on the provisioned Prometheus datasource."""
    dashboard = _dashboard()
    assert dashboard["uid"] == "failover"
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    uid = _provisioned_datasource()["uid"]
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["description"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
            assert target["expr"].strip()


def test_dashboard_shows_what_the_issue_asks() -> None:
    """Shares, states, probe latency quantiles, decisions, actuator lag, recoveries and
    event-loop lag each have a panel."""
    by_title = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in _panels()}
    wanted = {
        "Share by cluster": ["failover_cluster_share"],
        "Cluster state": ["failover_cluster_state"],
        "Probe latency (p50, p99)": ["histogram_quantile(0.99", "histogram_quantile(0.5",
                                     "failover_probe_duration_seconds_bucket"],
        "Decisions": ["failover_decisions_total"],
        "Applied vs planned version": ["failover_plan_version",
                                       "failover_actuator_applied_plan_version"],
        "Since last successful apply": ["failover_actuator_last_success_timestamp_seconds"],
        "Recoveries": ["failover_recoveries_active", "failover_recoveries_queued"],
        "Event loop lag (p50, p99)": ["failover_event_loop_lag_seconds_bucket"],
    }
    for title, fragments in wanted.items():
        assert title in by_title
        for fragment in fragments:
            assert fragment in by_title[title], (title, fragment)


def test_grafana_provisioning_loads_this_dashboard() -> None:
    """The dashboard provider reads the folder compose mounts the dashboards at, and the
    datasource is compose's Prometheus."""
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/failover.yml").read_text())
    [entry] = provider["providers"]
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == entry["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{entry['options']['path']}/{DASHBOARD.name}"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasource = _provisioned_datasource()
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]


def test_every_metric_the_dashboard_names_is_in_the_daemons_metrics(stack: Stack) -> None:
    """Each failover_* series a query names appears in the running daemon's /metrics, and
    each label it matches on is one failover exports."""
    exposed = metric_names_in_text(stack.daemon_metrics())
    expressions = [expr for _, expr, _ in _queries()] + [
        v["definition"] for v in _dashboard()["templating"]["list"]]
    named = {name for expr in expressions for name in referenced_metrics(expr)}
    assert named, "no metric found: the scan is broken"
    assert named <= exposed, sorted(named - exposed)
    for expr in expressions:
        assert unknown_references(expr) == [], expr


@pytest.mark.parametrize(("where", "expr", "has_data"), _queries(),
                         ids=[where for where, _, _ in _queries()])
def test_query_runs_on_prometheus(stack: Stack, where: str, expr: str, has_data: bool) -> None:
    """Prometheus parses and evaluates the query; panels a healthy lab feeds return data."""

    def answered() -> list[Any] | None:
        stack.check_running()
        doc = stack.query(_promql(expr))
        assert doc["status"] == "success", f"{where}: {doc.get('error')}"
        result: list[Any] = doc["data"]["result"]
        return None if has_data and not result else result

    poll(answered, WITHIN, f"{where} returning data", detail=stack.logs)


def test_state_panel_encodes_each_clusters_state(stack: Stack) -> None:
    """The state timeline's query gives one series per cluster, valued as its state's code,
    which the panel's value mapping names: passing clusters read healthy or degraded."""
    [panel] = [p for p in _panels() if p["title"] == "Cluster state"]
    names = {int(code): m["text"] for code, m in panel["fieldConfig"]["defaults"]["mappings"][0]
             ["options"].items()}
    assert sorted(names.values()) == sorted(
        ["unknown", "healthy", "degraded", "waiting", "recovering", "unhealthy", "drained"])

    def passing() -> dict[str, str] | None:
        doc = stack.query(_promql(panel["targets"][0]["expr"]))
        states = {r["metric"]["cluster"]: names[int(float(r["value"][1]))]
                  for r in doc["data"]["result"]}
        ok = len(states) == len(WEIGHTS) and set(states.values()) <= {"healthy", "degraded"}
        return states if ok else None

    states = poll(passing, WITHIN, "every cluster passing in the state panel",
                  detail=stack.logs)
    assert set(states) == set(WEIGHTS)


def test_variables_find_the_daemon_and_its_clusters(stack: Stack) -> None:
    """The instance and cluster variables' label_values() queries list the running daemon
    and lab-1..3."""
    values = {}
    for variable in _dashboard()["templating"]["list"]:
        match = _LABEL_VALUES.match(variable["definition"])
        assert match, variable["definition"]
        selector, label = _promql(match.group(1)), match.group(2)

        def listed(selector: str = selector, label: str = label) -> list[str] | None:
            doc = stack.api(f"/api/v1/label/{label}/values", **{"match[]": selector})
            assert doc["status"] == "success", doc
            found: list[str] = doc["data"]
            return found or None

        values[variable["name"]] = poll(listed, WITHIN, f"values of ${variable['name']}",
                                        detail=stack.logs)
    assert values["instance"] == [stack.daemon_url.removeprefix("http://")]
    assert values["cluster"] == sorted(WEIGHTS)
