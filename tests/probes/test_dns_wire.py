"""The DNS probe against a scripted server: truncation, malformed and mismatched replies."""

from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from tests.probes.conftest import Prober, dns_job
from tests.probes.dns_responder import Responder, answer, truncated, with_rcode


def address(responder: Responder) -> str:
    return f"127.0.0.1:{responder.port}"


async def test_query_has_recursion_desired_and_fresh_random_ids(
        responder: Responder, probe: Prober) -> None:
    """Every query sets RD, asks exactly the configured name and type, and uses a new id."""
    for _ in range(4):
        assert (await probe(dns_job(address(responder), "api.example", qtype="A"))).ok
    queries = responder.udp_queries
    assert all(query.flags & dns.flags.RD for query in queries)
    assert all(str(query.question[0].name) == "api.example." for query in queries)
    assert len({query.id for query in queries}) == 4


async def test_truncated_udp_reply_is_retried_over_tcp(responder: Responder, probe: Prober) -> None:
    """A TC reply makes one TCP retry, which asks the budget for a second permit first."""
    responder.udp_reply = truncated
    result = await probe(dns_job(address(responder), "big.example", expect=["10.7.7.7"]))
    assert result.ok, result
    assert result.detail == "10.7.7.7 (over tcp)"
    assert probe.permit.calls == 2
    assert (len(responder.udp_queries), len(responder.tcp_queries)) == (1, 1)
    assert responder.tcp_queries[0].id == responder.udp_queries[0].id


async def test_reply_cut_off_mid_record_is_retried_over_tcp(
        responder: Responder, probe: Prober) -> None:
    """A TC reply that ends inside a record is a truncation to retry, not a malformed reply."""
    def cut_off(query: dns.message.Message) -> bytes:
        response = answer(query, "10.7.7.7")
        response.flags |= dns.flags.TC
        return response.to_wire()[:-3]

    responder.udp_reply = cut_off
    result = await probe(dns_job(address(responder), "big.example"))
    assert result.ok, result
    assert result.detail == "10.7.7.7 (over tcp)"
    assert probe.permit.calls == 2


async def test_truncated_reply_to_another_query_is_not_retried(
        responder: Responder, probe: Prober) -> None:
    """A TC reply whose id differs is rejected and costs no TCP request."""
    def stray(query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        response.id = (query.id + 1) % 65536
        response.flags |= dns.flags.TC
        return response.to_wire()

    responder.udp_reply = stray
    result = await probe(dns_job(address(responder), "big.example"))
    assert (result.ok, result.failure_class) == (False, "dns_error")
    assert probe.permit.calls == 1
    assert responder.tcp_queries == []


async def test_untruncated_reply_needs_no_tcp(responder: Responder, probe: Prober) -> None:
    """A complete UDP reply is used as is: one permit, no TCP connection."""
    result = await probe(dns_job(address(responder), "small.example"))
    assert result.ok
    assert probe.permit.calls == 1
    assert responder.tcp_queries == []


async def test_garbage_reply_is_a_dns_error(responder: Responder, probe: Prober) -> None:
    """Bytes that are not a DNS message give dns_error, not an exception or a wait."""
    responder.udp_reply = lambda query: b"\x00\x01garbage"
    result = await probe(dns_job(address(responder), "x.example"), within=5)
    assert (result.ok, result.failure_class) == (False, "dns_error")
    assert "malformed" in result.detail
    assert result.latency < 1


async def test_reply_with_wrong_id_is_not_accepted(responder: Responder, probe: Prober) -> None:
    """A well-formed answer whose id differs from the query's is rejected at once."""
    def wrong_id(query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        response.id = (query.id + 1) % 65536
        response.answer.append(
            dns.rrset.from_text(query.question[0].name, 30, "IN", "A", "10.6.6.6"))
        return response.to_wire()

    responder.udp_reply = wrong_id
    result = await probe(dns_job(address(responder), "x.example"), within=5)
    assert (result.ok, result.failure_class) == (False, "dns_error")
    assert "does not match" in result.detail
    assert result.latency < 1


async def test_reply_for_another_question_is_not_accepted(
        responder: Responder, probe: Prober) -> None:
    """A reply with the right id but another name in its question is rejected."""
    def other_question(query: dns.message.Message) -> bytes:
        other = dns.message.make_query("other.example", "A")
        other.id = query.id
        response = dns.message.make_response(other)
        response.answer.append(dns.rrset.from_text("other.example.", 30, "IN", "A", "10.6.6.6"))
        return response.to_wire()

    responder.udp_reply = other_question
    result = await probe(dns_job(address(responder), "x.example"), within=5)
    assert (result.ok, result.failure_class) == (False, "dns_error")


async def test_servfail_is_servfail(responder: Responder, probe: Prober) -> None:
    """SERVFAIL from the server is its own class."""
    responder.udp_reply = with_rcode(dns.rcode.SERVFAIL)
    result = await probe(dns_job(address(responder), "x.example"))
    assert (result.ok, result.failure_class, result.detail) == (False, "servfail", "rcode SERVFAIL")


async def test_other_rcodes_are_dns_errors_naming_the_rcode(
        responder: Responder, probe: Prober) -> None:
    """Any rcode without a class of its own is dns_error, with the rcode's name in the detail."""
    responder.udp_reply = with_rcode(dns.rcode.NOTIMP)
    result = await probe(dns_job(address(responder), "x.example"))
    assert (result.ok, result.failure_class, result.detail) == (False, "dns_error", "rcode NOTIMP")


async def test_cname_chain_is_followed_to_the_addresses(
        responder: Responder, probe: Prober) -> None:
    """Addresses behind a CNAME in the answer count as the answer."""
    def via_cname(query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        name = query.question[0].name
        response.answer.append(dns.rrset.from_text(name, 30, "IN", "CNAME", "real.example."))
        response.answer.append(
            dns.rrset.from_text("real.example.", 30, "IN", "A", "10.5.5.6", "10.5.5.5"))
        return response.to_wire()

    responder.udp_reply = via_cname
    result = await probe(dns_job(address(responder), "alias.example", expect=["10.5.5.5"]))
    assert result.ok, result
    assert result.detail == "10.5.5.5, 10.5.5.6"


async def test_cname_without_target_addresses_is_no_answer(
        responder: Responder, probe: Prober) -> None:
    """A CNAME alone, with no address for its target, is no_answer."""
    def dangling(query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        response.answer.append(
            dns.rrset.from_text(query.question[0].name, 30, "IN", "CNAME", "gone.example."))
        return response.to_wire()

    responder.udp_reply = dangling
    result = await probe(dns_job(address(responder), "alias.example"))
    assert (result.ok, result.failure_class) == (False, "no_answer")


async def test_silent_server_times_out(responder: Responder, probe: Prober) -> None:
    """A server that drops the query yields timeout at the deadline."""
    responder.udp_reply = lambda query: None
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe(dns_job(address(responder), "x.example"), within=0.2)
    assert (result.ok, result.failure_class) == (False, "timeout")
    assert 0.2 <= loop.time() - started < 0.35
