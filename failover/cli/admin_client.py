"""``failover drain|undrain|freeze|unfreeze|reload|register|deregister``: the admin API from
the command line.

It needs only the daemon: the URL and token come from flags, the environment, or the config
file the daemon runs with (``-c``). Of that file only ``listen`` is read and validated: these
are break-glass commands, and a typo in a cluster or an actuator must not disable them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from failover.api.token import TOKEN_ENV, TokenError, read_token_file
from failover.config import ConfigError, Problem
from failover.config.addresses import UNIX_PREFIX, Endpoint, UnixSocket
from failover.config.loader import parse_model
from failover.config.models import Listen
from failover.config.tls import SERVED_BY_ANOTHER

OK, USER_ERROR, USAGE, UNREACHABLE = 0, 1, 2, 3
DEFAULT_URL = "http://127.0.0.1:9471"
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - where to reach a wildcard


class _ListenOnly(BaseModel):
    """A config file seen through its ``listen`` section; every other key is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    listen: Listen = Field(default_factory=Listen)


def listen_section(path: Path | str) -> Listen:
    """The ``listen`` section of the config at ``path``, validated (errors located as
    ``file:line: listen.key: message``), whatever the rest of the file holds. The YAML must
    still parse: a file that is not YAML has no section to read. The TLS key is not read:
    it is the daemon's, and the operator running the CLI may not be able to."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [Problem(1, "", f"cannot read config: {exc}")]) from exc
    return parse_model(_ListenOnly, text, str(path),
                       {"base_dir": path.resolve().parent, SERVED_BY_ANOTHER: True}).listen


def listen_url(address: Endpoint | UnixSocket, key: str, tls: bool = False) -> str:
    """``http(s)://host:port`` to reach a listener bound to ``address`` (a wildcard is reached
    on loopback), or ``unix:PATH``. Port 0 (any free port) cannot be reached from a config:
    Usage."""
    if isinstance(address, UnixSocket):
        return str(address)
    host, port = address
    if port == 0:
        msg = f"{key} is {address}: port 0 is any free port; give --url"
        raise Usage(msg)
    host = _LOOPBACK.get(host, host)
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def trust(listen: Listen | None, cacert: str | None, cert: str | None,
          key: str | None) -> ssl.SSLContext:
    """How the CLI checks the daemon's certificate: ``--cacert``, else the certificate the
    daemon serves (``listen.tls.cert_file`` of ``-c``, trusted as it is: on the daemon's host
    that is the one to expect), else the system's CAs; ``--cert``/``--key`` when the daemon
    asks for a client certificate."""
    served = None if listen is None or listen.tls is None else listen.tls.cert_file
    try:
        if cacert is not None or served is not None:
            context = ssl.create_default_context(cafile=cacert or str(served))
            # The daemon's own certificate as the anchor, not only a CA above it.
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        else:
            context = ssl.create_default_context()
        if cert is not None:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        msg = f"TLS files for the CLI: {exc}"
        raise Usage(msg) from exc
    return context


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket: the admin listener at ``unix:PATH``."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def connection(url: str, context: ssl.SSLContext | None,
               timeout: float = 5.0) -> tuple[http.client.HTTPConnection, str]:
    """A connection to ``url`` (``http://``, ``https://`` or ``unix:PATH``) and the path
    prefix to put before routes."""
    if url.startswith(UNIX_PREFIX):
        return _UnixConnection(Path(url.removeprefix(UNIX_PREFIX)), timeout), ""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"{url}: expected http://host:port, https://host:port or unix:PATH"
        raise Usage(msg)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                           context=context), parts.path.rstrip("/")
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout), \
        parts.path.rstrip("/")


class Usage(Exception):
    pass


def tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cacert", help="CA (or the daemon's own certificate) to verify "
                                         "HTTPS with; by default listen.tls.cert_file of -c")
    parser.add_argument("--cert", help="client certificate, when the daemon asks for one")
    parser.add_argument("--key", help="its private key")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-c", "--config", help="take the admin URL and token file from it")
        parser.add_argument("--url", help=f"admin listener URL (default {DEFAULT_URL})")
        parser.add_argument("--token-file", help=f"bearer token file (or env {TOKEN_ENV})")
        tls_arguments(parser)

    drain = sub.add_parser("drain", help="take a cluster out of traffic (operator override)")
    drain.add_argument("name")
    drain.add_argument("--reason", required=True)
    drain.add_argument("--expires", metavar="DURATION", help="lift by itself after, e.g. 30m")
    undrain = sub.add_parser("undrain", help="give a drained cluster back to automation")
    undrain.add_argument("name")
    freeze = sub.add_parser("freeze", help="stop automatic weight changes")
    freeze.add_argument("--reason", required=True)
    unfreeze = sub.add_parser("unfreeze", help="resume automatic weight changes")
    reload = sub.add_parser("reload", help="re-read the daemon's config now")
    enrol = sub.add_parser("register", help="run a cluster beside the config file's (it "
                                            "enters through the recovery gate)")
    enrol.add_argument("-f", "--file", required=True,
                       help="YAML (or JSON) of one cluster, as under the config's clusters:")
    leave = sub.add_parser("deregister", help="drain a registered cluster, then remove it")
    leave.add_argument("name")
    for parser, func in ((drain, _drain), (undrain, _undrain), (freeze, _freeze),
                         (unfreeze, _unfreeze), (reload, _reload), (enrol, _register),
                         (leave, _deregister)):
        common(parser)
        parser.set_defaults(func=func)


def _target(args: argparse.Namespace) -> tuple[str, str, ssl.SSLContext]:
    """(admin URL, token, TLS trust): ``--url`` and ``--token-file`` first; then
    FAILOVER_ADMIN_TOKEN; then the ``listen`` section of ``-c``; the default URL last."""
    url: str | None = args.url
    listen = None
    try:
        if args.token_file:
            token = read_token_file(Path(args.token_file), "--token-file")
        else:
            token = os.environ.get(TOKEN_ENV, "").strip()
        if args.config:
            try:
                listen = listen_section(args.config)
            except ConfigError as exc:
                msg = f"{exc}\n(--url and --token-file reach the daemon without the config)"
                raise Usage(msg) from exc
            admin_tls = listen.tls is not None and not isinstance(listen.admin, UnixSocket)
            url = url or listen_url(listen.admin, "listen.admin", admin_tls)
            if not token and listen.admin_token_file is not None:
                token = read_token_file(listen.admin_token_file)
    except TokenError as exc:
        raise Usage(str(exc)) from exc
    if not token:
        msg = f"no admin token: give --token-file, -c CONFIG or set {TOKEN_ENV}"
        raise Usage(msg)
    context = trust(listen, args.cacert, args.cert, args.key)
    return (url or DEFAULT_URL).rstrip("/"), token, context


def _post(args: argparse.Namespace, path: str, body: dict[str, Any],
          method: str = "POST") -> int:
    try:
        url, token, context = _target(args)
        conn, prefix = connection(url, context)
    except Usage as exc:
        print(f"failover: {exc}", file=sys.stderr)
        return USER_ERROR
    try:
        conn.request(method, prefix + path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json",
                              "Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as exc:
        print(f"failover: daemon unreachable at {url}: {exc}", file=sys.stderr)
        return UNREACHABLE
    finally:
        conn.close()
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if response.status >= 400:
        message = doc.get("error") if isinstance(doc, dict) else None
        print(f"failover: {message or f'HTTP {response.status} {response.reason}'}",
              file=sys.stderr)
        return USER_ERROR
    if doc is None:
        print(f"failover: {url} answered something that is not JSON", file=sys.stderr)
        return UNREACHABLE
    print(json.dumps(doc))
    return OK


def _drain(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"reason": args.reason}
    if args.expires:
        body["expires_in"] = args.expires
    return _post(args, f"/v1/clusters/{args.name}/drain", body)


def _undrain(args: argparse.Namespace) -> int:
    return _post(args, f"/v1/clusters/{args.name}/undrain", {})


def _freeze(args: argparse.Namespace) -> int:
    return _post(args, "/v1/freeze", {"reason": args.reason})


def _unfreeze(args: argparse.Namespace) -> int:
    return _post(args, "/v1/unfreeze", {})


def _reload(args: argparse.Namespace) -> int:
    return _post(args, "/v1/reload", {})


def _register(args: argparse.Namespace) -> int:
    try:
        body = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        print(f"failover: {args.file}: {exc}", file=sys.stderr)
        return USER_ERROR
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        print(f"failover: {args.file}: a cluster with a 'name', as under the config's "
              "clusters:", file=sys.stderr)
        return USER_ERROR
    try:
        json.dumps(body)
    except (TypeError, ValueError) as exc:  # a YAML date or set, say: no JSON for it
        print(f"failover: {args.file}: {exc}", file=sys.stderr)
        return USER_ERROR
    # Checked by the daemon, against its running config: the only place the budget is known.
    return _post(args, f"/v1/clusters/{name}", body, "PUT")


def _deregister(args: argparse.Namespace) -> int:
    return _post(args, f"/v1/clusters/{args.name}", {}, "DELETE")
