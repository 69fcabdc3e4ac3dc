"""A real Knot DNS (knotd) on 127.0.0.1 for tests: an authoritative primary that takes
TSIG-signed dynamic updates, run in the foreground and stopped at teardown.

    with running_knot(tmp_path) as knot:
        ... update and query 127.0.0.1:knot.port, zone knot.zone, key knot.key_name ...

knotd is required, not optional: CI installs it (Debian: knot), and a missing binary
fails the test. Zone changes live in memory and in the journal under the work folder;
``zonefile-sync: -1`` keeps knotd from writing the zone file back.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.servers import Foreground, free_port, free_udp_tcp_port

STARTUP_TIMEOUT = 10.0
"""Seconds to wait for a started knotd to serve the zone before the test fails."""
ZONE = "gslb.example."
KEY_NAME = "failover-key"
INITIAL_ADDRESS = "192.0.2.99"
"""The record ``app.gslb.example.`` has in the zone file, before any update."""
NAME = f"app.{ZONE}"
INITIAL_TTL = 300


def knotd_binary() -> str:
    found = shutil.which("knotd") or shutil.which("/usr/sbin/knotd")
    if found is None:
        msg = "knotd not found on PATH or in /usr/sbin: install it (Debian: knot)"
        raise RuntimeError(msg)
    return found


def config_text(*, workdir: Path, rundir: Path, port: int, secret: str,
                acl_rules: str = "") -> str:
    """knot.conf: one zone, one key, an ACL letting that key (and only it) update the zone;
    ``acl_rules`` adds lines to that ACL (e.g. ``update-type: [TXT]``)."""
    rules = "".join(f"    {line.strip()}\n" for line in acl_rules.splitlines() if line.strip())
    return f"""\
server:
    rundir: "{rundir}"
    listen: 127.0.0.1@{port}
    # No `user:`: knotd then stays the user that started it (root in CI), so it can read
    # and write the temp folders it is given.

log:
  - target: stdout
    any: info

database:
    storage: "{workdir}"
    journal-db-max-size: 64M    # the default 20G is only a sparse map, but tests need little

key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {secret}

acl:
  - id: failover-update
    key: {KEY_NAME}
    action: update
{rules}
zone:
  - domain: {ZONE}
    file: "{workdir / 'gslb.example.zone'}"
    acl: failover-update
    zonefile-sync: -1           # never write updates back to the zone file
    journal-content: changes
"""


def zone_text(nonce: str) -> str:
    # The nonce record tells our knotd from any other process that might hold the port.
    return f"""\
$ORIGIN {ZONE}
$TTL 300
@       SOA  ns.{ZONE} hostmaster.{ZONE} 1 3600 600 86400 60
@       NS   ns.{ZONE}
ns      A    127.0.0.1
ready   TXT  "{nonce}"
app     {INITIAL_TTL} A {INITIAL_ADDRESS}
"""


@dataclass
class Knot(Foreground):
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    rundir: Path
    secret: str
    """The TSIG secret of ``KEY_NAME``, base64, as in a BIND or knot key file."""
    paused: bool = field(default=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "knotd.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def updates_processed(self) -> int:
        """UPDATE messages knotd has taken in for the zone, from its log.

        knotd logs the line before it applies the update and answers, so once a client has
        its answer the line is there.
        """
        return self.log().count(f"[{ZONE}] DDNS, processing")

    def write_secret(self, path: Path, secret: str | None = None) -> Path:
        """Write ``secret`` (default: the real one) to ``path`` as the actuator reads it."""
        path.write_text((secret or self.secret) + "\n", encoding="ascii")
        return path

    def stop(self) -> None:
        self.stop_process()
        shutil.rmtree(self.rundir, ignore_errors=True)


def _serves(port: int, nonce: str) -> bool:
    """True once knotd answers, over TCP as the actuator talks, with our zone's nonce."""
    query = dns.message.make_query(f"ready.{ZONE}", "TXT")
    try:
        reply = dns.query.tcp(query, "127.0.0.1", port=port, timeout=0.5)
    except ConnectionRefusedError:
        time.sleep(0.01)  # poll interval while knotd binds, not a synchronisation
        return False
    except (dns.exception.DNSException, OSError, EOFError):
        return False
    if reply.rcode() != dns.rcode.NOERROR:
        return False
    texts = [b"".join(rdata.strings).decode() for rrset in reply.answer
             if rrset.rdtype == dns.rdatatype.TXT for rdata in rrset]
    return texts == [nonce]


def start_knot(workdir: Path, *, acl_rules: str = "") -> Knot:
    """Start knotd serving ``gslb.example.`` on a free port; return once it serves the zone."""
    binary = knotd_binary()
    failures: list[str] = []
    for attempt in range(3):  # the free port may be taken between our check and knotd's bind
        port = free_udp_tcp_port()
        instance = workdir / f"knot-{port}"
        instance.mkdir(parents=True)
        # The control socket path must fit in sun_path (108 bytes); pytest's tmp_path may
        # not, and knotd exits when it cannot bind it.
        rundir = Path(tempfile.mkdtemp(prefix="knot-"))
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        nonce = secrets.token_hex(8)
        (instance / "gslb.example.zone").write_text(zone_text(nonce))
        conf = instance / "knot.conf"
        conf.write_text(config_text(workdir=instance, rundir=rundir, port=port, secret=secret,
                                    acl_rules=acl_rules))
        with (instance / "knotd.log").open("wb") as log:
            process = subprocess.Popen([binary, "--config", str(conf)], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = Knot(process, port, instance, rundir, secret)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if _serves(port, nonce):
                return server
        server.stop()
        failures.append(f"attempt {attempt + 1} (port {port}): exit {process.returncode}\n"
                        f"{server.log()}")
    raise RuntimeError("knotd did not start:\n" + "\n".join(failures))


@contextmanager
def running_knot(workdir: Path, *, acl_rules: str = "") -> Iterator[Knot]:
    server = start_knot(workdir, acl_rules=acl_rules)
    try:
        yield server
    finally:
        server.stop()


def free_port_nobody_listens_on() -> int:
    """A TCP port on 127.0.0.1 with no listener right now: connections to it are refused."""
    return free_port()
