"""docker-compose.yml: a real compose implementation accepts it, and the configs it mounts fit
together (the daemon's targets are the services, each mounted file is the one tested)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover.cli import main
from failover.config import HttpCheck, load
from failover.config.actuators import HaproxyActuator
from tests.deploy.tools import COMPOSE_CONFIG, HAPROXY_CFG, PROMETHEUS_YML, REPO, run

SERVICES = {"failover", "lab", "haproxy", "prometheus", "grafana"}
IMAGE_CONFIG = "/etc/failover/config.yaml"
"""Where the Dockerfile's entrypoint reads the config."""


@functools.cache
def _normalized() -> dict[str, Any]:
    """The file as `docker-compose config` resolves it: anchors merged, paths absolute."""
    # Unset, so the result neither depends on nor prints secrets this shell may hold.
    env = {k: v for k, v in os.environ.items()
           if k not in ("FAILOVER_ADMIN_TOKEN", "GRAFANA_ADMIN_PASSWORD")}
    result = run(["docker-compose", "-f", "docker-compose.yml", "config"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    doc: dict[str, Any] = yaml.safe_load(result.stdout)
    return doc


def _binds(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    binds = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("/"):
            binds[target] = Path(source)
    return binds


def test_compose_accepts_the_file() -> None:
    """`docker-compose config` validates the file and lists the five services."""
    assert set(_normalized()["services"]) == SERVICES


def test_every_bind_mount_is_a_file_in_the_repo() -> None:
    """Each mounted config exists under the repo, read-only: the files the other tests check."""
    for name, service in _normalized()["services"].items():
        for volume in service.get("volumes", []):
            source, _, mode = volume.split(":")
            if source.startswith("/"):
                assert Path(source).is_relative_to(REPO), (name, volume)
                assert Path(source).exists(), (name, volume)
                assert mode == "ro", (name, volume)


def test_ports_are_published_on_loopback_only() -> None:
    """Nothing is reachable from other hosts; HAProxy's runtime API is not published at all."""
    services = _normalized()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert not any(str(p).split(":")[-1].startswith("9999") for p in
                   services["haproxy"].get("ports", []))


def test_daemon_and_lab_run_from_the_repos_image() -> None:
    """Both build the repo's Dockerfile into one image; the daemon reads the mounted config,
    the lab binds every interface."""
    services = _normalized()["services"]
    for name in ("failover", "lab"):
        assert services[name]["build"]["context"] == str(REPO), name
        assert services[name]["image"] == services["failover"]["image"]
    assert _binds(services["failover"])[IMAGE_CONFIG] == COMPOSE_CONFIG
    lab = services["lab"]["entrypoint"]
    assert lab[:2] == ["failover", "lab"]
    assert lab[lab.index("--host") + 1] == "0.0.0.0"


def test_daemon_config_targets_the_compose_services() -> None:
    """The config probes the lab service, steers the haproxy service through the runtime API
    its haproxy.cfg opens, and listens where Prometheus scrapes."""
    config = load(COMPOSE_CONFIG)
    services = _normalized()["services"]
    for cluster in config.clusters:
        assert cluster.dns is not None
        assert cluster.dns.server.host == "lab"
    [haproxy] = [a for a in config.actuators if isinstance(a, HaproxyActuator)]
    assert haproxy.address is not None
    host, port = haproxy.address.host, str(haproxy.address.port)
    assert host == "haproxy"
    assert _binds(services["haproxy"])["/usr/local/etc/haproxy/haproxy.cfg"] == HAPROXY_CFG
    cfg = HAPROXY_CFG.read_text()
    assert f"stats socket ipv4@0.0.0.0:{port} level admin" in cfg
    # Every mapped server exists in the backend, pointing at its cluster's HTTP service.
    checks = {c.name: next(ch.http for ch in c.checks if isinstance(ch, HttpCheck))
              for c in config.clusters}
    assert f"backend {haproxy.backend}" in cfg
    for cluster, server in haproxy.servers.items():
        address = checks[cluster].removeprefix("http://").split("/")[0]
        assert f"server {server} {address} " in cfg, (cluster, server)
    status_port = str(config.listen.status.port)
    assert config.listen.status.host == "0.0.0.0", "Prometheus scrapes from another container"
    scrape = yaml.safe_load(PROMETHEUS_YML.read_text())["scrape_configs"]
    [job] = [j for j in scrape if j["job_name"] == "failover"]
    assert job["static_configs"][0]["targets"] == [f"failover:{status_port}"]


def test_prometheus_loads_the_mounted_rules() -> None:
    """prometheus.yml's rule file resolves, in the container, to the mounted rules.yml."""
    prometheus = _normalized()["services"]["prometheus"]
    binds = _binds(prometheus)
    assert binds["/etc/prometheus/prometheus.yml"] == PROMETHEUS_YML
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    for name in yaml.safe_load(PROMETHEUS_YML.read_text())["rule_files"]:
        assert binds[f"/etc/prometheus/{name}"] == PROMETHEUS_YML.parent / name


def test_haproxy_accepts_its_config() -> None:
    """`haproxy -c` passes; its only warnings are about the lab's name, which resolves only
    on the compose network (init-addr none starts without it)."""
    result = run(["haproxy", "-c", "-f", str(HAPROXY_CFG)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Configuration file is valid" in output
    warnings = [line for line in output.splitlines() if "[WARNING]" in line]
    assert warnings
    assert all("could not resolve address 'lab'" in line for line in warnings), warnings


def test_failover_accepts_the_deploy_configs(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`failover check` passes on the compose config and the systemd starting point. Their
    token files exist only where they run (a systemd credential, a container secret): the
    token comes from the environment here, as it may there."""
    monkeypatch.setenv("FAILOVER_ADMIN_TOKEN", "checked-elsewhere")
    for path in (COMPOSE_CONFIG, REPO / "deploy/systemd/config.yaml"):
        assert main(["check", "-c", str(path)]) == 0, capsys.readouterr().err
        assert f"{path}: ok" in capsys.readouterr().out
