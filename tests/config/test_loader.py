"""Config loading: shipped configs load; bad input is reported as file:line: path: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from failover.config import ConfigError, load, parse

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """\
clusters:
  - name: a
    weight: 1
    checks:
      - tcp: 127.0.0.1:8101
"""


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(textwrap.dedent(text), "c.yaml")
    return str(info.value).splitlines()


@pytest.mark.parametrize("name", ["example.yaml", "lab.yaml"])
def test_shipped_configs_load(name: str) -> None:
    """The example with every key and the lab config both validate."""
    config = load(ROOT / "config" / name)
    assert config.clusters


def test_example_keeps_contract_values() -> None:
    """Durations in the example parse to seconds and defaults match the CONTRACT shape."""
    config = load(ROOT / "config" / "example.yaml")
    assert config.probing.interval == 2.0
    assert config.probing.timeout == pytest.approx(0.8)
    assert config.policy.recovery.max_cooldown == 600.0
    assert config.state_dir == (ROOT / "config" / "var")


def test_minimal_config_gets_defaults() -> None:
    """A config with only clusters gets every documented default."""
    config = parse(MINIMAL)
    assert config.probing.rise == 2
    assert str(config.listen.status) == "127.0.0.1:9470"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "bogus: 1\n", "c.yaml:6: bogus: unknown key"),
        (MINIMAL.replace("weight: 1", "weight: -1"),
         "c.yaml:3: clusters[0].weight: Input should be greater than or equal to 0"),
        (MINIMAL.replace("weight: 1", "weight: 0"),
         "c.yaml:1: clusters: all cluster weights are 0: at least one must be above 0"),
        (MINIMAL.replace("127.0.0.1:8101", "127.0.0.1:99999"),
         "c.yaml:5: clusters[0].checks[0].tcp: port must be 1-65535 in '127.0.0.1:99999'"),
        (MINIMAL.replace("127.0.0.1:8101", "not an address"),
         "c.yaml:5: clusters[0].checks[0].tcp: expected host:port, got 'not an address'"),
        (MINIMAL + "probing: {interval: fast}\n",
         "c.yaml:6: probing.interval: expected a duration like 500ms, 2s or 5m, got 'fast'"),
        (MINIMAL.replace("- tcp: 127.0.0.1:8101", "- udp: 127.0.0.1:8101"),
         "c.yaml:5: clusters[0].checks[0]: a check needs exactly one of 'http' or 'tcp'"),
        (MINIMAL.replace("    checks:", "    colour: red\n    checks:"),
         "c.yaml:4: clusters[0].colour: unknown key"),
        ("clusters: []\n", "c.yaml:1: clusters: List should have at least 1 item after validation, "
                           "not 0"),
        ("listen: {}\n", "c.yaml:1: clusters: missing required key"),
        (MINIMAL + "probing: {interval: 1s, timeout: 2s}\n",
         "c.yaml:6: probing.timeout: timeout (2s) must not exceed interval (1s)"),
    ],
)
def test_bad_config_is_located(text: str, expected: str) -> None:
    """Each kind of mistake names the file, the line, the key path and what is wrong."""
    assert expected in errors(text)


def test_duplicate_cluster_names_point_at_the_second() -> None:
    """A repeated cluster name is reported at the repeat, naming the first."""
    text = MINIMAL + "  - name: a\n    weight: 2\n    checks: [{tcp: 127.0.0.1:8102}]\n"
    assert errors(text) == [
        "c.yaml:6: clusters[1].name: duplicate cluster name 'a' (first at clusters[0])"]


def test_duplicate_yaml_keys_are_refused() -> None:
    """A key given twice in one mapping is an error, not a silent override."""
    lines = errors(MINIMAL + "state_dir: a\nstate_dir: b\n")
    assert lines == ["c.yaml:7: state_dir: duplicate key"]


def test_every_problem_is_reported_at_once() -> None:
    """Several independent mistakes are all listed, each on its own line."""
    lines = errors(MINIMAL + "bogus: 1\nprobing: {rise: 0}\n")
    assert "c.yaml:6: bogus: unknown key" in lines
    assert "c.yaml:7: probing.rise: Input should be greater than or equal to 1" in lines


def test_invalid_yaml_names_the_line() -> None:
    """A YAML syntax error is reported with its line."""
    [line] = errors("clusters:\n  - name: a\n   weight: [\n")
    assert line.startswith("c.yaml:3: invalid YAML")


def test_unknown_cluster_in_actuator() -> None:
    """An actuator mapping a cluster that does not exist is refused at that key."""
    text = MINIMAL + textwrap.dedent("""\
        actuators:
          - type: haproxy
            address: 127.0.0.1:9999
            backend: app
            servers: {b: srv}
        """)
    assert errors(text) == ["c.yaml:10: actuators[0].servers.b: unknown cluster 'b'"]


def test_missing_tsig_secret_is_an_error(tmp_path: Path) -> None:
    """A TSIG secret file that cannot be read is a config error naming the file."""
    text = MINIMAL + textwrap.dedent("""\
        actuators:
          - type: dns
            server: 127.0.0.1:5353
            zone: z.
            name: app.z.
            tsig: {name: k, secret_file: missing.key}
            addresses: {a: [192.0.2.1]}
        """)
    with pytest.raises(ConfigError) as info:
        parse(text, "c.yaml", tmp_path)
    assert str(info.value) == (f"c.yaml:11: actuators[0].tsig.secret_file: TSIG secret file "
                               f"{tmp_path / 'missing.key'}: no such file")


def test_budget_refuses_a_config_that_could_exceed_it() -> None:
    """Two names at one DNS server at 1s interval exceed a 2/s per-target cap (UDP+TCP each)."""
    text = """\
        probing: {interval: 1s, timeout: 500ms, jitter: 0.2}
        clusters:
          - name: a
            weight: 1
            dns: {server: 127.0.0.1:5301, names: [x.test, y.test]}
        """
    [line] = errors(text)
    assert line.startswith(
        "c.yaml:5: clusters[0].dns: worst case 5.00 requests/s to 127.0.0.1:5301")


def test_total_budget() -> None:
    """The sum over all targets is capped by total_per_second."""
    clusters = "".join(
        f"  - {{name: c{i}, weight: 1, checks: [{{tcp: '127.0.0.1:{8000 + i}'}}]}}\n"
        for i in range(10))
    text = "probing: {interval: 1s, timeout: 100ms, jitter: 0, budget: {total_per_second: 5}}\n"
    [line] = errors(text + "clusters:\n" + clusters)
    assert line.startswith("c.yaml:1: probing.budget.total_per_second: worst case 10.00")


def test_missing_file(tmp_path: Path) -> None:
    """A config path that does not exist is reported with the path."""
    with pytest.raises(ConfigError, match="cannot read config"):
        load(tmp_path / "nope.yaml")


def test_vantage_probes_count_against_the_budget(tmp_path: Path) -> None:
    """Vantage checks are probes too: their target's rate is refused like a cluster's."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "probing: {interval: 1s, jitter: 0, budget: {per_target_per_second: 1.5}}\n"
        "clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}]\n"
        "vantage: {dns: {server: '127.0.0.1:53', names: [example.com]}}\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert f"{path}:3: vantage.dns: worst case 2.00 requests/s to 127.0.0.1:53" in str(info.value)


def test_empty_vantage_is_an_error(tmp_path: Path) -> None:
    """A vantage section with nothing to probe is refused with its location."""
    path = tmp_path / "c.yaml"
    path.write_text("clusters: [{name: a, weight: 1, checks: [{tcp: '127.0.0.1:1'}]}]\n"
                    "vantage: {checks: []}\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert f"{path}:2: vantage: vantage has nothing to probe" in str(info.value)
