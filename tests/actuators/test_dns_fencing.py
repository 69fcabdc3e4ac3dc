"""The DNS actuator's fencing against a real knotd: with an epoch it keeps the leader's epoch
in TXT _failover-epoch.<zone>, takes over from an older one in one atomic update, and
neither it nor the server lets a deposed leader write over a newer one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.update
import pytest

from failover.actuators.base import (
    Applied,
    FencedError,
    PermanentActuatorError,
    TemporaryActuatorError,
)
from failover.actuators.dns import DnsUpdateActuator, ZoneEpoch
from tests.actuators.test_dns_actuator import actuator_for, hand_edit, served
from tests.actuators.test_file import make_plan
from tests.knot import INITIAL_ADDRESS, INITIAL_TTL, ZONE, Knot, running_knot

EPOCH_NAME = f"_failover-epoch.{ZONE}"
A_SERVES = ("192.0.2.10", "192.0.2.11")
"""What shares {a: 1.0} publish (tests.actuators.test_dns_actuator.ADDRESSES)."""
B_SERVES = ("192.0.2.20",)


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[Knot]:
    """knotd serving gslb.example. with app at 192.0.2.99 and no epoch record."""
    with running_knot(tmp_path / "knot") as server:
        yield server


def fenced(version: int, shares: dict[str, float], epoch: int | None) -> Applied:
    return Applied(make_plan(version, shares), 1767225600.0, epoch=epoch)


async def zone_epoch(knot: Knot) -> list[str]:
    """The TXT strings knotd serves at the epoch name; [] when there is no such record."""
    reply = await dns.asyncquery.tcp(dns.message.make_query(EPOCH_NAME, "TXT"), "127.0.0.1",
                                     port=knot.port, timeout=2.0)
    assert reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    rrset = reply.get_rrset(reply.answer, dns.name.from_text(EPOCH_NAME), dns.rdataclass.IN,
                            dns.rdatatype.TXT)
    if rrset is None:
        return []
    return sorted(b"".join(rdata.strings).decode() for rdata in rrset)


async def set_zone_epoch(knot: Knot, text: str | None) -> None:
    """Another replica's (or an operator's) write of the epoch record; None deletes it."""
    edit = dns.update.UpdateMessage(ZONE)
    if text is None:
        edit.delete(EPOCH_NAME, "TXT")
    else:
        edit.replace(EPOCH_NAME, 0, "TXT", f'"{text}"')
    await hand_edit(knot, edit)


async def zone_state(knot: Knot) -> tuple[object, ...]:
    """Everything the actuator may change: A, AAAA and the epoch record."""
    return await served(knot), await served(knot, "AAAA"), await zone_epoch(knot)


def prerequisites_failed(knot: Knot) -> int:
    """Updates knotd refused because a prerequisite did not hold, from its log (written
    before it answers, as `Knot.updates_processed`)."""
    return knot.log().count("prerequisites not met")


def forget(actuator: DnsUpdateActuator, seen: int | None) -> None:
    """Make the actuator believe the zone held ``seen`` when it last looked: stands in for
    a read that went stale before the update reached the server."""
    actuator._zone_epoch = ZoneEpoch(seen)


async def test_no_epoch_writes_no_epoch_record(knot: Knot, tmp_path: Path) -> None:
    """Without an epoch (standalone) the records change and no epoch record appears."""
    await actuator_for(knot, tmp_path).apply(fenced(1, {"a": 1.0}, None))
    assert await served(knot) == (30, set(A_SERVES))
    assert await zone_epoch(knot) == []


async def test_no_epoch_ignores_an_epoch_record(knot: Knot, tmp_path: Path) -> None:
    """Without an epoch the actuator neither reads nor minds an epoch record in the zone."""
    await set_zone_epoch(knot, "9")
    actuator = actuator_for(knot, tmp_path)
    await actuator.apply(fenced(1, {"a": 1.0}, None))
    assert await served(knot) == (30, set(A_SERVES))
    assert await actuator.drift(fenced(1, {"a": 1.0}, None)) == []
    assert await zone_epoch(knot) == ["9"]


async def test_first_fenced_apply_writes_epoch_and_records(knot: Knot, tmp_path: Path) -> None:
    """The first apply with an epoch creates the epoch TXT and the records in one update."""
    actuator = actuator_for(knot, tmp_path)
    await actuator.apply(fenced(1, {"a": 1.0}, 5))
    assert await zone_epoch(knot) == ["5"]
    assert await served(knot) == (30, set(A_SERVES))
    assert knot.updates_processed() == 1
    assert (actuator.stats.updates, actuator.stats.takeovers) == (1, 1)


async def test_same_epoch_updates_records(knot: Knot, tmp_path: Path) -> None:
    """At the zone's own epoch, applies change the records and keep the epoch; the same plan
    again sends nothing."""
    actuator = actuator_for(knot, tmp_path)
    await actuator.apply(fenced(1, {"a": 1.0}, 5))
    await actuator.apply(fenced(2, {"b": 1.0}, 5))
    assert await served(knot) == (30, set(B_SERVES))
    assert await zone_epoch(knot) == ["5"]
    await actuator.apply(fenced(2, {"b": 1.0}, 5))
    assert knot.updates_processed() == 2
    assert (actuator.stats.updates, actuator.stats.in_sync, actuator.stats.takeovers) == (2, 1, 1)


async def test_a_restarted_leader_finds_its_epoch_in_place(knot: Knot, tmp_path: Path) -> None:
    """A fresh actuator at the zone's epoch, with the records in place, sends nothing."""
    await actuator_for(knot, tmp_path).apply(fenced(1, {"a": 1.0}, 5))
    restarted = actuator_for(knot, tmp_path)
    await restarted.apply(fenced(1, {"a": 1.0}, 5))
    assert knot.updates_processed() == 1
    assert restarted.stats.in_sync == 1


async def test_lower_epoch_is_fenced_before_sending(knot: Knot, tmp_path: Path) -> None:
    """A replica whose epoch is below the zone's gets FencedError naming zone and both
    epochs, sends no update, and the zone keeps the newer leader's records."""
    await actuator_for(knot, tmp_path).apply(fenced(1, {"a": 1.0}, 9))
    before = await zone_state(knot)
    deposed = actuator_for(knot, tmp_path)
    refused = rf"zone {re.escape(ZONE)} holds epoch 9 .* newer than ours \(5\)"
    with pytest.raises(FencedError, match=refused):
        await deposed.apply(fenced(2, {"b": 1.0}, 5))
    assert await zone_state(knot) == before
    assert knot.updates_processed() == 1


async def test_higher_epoch_takes_over(knot: Knot, tmp_path: Path) -> None:
    """A new leader replaces the old epoch with its own and its records in one update."""
    await actuator_for(knot, tmp_path).apply(fenced(1, {"a": 1.0}, 5))
    successor = actuator_for(knot, tmp_path)
    await successor.apply(fenced(2, {"b": 1.0}, 9))
    assert await zone_epoch(knot) == ["9"]
    assert await served(knot) == (30, set(B_SERVES))
    assert knot.updates_processed() == 2
    assert successor.stats.takeovers == 1


async def test_takeover_with_records_in_place_still_writes_the_epoch(
        knot: Knot, tmp_path: Path) -> None:
    """A new leader whose plan the zone already serves still writes its epoch, which is
    what fences the old leader out."""
    await actuator_for(knot, tmp_path).apply(fenced(1, {"a": 1.0}, 5))
    await actuator_for(knot, tmp_path).apply(fenced(1, {"a": 1.0}, 9))
    assert await zone_epoch(knot) == ["9"]
    assert await served(knot) == (30, set(A_SERVES))


async def test_newer_epoch_written_after_our_read_is_refused_by_the_server(
        knot: Knot, tmp_path: Path) -> None:
    """A newer leader writing between our read and our update: knotd refuses our update
    (its prerequisite fails), we read the epoch again and raise FencedError; zone unchanged."""
    actuator = actuator_for(knot, tmp_path)
    await actuator.apply(fenced(1, {"a": 1.0}, 5))
    await set_zone_epoch(knot, "9")
    before, processed = await zone_state(knot), knot.updates_processed()
    with pytest.raises(FencedError, match=r"holds epoch 9 .* ours \(5\)"):
        await actuator.apply(fenced(2, {"b": 1.0}, 5))
    assert knot.updates_processed() == processed + 1  # sent: the server did the fencing
    assert prerequisites_failed(knot) == 1
    assert await zone_state(knot) == before


# Believed absent: the prerequisite is "no TXT RRset", which knotd answers with YXRRSET.
# Believed older: the prerequisite is TXT "2", which knotd answers with NXRRSET.
@pytest.mark.parametrize("cached", [None, 2], ids=["absent-yxrrset", "older-nxrrset"])
async def test_a_stale_view_sent_blindly_ends_fenced(
        knot: Knot, tmp_path: Path, cached: int | None) -> None:
    """An update sent on a stale view of the epoch record is refused by knotd and ends in
    FencedError, never in a silent success."""
    await set_zone_epoch(knot, "9")
    actuator = actuator_for(knot, tmp_path)
    forget(actuator, cached)
    before, processed = await zone_state(knot), knot.updates_processed()
    with pytest.raises(FencedError, match=r"holds epoch 9 .* ours \(3\)"):
        await actuator.apply(fenced(1, {"b": 1.0}, 3))
    assert knot.updates_processed() == processed + 1
    assert prerequisites_failed(knot) == 1
    assert await zone_state(knot) == before
    assert (actuator.stats.updates, actuator.stats.takeovers) == (0, 0)


async def test_a_race_below_our_epoch_is_temporary_and_the_retry_wins(
        knot: Knot, tmp_path: Path) -> None:
    """If the epoch changed under us but is still older than ours, the refusal is a
    temporary error naming both values, and the runner's retry takes over."""
    await set_zone_epoch(knot, "7")
    actuator = actuator_for(knot, tmp_path)
    forget(actuator, 5)
    before = await zone_state(knot)
    with pytest.raises(TemporaryActuatorError, match="changed from epoch 5 to 7"):
        await actuator.apply(fenced(1, {"b": 1.0}, 9))
    assert prerequisites_failed(knot) == 1
    assert await zone_state(knot) == before
    await actuator.apply(fenced(1, {"b": 1.0}, 9))
    assert await zone_epoch(knot) == ["9"]
    assert await served(knot) == (30, set(B_SERVES))


async def test_drift_reports_an_epoch_other_than_ours(knot: Knot, tmp_path: Path) -> None:
    """drift() lists an older or missing epoch record as a difference; apply restores it."""
    actuator = actuator_for(knot, tmp_path)
    applied = fenced(1, {"a": 1.0}, 5)
    await actuator.apply(applied)
    assert await actuator.drift(applied) == []
    await set_zone_epoch(knot, "3")
    assert await actuator.drift(applied) == [f"{EPOCH_NAME} TXT 3, want 5"]
    await set_zone_epoch(knot, None)
    assert await actuator.drift(applied) == [f"{EPOCH_NAME} TXT none, want 5"]
    await actuator.apply(applied)
    assert await zone_epoch(knot) == ["5"]
    assert await actuator.drift(applied) == []


async def test_drift_raises_fenced_over_a_newer_epoch(knot: Knot, tmp_path: Path) -> None:
    """drift() against a zone holding a newer epoch raises FencedError, not a difference."""
    actuator = actuator_for(knot, tmp_path)
    await actuator.apply(fenced(1, {"a": 1.0}, 5))
    await set_zone_epoch(knot, "9")
    with pytest.raises(FencedError, match=r"holds epoch 9 .* ours \(5\)"):
        await actuator.drift(fenced(1, {"a": 1.0}, 5))


@pytest.mark.parametrize("text", ["abc", "007", "0"])
async def test_an_epoch_record_that_is_no_epoch_is_permanent(
        knot: Knot, tmp_path: Path, text: str) -> None:
    """An epoch record not holding one canonical positive decimal stops fenced writes for
    good (it may or may not be newer): a permanent error, not fencing, nothing sent."""
    await set_zone_epoch(knot, text)
    before, processed = await zone_state(knot), knot.updates_processed()
    with pytest.raises(PermanentActuatorError, match=f"{re.escape(EPOCH_NAME)} .* holds no epoch"
                       ) as caught:
        await actuator_for(knot, tmp_path).apply(fenced(1, {"b": 1.0}, 5))
    assert not isinstance(caught.value, FencedError)
    assert await zone_state(knot) == before
    assert knot.updates_processed() == processed


async def test_an_acl_limited_to_address_records_refuses_fenced_updates(tmp_path: Path) -> None:
    """A key knotd may only use for A and AAAA cannot write the epoch TXT: permanent BADKEY,
    and nothing changes (docs/dns.md: let the key update TXT too)."""
    with running_knot(tmp_path / "knot", acl_rules="update-type: [A, AAAA]") as knot:
        with pytest.raises(PermanentActuatorError, match="BADKEY"):
            await actuator_for(knot, tmp_path).apply(fenced(1, {"a": 1.0}, 5))
        assert await served(knot) == (INITIAL_TTL, {INITIAL_ADDRESS})
        assert await zone_epoch(knot) == []


async def test_the_documented_acl_lets_fenced_updates_through(tmp_path: Path) -> None:
    """The narrow ACL of docs/dns.md (the name and the epoch record; A, AAAA and TXT) is
    enough for fenced updates."""
    with running_knot(tmp_path / "knot", acl_rules="""
            update-owner: name
            update-owner-match: equal
            update-owner-name: [app, _failover-epoch]
            update-type: [A, AAAA, TXT]
            """) as knot:
        await actuator_for(knot, tmp_path).apply(fenced(1, {"a": 1.0}, 5))
        assert await served(knot) == (30, set(A_SERVES))
        assert await zone_epoch(knot) == ["5"]
