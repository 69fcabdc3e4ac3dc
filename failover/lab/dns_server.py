"""A cluster's DNS server: answers ``*.cluster.local`` A queries on UDP and TCP of one port,
and TXT queries for the `HEARTBEAT` name with the current Unix time.

Like a cluster's CoreDNS it is authoritative for ``cluster.local`` only and refuses the rest
(no recursion). Its misbehaviour follows the cluster's `Faults`, read per query, so a fault
takes effect on the next query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable

import dns._asyncbackend
import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from failover.lab.faults import Counters, Faults

log = logging.getLogger(__name__)

ZONE = dns.name.from_text("cluster.local.")
TTL = 5

HEARTBEAT = "heartbeat.cluster.local"
"""The name whose TXT record is the Unix time in whole seconds, e.g. ``"1796165399"``: what a
job inside a real cluster would keep rewriting, so that a reader can tell a zone still being
updated from one served, frozen, by a DNS server whose cluster behind it has stopped."""
_HEARTBEAT = dns.name.from_text(HEARTBEAT)


class _Stream(dns._asyncbackend.StreamSocket):
    """An accepted TCP connection as a dnspython stream socket, so that dnspython's
    ``receive_tcp``/``send_tcp`` frame DNS over TCP for this server as for its clients.

    dnspython's asyncio backend only makes stream sockets by connecting out; it has no
    public way to wrap a connection a server accepted, hence these few lines. (The class is
    dns.asyncbackend.StreamSocket; mypy --strict sees it only under the private name.)
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(writer.get_extra_info("socket").family, socket.SOCK_STREAM)
        self._reader = reader
        self._writer = writer

    # `timeout` is dnspython's signature; it passes None, as the server gives no expiration.
    async def recv(self, size: int, timeout: float | None) -> bytes:  # noqa: ASYNC109
        return await self._reader.read(size)

    async def sendall(self, what: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        self._writer.write(what)
        await self._writer.drain()


class DnsServer:
    def __init__(self, name: str, answer: str, wrong: str, faults: Faults,
                 counters: Counters, clock: Callable[[], float] = time.time) -> None:
        """``clock``: the wall clock the heartbeat reads, Unix seconds (tests pass a fake one)."""
        self.name = name
        self.answer = answer
        self.wrong = wrong
        """The address a ``wrong`` fault answers with."""
        self.faults = faults
        self.counters = counters
        self.clock = clock
        self.port = 0
        self._frozen: float | None = None
        """The heartbeat's time while ``stale``: the clock when the fault was set."""
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        """Bind UDP and TCP on ``port``; with 0, a port free for both."""
        loop = asyncio.get_running_loop()
        for _ in range(50 if port == 0 else 1):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port))
            bound = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, host, bound,
                                                       reuse_address=True)
            except OSError:
                transport.close()
                if port:
                    raise
                continue  # the UDP port's TCP twin is taken: draw another
            self._udp, self.port = transport, bound
            return
        msg = f"no port on {host} free for both UDP and TCP"
        raise OSError(msg)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in self._pending:
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()

    def apply_faults(self) -> None:
        """Freeze the heartbeat now if the fault has become ``stale``, thaw it if it is no longer.

        The lab calls this as it sets a fault, so a frozen heartbeat holds the moment of the
        change, not of the next query; `reply` calls it too, for faults set on `Faults` directly.
        """
        if self.faults.dns != "stale":
            self._frozen = None
        elif self._frozen is None:  # already stale: keep the first moment, do not move it on
            self._frozen = self.clock()

    def heartbeat(self) -> int:
        """The heartbeat's value now, in whole Unix seconds."""
        return int(self.clock() if self._frozen is None else self._frozen)

    def reply(self, query: dns.message.Message, *, over_udp: bool) -> dns.message.Message | None:
        """The reply the current fault calls for; None for no reply at all."""
        self.apply_faults()
        fault = self.faults.dns
        if fault == "timeout":
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        if not question.name.is_subdomain(ZONE):
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.REFUSED)
            return response
        rcode = {"servfail": dns.rcode.SERVFAIL, "nxdomain": dns.rcode.NXDOMAIN,
                 "refused": dns.rcode.REFUSED}.get(fault)
        if rcode is not None:
            response.set_rcode(rcode)
            return response
        if fault == "truncate" and over_udp:
            response.flags |= dns.flags.TC
            return response
        if question.rdtype == dns.rdatatype.A:
            address = self.wrong if fault == "wrong" else self.answer
            response.answer.append(dns.rrset.from_text(question.name, TTL, "IN", "A", address))
        elif question.rdtype == dns.rdatatype.TXT and question.name == _HEARTBEAT:
            response.answer.append(dns.rrset.from_text(
                question.name, TTL, "IN", "TXT", f'"{self.heartbeat()}"'))
        return response  # other types: NOERROR, no data, as for a name with only an A record

    def send_udp(self, query: dns.message.Message, addr: tuple[str | int, ...]) -> None:
        response = self.reply(query, over_udp=True)
        if response is not None and self._udp is not None and not self._udp.is_closing():
            self._udp.sendto(response.to_wire(), addr)

    def answer_later(self, query: dns.message.Message, addr: tuple[str | int, ...]) -> None:
        async def later() -> None:
            await asyncio.sleep(self.faults.delay)
            self.send_udp(query, addr)

        task = asyncio.get_running_loop().create_task(later(), name=f"lab {self.name} slow DNS")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        stream = _Stream(reader, writer)
        try:
            while True:  # RFC 7766: a client may send several queries on one connection
                try:
                    query, _ = await dns.asyncquery.receive_tcp(stream)
                except EOFError:  # the client closed, between messages or within one
                    return
                except dns.exception.DNSException as exc:
                    self.counters.dns_tcp += 1
                    log.info("lab %s: unparsable DNS query over TCP: %s", self.name, exc)
                    return
                self.counters.dns_tcp += 1
                if self.faults.dns == "slow":
                    await asyncio.sleep(self.faults.delay)
                response = self.reply(query, over_udp=False)
                if response is None:
                    await reader.read()  # hold the connection, silent, until the client leaves
                    return
                await dns.asyncquery.send_tcp(stream, response)
        except ConnectionError:
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.server.counters.dns_udp += 1
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException as exc:
            log.info("lab %s: unparsable DNS query from %s: %s", self.server.name, addr, exc)
            return
        if self.server.faults.dns == "slow":
            self.server.answer_later(query, addr)
        else:
            self.server.send_udp(query, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for replies to clients that went away: nothing to do but note it.
        log.debug("lab %s: UDP error: %s", self.server.name, exc)

