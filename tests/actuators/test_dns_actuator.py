"""The DNS actuator against a real knotd: what it publishes, when it sends nothing, how it
fails, and how drift is found and repaired. Every outcome is read back from knotd itself."""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update
import pytest

from failover.actuators.base import (
    Applied,
    PermanentActuatorError,
    TemporaryActuatorError,
)
from failover.actuators.dns import DnsUpdateActuator
from failover.actuators.runner import bounded
from failover.config.actuators import DnsActuator as DnsActuatorSpec
from tests.actuators.test_file import make_plan
from tests.knot import (
    INITIAL_ADDRESS,
    INITIAL_TTL,
    KEY_NAME,
    NAME,
    ZONE,
    Knot,
    free_port_nobody_listens_on,
    running_knot,
)

ADDRESSES = {
    "a": ["192.0.2.10", "192.0.2.11"],
    "b": ["192.0.2.20"],
    "c": ["192.0.2.30"],
    "v6": ["2001:db8::6"],
    "dual": ["192.0.2.40", "2001:db8::40"],
}


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[Knot]:
    """knotd serving gslb.example. with app at 192.0.2.99; stopped at teardown."""
    with running_knot(tmp_path / "knot") as server:
        yield server


def make_spec(knot: Knot, tmp_path: Path, **overrides: Any) -> DnsActuatorSpec:
    secret_file = knot.write_secret(tmp_path / "tsig.key")
    fields: dict[str, Any] = {
        "type": "dns", "server": knot.address, "zone": ZONE, "name": NAME, "ttl": 30,
        "tsig": {"name": KEY_NAME, "algorithm": "hmac-sha256", "secret_file": secret_file},
        "addresses": ADDRESSES, "timeout": 5.0,
    }
    fields.update(overrides)
    return DnsActuatorSpec.model_validate(fields)


def actuator_for(knot: Knot, tmp_path: Path, **overrides: Any) -> DnsUpdateActuator:
    return DnsUpdateActuator.from_config(make_spec(knot, tmp_path, **overrides))


def plan(version: int, shares: dict[str, float]) -> Applied:
    return Applied(make_plan(version, shares), 1767225600.0)


async def served(knot: Knot, rdtype: str = "A") -> tuple[int, set[str]]:
    """(TTL, addresses) knotd answers for the GSLB name over UDP, as a client sees it."""
    query = dns.message.make_query(NAME, rdtype)
    reply = await dns.asyncquery.udp(query, "127.0.0.1", port=knot.port, timeout=2.0)
    assert reply.rcode() == dns.rcode.NOERROR
    rrset = reply.get_rrset(reply.answer, dns.name.from_text(NAME), dns.rdataclass.IN,
                            dns.rdatatype.from_text(rdtype))
    if rrset is None:
        return 0, set()
    return rrset.ttl, {rdata.address for rdata in rrset}


async def serial(knot: Knot) -> int:
    reply = await dns.asyncquery.tcp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1",
                                     port=knot.port, timeout=2.0)
    return int(reply.answer[0][0].serial)


async def hand_edit(knot: Knot, update: dns.update.UpdateMessage) -> None:
    """An operator's own signed update, sent past the actuator."""
    update.use_tsig(dns.tsig.Key(KEY_NAME, knot.secret, "hmac-sha256"))
    reply = await dns.asyncquery.tcp(update, "127.0.0.1", port=knot.port, timeout=2.0)
    assert reply.rcode() == dns.rcode.NOERROR


async def test_publishes_clusters_with_share(knot: Knot, tmp_path: Path) -> None:
    """Shares {a: 0.6, b: 0.4, c: 0} publish exactly a's and b's addresses with the TTL."""
    assert await served(knot) == (INITIAL_TTL, {INITIAL_ADDRESS})
    await actuator_for(knot, tmp_path).apply(plan(1, {"a": 0.6, "b": 0.4, "c": 0.0}))
    assert await served(knot) == (30, {"192.0.2.10", "192.0.2.11", "192.0.2.20"})
    assert await served(knot, "AAAA") == (0, set())


async def test_follows_a_plan_change(knot: Knot, tmp_path: Path) -> None:
    """When b's share drops to 0, the answer set drops b's address and keeps a's."""
    actuator = actuator_for(knot, tmp_path)
    await actuator.apply(plan(1, {"a": 0.6, "b": 0.4, "c": 0.0}))
    await actuator.apply(plan(2, {"a": 1.0, "b": 0.0, "c": 0.0}))
    assert await served(knot) == (30, {"192.0.2.10", "192.0.2.11"})
    await actuator.apply(plan(3, {"a": 0.5, "b": 0.0, "c": 0.5}))
    assert await served(knot) == (30, {"192.0.2.10", "192.0.2.11", "192.0.2.30"})
    assert knot.updates_processed() == 3


async def test_same_plan_twice_sends_one_update(knot: Knot, tmp_path: Path) -> None:
    """A second apply of the same plan sends no UPDATE and leaves records and serial alone."""
    actuator = actuator_for(knot, tmp_path)
    await actuator.apply(plan(1, {"a": 0.6, "b": 0.4}))
    first = (await served(knot), await serial(knot))
    await actuator.apply(plan(1, {"a": 0.6, "b": 0.4}))
    # Different shares, same clusters above 0: the same records, so nothing to send either.
    await actuator.apply(plan(2, {"a": 0.3, "b": 0.7}))
    assert (await served(knot), await serial(knot)) == first
    assert knot.updates_processed() == 1
    assert (actuator.stats.updates, actuator.stats.in_sync) == (1, 2)


async def test_a_fresh_actuator_finds_the_records_in_place(knot: Knot, tmp_path: Path) -> None:
    """After a restart (a new actuator) the same plan sends nothing: state is read, not kept."""
    await actuator_for(knot, tmp_path).apply(plan(1, {"a": 1.0}))
    restarted = actuator_for(knot, tmp_path)
    await restarted.apply(plan(1, {"a": 1.0}))
    assert restarted.stats.updates == 0
    assert knot.updates_processed() == 1


async def test_all_shares_zero_keeps_the_last_records(knot: Knot, tmp_path: Path) -> None:
    """With no mapped cluster above 0 the records stay as they were, and no error is raised."""
    actuator = actuator_for(knot, tmp_path)
    await actuator.apply(plan(1, {"a": 0.6, "b": 0.4}))
    await actuator.apply(plan(2, {"a": 0.0, "b": 0.0, "c": 0.0, "unmapped": 1.0}))
    assert await served(knot) == (30, {"192.0.2.10", "192.0.2.11", "192.0.2.20"})
    assert knot.updates_processed() == 1
    assert actuator.stats.kept == 1
    assert await actuator.drift(plan(2, {"a": 0.0, "b": 0.0})) == []


async def test_ipv6_addresses_publish_aaaa(knot: Knot, tmp_path: Path) -> None:
    """IPv6 addresses go to AAAA, IPv4 to A; a family left with nothing is deleted."""
    actuator = actuator_for(knot, tmp_path)
    await actuator.apply(plan(1, {"b": 0.5, "v6": 0.25, "dual": 0.25}))
    assert await served(knot) == (30, {"192.0.2.20", "192.0.2.40"})
    assert await served(knot, "AAAA") == (30, {"2001:db8::6", "2001:db8::40"})
    await actuator.apply(plan(2, {"b": 1.0, "v6": 0.0, "dual": 0.0}))
    assert await served(knot, "AAAA") == (0, set())
    await actuator.apply(plan(3, {"b": 0.0, "v6": 1.0}))
    assert await served(knot) == (0, set())
    assert await served(knot, "AAAA") == (30, {"2001:db8::6"})


async def test_wrong_secret_is_a_permanent_badsig(knot: Knot, tmp_path: Path) -> None:
    """A wrong TSIG secret fails for good, naming BADSIG and the server; records unchanged."""
    wrong = tmp_path / "wrong.key"
    wrong.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    actuator = actuator_for(knot, tmp_path, tsig={
        "name": KEY_NAME, "algorithm": "hmac-sha256", "secret_file": wrong})
    badsig = rf"{re.escape(knot.address)} rejected .*: BADSIG"
    with pytest.raises(PermanentActuatorError, match=badsig):
        await actuator.apply(plan(1, {"a": 1.0}))
    assert await served(knot) == (INITIAL_TTL, {INITIAL_ADDRESS})


async def test_unknown_key_is_a_permanent_badkey(knot: Knot, tmp_path: Path) -> None:
    """A key name knotd does not know fails for good, naming BADKEY."""
    tsig = {"name": "someone-else", "secret_file": knot.write_secret(tmp_path / "k")}
    with pytest.raises(PermanentActuatorError, match="BADKEY"):
        await actuator_for(knot, tmp_path, tsig=tsig).apply(plan(1, {"a": 1.0}))


async def test_update_the_acl_forbids_is_permanent(tmp_path: Path) -> None:
    """A key the ACL limits to other names is refused for good (knotd says BADKEY)."""
    with running_knot(tmp_path / "knot", acl_rules="""
            update-owner: name
            update-owner-match: equal
            update-owner-name: [other]
            """) as knot:
        with pytest.raises(PermanentActuatorError, match=r"BADKEY.*ACL"):
            await actuator_for(knot, tmp_path).apply(plan(1, {"a": 1.0}))
        assert await served(knot) == (INITIAL_TTL, {INITIAL_ADDRESS})


async def test_unsigned_update_is_a_permanent_notauth(knot: Knot, tmp_path: Path) -> None:
    """Without TSIG, knotd's ACL refuses the update: NOTAUTH, not retried."""
    notauth = rf"{re.escape(knot.address)} answered .* NOTAUTH"
    with pytest.raises(PermanentActuatorError, match=notauth):
        await actuator_for(knot, tmp_path, tsig=None).apply(plan(1, {"a": 1.0}))
    assert await served(knot) == (INITIAL_TTL, {INITIAL_ADDRESS})


async def test_zone_the_server_does_not_serve_is_permanent(knot: Knot, tmp_path: Path) -> None:
    """A zone knotd is not authoritative for fails for good, before any update is sent."""
    actuator = actuator_for(knot, tmp_path, zone="other.example.", name="app.other.example.")
    with pytest.raises(PermanentActuatorError, match=r"not authoritative.*REFUSED"):
        await actuator.apply(plan(1, {"a": 1.0}))
    assert knot.updates_processed() == 0


async def test_server_down_is_temporary(knot: Knot, tmp_path: Path) -> None:
    """Nothing listening on the port (refused connection) is a temporary error."""
    actuator = actuator_for(knot, tmp_path, server=f"127.0.0.1:{free_port_nobody_listens_on()}")
    with pytest.raises(TemporaryActuatorError, match="cannot talk to"):
        await actuator.apply(plan(1, {"a": 1.0}))
    knot.stop()
    stopped = actuator_for(knot, tmp_path)
    with pytest.raises(TemporaryActuatorError, match="cannot talk to"):
        await stopped.apply(plan(1, {"a": 1.0}))


async def test_stalled_server_is_cut_at_the_runners_deadline(knot: Knot, tmp_path: Path) -> None:
    """A server that accepts but never answers is cut at the runner's one deadline, as a
    temporary error; the actuator adds no timeout of its own and works once knotd does."""
    actuator = actuator_for(knot, tmp_path)
    knot.pause()
    started = time.monotonic()
    cut = re.escape(f"apply to {actuator.name} timed out after 0.3s")
    with pytest.raises(TemporaryActuatorError, match=cut):
        await bounded(f"apply to {actuator.name}", 0.3,
                      partial(actuator.apply, plan(1, {"a": 1.0})))
    elapsed = time.monotonic() - started
    knot.resume()
    assert 0.29 <= elapsed < 2.0
    # No deadline here: knotd 3.2 may hold an update until the next whole second
    # (docs/dns.md), longer than this test's 0.3 s.
    await actuator.apply(plan(1, {"a": 1.0}))
    assert await served(knot) == (30, {"192.0.2.10", "192.0.2.11"})


async def test_drift_finds_hand_edits_and_apply_repairs(knot: Knot, tmp_path: Path) -> None:
    """A record added and one removed by hand show up in drift(); the next apply undoes both."""
    actuator = actuator_for(knot, tmp_path)
    applied = plan(1, {"a": 0.6, "b": 0.4})
    await actuator.apply(applied)
    assert await actuator.drift(applied) == []
    edit = dns.update.UpdateMessage(ZONE)
    edit.add(NAME, 30, "A", "198.51.100.7")
    edit.delete(NAME, "A", "192.0.2.20")
    await hand_edit(knot, edit)
    assert await actuator.drift(applied) == [
        f"{NAME} A 192.0.2.20 missing",
        f"{NAME} A 198.51.100.7 unexpected",
    ]
    await actuator.apply(applied)
    assert await served(knot) == (30, {"192.0.2.10", "192.0.2.11", "192.0.2.20"})
    assert await actuator.drift(applied) == []


async def test_drift_finds_a_changed_ttl_and_stray_aaaa(knot: Knot, tmp_path: Path) -> None:
    """A TTL changed by hand and an AAAA nobody planned are drift too."""
    actuator = actuator_for(knot, tmp_path)
    applied = plan(1, {"b": 1.0})
    await actuator.apply(applied)
    edit = dns.update.UpdateMessage(ZONE)
    edit.replace(NAME, 600, "A", "192.0.2.20")
    edit.add(NAME, 600, "AAAA", "2001:db8::99")
    await hand_edit(knot, edit)
    assert await actuator.drift(applied) == [
        f"{NAME} A TTL 600, want 30",
        f"{NAME} AAAA 2001:db8::99 unexpected",
    ]
    await actuator.apply(applied)
    assert await served(knot) == (30, {"192.0.2.20"})
    assert await served(knot, "AAAA") == (0, set())


async def test_drift_raises_when_it_cannot_read(knot: Knot, tmp_path: Path) -> None:
    """drift() on an unreachable server raises a TemporaryActuatorError, never returns []."""
    actuator = actuator_for(knot, tmp_path)
    knot.stop()
    with pytest.raises(TemporaryActuatorError, match="cannot talk to"):
        await actuator.drift(plan(1, {"a": 1.0}))


async def test_an_update_the_server_does_not_apply_fails_verification(
        knot: Knot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the server says NOERROR but serves something else, apply raises naming the gap."""
    actuator = actuator_for(knot, tmp_path)
    real = actuator._update_message

    def drops_one_address(wanted: Any) -> dns.update.UpdateMessage:
        # Stands in for a server (or a concurrent editor) that loses part of the change.
        update = real(wanted)
        update.delete(NAME, "A", "192.0.2.11")
        return update

    monkeypatch.setattr(actuator, "_update_message", drops_one_address)
    gap = re.escape(f"serves something else: {NAME} A 192.0.2.11 missing")
    with pytest.raises(TemporaryActuatorError, match=gap):
        await actuator.apply(plan(1, {"a": 1.0}))


async def test_cname_at_the_name_is_permanent(knot: Knot, tmp_path: Path) -> None:
    """A CNAME at the GSLB name is reported, since address records beside it would be dropped."""
    edit = dns.update.UpdateMessage(ZONE)
    edit.add(f"www.{ZONE}", 30, "CNAME", NAME)
    await hand_edit(knot, edit)
    actuator = actuator_for(knot, tmp_path, name=f"www.{ZONE}")
    with pytest.raises(PermanentActuatorError, match="is a CNAME"):
        await actuator.apply(plan(1, {"a": 1.0}))


async def test_name_labels_metrics_and_logs(knot: Knot, tmp_path: Path) -> None:
    """The actuator's name is dns:NAME@SERVER."""
    assert actuator_for(knot, tmp_path).name == f"dns:{NAME}@{knot.address}"
