"""The `coordination` section: CONTRACT v2's shape, and each rule refused at load, located."""

from __future__ import annotations

import textwrap

import pytest

from failover.config import ConfigError, parse
from failover.config.addresses import Endpoint

BASE = """\
clusters:
  - {name: a, weight: 1, checks: [{tcp: "127.0.0.1:8101"}]}
coordination:
"""


def load(section: str) -> object:
    return parse(BASE + textwrap.indent(textwrap.dedent(section), "  "), "c.yaml")


def errors(section: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(section)
    return str(info.value).splitlines()


def test_the_contracts_example_loads_with_parsed_endpoints() -> None:
    """CONTRACT v2's example, as written there."""
    config = load("""\
        etcd:
          endpoints: [127.0.0.1:2379, 127.0.0.1:2479, 127.0.0.1:2579]
          prefix: /failover/prod
          lease_ttl: 6s
          timeout: 2s
        vantage: us-east-1a
        quorum: majority
        min_vantages: 2
        """)
    coordination = config.coordination  # type: ignore[attr-defined]
    assert coordination.etcd.endpoints[0] == Endpoint("127.0.0.1", 2379)
    assert (coordination.etcd.lease_ttl, coordination.etcd.timeout) == (6.0, 2.0)
    assert (coordination.vantage, coordination.quorum, coordination.min_vantages) == (
        "us-east-1a", "majority", 2)


def test_without_the_section_the_daemon_runs_alone() -> None:
    config = parse(BASE.replace("coordination:\n", ""), "c.yaml")
    assert config.coordination is None


@pytest.mark.parametrize(("section", "expected"), [
    pytest.param("etcd: {endpoints: [127.0.0.1:2379], lease_ttl: 1s, timeout: 100ms}\n"
                 "vantage: v1\n",
                 "c.yaml:4: coordination.etcd.lease_ttl: 1s is below etcd's shortest lease "
                 "(2s at its default election timeout)", id="ttl-too-short"),
    pytest.param("etcd: {endpoints: [127.0.0.1:2379], lease_ttl: 6s, timeout: 2500ms}\n"
                 "vantage: v1\n",
                 "c.yaml:4: coordination.etcd.timeout: 2.5s exceeds the renewal period, "
                 "lease_ttl / 3 = 2s: slow members would let the lease lapse between "
                 "renewals; lower timeout or raise lease_ttl", id="timeout-too-long"),
    pytest.param("etcd: {endpoints: [127.0.0.1:2379], timeout: 1s}\nvantage: v1\n"
                 "quorum: 3\nmin_vantages: 2\n",
                 "c.yaml:6: coordination.quorum: 3 exceeds min_vantages (2): with 2 fresh "
                 "vantages the plan is live, yet no cluster could ever count as failing; lower "
                 "quorum or raise min_vantages", id="quorum-unreachable"),
    pytest.param("etcd: {endpoints: [127.0.0.1:2379], timeout: 1s}\nvantage: v1\nquorum: 0\n",
                 "c.yaml:6: coordination.quorum: quorum must be 'majority' or a number of "
                 "vantages of at least 1, got 0", id="quorum-zero"),
    pytest.param("etcd: {endpoints: [127.0.0.1:2379], timeout: 1s, prefix: failover/}\n"
                 "vantage: v1\n",
                 "c.yaml:4: coordination.etcd.prefix: prefix 'failover/' must be /-separated "
                 "names of letters, digits, '.', '_' or '-', starting with '/' and not ending "
                 "with it (e.g. /failover/prod)", id="prefix-shape"),
    pytest.param("etcd: {endpoints: [127.0.0.1:2379], timeout: 1s}\nvantage: 'us east'\n",
                 "c.yaml:5: coordination.vantage: 'us east' must be 1-63 letters, "
                 "digits, '.', '_' or '-'", id="vantage-name"),
    pytest.param("etcd: {endpoints: [], timeout: 1s}\nvantage: v1\n",
                 "c.yaml:4: coordination.etcd.endpoints: List should have at least 1 item "
                 "after validation, not 0", id="no-endpoints"),
])
def test_each_rule_is_refused_where_it_is_broken(section: str, expected: str) -> None:
    assert errors(section) == [expected]
