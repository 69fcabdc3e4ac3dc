"""DNS actuator: RFC 2136 dynamic updates, TSIG-signed, to the zone's authoritative server.

The GSLB name answers with the addresses of every mapped cluster whose share is above 0,
each address once (A and AAAA by family). DNS has no weights for address records, so a
share only decides in or out; ``docs/dns.md`` explains what that means for steering.

Every apply reads the name's A and AAAA records from the server itself (no resolver, no
cache), sends one UPDATE only if they differ from the plan (delete + add of both RRsets
in one message, which the server applies atomically), and reads them back to verify, all on
one TCP connection. The runner's deadline bounds the whole sequence; nothing here adds one.
If no mapped cluster has a share above 0 the records stay as they are: an empty answer
would take every client down, whereas the last published set may still serve some.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import dns._asyncbackend
import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.tsig
import dns.update

from failover.actuators.base import Applied, PermanentActuatorError, TemporaryActuatorError
from failover.config.actuators import DnsActuator as DnsActuatorSpec
from failover.config.addresses import IP as IpAddress
from failover.config.addresses import Endpoint
from failover.model import Plan

log = logging.getLogger(__name__)

T = TypeVar("T")

MIN_SHARE = 1e-6
"""A share at or below this counts as 0: weights.json rounds shares to 6 decimals, and a
float residue must not publish a cluster the planner has emptied."""

_FAMILIES: tuple[tuple[int, dns.rdatatype.RdataType], ...] = (
    (4, dns.rdatatype.A), (6, dns.rdatatype.AAAA))
"""IP version -> the record type that publishes it."""

_TSIG_ERRORS: tuple[tuple[type[dns.tsig.PeerError], str, str], ...] = (
    # knot 3.2 also answers BADKEY when it knows the key but its ACL does not let the key
    # update this zone, name or type.
    (dns.tsig.PeerBadKey, "BADKEY", "the server does not know this key name and algorithm,"
                                    " or its ACL does not let this key update this name"),
    (dns.tsig.PeerBadSignature, "BADSIG", "wrong secret, or a different algorithm"),
    (dns.tsig.PeerBadTime, "BADTIME", "the clocks differ by more than the 300 s fudge"),
    (dns.tsig.PeerBadTruncation, "BADTRUNC", "the server refused the truncated MAC"),
)
"""TSIG errors the server reports (RFC 8945 5.2), with what usually causes them."""

_UPDATE_HINTS: dict[dns.rcode.Rcode, str] = {
    dns.rcode.NOTAUTH: "the server does not serve the zone, or its ACL does not allow"
                       " updates signed with this key",
    dns.rcode.REFUSED: "the server's policy refuses updates from this client or key",
    dns.rcode.NOTZONE: "the name is outside the zone",
    dns.rcode.NOTIMP: "the server does not implement dynamic updates",
}


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


@dataclass
class DnsUpdateStats:
    """What the actuator did, for tests and for metrics the daemon may export."""

    updates: int = 0
    """UPDATE messages the server accepted."""
    in_sync: int = 0
    """Applies that sent nothing: the server already served the plan's records."""
    kept: int = 0
    """Applies that kept the records as they were: no mapped cluster had a share above 0."""


def published_addresses(plan: Plan, addresses: Mapping[str, Iterable[IpAddress]]
                        ) -> frozenset[IpAddress]:
    """Addresses of the mapped clusters whose share is above 0; clusters not mapped count not."""
    return frozenset(address for cluster, mapped in addresses.items()
                     if plan.share(cluster) > MIN_SHARE for address in mapped)


def wanted_records(addresses: frozenset[IpAddress], ttl: int) -> Records:
    """Both families are always decided: one with no address is deleted, so a cluster that
    left does not linger in AAAA because only A had something to publish."""
    a, aaaa = (RRset(ttl, frozenset(x for x in addresses if x.version == version))
               for version, _ in _FAMILIES)
    return Records(a, aaaa)


def differences(name: dns.name.Name, wanted: Records, served: Records) -> list[str]:
    """What the server serves that the plan does not want, one short line each, sorted."""
    found: list[str] = []
    for _, rdtype in _FAMILIES:
        want, have = wanted.family(rdtype), served.family(rdtype)
        label = f"{name} {dns.rdatatype.to_text(rdtype)}"
        found.extend(f"{label} {address} missing"
                     for address in sorted(want.addresses - have.addresses))
        found.extend(f"{label} {address} unexpected"
                     for address in sorted(have.addresses - want.addresses))
        if want.addresses and have.addresses and want.ttl != have.ttl:
            found.append(f"{label} TTL {have.ttl}, want {want.ttl}")
    return found


def _show(records: Records) -> str:
    both = [*sorted(records.a.addresses), *sorted(records.aaaa.addresses)]
    return " ".join(str(address) for address in both) or "nothing"


def tsig_key(spec: DnsActuatorSpec) -> dns.tsig.Key | None:
    """The TSIG key; its secret was read and decoded once, when the config was loaded."""
    if spec.tsig is None:
        return None
    return dns.tsig.Key(spec.tsig.name, spec.tsig.secret, spec.tsig.algorithm)


class _Connection:
    """One TCP connection to the server, framed by dnspython's ``send_tcp``/``receive_tcp``.

    Not ``dns.asyncquery.tcp``: it authenticates the reply while parsing it, so a reply
    we cannot authenticate would be lost, and its rcode is what tells the operator what
    is wrong. ``exchange`` can read one unauthenticated; `_authenticate` checks it after.
    """

    # The class is dns.asyncbackend.StreamSocket, imported there from this private module
    # without __all__, so mypy --strict only sees it under the private name.
    def __init__(self, sock: dns._asyncbackend.StreamSocket) -> None:
        self._sock = sock

    async def exchange(self, message: dns.message.Message, *,
                       authenticated: bool = True) -> dns.message.Message:
        """Send ``message``, read the reply; no expiration, as the runner's deadline cuts it.

        ``authenticated=False`` parses a signed reply without checking its TSIG.
        """
        await dns.asyncquery.send_tcp(self._sock, message)
        # keyring=False is from_wire's documented "parse TSIG, do not validate"; dnspython
        # annotates receive_tcp's keyring as a dict or None only, though it passes it on.
        keyring = None if authenticated else False
        reply, _ = await dns.asyncquery.receive_tcp(
            self._sock, keyring=keyring)  # type: ignore[arg-type]
        return reply


class DnsUpdateActuator:
    """Publishes the serving clusters' addresses at one name with RFC 2136 updates."""

    def __init__(self, *, server: Endpoint, zone: str, name: str, ttl: int,
                 addresses: Mapping[str, Iterable[IpAddress]], key: dns.tsig.Key | None) -> None:
        self.server = server
        self.zone = dns.name.from_text(zone)
        self.record_name = dns.name.from_text(name)
        self.ttl = ttl
        self.addresses = {cluster: tuple(mapped) for cluster, mapped in addresses.items()}
        self._key = key
        self.stats = DnsUpdateStats()

    @classmethod
    def from_config(cls, spec: DnsActuatorSpec) -> DnsUpdateActuator:
        """Raises PermanentActuatorError for what the config model cannot check: an
        unreadable or non-base64 TSIG secret, a name outside the zone. ``spec.timeout`` is
        the runner's: it bounds each apply and drift check from outside."""
        return cls(server=spec.server, zone=spec.zone, name=spec.name,
                   ttl=spec.ttl, addresses=spec.addresses, key=tsig_key(spec))

    @property
    def name(self) -> str:
        return f"dns:{self.record_name}@{self.server}"

    def wanted(self, plan: Plan) -> Records | None:
        """The records the plan asks for; None when nothing would be left to publish."""
        addresses = published_addresses(plan, self.addresses)
        return wanted_records(addresses, self.ttl) if addresses else None

    async def apply(self, applied: Applied) -> None:
        wanted = self.wanted(applied.plan)
        if wanted is None:
            self.stats.kept += 1
            log.warning("%s: no mapped cluster has a share above 0 in plan %d; keeping the "
                        "records as they are (%d times so far)", self.name,
                        applied.plan.version, self.stats.kept,
                        extra={"actuator": self.name, "version": applied.plan.version})
            return

        async def work(connection: _Connection) -> None:
            await self._converge(connection, wanted, applied.plan.version)

        await self._session(work)

    async def drift(self, applied: Applied) -> list[str]:
        """Differences between the server's records and ``applied.plan``; [] when in sync or
        when the plan keeps the records as they are (nothing to compare with)."""
        wanted = self.wanted(applied.plan)
        if wanted is None:
            return []

        async def work(connection: _Connection) -> list[str]:
            return differences(self.record_name, wanted, await self._read(connection))

        return await self._session(work)

    async def _converge(self, connection: _Connection, wanted: Records, version: int) -> None:
        if not differences(self.record_name, wanted, await self._read(connection)):
            self.stats.in_sync += 1
            log.debug("%s: records already match plan %d", self.name, version)
            return
        await self._update(connection, wanted)
        self.stats.updates += 1
        left = differences(self.record_name, wanted, await self._read(connection))
        if left:
            # Temporary: a retry sends the update again, and the plan may be right next time
            # (a concurrent hand edit); a server that keeps dropping it stays in error.
            msg = (f"{self.name}: the server accepted the update but serves something else: "
                   + "; ".join(left))
            raise TemporaryActuatorError(msg)
        log.info("%s: now serves %s for plan %d", self.name, _show(wanted), version,
                 extra={"actuator": self.name, "version": version})

    async def _session(self, work: Callable[[_Connection], Awaitable[T]]) -> T:
        """Run ``work`` on one connection; library errors become ours."""
        try:
            host = await self._server_address()
            backend = dns.asyncbackend.get_backend("asyncio")
            # dnspython leaves Backend.make_socket() unannotated.
            sock = await backend.make_socket(  # type: ignore[no-untyped-call]
                dns.inet.af_for_address(host), socket.SOCK_STREAM, 0, None,
                (host, self.server.port))
            # Closing does not wait for the peer, so a stalled server cannot hold us here
            # once the runner's deadline has cancelled the work.
            async with sock:
                return await work(_Connection(sock))
        except (OSError, EOFError) as exc:  # refused, reset, closed mid-reply
            msg = f"{self.name}: cannot talk to {self.server}: {type(exc).__name__}: {exc}"
            raise TemporaryActuatorError(msg) from exc
        except dns.exception.DNSException as exc:
            msg = f"{self.name}: unusable reply from {self.server}: {type(exc).__name__}: {exc}"
            raise TemporaryActuatorError(msg) from exc

    async def _server_address(self) -> str:
        """The server's IP; a host name is looked up on every apply, never cached."""
        if dns.inet.is_address(self.server.host):
            return self.server.host
        infos = await asyncio.get_running_loop().getaddrinfo(self.server.host, self.server.port)
        return str(infos[0][4][0])

    async def _read(self, connection: _Connection) -> Records:
        a, aaaa = [await self._query(connection, rdtype) for _, rdtype in _FAMILIES]
        return Records(a, aaaa)

    async def _query(self, connection: _Connection, rdtype: dns.rdatatype.RdataType) -> RRset:
        # No RD: an authoritative server answers from its zone; a resolver would have to say
        # it is not authoritative instead of answering from a cache.
        query = dns.message.make_query(self.record_name, rdtype, flags=0)
        reply = await connection.exchange(query)
        if not query.is_response(reply):
            msg = (f"{self.name}: the reply from {self.server} does not match the "
                   f"{dns.rdatatype.to_text(rdtype)} query (id or question differ)")
            raise TemporaryActuatorError(msg)
        rcode = reply.rcode()
        if rcode == dns.rcode.SERVFAIL:  # e.g. the zone is still loading: try again
            msg = f"{self.name}: {self.server} answers SERVFAIL for {self.record_name}"
            raise TemporaryActuatorError(msg)
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not reply.flags & dns.flags.AA:
            msg = (f"{self.name}: {self.server} is not authoritative for {self.record_name} "
                   f"(rcode {dns.rcode.to_text(rcode)}, "
                   f"AA {'set' if reply.flags & dns.flags.AA else 'not set'}); "
                   f"point 'server' at a primary of {self.zone}")
            raise PermanentActuatorError(msg)
        if reply.get_rrset(reply.answer, self.record_name, dns.rdataclass.IN,
                           dns.rdatatype.CNAME) is not None:
            # RFC 2136 3.4.2.2: address records added beside a CNAME are silently ignored.
            msg = (f"{self.name}: {self.record_name} is a CNAME on {self.server}; "
                   "address records cannot be published beside it")
            raise PermanentActuatorError(msg)
        rrset = reply.get_rrset(reply.answer, self.record_name, dns.rdataclass.IN, rdtype)
        if rrset is None:
            return RRset(0, frozenset())
        found = frozenset(ipaddress.ip_address(rdata.address) for rdata in rrset
                          if isinstance(rdata, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA))
        return RRset(rrset.ttl, found)

    def _update_message(self, wanted: Records) -> dns.update.UpdateMessage:
        update = dns.update.UpdateMessage(self.zone)
        for _, rdtype in _FAMILIES:
            rrset = wanted.family(rdtype)
            if rrset.addresses:
                # replace = delete the RRset, then add each record: one atomic change.
                update.replace(self.record_name, rrset.ttl, rdtype,
                               *sorted(str(a) for a in rrset.addresses))
            else:
                update.delete(self.record_name, rdtype)
        if self._key is not None:
            update.use_tsig(self._key)
        return update

    async def _update(self, connection: _Connection, wanted: Records) -> None:
        update = self._update_message(wanted)
        # Read it unauthenticated first: an error reply is often unsigned, and its rcode
        # is the useful part. Authenticated below before anything is trusted.
        reply = await connection.exchange(update, authenticated=False)
        if not update.is_response(reply):
            msg = f"{self.name}: the reply from {self.server} does not match the update"
            raise TemporaryActuatorError(msg)
        rcode = reply.rcode()
        if self._key is not None:
            # from_wire keeps the bytes it parsed (dnspython 2.7+): the MAC covers them.
            assert reply.wire is not None  # noqa: S101  # why: set by every from_wire
            self._authenticate(self._key, reply.wire, update, rcode)
        if rcode == dns.rcode.NOERROR:
            return
        text = dns.rcode.to_text(rcode)
        hint = _UPDATE_HINTS.get(rcode)
        msg = (f"{self.name}: {self.server} answered the update of zone {self.zone} with "
               f"{text}" + (f" ({hint})" if hint else ""))
        # SERVFAIL is the server's own trouble (journal, zone not loaded): worth a retry.
        # Every other rcode says the request itself is unwelcome and will stay so.
        if rcode == dns.rcode.SERVFAIL:
            raise TemporaryActuatorError(msg)
        raise PermanentActuatorError(msg)

    def _authenticate(self, key: dns.tsig.Key, wire: bytes, update: dns.update.UpdateMessage,
                      rcode: dns.rcode.Rcode) -> None:
        prefix = f"{self.name}: {self.server} rejected TSIG key {key.name.to_text(True)}"
        try:
            dns.message.from_wire(wire, keyring=key, request_mac=update.mac)
        except dns.tsig.PeerError as exc:
            code, why = next(((c, w) for kind, c, w in _TSIG_ERRORS if isinstance(exc, kind)),
                             (type(exc).__name__, str(exc)))
            msg = f"{prefix}: {code} ({why}; rcode {dns.rcode.to_text(rcode)})"
            raise PermanentActuatorError(msg) from exc
        except dns.exception.FormError as exc:
            if rcode != dns.rcode.NOERROR:
                return  # an unsigned error reply: the rcode says what went wrong
            msg = f"{self.name}: {self.server} sent an unsigned success reply to a signed update"
            raise PermanentActuatorError(msg) from exc
        except (dns.tsig.BadSignature, dns.message.UnknownTSIGKey) as exc:
            msg = (f"{self.name}: the reply from {self.server} does not authenticate with key "
                   f"{key.name.to_text(True)}: {type(exc).__name__}")
            raise PermanentActuatorError(msg) from exc
