"""Static rules a config must keep, each refused at load with where and why."""

from __future__ import annotations

import ipaddress
import os
import textwrap
from pathlib import Path

import pytest

from failover.config import ConfigError, load, parse
from failover.config.actuators import DnsActuator
from failover.config.files import SECRET_LIMIT


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


def test_addresses_are_parsed_once_into_ip_objects() -> None:
    """`expect` and a DNS actuator's addresses are `ipaddress` objects once loaded, in
    canonical form; written back out they are the text an operator would write."""
    config = parse(textwrap.dedent("""\
        clusters:
          - name: a
            weight: 1
            dns: {server: "[0::1]:5301", names: [api.local], qtype: AAAA, expect: ["0::1"]}
        actuators:
          - type: dns
            server: 127.0.0.1:5353
            zone: gslb.example.
            name: app.gslb.example.
            addresses: {a: [" 192.0.2.10 "]}
        """), "c.yaml")
    dns = config.clusters[0].dns
    assert dns is not None
    assert dns.expect == [ipaddress.IPv6Address("::1")]
    assert str(dns.server) == "[::1]:5301"
    actuator = config.actuators[0]
    assert isinstance(actuator, DnsActuator)
    assert actuator.addresses == {"a": [ipaddress.IPv4Address("192.0.2.10")]}
    assert actuator.model_dump(mode="json")["addresses"] == {"a": ["192.0.2.10"]}


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


DNS_ACTUATOR = """\
    clusters: [{name: a, weight: 1, checks: [{tcp: 127.0.0.1:8101}]}]
    actuators:
      - type: dns
        server: 127.0.0.1:5353
        zone: z.
        name: app.z.
        tsig: {name: k, secret_file: SECRET}
        addresses: {a: [192.0.2.1]}
    """


def tsig_errors(tmp_path: Path, secret: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(textwrap.dedent(DNS_ACTUATOR).replace("SECRET", secret), "c.yaml", tmp_path)
    return str(info.value).splitlines()


def test_a_tsig_secret_is_read_once_at_load_and_decoded(tmp_path: Path) -> None:
    (tmp_path / "k.key").write_text("c2VjcmV0\n")
    config = parse(textwrap.dedent(DNS_ACTUATOR).replace("SECRET", "k.key"), "c.yaml",
                   tmp_path)
    actuator = config.actuators[0]
    assert isinstance(actuator, DnsActuator)
    assert actuator.tsig is not None
    assert actuator.tsig.secret == b"secret"


@pytest.mark.parametrize(("content", "why"), [
    ("not base64 at all!\n", "not base64"), ("\n", "is empty")])
def test_a_tsig_secret_that_cannot_be_used_is_refused_at_load(
        tmp_path: Path, content: str, why: str) -> None:
    """`check` refused none of these; `run` did, when it built the actuator."""
    (tmp_path / "k.key").write_text(content)
    [line] = tsig_errors(tmp_path, "k.key")
    assert line.startswith("c.yaml:7: actuators[0].tsig.secret_file: TSIG secret file ")
    assert line.endswith(why)


def test_a_tsig_secret_file_that_is_a_fifo_does_not_hang_loading(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "k.key")
    [line] = tsig_errors(tmp_path, "k.key")
    assert line.endswith(f"{tmp_path / 'k.key'}: not a regular file (a FIFO)")


@pytest.mark.parametrize(("secret", "why"), [
    ("/dev/zero", "not a regular file (a character device)"),
    (".", "not a regular file (a directory)")])
def test_a_tsig_secret_file_that_is_a_device_or_directory_is_refused(
        tmp_path: Path, secret: str, why: str) -> None:
    [line] = tsig_errors(tmp_path, secret)
    assert line.endswith(why)


def test_a_huge_tsig_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "k.key").write_bytes(b"A" * (SECRET_LIMIT + 1))
    [line] = tsig_errors(tmp_path, "k.key")
    assert line.endswith(f"too large ({SECRET_LIMIT + 1} bytes; at most {SECRET_LIMIT:,})")


def test_a_config_file_that_is_a_fifo_does_not_hang_loading(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=r"cannot read config: not a regular file \(a FIFO\)"):
        load(tmp_path / "c.yaml")


def test_a_dns_actuator_name_outside_its_zone_is_refused_at_load() -> None:
    lines = errors("""\
        clusters: [{name: a, weight: 1, checks: [{tcp: 127.0.0.1:8101}]}]
        actuators:
          - {type: dns, server: 127.0.0.1:5353, zone: gslb.example., name: app.example.,
             addresses: {a: [192.0.2.1]}}
        """)
    assert lines == ["c.yaml:3: actuators[0].name: app.example. is not in zone gslb.example."]


@pytest.mark.parametrize(("backend", "servers", "where", "message"), [
    ("be app", "{a: s1}", "actuators[0].backend", "'be app': HAProxy names take"),
    ("app", "{a: 's 1'}", "actuators[0].servers.a", "'s 1': HAProxy names take"),
    ("app", "{a: s1, b: s1}", "actuators[0].servers.b",
     "server 's1' is a's already: one server per cluster"),
])
def test_haproxy_names_are_checked_at_load_not_at_the_first_apply(
        backend: str, servers: str, where: str, message: str) -> None:
    [line] = errors(f"""\
        clusters:
          - {{name: a, weight: 1, checks: [{{tcp: 127.0.0.1:8101}}]}}
          - {{name: b, weight: 1, checks: [{{tcp: 127.0.0.1:8102}}]}}
        actuators:
          - {{type: haproxy, address: 127.0.0.1:9999, backend: "{backend}", servers: {servers}}}
        """)
    assert f" {where}: " in line
    assert message in line


def test_two_spellings_of_one_target_share_its_budget() -> None:
    """localhost:P, LOCALHOST.:P and 127.0.0.1:P are one target: four TCP checks on it at a
    2 s interval (0.625/s each at the shortest jittered gap) exceed 2/s together, though
    under any one spelling they did not."""
    lines = errors("""\
        clusters:
          - {name: a, weight: 1, checks: [{tcp: "localhost:8101"}]}
          - {name: b, weight: 1, checks: [{tcp: "127.0.0.1:8101"}]}
          - {name: c, weight: 1, checks: [{tcp: "LOCALHOST.:8101"}]}
          - {name: d, weight: 1, checks: [{tcp: "127.0.0.1:8101"}]}
        """)
    assert len(lines) == 1
    assert "worst case 2.50 requests/s to localhost:8101" in lines[0]


def test_a_heartbeat_is_one_more_dns_query_under_the_budget() -> None:
    """One name at a 2 s interval sends at most 1.25 requests/s (a UDP query and its TCP
    retry, at the shortest jittered gap): within 2/s. Its heartbeat doubles that."""
    fits = """\
        clusters:
          - name: a
            weight: 1
            dns: {server: 127.0.0.1:5301, names: [api.local]}
        """
    parse(textwrap.dedent(fits), "c.yaml")
    lines = errors(fits.replace(
        "names: [api.local]}",
        "names: [api.local], freshness: {name: beat.local, max_age: 60s}}"))
    assert len(lines) == 1
    assert "worst case 2.50 requests/s to 127.0.0.1:5301" in lines[0]


@pytest.mark.parametrize(("freshness", "message"), [
    ("{name: beat.local, max_age: 0s}", "clusters[0].dns.freshness.max_age"),
    ("{name: 'bad..name', max_age: 60s}", "not a valid DNS name: 'bad..name'"),
    ("{name: beat.local}", "clusters[0].dns.freshness.max_age"),
    ("{name: beat.local, max_age: 60s, every: 5s}", "clusters[0].dns.freshness.every"),
])
def test_a_bad_freshness_is_refused_where_it_is(freshness: str, message: str) -> None:
    lines = errors(f"""\
        clusters:
          - name: a
            weight: 1
            dns: {{server: 127.0.0.1:5301, names: [api.local], freshness: {freshness}}}
        """)
    assert len(lines) == 1
    assert message in lines[0]
    assert lines[0].startswith("c.yaml:4: ")


def test_a_name_with_a_trailing_newline_is_refused() -> None:
    """A pattern's ``$`` matches before a final newline: "x\\n" once passed as a name, and in
    HAProxy's line-based runtime API a newline would end one command and begin another."""
    cluster = errors('clusters: [{name: "a\\n", weight: 1, checks: [{tcp: "127.0.0.1:8101"}]}]')
    assert "clusters[0].name: 'a\\n' must be 1-63 letters" in cluster[0]
    server = errors("""\
        clusters: [{name: a, weight: 1, checks: [{tcp: "127.0.0.1:8101"}]}]
        actuators:
          - {type: haproxy, address: 127.0.0.1:9999, backend: be, servers: {a: "s1\\n"}}
        """)
    assert len(server) == 1
    assert "servers" in server[0]
