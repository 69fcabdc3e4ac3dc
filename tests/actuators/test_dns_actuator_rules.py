"""The DNS actuator's rules without a server: which addresses a plan publishes, how
differences read, and what from_config refuses."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dns.name

from failover.actuators.base import Applied
from failover.actuators.dns import (
    DnsUpdateActuator,
    Records,
    RRset,
    differences,
    published_addresses,
    wanted_records,
)
from failover.config.actuators import DnsActuator as DnsActuatorSpec
from tests.actuators.test_file import make_plan

NAME = dns.name.from_text("app.gslb.example.")


def ips(*texts: str) -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return frozenset(ipaddress.ip_address(text) for text in texts)


BASE64_KEY = "c2VjcmV0LWZvci10ZXN0cw=="
"""A made-up TSIG secret for these tests."""


def spec(tmp_path: Path, key_text: str = BASE64_KEY, **overrides: object) -> DnsActuatorSpec:
    key = tmp_path / "tsig.key"
    key.write_text(f"  {key_text}\n", encoding="ascii")
    fields: dict[str, object] = {
        "type": "dns", "server": "127.0.0.1:5353", "zone": "gslb.example.",
        "name": "app.gslb.example.", "addresses": {"a": ["192.0.2.10"]},
        "tsig": {"name": "failover-key", "secret_file": key},
    }
    fields.update(overrides)
    return DnsActuatorSpec.model_validate(fields)


def test_publishes_mapped_clusters_above_zero_each_address_once() -> None:
    """Clusters above 0 contribute their addresses once each; unmapped ones are ignored."""
    mapping = {"a": ips("192.0.2.10", "192.0.2.1"), "b": ips("192.0.2.1"),
               "c": ips("192.0.2.30")}
    plan = make_plan(1, {"a": 0.5, "b": 0.2, "c": 0.0, "unmapped": 0.3})
    assert published_addresses(plan, mapping) == ips("192.0.2.10", "192.0.2.1")


def test_a_cluster_missing_from_the_plan_counts_as_zero() -> None:
    """A mapped cluster the plan does not mention is not published."""
    plan = make_plan(1, {"a": 1.0})
    assert published_addresses(plan, {"a": ips("192.0.2.10"), "gone": ips("192.0.2.9")}) == \
        ips("192.0.2.10")


def test_a_float_residue_is_not_a_share() -> None:
    """A share that rounds to 0 in weights.json (6 decimals) is not published."""
    plan = make_plan(1, {"a": 1.0, "b": 1e-9})
    assert published_addresses(plan, {"a": ips("192.0.2.10"), "b": ips("192.0.2.20")}) == \
        ips("192.0.2.10")


def test_wanted_records_split_by_family() -> None:
    """IPv4 goes to A, IPv6 to AAAA, both with the configured TTL."""
    wanted = wanted_records(ips("192.0.2.10", "2001:db8::1"), 30)
    assert wanted == Records(RRset(30, ips("192.0.2.10")), RRset(30, ips("2001:db8::1")))


def test_differences_read_as_short_lines() -> None:
    """Missing, unexpected and TTL differences, one line each, A before AAAA."""
    wanted = wanted_records(ips("192.0.2.10", "192.0.2.20"), 30)
    served = Records(RRset(300, ips("192.0.2.10", "192.0.2.99")),
                     RRset(30, ips("2001:db8::9")))
    assert differences(NAME, wanted, served) == [
        "app.gslb.example. A 192.0.2.20 missing",
        "app.gslb.example. A 192.0.2.99 unexpected",
        "app.gslb.example. A TTL 300, want 30",
        "app.gslb.example. AAAA 2001:db8::9 unexpected",
    ]
    assert differences(NAME, wanted, wanted) == []


def test_from_config_reads_the_secret_and_names_the_actuator(tmp_path: Path) -> None:
    """The secret file's base64 (whitespace around it ignored) becomes the TSIG key."""
    actuator = DnsUpdateActuator.from_config(spec(tmp_path))
    assert actuator.name == "dns:app.gslb.example.@127.0.0.1:5353"
    v6 = DnsUpdateActuator.from_config(spec(tmp_path, server="[::1]:5353"))
    assert v6.name == "dns:app.gslb.example.@[::1]:5353"


async def test_plan_with_nothing_to_publish_does_no_io(tmp_path: Path) -> None:
    """All shares 0: apply and drift return at once, even with no server to talk to."""
    actuator = DnsUpdateActuator.from_config(spec(tmp_path, server="127.0.0.1:1"))
    applied = Applied(make_plan(1, {"a": 0.0}), 0.0)
    await actuator.apply(applied)
    assert await actuator.drift(applied) == []
    assert actuator.stats.kept == 1
