"""What the deployment tests share: the repo's paths, the external tools, PromQL name scans.

The tools (promtool, prometheus, docker-compose, haproxy, systemd-analyze, Debian's
python3-jsonschema) are required, not optional: ``scripts/setup --test`` installs them, so a
missing one fails the test that needs it, naming the package.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from failover.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "rules_test.yml"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "failover.json"
COMPOSE_CONFIG = DEPLOY / "failover" / "config.yaml"
HAPROXY_CFG = DEPLOY / "haproxy" / "haproxy.cfg"
UNIT = DEPLOY / "systemd" / "failover.service"
SYSTEMD_CONFIG = DEPLOY / "systemd" / "config.yaml"

SYSTEM_PYTHON = "/usr/bin/python3"
"""Debian's Python, whose python3-jsonschema validates the config schema; not the venv's or
another Python on PATH, which may lack the package."""
TOOL_TIMEOUT = 30.0
"""Seconds any one tool run may take before the test fails (they take well under one)."""

PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "docker-compose": "docker-compose",
    "haproxy": "haproxy",
    "systemd-analyze": "systemd",
    SYSTEM_PYTHON: "python3-jsonschema",
}
"""Debian package that provides each tool, for the failure message."""

T = TypeVar("T")


def tool(name: str) -> str:
    """The tool's path; fails the test (never skips) when it is missing."""
    found = shutil.which(name) or shutil.which(f"/usr/sbin/{name}") or shutil.which(
        f"/usr/bin/{name}")
    if found is None:
        pytest.fail(f"{name} not found: install Debian's {PACKAGES.get(name, name)} "
                    "(scripts/setup --test does)")
    return found


def run(argv: Sequence[str], *, stdin: str | None = None, cwd: Path = REPO,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion with a bounded time; stdout and stderr as text."""
    return subprocess.run([tool(argv[0]), *argv[1:]], input=stdin, capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=TOOL_TIMEOUT, check=False)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll(check: Callable[[], T | None], within: float, what: str, *, every: float = 0.1,
         detail: Callable[[], str] | None = None) -> T:
    """Call ``check`` until it returns something other than None, reading the state of a
    process outside the test; fail after ``within`` seconds, naming ``what`` and adding
    ``detail()`` (the processes' logs, say) as they are then."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            more = f"\n{detail()}" if detail is not None else ""
            pytest.fail(f"{what} did not happen within {within:.0f}s{more}")
        time.sleep(every)  # poll interval against an external process, not a synchronisation


# A metric name: not preceded by a name character or a colon, so recorded series such as
# `instance:failover_cluster_share:sum` contribute the raw name only where it is one.
_METRIC = re.compile(r"(?<![\w:])(failover_[A-Za-z0-9_]+)\b(\s*\{([^}]*)\})?")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


def referenced_metrics(expr: str) -> dict[str, set[str]]:
    """``failover_*`` names in a PromQL expression, each with the label names its selectors
    match on."""
    found: dict[str, set[str]] = {}
    for match in _METRIC.finditer(expr):
        labels = found.setdefault(match.group(1), set())
        if match.group(3):
            labels.update(_MATCHER.findall(match.group(3)))
    return found


def exported_series() -> dict[str, set[str]]:
    """Every series name failover's Metrics can export, with its label names.

    Built from a fresh registry, so a metric with no sample yet (no decision made, nothing
    skipped) counts too. Histograms export ``_bucket`` (with ``le``), ``_sum`` and ``_count``.
    """
    metrics = Metrics(CollectorRegistry())
    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        # prometheus_client has no public accessor for a metric's name, type and labels.
        labels = set(value._labelnames)
        name, kind = value._name, value._type
        if kind == "counter":
            names[f"{name}_total"] = labels
        elif kind == "histogram":
            names[f"{name}_bucket"] = labels | {"le"}
            names[f"{name}_sum"] = labels
            names[f"{name}_count"] = labels
        else:
            names[name] = labels
    return names


TARGET_LABELS = {"job", "instance"}
"""Labels Prometheus adds to every scraped series."""


def unknown_references(expr: str) -> list[str]:
    """What ``expr`` names that failover does not export: metrics, or labels of them."""
    exported = exported_series()
    problems = []
    for name, labels in referenced_metrics(expr).items():
        if name not in exported:
            problems.append(f"metric {name}")
        elif unknown := labels - exported[name] - TARGET_LABELS:
            problems.append(f"{name} labels {sorted(unknown)}")
    return problems


def metric_names_in_text(text: str) -> set[str]:
    """Series names present in a Prometheus text exposition: sampled ones, and those of every
    declared family (``# TYPE``), histograms expanded to their three series."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names
