"""etcd v3 through its gRPC-JSON gateway (``POST /v3/...``) over aiohttp, as Patroni does:
no gRPC stack, and the session, timeouts and errors are the ones the daemon already knows.

What the gateway does that a reader would not guess (measured against Debian's 3.4.23, see
docs/distributed.md): keys and values are base64, int64 fields are strings, a txn that fails
has no ``succeeded`` field at all, and a watch on a member without quorum hangs silently
unless asked with the ``hasleader`` header. Every read here is linearizable: a serializable
read on a partitioned member returns a stale leader.

With ``coordination.etcd.tls`` every call is HTTPS, the session's connector holding the
context (`failover.config.tls.client_context`); a failed handshake is one more way a member
cannot answer, said in words an operator can act on (which side refused, which key to
check).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from failover.config.addresses import Endpoint
from failover.config.tls import Material, client_context

HAS_LEADER = {"Grpc-Metadata-hasleader": "true"}
"""On watches: a member that has lost its leader cancels the watch instead of hanging."""
MAX_REPLY_BYTES = 4 * 1024 * 1024
"""Larger than any value failover writes (a plan, one replica's verdicts)."""


class EtcdUnavailable(Exception):
    """No member gave a usable answer in time (down, partitioned, no leader). Temporary."""


class EtcdRefused(Exception):
    """A member answered, and the answer says the request itself is wrong (a bad lease, a
    malformed body): retrying will not help."""


class LeaseGone(EtcdRefused):
    """A request named a lease etcd no longer has: it expired (we were paused or cut off
    longer than its TTL) or was revoked. Whatever was held under it is lost."""


def client_session(tls: Material | None) -> aiohttp.ClientSession:
    """The session an `EtcdClient` with the same ``tls`` calls through: no total timeout (a
    watch streams for as long as it lives; each call bounds itself), no proxy from the
    environment, and with ``tls`` the client context in its connector."""
    connector = None if tls is None else aiohttp.TCPConnector(ssl=client_context(tls))
    return aiohttp.ClientSession(connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=None), trust_env=False)


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(prefix: str) -> str:
    """The ``range_end`` that makes a range cover every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1  # prefixes here end in "/", never in 0xff
    return b64(bytes(raw))


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> KeyValue:
        return cls(_unb64(doc["key"]).decode(), _unb64(doc.get("value", "")),
                   int(doc.get("create_revision", 0)), int(doc.get("mod_revision", 0)),
                   int(doc.get("lease", 0)))


@dataclass(frozen=True, slots=True)
class Event:
    kind: Literal["put", "delete"]
    kv: KeyValue


class EtcdClient:
    """Calls go to the member that last answered, and on to the next when one cannot; each
    attempt has ``timeout`` seconds, so a call takes at most ``timeout`` x members.

    With ``tls`` the members are spoken to over HTTPS; ``session``'s connector must then
    hold the SSL context made from that material (the client only needs to know which
    scheme, and whether it sends a certificate, to say why a handshake failed)."""

    def __init__(self, endpoints: Sequence[Endpoint], timeout: float,
                 session: aiohttp.ClientSession, tls: Material | None = None) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoints")
        self._endpoints = list(endpoints)
        self._timeout = timeout
        self._session = session
        self._tls = tls
        self._scheme = "http" if tls is None else "https"
        self._current = 0
        self.last_error: str | None = None
        """Why the latest call found no member to answer; None once one does."""

    async def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        failures: list[str] = []
        for attempt in range(len(self._endpoints)):
            index = (self._current + attempt) % len(self._endpoints)
            endpoint = self._endpoints[index]
            try:
                async with asyncio.timeout(self._timeout):
                    reply = await self._post(endpoint, path, body)
            except (TimeoutError, aiohttp.ClientError, OSError, _Unavailable) as exc:
                failures.append(f"{endpoint}: {_describe(exc, self._tls)}")
                continue
            self._current = index
            self.last_error = None
            return reply
        self.last_error = f"{path}: " + "; ".join(failures)
        raise EtcdUnavailable(self.last_error)

    async def _post(self, endpoint: Endpoint, path: str,
                    body: Mapping[str, Any]) -> dict[str, Any]:
        async with self._session.post(f"{self._scheme}://{endpoint}/v3{path}",
                                      json=body) as response:
            data = await response.content.read(MAX_REPLY_BYTES + 1)
            if len(data) > MAX_REPLY_BYTES:
                msg = f"{path}: reply over {MAX_REPLY_BYTES} bytes"
                raise EtcdRefused(msg)
            try:
                doc = json.loads(data)
            except ValueError as exc:
                msg = f"HTTP {response.status}, not JSON"
                raise _Unavailable(msg) from exc
            if not isinstance(doc, dict):
                msg = f"HTTP {response.status}, not a JSON object"
                raise _Unavailable(msg)
            if response.status == 200:
                return doc
            message = str(doc.get("message") or doc.get("error") or "")
            # 5xx: no leader, request timed out, a member shutting down: another may serve.
            if response.status >= 500:
                msg = f"HTTP {response.status}: {message}"
                raise _Unavailable(msg)
            msg = f"{path}: HTTP {response.status}: {message}"
            if "lease not found" in message:
                raise LeaseGone(msg)
            raise EtcdRefused(msg)

    # -- leases -------------------------------------------------------------------------------

    async def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (id, the TTL etcd granted, which may be longer than asked)."""
        reply = await self.call("/lease/grant", {"TTL": ttl})
        return int(reply["ID"]), int(reply["TTL"])

    async def keepalive(self, lease: int) -> int:
        """Renew ``lease`` once; the TTL it has now, 0 when it has expired (or never was)."""
        reply = await self.call("/lease/keepalive", {"ID": lease})
        return int(reply.get("result", {}).get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        """End ``lease`` and delete its keys; one already gone is not an error."""
        try:
            await self.call("/lease/revoke", {"ID": lease})
        except EtcdRefused as exc:
            if "not found" not in str(exc):
                raise

    # -- keys ---------------------------------------------------------------------------------

    async def get(self, key: str, *, keys_only: bool = False) -> tuple[KeyValue | None, int]:
        """The key (None when absent) and the store's revision, read linearizably;
        ``keys_only`` leaves the value out (its revisions are there)."""
        body: dict[str, Any] = {"key": b64(key)}
        if keys_only:
            body["keys_only"] = True
        reply = await self.call("/kv/range", body)
        kvs = reply.get("kvs") or []
        return (KeyValue.of(kvs[0]) if kvs else None), int(reply["header"]["revision"])

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        reply = await self.call("/kv/range", {"key": b64(prefix),
                                              "range_end": prefix_end(prefix)})
        return [KeyValue.of(kv) for kv in reply.get("kvs") or []], \
            int(reply["header"]["revision"])

    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        """Unconditional put; the revision it made."""
        body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = lease
        reply = await self.call("/kv/put", body)
        return int(reply["header"]["revision"])

    async def delete(self, key: str) -> None:
        await self.call("/kv/deleterange", {"key": b64(key)})

    async def create(self, key: str, value: bytes, lease: int) -> tuple[bool, KeyValue | None]:
        """Put ``key`` only if it does not exist, bound to ``lease``: (whether this call made
        it, the key as it now is). A retry of a create that timed out but went through finds
        the key under our own lease: that counts as made."""
        reply = await self.call("/kv/txn", {
            "compare": [{"key": b64(key), "target": "CREATE", "result": "EQUAL",
                         "create_revision": "0"}],
            "success": [{"request_put": {"key": b64(key), "value": b64(value),
                                         "lease": lease}},
                        {"request_range": {"key": b64(key)}}],
            "failure": [{"request_range": {"key": b64(key)}}]})
        responses = reply.get("responses") or []
        kvs = responses[-1].get("response_range", {}).get("kvs") or [] if responses else []
        kv = KeyValue.of(kvs[0]) if kvs else None
        made = bool(reply.get("succeeded")) or (kv is not None and kv.lease == lease)
        return made, kv

    async def put_if_created(self, guard: str, create_revision: int, key: str,
                             value: bytes) -> bool:
        """Put ``key`` only while ``guard`` still is the key created at ``create_revision``:
        a leader's write that fails once it is no longer the leader (the fence)."""
        reply = await self.call("/kv/txn", {
            "compare": [{"key": b64(guard), "target": "CREATE", "result": "EQUAL",
                         "create_revision": str(create_revision)}],
            "success": [{"request_put": {"key": b64(key), "value": b64(value)}}]})
        return bool(reply.get("succeeded"))

    async def delete_if_created(self, key: str, create_revision: int) -> bool:
        """Delete ``key`` only if it is still the one created at ``create_revision``."""
        reply = await self.call("/kv/txn", {
            "compare": [{"key": b64(key), "target": "CREATE", "result": "EQUAL",
                         "create_revision": str(create_revision)}],
            "success": [{"request_delete_range": {"key": b64(key)}}]})
        return bool(reply.get("succeeded"))

    # -- watches ------------------------------------------------------------------------------

    async def watch(self, key: str, start_revision: int, *, prefix: bool = False,
                    ) -> AsyncIterator[list[Event]]:
        """Events on ``key`` (or under it) from ``start_revision`` on, a batch at a time, from
        one member; an empty batch says the watch is in place (the first) or still alive.
        Ends with EtcdUnavailable when the member loses its leader or the stream breaks:
        the caller re-reads and watches again."""
        request: dict[str, Any] = {"key": b64(key), "start_revision": str(start_revision),
                                   "progress_notify": True}
        if prefix:
            request["range_end"] = prefix_end(key)
        endpoint = self._endpoints[self._current]
        replied = False
        try:
            async with self._session.post(
                    f"{self._scheme}://{endpoint}/v3/watch",
                    json={"create_request": request},
                    headers=HAS_LEADER,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
            ) as response:
                if response.status != 200:
                    msg = f"watch on {endpoint}: HTTP {response.status}"
                    raise EtcdUnavailable(msg)
                replied = True
                async for line in response.content:
                    if not line.strip():
                        continue
                    yield _watch_events(json.loads(line), endpoint)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            self._current = (self._current + 1) % len(self._endpoints)
            msg = f"watch on {endpoint}: {_describe(exc, self._tls, before_reply=not replied)}"
            raise EtcdUnavailable(msg) from exc
        self._current = (self._current + 1) % len(self._endpoints)
        msg = f"watch on {endpoint}: the stream ended"
        raise EtcdUnavailable(msg)


def _watch_events(doc: Mapping[str, Any], endpoint: Endpoint) -> list[Event]:
    """The events of one streamed message (none in its creation and progress notices)."""
    if "error" in doc:
        msg = f"watch on {endpoint}: {doc['error'].get('message', doc)}"
        raise EtcdUnavailable(msg)
    result = doc.get("result", {})
    if result.get("canceled"):
        reason = result.get("cancel_reason") or "cancelled"
        msg = f"watch on {endpoint}: {reason}"
        raise EtcdUnavailable(msg)
    return [Event("delete" if e.get("type") == "DELETE" else "put", KeyValue.of(e["kv"]))
            for e in result.get("events") or []]


class _Unavailable(Exception):
    pass


_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)$")
_NOT_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
            "HTTP_REQUEST", "UNEXPECTED_EOF_WHILE_READING"}
"""OpenSSL's reasons when what answered the ClientHello does not speak TLS."""
_NAME_MISMATCH = {62, 64}
"""X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH: the CA is right, the
certificate is for another name."""
_UNKNOWN_ISSUER = {2, 7, 18, 19, 20, 21}
"""X509_V_ERR_ codes that mean no CA we trust signed the chain (or not that way)."""


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The OpenSSL error behind an aiohttp one: aiohttp wraps it (a refused handshake as
    ClientConnectorSSLError, a TLS 1.3 alert that arrives with the reply as ClientOSError),
    keeping the original as the cause. Some wrappers are SSLErrors themselves, without
    OpenSSL's reason: the original is the one that has it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError) and not isinstance(current, aiohttp.ClientError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _refused_our_certificate(reason: str) -> bool:
    # Alerts the client reads were sent by the member: about the certificate it got from
    # us (TLS 1.3 reports them only when the reply is read, not at the handshake).
    return "ALERT" in reason and ("CERTIFICATE" in reason or reason.endswith("UNKNOWN_CA")
                                  or reason.endswith("ACCESS_DENIED"))


def _describe_verify(error: ssl.SSLCertVerificationError, text: str, tls: Material) -> str:
    """Why we refused the member's certificate."""
    code = error.verify_code
    if code in _NAME_MISMATCH:
        return (f"TLS: the member's certificate is not for this address ({text}); it must "
                "name the endpoint as coordination.etcd.endpoints writes it")
    if code not in _UNKNOWN_ISSUER:
        return f"TLS: the member's certificate is not accepted ({text})"
    return (f"TLS: the member's certificate is not trusted ({text}); "
            "coordination.etcd.tls.ca_file must hold the CA that signed it"
            + ("" if tls.cas is not None else ", and none is set: the system's CAs were "
               "used"))


def _describe_tls(error: ssl.SSLError, tls: Material) -> str:
    text = _SSL_SOURCE.sub("", str(error.args[1] if len(error.args) > 1 else error))
    reason = error.reason or ""
    if isinstance(error, ssl.SSLCertVerificationError):
        return _describe_verify(error, text, tls)
    if _refused_our_certificate(reason):
        if tls.chain is None:
            return (f"TLS: the member refused us ({text}); it requires a client "
                    "certificate and none is set (coordination.etcd.tls cert_file, "
                    "key_file)")
        return (f"TLS: the member refused our client certificate ({text}); it must be "
                "signed by a CA in etcd's --trusted-ca-file (coordination.etcd.tls "
                "cert_file)")
    if reason in _NOT_TLS:
        return (f"TLS handshake failed ({text}): does the member serve plain HTTP? "
                "(coordination.etcd.tls is set)")
    return f"TLS: {text}"


def _describe(exc: BaseException, tls: Material | None = None, *,
              before_reply: bool = True) -> str:
    """``before_reply``: no status line came yet, so a disconnect is a refusal, not a
    stream that broke."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if tls is not None:
        error = _ssl_error(exc)
        if error is not None:
            return _describe_tls(error, tls)
        if isinstance(exc, aiohttp.ClientConnectorError) \
                and isinstance(exc.os_error, ConnectionResetError):
            # The connection is made and then reset: what an HTTP-only member does with
            # our ClientHello.
            return ("TLS handshake failed (connection reset by the member): does it serve "
                    "plain HTTP? (coordination.etcd.tls is set)")
    elif before_reply and isinstance(exc, aiohttp.ServerDisconnectedError):
        return ("the member closed the connection before answering (one that serves HTTPS "
                "only does so to plain HTTP, and coordination.etcd.tls is not set)")
    return str(exc) or type(exc).__name__
