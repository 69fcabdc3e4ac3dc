"""The DNS actuator's records as values: what a plan wants published at the name, how it
differs from what the server serves, the epoch record's content, and the TSIG key. Pure, so
that ``dns.py`` is only the talking to the server."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset
import dns.tsig

from failover.config.actuators import DnsActuator as DnsActuatorSpec
from failover.config.addresses import IP as IpAddress
from failover.model import Plan

MIN_SHARE = 1e-6
"""A share at or below this counts as 0: weights.json rounds shares to 6 decimals, and a
float residue must not publish a cluster the planner has emptied."""

FAMILIES: tuple[tuple[int, dns.rdatatype.RdataType], ...] = (
    (4, dns.rdatatype.A), (6, dns.rdatatype.AAAA))
"""IP version -> the record type that publishes it."""

EPOCH_LABEL = "_failover-epoch"
"""The epoch record's owner, under the zone apex: a leading underscore keeps it out of any
host name a client could look up (RFC 8552)."""

EPOCH_TTL = 0
"""TTL of the epoch record. Only the actuator reads it, straight from the primary, and
prerequisites ignore TTLs; 0 keeps any resolver an operator points at it from caching a
value that changes at every takeover."""

@dataclass(frozen=True)
class RRset:
    """One address RRset at the name, as published or as wanted; empty when absent."""

    ttl: int
    addresses: frozenset[IpAddress]


@dataclass(frozen=True)
class Records:
    """The A and AAAA RRsets at one name."""

    a: RRset
    aaaa: RRset

    def family(self, rdtype: dns.rdatatype.RdataType) -> RRset:
        return self.a if rdtype == dns.rdatatype.A else self.aaaa


@dataclass(frozen=True)
class ZoneEpoch:
    """The epoch record as read from the zone."""

    value: int | None
    """The epoch the zone holds; None when it has no epoch record yet."""

    def show(self) -> str:
        return "none" if self.value is None else str(self.value)


@dataclass
class DnsUpdateStats:
    """What the actuator did, for tests and for metrics the daemon may export."""

    updates: int = 0
    """UPDATE messages the server accepted."""
    in_sync: int = 0
    """Applies that sent nothing: the server already served the plan's records."""
    kept: int = 0
    """Applies that kept the records as they were: no mapped cluster had a share above 0."""
    takeovers: int = 0
    """Accepted updates that wrote our epoch over an older one, or where there was none."""


def published_addresses(plan: Plan, addresses: Mapping[str, Iterable[IpAddress]]
                        ) -> frozenset[IpAddress]:
    """Addresses of the mapped clusters whose share is above 0; clusters not mapped count not."""
    shares = plan.shares  # once: a lookup per cluster would be quadratic at fleet scale
    return frozenset(address for cluster, mapped in addresses.items()
                     if shares.get(cluster, 0.0) > MIN_SHARE for address in mapped)


def wanted_records(addresses: frozenset[IpAddress], ttl: int) -> Records:
    """Both families are always decided: one with no address is deleted, so a cluster that
    left does not linger in AAAA because only A had something to publish."""
    a, aaaa = (RRset(ttl, frozenset(x for x in addresses if x.version == version))
               for version, _ in FAMILIES)
    return Records(a, aaaa)


def differences(name: dns.name.Name, wanted: Records, served: Records) -> list[str]:
    """What the server serves that the plan does not want, one short line each, sorted."""
    found: list[str] = []
    for _, rdtype in FAMILIES:
        want, have = wanted.family(rdtype), served.family(rdtype)
        label = f"{name} {dns.rdatatype.to_text(rdtype)}"
        found.extend(f"{label} {address} missing"
                     for address in sorted(want.addresses - have.addresses))
        found.extend(f"{label} {address} unexpected"
                     for address in sorted(have.addresses - want.addresses))
        if want.addresses and have.addresses and want.ttl != have.ttl:
            found.append(f"{label} TTL {have.ttl}, want {want.ttl}")
    return found


def show(records: Records) -> str:
    both = [*sorted(records.a.addresses), *sorted(records.aaaa.addresses)]
    return " ".join(str(address) for address in both) or "nothing"


def epoch_rdata(epoch: int) -> dns.rdtypes.ANY.TXT.TXT:
    """The epoch record's one TXT string: the epoch in decimal."""
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [str(epoch).encode()])


def parse_epoch(rrset: dns.rrset.RRset | None) -> int | None:
    """The epoch an epoch RRset holds, None when there is none; ValueError when it holds
    anything but one TXT of one canonical positive decimal. Canonical, because the
    prerequisite we send is rebuilt from the number and must match the bytes exactly."""
    if rrset is None:
        return None
    rdatas = list(rrset)
    if len(rdatas) != 1 or not isinstance(rdatas[0], dns.rdtypes.ANY.TXT.TXT) \
            or len(rdatas[0].strings) != 1:
        shown = ", ".join(rdata.to_text() for rdata in rdatas)
        msg = f"it holds {shown}, want one TXT of one string"
        raise ValueError(msg)
    text = rdatas[0].strings[0].decode("ascii", errors="replace")
    if not (text.isascii() and text.isdigit()) or text.startswith("0"):
        msg = f"{text!r} is not a positive decimal without leading zeros"
        raise ValueError(msg)
    return int(text)


def tsig_key(spec: DnsActuatorSpec) -> dns.tsig.Key | None:
    """The TSIG key; its secret was read and decoded once, when the config was loaded."""
    if spec.tsig is None:
        return None
    return dns.tsig.Key(spec.tsig.name, spec.tsig.secret, spec.tsig.algorithm)
