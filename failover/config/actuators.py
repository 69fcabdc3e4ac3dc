"""The actuators' config: where plans are written, and every rule that makes one usable
(names HAProxy takes, a record name inside its zone, a TSIG secret read once)."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from failover.config.addresses import HostPort, IpAddress
from failover.config.base import Strict, located, resolve
from failover.config.durations import Duration
from failover.config.files import SECRET_LIMIT, FileProblem, read_limited


class FileActuator(Strict):
    type: Literal["file"]
    path: Path
    timeout: Duration = 5.0
    """Seconds one apply may take before it counts as failed (and is retried)."""

    @field_validator("path")
    @classmethod
    def _relative_to_config(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve(value, info)


HAPROXY_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
"""Characters HAProxy accepts in proxy and server names (its ``invalid_char()``)."""
HAPROXY_NAME_RULE = "HAProxy names take letters, digits and _ . : - only"


class HaproxyActuator(Strict):
    type: Literal["haproxy"]
    socket: Path | None = None
    address: HostPort | None = None
    backend: str
    servers: dict[str, str] = Field(min_length=1)
    """Cluster name -> HAProxy server name in ``backend``."""
    timeout: Duration = 5.0
    """Seconds one apply (all runtime API commands and the read-back) may take."""

    @field_validator("socket")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve(value, info)

    @model_validator(mode="after")
    def _one_endpoint(self) -> HaproxyActuator:
        if (self.socket is None) == (self.address is None):
            msg = "give exactly one of 'socket' or 'address' for the HAProxy runtime API"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _names_haproxy_takes(self) -> HaproxyActuator:
        """Checked here, not at the first apply: HAProxy refuses other characters in proxy
        and server names, and they would split or escape a runtime API command line."""
        if not HAPROXY_NAME.fullmatch(self.backend):
            raise located(("backend",), f"{self.backend!r}: {HAPROXY_NAME_RULE}")
        first: dict[str, str] = {}
        for cluster, server in self.servers.items():
            if not HAPROXY_NAME.fullmatch(server):
                raise located(("servers", cluster), f"{server!r}: {HAPROXY_NAME_RULE}")
            if server in first:
                raise located(("servers", cluster), (
                    f"server {server!r} is {first[server]}'s already: one server per cluster"))
            first[server] = cluster
        return self


class Tsig(Strict):
    name: str
    algorithm: Literal["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha1"] = "hmac-sha256"
    secret_file: Path
    """File holding the base64 secret alone, as in a BIND or knot key; whitespace ignored."""

    _secret: bytes = PrivateAttr(b"")

    @field_validator("secret_file")
    @classmethod
    def _relative_to_config(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve(value, info)

    @model_validator(mode="after")
    def _read_once(self) -> Tsig:
        """Read and decoded here, once: the actuator takes `secret`, never the file."""
        path = self.secret_file
        try:
            text = read_limited(path, SECRET_LIMIT).decode("ascii").strip()
            secret = base64.b64decode(text, validate=True)
        except FileProblem as exc:
            raise located(("secret_file",), f"TSIG secret file {path}: {exc}") from exc
        except (UnicodeDecodeError, binascii.Error) as exc:
            raise located(("secret_file",), f"TSIG secret file {path}: not base64") from exc
        if not secret:
            raise located(("secret_file",), f"TSIG secret file {path} is empty")
        self._secret = secret
        return self

    @property
    def secret(self) -> bytes:
        return self._secret


class DnsActuator(Strict):
    type: Literal["dns"]
    server: HostPort
    zone: str
    name: str
    ttl: int = Field(30, ge=0, le=86400)
    tsig: Tsig | None = None
    addresses: dict[str, list[IpAddress]] = Field(min_length=1)
    """Cluster name -> addresses published while the cluster's share is above 0."""
    timeout: Duration = 5.0
    """Seconds one apply (the update and the verifying query) may take."""

    @model_validator(mode="after")
    def _name_in_zone(self) -> DnsActuator:
        """No update to a zone can change a name outside it (the server answers NOTZONE)."""
        name, zone = self.name.rstrip(".").lower(), self.zone.rstrip(".").lower()
        if zone and name != zone and not name.endswith(f".{zone}"):
            raise located(("name",), f"{self.name} is not in zone {self.zone}")
        return self


Actuator = Annotated[FileActuator | HaproxyActuator | DnsActuator, Field(discriminator="type")]
