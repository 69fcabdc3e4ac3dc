"""``host:port`` addresses and URL targets, validated once at load time."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, NamedTuple
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
"""One DNS label; names are split on dots first, so no pattern can backtrack across labels."""


class Endpoint(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class UnixSocket(NamedTuple):
    """``unix:PATH``: a listener on a Unix socket, whose file mode is its access control."""

    path: Path

    def __str__(self) -> str:
        return f"unix:{self.path}"


UNIX_PREFIX = "unix:"
MAX_UNIX_PATH = 107
"""Bytes of a Unix socket's path on Linux (sun_path is 108, with its NUL)."""


def _canonical_host(host: str) -> str | None:
    """An IP address as Python writes it (``::1``, not ``0::1``), a name as given; None
    when it is neither."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        name = host.removesuffix(".")
        valid = 0 < len(host) <= 253 and all(_LABEL.match(label) for label in name.split("."))
        return host if valid else None


def _port(text: str, where: str, lowest: int = 1) -> int:
    if not text.isdigit() or not lowest <= int(text) < 65536:
        msg = f"port must be {lowest}-65535 in {where!r}"
        raise ValueError(msg)
    return int(text)


def split_hostport(value: str, *, listen: bool = False) -> Endpoint:
    """Parse ``host:port`` or ``[v6]:port``; raise ValueError naming what is wrong.

    ``listen`` admits port 0 (any free port), which makes sense only for an address we bind.
    """
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            msg = f"expected [ipv6]:port, got {value!r}"
            raise ValueError(msg)
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            msg = f"expected host:port, got {value!r}"
            raise ValueError(msg)
    canonical = _canonical_host(host)
    if canonical is None:
        msg = f"invalid host {host!r} in {value!r}"
        raise ValueError(msg)
    return Endpoint(canonical, _port(port_text, value, 0 if listen else 1))


def url_endpoint(url: str) -> Endpoint:
    """The address an http(s) URL connects to, default ports included."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        msg = f"expected an http:// or https:// URL, got {url!r}"
        raise ValueError(msg)
    host = _canonical_host(parts.hostname or "")
    if host is None:
        msg = f"invalid host in URL {url!r}"
        raise ValueError(msg)
    try:
        port = parts.port
    except ValueError as exc:
        msg = f"port must be 1-65535 in {url!r}"
        raise ValueError(msg) from exc
    return Endpoint(host, port or (443 if parts.scheme == "https" else 80))


class Url(str):
    """An http(s) URL, checked, with the address it connects to worked out once."""

    endpoint: Endpoint

    def __new__(cls, text: str) -> Url:
        url = super().__new__(cls, text)
        url.endpoint = url_endpoint(text)
        return url


def _url(value: object) -> Url:
    if isinstance(value, Url):
        return value
    if not isinstance(value, str):
        msg = f"expected a URL, got {value!r}"
        raise ValueError(msg)
    return Url(value)


IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(value: object) -> IP:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return ipaddress.ip_address(value.strip())
    except ValueError as exc:
        msg = f"expected an IP address, got {value!r}"
        raise ValueError(msg) from exc


def _parsed(listen: bool) -> object:
    def parse(value: object) -> object:
        # Parsed once here; the rest of the daemon takes the Endpoint, never the text again.
        return split_hostport(value, listen=listen) if isinstance(value, str) else value
    return parse


def _admin_address(value: object) -> object:
    if isinstance(value, str) and value.strip().startswith(UNIX_PREFIX):
        path = value.strip().removeprefix(UNIX_PREFIX)
        if not path:
            msg = "unix: needs a path, e.g. unix:/run/failover/admin.sock"
            raise ValueError(msg)
        return UnixSocket(Path(path))
    return _parsed(listen=True)(value)  # type: ignore[operator]


HostPort = Annotated[Endpoint, BeforeValidator(_parsed(listen=False)), PlainSerializer(str),
                     WithJsonSchema({"type": "string", "description": "host:port"})]
"""``host:port``; IPv6 as ``[::1]:53``; an `Endpoint` once loaded."""
ListenAddress = Annotated[Endpoint, BeforeValidator(_parsed(listen=True)),
                          PlainSerializer(str),
                          WithJsonSchema({"type": "string", "description": "host:port"})]
"""An address to bind; port 0 picks a free port; an `Endpoint` once loaded."""
AdminAddress = Annotated[Endpoint | UnixSocket, BeforeValidator(_admin_address),
                         PlainSerializer(str),
                         WithJsonSchema({"type": "string",
                                         "description": "host:port, or unix:PATH"})]
"""Where the admin listener binds: as `ListenAddress`, or a Unix socket."""
HttpUrl = Annotated[Url, PlainValidator(_url), PlainSerializer(str),
                    WithJsonSchema({"type": "string", "format": "uri"})]
"""An http(s) URL; a `Url` (a str that knows its endpoint) once loaded."""
IpAddress = Annotated[IP, PlainValidator(_ip), PlainSerializer(str),
                      WithJsonSchema({"type": "string", "format": "ip"})]
"""An IPv4 or IPv6 address; an `ipaddress` object once loaded."""
