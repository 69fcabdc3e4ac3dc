"""The registered clusters on disk: read back as they were sent, and a file that cannot be is
reported at start with nothing in it changed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from failover.config import load
from failover.daemon import Daemon
from failover.daemon.supervisor import StartupError
from failover.registry import RegistrationRefused, Registry, RegistryUnreadable, cluster_from_body

BODY = {"weight": 5, "checks": [{"tcp": "127.0.0.1:8109"}]}


async def test_registrations_are_read_back_as_sent(tmp_path: Path) -> None:
    saved = Registry(tmp_path)
    saved.put(cluster_from_body("new-1", BODY), BODY)
    assert await saved.save()
    again = Registry(tmp_path)
    again.load()
    assert again.clusters == saved.clusters
    assert again.bodies == {"new-1": {**BODY, "name": "new-1"}}


def test_no_file_is_nothing_registered(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.load()
    assert registry.clusters == {}


@pytest.mark.parametrize("content", [
    b"{not json", b'{"format": 9, "clusters": {}}', b'{"format": 1, "clusters": []}',
    b'{"format": 1, "clusters": {"x": {"weight": -1}}}',
])
def test_an_unreadable_registry_stops_the_start_and_is_left_alone(
        tmp_path: Path, content: bytes) -> None:
    (tmp_path / "clusters.json").write_bytes(content)
    with pytest.raises(RegistryUnreadable,
                       match=r"clusters\.json: the registered clusters cannot be"):
        Registry(tmp_path).load()
    assert (tmp_path / "clusters.json").read_bytes() == content


@pytest.mark.parametrize(("body", "message"), [
    ([], "body must be a JSON object"),
    ({**BODY, "name": "other"}, "name 'other' in the body is not 'new-1'"),
    ({**BODY, "weight": "heavy"}, "weight: "),
    ({"weight": 1, "checks": [{"tcp": "127.0.0.1:8109"}], "colour": "red"}, "colour: unknown key"),
])
def test_a_bad_body_is_a_400_naming_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(RegistrationRefused) as info:
        cluster_from_body("new-1", body)
    assert info.value.status == 400
    assert message in str(info.value)


async def test_registered_clusters_that_no_longer_fit_the_file_stop_the_start(
        tmp_path: Path) -> None:
    """The file gained a cluster of the registered one's name while the daemon was down."""
    config = tmp_path / "c.yaml"
    config.write_text(textwrap.dedent("""\
        state_dir: state
        clusters:
          - {name: a, weight: 1, checks: [{tcp: "127.0.0.1:8101"}]}
          - {name: new-1, weight: 1, checks: [{tcp: "127.0.0.1:8102"}]}
        """))
    registry = Registry(tmp_path / "state")
    (tmp_path / "state").mkdir()
    registry.put(cluster_from_body("new-1", BODY), BODY)
    assert await registry.save()
    with pytest.raises(StartupError) as info:
        Daemon(load(config), config, CollectorRegistry())
    assert "no longer fit the config" in str(info.value)
    assert "duplicate cluster name 'new-1'" in str(info.value)


def distributed_daemon(tmp_path: Path) -> Daemon:
    config = tmp_path / "c.yaml"
    config.write_text(textwrap.dedent("""\
        state_dir: state
        probing: {budget: {per_target_per_second: 2}}
        clusters:
          - {name: a, weight: 1, checks: [{tcp: "127.0.0.1:8101"}]}
        coordination:
          etcd: {endpoints: ["127.0.0.1:9"], prefix: /t}
          vantage: v1
        """))
    return Daemon(load(config), config, CollectorRegistry())


async def test_registrations_from_etcd_are_taken_up_when_they_fit_and_said_once_if_not(
        tmp_path: Path) -> None:
    daemon = distributed_daemon(tmp_path)
    # Four checks of one target at a 2 s interval: over this replica's 2/s budget.
    greedy = {"name": "x", "weight": 1, "checks": [
        {"tcp": "127.0.0.1:8109"}, {"http": "http://127.0.0.1:8109/a"},
        {"http": "http://127.0.0.1:8109/b"}, {"http": "http://127.0.0.1:8109/c"}]}
    for _ in range(3):  # the mirror hands the same keys over at each resync
        daemon._adopt({"x": greedy}, set())
    assert daemon.config.cluster("x") is None
    errors = daemon.metrics.registry.get_sample_value(
        "failover_errors_total", {"where": "etcd_value"})
    assert errors == 1
    fits = {**BODY, "name": "x"}
    daemon._adopt({"x": fits}, set())
    cluster = daemon.config.cluster("x")
    assert cluster is not None
    assert cluster.weight == 5
    # Gone from etcd: kept at weight 0 until the plan gives it nothing, never dropped at once.
    daemon._adopt({}, set())
    cluster = daemon.config.cluster("x")
    assert cluster is not None
    assert cluster.weight == 0
    assert daemon.registry.leaving == {"x"}
