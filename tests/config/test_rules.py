"""Static rules a config must keep, each refused at load with where and why."""

from __future__ import annotations

import textwrap

import pytest

from failover.config import ConfigError, parse


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(textwrap.dedent(text), "c.yaml")
    return str(info.value).splitlines()


def test_one_url_checked_twice_in_a_cluster_is_refused() -> None:
    """Two checks on one URL became one job, and one of them silently never ran."""
    assert errors("""\
        clusters:
          - name: a
            weight: 1
            checks:
              - http: http://127.0.0.1:8101/healthz
              - {http: http://127.0.0.1:8101/healthz, expect_status: 204}
        """) == ["c.yaml:6: clusters[0].checks[1]: http http://127.0.0.1:8101/healthz is already"
                 " checked at clusters[0].checks[0]: each target once per cluster"]


def test_one_tcp_address_checked_twice_in_a_cluster_is_refused() -> None:
    lines = errors("""\
        clusters:
          - name: a
            weight: 1
            checks: [{tcp: 127.0.0.1:8101}, {tcp: 127.0.0.1:8101}]
        """)
    assert len(lines) == 1
    assert "clusters[0].checks[1]: tcp 127.0.0.1:8101 is already checked at " \
           "clusters[0].checks[0]" in lines[0]


def test_one_dns_name_listed_twice_is_refused() -> None:
    lines = errors("""\
        clusters:
          - name: a
            weight: 1
            dns: {server: 127.0.0.1:5301, names: [api.local, api.local]}
        """)
    assert len(lines) == 1
    assert "dns 127.0.0.1:5301 api.local is already checked" in lines[0]


def test_the_same_target_in_two_clusters_is_two_jobs() -> None:
    """Each cluster's verdict needs its own result, so this one is allowed."""
    config = parse(textwrap.dedent("""\
        clusters:
          - {name: a, weight: 1, checks: [{tcp: 127.0.0.1:8101}]}
          - {name: b, weight: 1, checks: [{tcp: 127.0.0.1:8101}]}
        """), "c.yaml")
    assert [c.name for c in config.clusters] == ["a", "b"]


def test_an_error_in_an_http_check_names_its_key_not_the_tag() -> None:
    """The check's union tag is `http`, a key of the check too: the error is about
    expect_status."""
    assert errors("""\
        clusters:
          - name: a
            weight: 1
            checks: [{http: http://127.0.0.1:8101/, expect_status: [200]}]
        """) == ["c.yaml:4: clusters[0].checks[0].expect_status: Input should be a valid integer"]


@pytest.mark.parametrize(("status", "admin"), [
    ("127.0.0.1:9470", "127.0.0.1:9470"),
    ("0.0.0.0:9470", "127.0.0.1:9470"),
    ("[::1]:9470", "[::]:9470"),
])
def test_status_and_admin_on_one_port_are_refused(status: str, admin: str) -> None:
    """They could never both bind; `run` found out only at start."""
    lines = errors(f"""\
        listen: {{status: "{status}", admin: "{admin}"}}
        clusters: [{{name: a, weight: 1, checks: [{{tcp: 127.0.0.1:8101}}]}}]
        """)
    assert len(lines) == 1
    assert lines[0].startswith("c.yaml:1: listen.admin: ")
    assert "the two need their own ports" in lines[0]


def test_status_and_admin_may_share_a_port_number_on_different_hosts_or_port_0() -> None:
    for listen in ('{status: "127.0.0.1:9470", admin: "127.0.0.2:9470"}',
                   '{status: "127.0.0.1:0", admin: "127.0.0.1:0"}'):
        parse(f"listen: {listen}\nclusters: [{{name: a, weight: 1, checks: "
              "[{tcp: 127.0.0.1:8101}]}]\n", "c.yaml")


@pytest.mark.parametrize(("qtype", "expect", "version"), [
    ("A", "::1", 4), ("AAAA", "127.0.0.1", 6)])
def test_an_expected_address_of_the_other_family_is_refused(qtype: str, expect: str,
                                                            version: int) -> None:
    """An A answer can never hold an IPv6 address: the check could only ever fail."""
    assert errors(f"""\
        clusters:
          - name: a
            weight: 1
            dns: {{server: 127.0.0.1:5301, names: [api.local], qtype: {qtype},
                  expect: ["{expect}"]}}
        """) == [f"c.yaml:5: clusters[0].dns.expect[0]: {expect} is not an IPv{version} "
                 f"address: an {qtype} answer can never hold it"]


@pytest.mark.parametrize(("path", "what"), [("var/state.json", "the daemon's state"),
                                             ("var/audit.jsonl", "the audit log")])
def test_a_file_actuator_writing_the_daemons_own_files_is_refused(path: str,
                                                                  what: str) -> None:
    lines = errors(f"""\
        state_dir: var
        clusters: [{{name: a, weight: 1, checks: [{{tcp: 127.0.0.1:8101}}]}}]
        actuators:
          - {{type: file, path: {path}}}
        """)
    assert len(lines) == 1
    assert lines[0].startswith("c.yaml:4: actuators[0].path: ")
    assert lines[0].endswith(f"is {what}: write the weights elsewhere")
