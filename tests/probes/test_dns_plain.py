"""The lean reading of a plain DNS reply agrees with dnspython's on every reply it accepts."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.probes import dns_wire
from failover.probes.dns import _addresses

NAMES = ("api.example.", "x.svc.cluster.local.", "API.Example.")


@st.composite
def replies(draw: st.DrawFn) -> tuple[bytes, int, dns_wire.Query]:
    qtype = draw(st.sampled_from(("A", "AAAA")))
    name = draw(st.sampled_from(NAMES[:2]))
    asked = dns_wire.query(name, qtype)
    qid = draw(st.integers(0, 65535))
    query = asked.message(qid)
    reply = dns.message.make_response(query)
    if draw(st.integers(0, 5)) == 0:
        reply.id = draw(st.integers(0, 65535))
    reply.set_rcode(draw(st.sampled_from((dns.rcode.NOERROR,) * 4 + (
        dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL, dns.rcode.BADVERS))))
    # Mostly the plain case, so that many examples reach the lean reading.
    owner = draw(st.sampled_from((name, name, name, *NAMES, "other.example.")))
    kinds = st.sampled_from((qtype, qtype, qtype, "A", "AAAA", "CNAME", "TXT"))
    for rtype in draw(st.lists(kinds, max_size=3)):
        data = {"A": "10.0.0.{}", "AAAA": "fd00::{}", "CNAME": "target{}.example.",
                "TXT": '"t{}"'}[rtype].format(draw(st.integers(1, 3)))
        reply.answer.append(dns.rrset.from_text(owner, 30, "IN", rtype, data))
    if draw(st.integers(0, 5)) == 0:
        reply.authority.append(dns.rrset.from_text("example.", 30, "IN", "NS", "ns.example."))
    if draw(st.integers(0, 5)) == 0:
        reply.use_edns(False)
    if draw(st.integers(0, 5)) == 0:
        reply.flags |= dns.flags.TC
    wire = reply.to_wire()
    cut = draw(st.sampled_from((None,) * 6 + (-1, -5, 11)))
    if cut is not None:
        wire = wire[:cut]
    if draw(st.integers(0, 7)) == 0:
        wire += b"\x00"
    return wire, qid, asked


def dnspython_reading(wire: bytes, qid: int, asked: dns_wire.Query) -> list[object] | None:
    """What the probe's dnspython path makes of a reply when it is a usable NOERROR answer."""
    query = asked.message(qid)
    try:
        message = dns.message.from_wire(wire, raise_on_truncation=True)
    except Exception:  # any refusal means "not usable", the fact compared
        return None
    if not query.is_response(message) or message.rcode() != dns.rcode.NOERROR:
        return None
    return list(_addresses(message))


@settings(max_examples=1500, deadline=None)
@given(replies())
def test_a_plain_reply_reads_as_dnspython_reads_it(case: tuple[bytes, int, dns_wire.Query]) -> None:
    wire, qid, asked = case
    plain = dns_wire.plain_addresses(wire, qid, asked)
    if plain is not None:
        assert plain == dnspython_reading(wire, qid, asked)


def test_the_common_reply_is_plain() -> None:
    """The reply a server like dnsmasq sends to the probe takes the lean path."""
    asked = dns_wire.query("api.example.", "A")
    reply = dns.message.make_response(asked.message(77))
    reply.answer.append(dns.rrset.from_text("api.example.", 30, "IN", "A", "10.0.0.2", "10.0.0.1"))
    plain = dns_wire.plain_addresses(reply.to_wire(), 77, asked)
    assert [str(address) for address in plain or ()] == ["10.0.0.1", "10.0.0.2"]
    assert dns_wire.plain_addresses(reply.to_wire(), 78, asked) is None


def test_query_wire_differs_only_in_its_id() -> None:
    asked = dns_wire.query("api.example", "AAAA")
    one, two = asked.message(1), asked.message(2)
    assert (one.id, two.id) == (1, 2)
    assert one.flags & dns.flags.RD
    assert str(one.question[0].name) == "api.example."
    assert one.edns == 0
    assert one.payload == dns_wire.EDNS_PAYLOAD
