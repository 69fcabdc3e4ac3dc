"""The DNS probe's query built once per name, and a lean reading of the common reply.

dnspython builds and parses a message as a tree of immutable objects, which is most of a
probe's cost. A probe asks the same question every time, so its wire form is built once and
only the id changes. Most replies are the plain case (NOERROR, the question echoed byte for
byte, records of the asked type owned by the question's name, no authority section, at most
an empty OPT): `plain_addresses` reads those straight from the bytes. Anything else returns
None and the caller hands the reply to dnspython, so every unusual reply is judged exactly as
before, and the plain case is judged the same (a property test holds the two together).
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from dataclasses import dataclass

import dns.message
import dns.rdatatype

from failover.config.addresses import IP as IpAddress

EDNS_PAYLOAD = 1232
"""UDP payload size advertised: the DNS Flag Day 2020 value, safe from IP fragmentation."""

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
_QR, _OPCODE, _TC, _RCODE = 0x8000, 0x7800, 0x0200, 0x000F
_POINTER_TO_QUESTION = b"\xc0\x0c"
_OPT, _CLASS_IN = 41, 1
_RDATA_LENGTH: dict[int, int] = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 16}


@dataclass(frozen=True, slots=True)
class Query:
    """One question's wire form with id 0, and what a plain reply must echo."""

    wire: bytes
    question: bytes
    """The question section as sent: a reply to this query starts its body with it."""
    qtype: int

    def with_id(self, qid: int) -> bytes:
        return qid.to_bytes(2, "big") + self.wire[2:]

    def message(self, qid: int) -> dns.message.Message:
        """The query as dnspython's message, for the uncommon paths (TCP, unusual replies)."""
        return dns.message.from_wire(self.with_id(qid))


@functools.lru_cache(maxsize=4096)
def query(name: str, qtype: str) -> Query:
    """The query for ``name``: RD set (like make_query), EDNS0 with a 1,232-byte payload."""
    message = dns.message.make_query(name, qtype, use_edns=0, payload=EDNS_PAYLOAD)
    message.id = 0
    wire = message.to_wire()
    # Header, then the one question: the absolute name, its type and class.
    name_wire = message.question[0].name.to_wire()
    assert name_wire is not None  # noqa: S101 - to_wire() without a file returns the bytes
    question_length = len(name_wire) + 4
    return Query(wire, wire[12:12 + question_length], dns.rdatatype.from_text(qtype))


def plain_addresses(  # noqa: PLR0911 - one way out for each way a reply is not plain
        reply: bytes, qid: int, asked: Query) -> list[IpAddress] | None:
    """The addresses of a plain reply to ``asked`` with id ``qid``, sorted as the probe reports
    them (an empty list for a plain NOERROR with no records); None when the reply is not plain
    and dnspython must read it."""
    if len(reply) < 12:
        return None
    rid, flags, questions, answers, authority, additional = _HEADER.unpack_from(reply)
    if (rid != qid or flags & (_QR | _OPCODE | _TC | _RCODE) != _QR or questions != 1
            or authority or additional > 1):
        return None
    position = 12 + len(asked.question)
    if reply[12:position] != asked.question:
        return None
    found: set[IpAddress] = set()
    expected_length = _RDATA_LENGTH.get(asked.qtype)
    for _ in range(answers):
        if reply[position:position + 2] != _POINTER_TO_QUESTION:
            return None  # owned by another name (a CNAME chain): dnspython follows it
        if len(reply) < position + 12:
            return None
        rtype, rclass, _ttl, length = _RR_FIXED.unpack_from(reply, position + 2)
        position += 12
        if rtype != asked.qtype or rclass != _CLASS_IN or length != expected_length:
            return None
        if len(reply) < position + length:
            return None
        found.add(ipaddress.ip_address(reply[position:position + length]))
        position += length
    if additional:
        # Only the OPT record a server echoes to an EDNS query, empty: root name, type 41.
        if len(reply) != position + 11 or reply[position] != 0:
            return None
        rtype, _payload, extended, length = _RR_FIXED.unpack_from(reply, position + 1)
        # The TTL's top byte extends the rcode: non-zero is not NOERROR.
        if rtype != _OPT or length != 0 or extended >> 24:
            return None
        position += 11
    if position != len(reply):
        return None  # trailing bytes: dnspython's verdict on them stands
    return sorted(found, key=lambda address: (address.version, address))
