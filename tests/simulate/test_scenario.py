"""Scenario files: the shipped ones load; mistakes come out as file:line: key.path: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.config import ConfigError, load, parse
from failover.simulate import load_scenario
from failover.simulate.scenario import AddEvent, FaultEvent
from tests.simulate.fixtures import CONFIG, FLEET, SCENARIOS, scenario, small_config

SHIPPED = ["single-dns-outage.yaml", "flapping.yaml", "december-11.yaml", "new-cluster.yaml"]


def errors(text: str, config_text: str = CONFIG) -> list[str]:
    with pytest.raises(ConfigError) as info:
        scenario(text, parse(config_text, "small.yaml"))
    return str(info.value).splitlines()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_load_on_the_fleet(name: str) -> None:
    """Every scenario in scenarios/ validates against scenarios/fleet.yaml."""
    loaded = load_scenario(SCENARIOS / name, load(FLEET))
    assert loaded.events
    assert loaded.duration > 0


def test_durations_events_and_additions_parse() -> None:
    """Durations take the config's forms; events become faults or additions."""
    loaded = scenario("""\
        name: x
        duration: 1h
        demand: [{at: 0s, rps: 10}, {at: 90s, rps: 20}]
        load: {cold_factor: 0.5, warmup: 2m}
        events:
          - {at: 500ms, cluster: a, dns: timeout}
          - at: 5m
            add: {name: d, weight: 5, checks: [{tcp: "10.4.0.10:80"}]}
          - {at: 6m, cluster: d, http: down}
        """)
    assert loaded.duration == 3600
    assert [p.at for p in loaded.demand] == [0, 90]
    assert loaded.load.warmup == 120
    assert loaded.load.cold_after == 30  # the default
    fault, added, later = loaded.events
    assert isinstance(fault, FaultEvent)
    assert (fault.at, fault.dns) == (0.5, "timeout")
    assert isinstance(added, AddEvent)
    assert added.add.name == "d"
    assert isinstance(later, FaultEvent)
    assert later.label() == "http down"


def test_unknown_cluster_is_located() -> None:
    """An event naming a cluster the config lacks points at that event's line."""
    assert errors("""\
        name: x
        duration: 10m
        events:
          - {at: 1m, cluster: a, dns: timeout}
          - {at: 2m, cluster: nope, dns: timeout}
        """) == ["s.yaml:5: events[1].cluster: unknown cluster 'nope'"]


def test_cluster_used_before_it_is_added_is_unknown() -> None:
    """An added cluster exists only from its event's time on."""
    assert errors("""\
        name: x
        duration: 10m
        events:
          - {at: 1m, cluster: d, dns: timeout}
          - at: 2m
            add: {name: d, weight: 5, checks: [{tcp: "10.4.0.10:80"}]}
        """) == ["s.yaml:4: events[0].cluster: unknown cluster 'd'"]


def test_every_problem_is_reported_with_its_line() -> None:
    """Unknown keys, bad values and bad durations are all reported at once, located."""
    assert errors("""\
        name: x
        duration: soon
        colour: red
        load: {cold_factor: 0}
        events:
          - {at: 1m, cluster: a, dns: sleepy}
        """) == [
        "s.yaml:2: duration: expected a duration like 500ms, 2s or 5m, got 'soon'",
        "s.yaml:4: load.cold_factor: Input should be greater than 0",
        "s.yaml:6: events[0].dns: Input should be 'ok', 'timeout', 'servfail', 'nxdomain', "
        "'refused', 'no_answer', 'unexpected_answer', 'stale' or 'dns_error'",
        "s.yaml:3: colour: unknown key",
    ]


def test_event_shapes_are_checked() -> None:
    """An event needs 'cluster' or 'add', and a fault must change something."""
    assert errors("""\
        name: x
        duration: 10m
        events:
          - {at: 1m, dns: timeout}
          - {at: 2m, cluster: a}
        """) == [
        "s.yaml:4: events[0]: an event needs exactly one of 'cluster' (a fault) or 'add'",
        "s.yaml:5: events[1]: give 'dns', 'http' or both (use 'ok' to lift a fault)",
    ]


def test_event_after_the_end_is_located() -> None:
    """Events must fall before the scenario's duration."""
    assert errors("""\
        name: x
        duration: 10m
        events:
          - {at: 10m, cluster: a, dns: timeout}
        """) == ["s.yaml:4: events[0].at: event at 600s is not before the end of the scenario "
                 "(600s)"]


def test_demand_points_must_increase() -> None:
    """Demand points out of time order are located at the offending point."""
    assert errors("""\
        name: x
        duration: 10m
        demand:
          - {at: 2m, rps: 10}
          - {at: 1m, rps: 20}
        """) == ["s.yaml:5: demand[1].at: demand points must be in increasing 'at' order"]


def test_demand_is_needed_somewhere() -> None:
    """Without demand points and without the config's demand_rps there is nothing to load."""
    without = CONFIG.replace("demand_rps: 1000\n", "")
    assert errors("name: x\nduration: 10m\n", without) == [
        "s.yaml:1: no demand: give 'demand' here or 'demand_rps' in the config"]


def test_added_cluster_must_have_a_new_name() -> None:
    """Adding a cluster under an existing name is an error at its name."""
    assert errors("""\
        name: x
        duration: 10m
        events:
          - at: 1m
            add:
              name: a
              weight: 5
              checks: [{tcp: "10.4.0.10:80"}]
        """) == ["s.yaml:6: events[0].add.name: cluster 'a' already exists at that time"]


def test_added_cluster_must_keep_the_config_valid() -> None:
    """An addition that would break the probe budget is refused where it is written."""
    lines = errors("""\
        name: x
        duration: 10m
        events:
          - at: 1m
            add:
              name: d
              weight: 5
              dns: {server: "10.1.0.53:53", names: [x.local, y.local]}
        """)
    assert len(lines) == 1
    assert lines[0].startswith("s.yaml:5: events[0].add: the config with this cluster is "
                               "invalid: worst case")


def test_yaml_syntax_error_is_located() -> None:
    """Broken YAML reports the line the parser stopped at."""
    assert errors("name: x\nduration: [10m\n")[0].startswith("s.yaml:3: invalid YAML")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing scenario file is reported, not raised as OSError."""
    with pytest.raises(ConfigError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml", small_config())
