"""The etcd client, a replica and the daemon over TLS, against a real three-member etcd 3.4
serving its clients HTTPS only with ``--client-cert-auth`` (tests/etcd.py), certificates
made here (tests/certs.py). A handshake refused either way, or a scheme the member does not
speak, is an EtcdUnavailable that says which member and what to fix, at once: never a hang,
never an exception of its own."""

from __future__ import annotations

import asyncio
import logging
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from failover.config import Config, load
from failover.config.addresses import Endpoint, split_hostport
from failover.config.coordination import Coordination
from failover.config.tls import ClientTls
from failover.coordination.etcd import EtcdClient, EtcdUnavailable, client_session
from failover.coordination.leader import Lease
from failover.coordination.replica import Replica
from failover.daemon.reload import Reloader
from failover.lab import Lab
from failover.metrics import Metrics
from tests.certs import Authority, Issued
from tests.e2e.test_daemon_with_lab import daemon_process, wait_until, write_config
from tests.etcd import Cluster, EtcdTls, running_etcd
from tests.servers import free_port

TIMEOUT = 1.0
"""Seconds one request to one member may take."""
TTL = 2.0


@dataclass(frozen=True)
class Pki:
    ca: Authority
    """Signs etcd's certificate, and the client certificates etcd accepts."""
    client: Issued
    stranger: Authority
    """Signs nothing etcd or its clients know: the wrong CA."""

    def tls(self, *, ca: Path | None = None, client: Issued | None = None) -> ClientTls:
        """``coordination.etcd.tls`` as the config loads it (files read and checked)."""
        return ClientTls(ca_file=ca or self.ca.cert,
                         cert_file=None if client is None else client.cert,
                         key_file=None if client is None else client.key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = Authority(folder / "ca")
    return Pki(ca, ca.issue("failover", server=False, client=True),
               Authority(folder / "stranger", name="a CA etcd does not know"))


@pytest.fixture(scope="module")
def etcd(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # etcd's own certificate needs client use too: with --client-cert-auth its gateway dials
    # the member's gRPC with it, and is refused ("incompatible key usage") without.
    server = pki.ca.issue("etcd", server=True, client=True)
    health = pki.ca.issue("etcd-health", server=False, client=True)
    with running_etcd(tmp_path_factory.mktemp("etcd"),
                      tls=EtcdTls(pki.ca.cert, server, health)) as cluster:
        yield cluster


def endpoints(cluster: Cluster) -> list[Endpoint]:
    return [split_hostport(e) for e in cluster.endpoints]


@asynccontextmanager
async def connected(cluster: Cluster, tls: ClientTls | None) -> AsyncIterator[EtcdClient]:
    """A client on the session a replica makes for the same ``tls``."""
    material = None if tls is None else tls.material
    async with client_session(material) as session:
        yield EtcdClient(endpoints(cluster), TIMEOUT, session, material)


async def refused(client: EtcdClient) -> tuple[str, float]:
    """Why a put fails, and in how many seconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(EtcdUnavailable) as caught:
        await client.put("/t/refused", b"x")
    return str(caught.value), loop.time() - started


def names_every_member(message: str, cluster: Cluster) -> bool:
    return all(f"{e}: " in message for e in cluster.endpoints)


async def test_with_the_ca_and_a_client_certificate_keys_are_read_written_and_a_lease_kept(
        etcd: Cluster, pki: Pki) -> None:
    async with connected(etcd, pki.tls(client=pki.client)) as client:
        loop = asyncio.get_running_loop()
        lease = Lease(client, TTL, loop.time)
        renewing = asyncio.create_task(lease.run())
        try:
            await asyncio.wait_for(lease.granted.wait(), 5)
            assert lease.id is not None
            first_bound = lease.valid_until
            made, kv = await client.create("/t/tls/leader", b"a", lease.id)
            assert made
            assert kv is not None
            await client.put("/t/tls/vantage/a", b"seen")
            got, _ = await client.get("/t/tls/vantage/a")
            assert got is not None
            assert got.value == b"seen"
            assert [k.key for k in (await client.get_prefix("/t/tls/"))[0]] == \
                ["/t/tls/leader", "/t/tls/vantage/a"]

            seen: list[bytes] = []

            async def watch() -> None:
                async for batch in client.watch("/t/tls/vantage/", got.mod_revision + 1,
                                                prefix=True):
                    seen.extend(e.kv.value for e in batch)
                    if seen:
                        return

            watching = asyncio.create_task(watch())
            await client.put("/t/tls/vantage/a", b"again")
            await asyncio.wait_for(watching, 5)
            assert seen == [b"again"]

            # Kept: a renewal sent after the first grant's TTL ran out, and the key under it
            # is still there.
            async def renewed_past_the_first_ttl() -> bool:
                return lease.valid_until >= first_bound + TTL
            await wait_until(renewed_past_the_first_ttl, 3 * TTL, "a renewal past the TTL")
            held, _ = await client.get("/t/tls/leader")
            assert held is not None
            assert held.lease == lease.id
            assert client.last_error is None
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            await lease.revoke()


async def test_without_a_client_certificate_etcd_refuses_us_and_the_error_says_so(
        etcd: Cluster, pki: Pki) -> None:
    async with connected(etcd, pki.tls()) as client:
        message, took = await refused(client)
        assert "TLS: the member refused us" in message, message
        assert "requires a client certificate and none is set" in message
        assert names_every_member(message, etcd), message
        assert took < TIMEOUT  # refused at once, not timed out
        assert client.last_error == message
        with pytest.raises(EtcdUnavailable, match=r"watch on .*: TLS: the member refused us"):
            async for _ in client.watch("/t/refused", 1):
                pass


async def test_a_client_certificate_from_another_ca_is_refused_and_the_error_says_so(
        etcd: Cluster, pki: Pki, tmp_path: Path) -> None:
    theirs = Authority(tmp_path / "theirs", name="some other CA").issue(
        "failover", server=False, client=True)
    async with connected(etcd, pki.tls(client=theirs)) as client:
        message, took = await refused(client)
    assert "TLS: the member refused our client certificate" in message, message
    assert "--trusted-ca-file" in message
    assert names_every_member(message, etcd), message
    assert took < TIMEOUT


async def test_a_ca_that_did_not_sign_etcds_certificate_refuses_it_and_the_error_says_so(
        etcd: Cluster, pki: Pki) -> None:
    async with connected(etcd, pki.tls(ca=pki.stranger.cert, client=pki.client)) as client:
        message, took = await refused(client)
    assert "TLS: the member's certificate is not trusted" in message, message
    assert "certificate verify failed" in message
    assert "coordination.etcd.tls.ca_file" in message
    assert names_every_member(message, etcd), message
    assert took < TIMEOUT


async def test_plain_http_against_the_tls_etcd_fails_at_once_and_says_why(
        etcd: Cluster) -> None:
    async with connected(etcd, None) as client:
        message, took = await refused(client)
        assert "closed the connection before answering" in message, message
        assert "coordination.etcd.tls is not set" in message
        assert names_every_member(message, etcd), message
        assert took < TIMEOUT
        with pytest.raises(EtcdUnavailable, match=r"watch on .*: the member closed"):
            async for _ in client.watch("/t/refused", 1):
                pass


async def test_tls_against_a_plain_http_etcd_fails_at_once_and_says_why(
        pki: Pki, tmp_path: Path) -> None:
    with running_etcd(tmp_path, size=1) as plain:
        async with connected(plain, pki.tls(client=pki.client)) as client:
            message, took = await refused(client)
    assert "TLS handshake failed" in message, message
    assert "does it serve plain HTTP?" in message
    assert names_every_member(message, plain), message
    assert took < TIMEOUT


def coordination(etcd: Cluster, tls: ClientTls, prefix: str) -> Coordination:
    return Coordination.model_validate({
        "etcd": {"endpoints": etcd.endpoints, "prefix": prefix, "lease_ttl": TTL,
                 "timeout": 0.5, "tls": tls},
        "vantage": "a", "min_vantages": 1})


async def test_a_replica_refused_by_etcd_says_why_in_its_status(
        etcd: Cluster, pki: Pki) -> None:
    loop = asyncio.get_running_loop()
    replica = Replica(coordination(etcd, pki.tls(), "/t/replica-refused"), loop.time, 0.2,
                      lambda _what, _why: None, lambda _values: None)
    running = asyncio.create_task(replica.run())
    try:
        async def said() -> bool:
            return not replica.status()["etcd"]["ok"] and \
                replica.status()["etcd"]["error"] != "not connected yet"
        await wait_until(said, 5, "an etcd error in the status")
        status = replica.status()
        assert status["role"] == "follower"
        assert names_every_member(status["etcd"]["error"], etcd), status
        assert "TLS: the member refused us" in status["etcd"]["error"]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def _config_with_tls(folder: Path, lab: Lab, status: int, etcd: Cluster, tls: str,
                     prefix: str) -> Path:
    path = write_config(folder, lab, status)
    endpoints = ", ".join(f'"{e}"' for e in etcd.endpoints)
    path.write_text(path.read_text() + textwrap.dedent(f"""\
        coordination:
          etcd: {{endpoints: [{endpoints}], prefix: {prefix}, lease_ttl: {TTL}s,
                 timeout: 0.5s, tls: {tls}}}
          vantage: a
          min_vantages: 1
        """))
    return path


async def test_a_reload_with_new_tls_files_keeps_them_for_the_next_restart(
        etcd: Cluster, pki: Pki, lab: Lab, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The coordination section is taken at start only (the daemon builds its replica, and
    the replica its session, once), its certificates' bytes too: a reload that changes only
    them is told apart from one that changes nothing, and said to wait for a restart."""
    client = pki.ca.issue("rotated", server=False, client=True)
    path = _config_with_tls(tmp_path, lab, free_port(), etcd,
                            f"{{ca_file: {pki.ca.cert}, cert_file: {client.cert}, "
                            f"key_file: {client.key}}}", "/t/reload")
    running = load(path)
    pki.ca.issue("rotated", server=False, client=True)  # the same paths, new bytes
    taken: list[Config] = []

    def apply(new: Config) -> None:
        taken.append(new)

    reloader = Reloader(path, lambda: running, apply, Metrics(CollectorRegistry()))
    with caplog.at_level(logging.WARNING, logger="failover.daemon"):
        assert reloader.reload()
    assert "coordination changes take effect at the next restart" in caplog.text
    [new] = taken
    assert new.coordination is not None
    assert running.coordination is not None
    old_tls, new_tls = running.coordination.etcd.tls, new.coordination.etcd.tls
    assert old_tls is not None
    assert new_tls is not None
    assert old_tls.cert_file == new_tls.cert_file
    assert old_tls.material.chain != new_tls.material.chain


async def test_the_daemon_with_coordination_etcd_tls_becomes_leader(
        etcd: Cluster, pki: Pki, lab: Lab, tmp_path: Path) -> None:
    status = free_port()
    path = _config_with_tls(tmp_path, lab, status, etcd,
                            f"{{ca_file: {pki.ca.cert}, cert_file: {pki.client.cert}, "
                            f"key_file: {pki.client.key}}}", "/t/daemon")
    async with daemon_process(path, status) as daemon:
        async def leading() -> bool:
            try:
                doc = await daemon.status()
            except (OSError, ValueError, aiohttp.ClientError):
                return False
            return doc.get("role") == "leader" and doc["etcd"]["ok"]
        await wait_until(leading, 20, "the daemon leading through TLS etcd")
