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

In distributed mode (``Applied.epoch`` set) every update is fenced: the zone keeps the
leader's epoch in TXT ``_failover-epoch.<zone>``, and each update carries a prerequisite on
it (RFC 2136 2.4), so the server itself refuses a write from a deposed leader. Prerequisites
only test equality, so the actuator reads the epoch to tell "newer than ours" (fenced) from
"older" (take over: compare-and-swap old -> ours, with the record changes, in one message).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
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
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset
import dns.tsig
import dns.update

from failover.actuators.base import (
    Applied,
    FencedError,
    PermanentActuatorError,
    TemporaryActuatorError,
)
from failover.actuators.dns_records import (
    EPOCH_LABEL,
    EPOCH_TTL,
    FAMILIES,
    DnsUpdateStats,
    Records,
    RRset,
    ZoneEpoch,
    differences,
    epoch_rdata,
    parse_epoch,
    published_addresses,
    show,
    tsig_key,
    wanted_records,
)
from failover.actuators.dns_replies import UPDATE_HINTS, authenticate
from failover.config.actuators import DnsActuator as DnsActuatorSpec
from failover.config.addresses import IP as IpAddress
from failover.config.addresses import Endpoint
from failover.model import Plan

log = logging.getLogger(__name__)

T = TypeVar("T")

_PREREQUISITE_FAILED = frozenset({dns.rcode.NXRRSET, dns.rcode.YXRRSET})
"""Rcodes of an update refused because a prerequisite did not hold (RFC 2136 3.2.5): the
epoch record was not what the update expected."""



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
        self.epoch_name = dns.name.from_text(EPOCH_LABEL, self.zone)
        self.stats = DnsUpdateStats()
        self._zone_epoch: ZoneEpoch | None = None
        """The epoch record as last read or written; None until read, after a refusal, and
        while an update that changes it is in flight (its outcome is then unknown)."""

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

        epoch = applied.epoch

        async def work(connection: _Connection) -> None:
            if epoch is None:
                await self._converge(connection, wanted, applied.plan.version)
            else:
                await self._converge_fenced(connection, wanted, applied.plan.version, epoch)

        await self._session(work)

    async def drift(self, applied: Applied) -> list[str]:
        """Differences between the server's records and ``applied.plan``; [] when in sync or
        when the plan keeps the records as they are (nothing to compare with)."""
        wanted = self.wanted(applied.plan)
        if wanted is None:
            return []

        epoch = applied.epoch

        async def work(connection: _Connection) -> list[str]:
            found: list[str] = []
            if epoch is not None:
                seen = await self._read_epoch(connection)
                self._refuse_if_newer(seen, epoch)
                if seen.value != epoch:
                    found.append(f"{self.epoch_name} TXT {seen.show()}, want {epoch}")
            return differences(self.record_name, wanted, await self._read(connection)) + found

        return await self._session(work)

    async def _converge(self, connection: _Connection, wanted: Records, version: int) -> None:
        if not differences(self.record_name, wanted, await self._read(connection)):
            self.stats.in_sync += 1
            log.debug("%s: records already match plan %d", self.name, version)
            return
        await self._update(connection, self._update_message(wanted))
        self.stats.updates += 1
        left = differences(self.record_name, wanted, await self._read(connection))
        if left:
            # Temporary: a retry sends the update again, and the plan may be right next time
            # (a concurrent hand edit); a server that keeps dropping it stays in error.
            msg = (f"{self.name}: the server accepted the update but serves something else: "
                   + "; ".join(left))
            raise TemporaryActuatorError(msg)
        log.info("%s: now serves %s for plan %d", self.name, show(wanted), version,
                 extra={"actuator": self.name, "version": version})

    async def _converge_fenced(self, connection: _Connection, wanted: Records, version: int,
                               epoch: int) -> None:
        """`_converge` for leader ``epoch``: the update also checks, and if older replaces,
        the zone's epoch record, so the server refuses it once a newer leader has written."""
        seen = self._zone_epoch
        if seen is None:
            seen = await self._read_epoch(connection)
        self._refuse_if_newer(seen, epoch)
        served = await self._read(connection)
        if seen.value == epoch and not differences(self.record_name, wanted, served):
            self.stats.in_sync += 1
            log.debug("%s: records already match plan %d at epoch %d", self.name, version, epoch)
            return
        update = self._update_message(wanted, (seen, epoch))
        # Unknown until the reply: if the deadline cuts us here, the next apply reads it.
        self._zone_epoch = None
        if not await self._update(connection, update):
            now = await self._read_epoch(connection)
            self._refuse_if_newer(now, epoch)
            # Temporary: someone changed the record between our read and our update; the
            # retry compares against what we just read.
            msg = (f"{self.name}: {self.server} refused the update of zone {self.zone}: "
                   f"{self.epoch_name} changed from epoch {seen.show()} to {now.show()} "
                   f"since it was read (ours {epoch}); retrying")
            raise TemporaryActuatorError(msg)
        self._zone_epoch = ZoneEpoch(epoch)
        self.stats.updates += 1
        if seen.value != epoch:
            self.stats.takeovers += 1
            log.info("%s: zone %s now at epoch %d (was %s)", self.name, self.zone, epoch,
                     seen.show(), extra={"actuator": self.name, "epoch": epoch})
        left = differences(self.record_name, wanted, await self._read(connection))
        if left:
            # Temporary, as in _converge; a newer leader's write shows up on the retry.
            msg = (f"{self.name}: the server accepted the update but serves something else: "
                   + "; ".join(left))
            raise TemporaryActuatorError(msg)
        log.info("%s: now serves %s for plan %d at epoch %d", self.name, show(wanted),
                 version, epoch, extra={"actuator": self.name, "version": version,
                                        "epoch": epoch})

    def _refuse_if_newer(self, seen: ZoneEpoch, epoch: int) -> None:
        """Raise FencedError if the zone holds a newer epoch than ``epoch``; else remember it."""
        if seen.value is not None and seen.value > epoch:
            # Forgotten, not kept: the next attempt reads again, so an operator who resets
            # the record (e.g. after rebuilding etcd, whose revisions restart) needs no restart.
            self._zone_epoch = None
            msg = (f"{self.name}: zone {self.zone} holds epoch {seen.value} at "
                   f"{self.epoch_name}, newer than ours ({epoch}); another replica leads, "
                   "nothing was written")
            raise FencedError(msg)
        self._zone_epoch = seen

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
        a, aaaa = [await self._query(connection, rdtype) for _, rdtype in FAMILIES]
        return Records(a, aaaa)

    async def _read_epoch(self, connection: _Connection) -> ZoneEpoch:
        rrset = await self._ask(connection, self.epoch_name, dns.rdatatype.TXT,
                                kept="the epoch record")
        try:
            return ZoneEpoch(parse_epoch(rrset))
        except ValueError as exc:
            # Permanent: we cannot tell whether it is newer than ours, so we neither write
            # over it nor call ourselves fenced; someone has to look.
            msg = (f"{self.name}: {self.epoch_name} TXT on {self.server} holds no epoch "
                   f"({exc}); delete it or set it to the leader's epoch")
            raise PermanentActuatorError(msg) from exc

    async def _query(self, connection: _Connection, rdtype: dns.rdatatype.RdataType) -> RRset:
        rrset = await self._ask(connection, self.record_name, rdtype, kept="address records")
        if rrset is None:
            return RRset(0, frozenset())
        found = frozenset(ipaddress.ip_address(rdata.address) for rdata in rrset
                          if isinstance(rdata, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA))
        return RRset(rrset.ttl, found)

    async def _ask(self, connection: _Connection, name: dns.name.Name,
                   rdtype: dns.rdatatype.RdataType, *, kept: str) -> dns.rrset.RRset | None:
        """The ``rdtype`` RRset at ``name`` as the server's zone holds it; None when absent.
        ``kept`` names what the actuator keeps there, for the error about a CNAME."""
        # No RD: an authoritative server answers from its zone; a resolver would have to say
        # it is not authoritative instead of answering from a cache.
        query = dns.message.make_query(name, rdtype, flags=0)
        reply = await connection.exchange(query)
        if not query.is_response(reply):
            msg = (f"{self.name}: the reply from {self.server} does not match the "
                   f"{dns.rdatatype.to_text(rdtype)} query (id or question differ)")
            raise TemporaryActuatorError(msg)
        rcode = reply.rcode()
        if rcode == dns.rcode.SERVFAIL:  # e.g. the zone is still loading: try again
            msg = f"{self.name}: {self.server} answers SERVFAIL for {name}"
            raise TemporaryActuatorError(msg)
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not reply.flags & dns.flags.AA:
            msg = (f"{self.name}: {self.server} is not authoritative for {name} "
                   f"(rcode {dns.rcode.to_text(rcode)}, "
                   f"AA {'set' if reply.flags & dns.flags.AA else 'not set'}); "
                   f"point 'server' at a primary of {self.zone}")
            raise PermanentActuatorError(msg)
        if reply.get_rrset(reply.answer, name, dns.rdataclass.IN,
                           dns.rdatatype.CNAME) is not None:
            # RFC 2136 3.4.2.2: records added beside a CNAME are silently ignored.
            msg = (f"{self.name}: {name} is a CNAME on {self.server}; "
                   f"{kept} cannot be published beside it")
            raise PermanentActuatorError(msg)
        return reply.get_rrset(reply.answer, name, dns.rdataclass.IN, rdtype)

    def _update_message(self, wanted: Records, fence: tuple[ZoneEpoch, int] | None = None
                        ) -> dns.update.UpdateMessage:
        """The update making the records ``wanted``; with ``fence`` = (the epoch record as
        read, ours), only if the record still holds what was read, writing ours over it."""
        update = dns.update.UpdateMessage(self.zone)
        if fence is not None:
            seen, epoch = fence
            if seen.value is None:
                # 2.4.3 "RRset does not exist", not 2.4.5 "name not in use": only the TXT
                # is ours, and another type at the name must not block the first write.
                update.absent(self.epoch_name, dns.rdatatype.TXT)
            else:
                update.present(self.epoch_name, epoch_rdata(seen.value))  # 2.4.2
            if seen.value != epoch:
                update.replace(self.epoch_name, EPOCH_TTL, epoch_rdata(epoch))
        for _, rdtype in FAMILIES:
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

    async def _update(self, connection: _Connection, update: dns.update.UpdateMessage) -> bool:
        """Send ``update``: True once applied; False when the server refused it because a
        prerequisite did not hold (only an update that has some can get that answer)."""
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
            authenticate(self.name, self.server, self._key, reply.wire, update, rcode)
        if rcode == dns.rcode.NOERROR:
            return True
        if update.prerequisite and rcode in _PREREQUISITE_FAILED:
            return False
        text = dns.rcode.to_text(rcode)
        hint = UPDATE_HINTS.get(rcode)
        msg = (f"{self.name}: {self.server} answered the update of zone {self.zone} with "
               f"{text}" + (f" ({hint})" if hint else ""))
        # SERVFAIL is the server's own trouble (journal, zone not loaded): worth a retry.
        # Every other rcode says the request itself is unwelcome and will stay so.
        if rcode == dns.rcode.SERVFAIL:
            raise TemporaryActuatorError(msg)
        raise PermanentActuatorError(msg)
