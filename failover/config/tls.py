"""TLS files a config names: the listeners' certificate, key and client CA, etcd's CA and
client certificate. Read once, when the config is loaded (by `check`, `run` and every
reload alike), size-capped and regular files only; parsed, the key matched against the
certificate, and an SSL context built from exactly the bytes read, so that what was checked
is what is served."""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from pydantic import PrivateAttr, ValidationInfo, field_validator, model_validator

from failover.config.base import Strict, located, resolve
from failover.config.files import FileProblem, read_limited

PEM_LIMIT = 1024 * 1024
"""Bytes of one PEM file: a chain of a few certificates, or a bundle of CAs, is far less."""

MIN_VERSION = ssl.TLSVersion.TLSv1_2

SERVED_BY_ANOTHER = "tls_served_by_another"
"""A loader context key: set, `ServerTls` keeps its paths and reads none of its files (the
CLI reads the daemon's config for its addresses, and may not read the daemon's key)."""


class TlsProblem(ValueError):
    """Why TLS files cannot be used, naming the file."""


@dataclass(frozen=True)
class Certificate:
    """What an operator is shown of a certificate: `check`, the expiry metric."""

    subject: str
    not_after: datetime
    fingerprint: str
    """SHA-256 of the DER, ``sha256:`` and the first 16 hex digits."""

    def days_left(self, now: datetime | None = None) -> float:
        return (self.not_after - (now or datetime.now(UTC))).total_seconds() / 86400


@dataclass(frozen=True)
class Material:
    """The bytes of a certificate chain and its key (both, or neither for a client without
    a certificate) and of CAs to trust, as read."""

    chain: bytes | None
    key: bytes | None
    cas: bytes | None
    certificate: Certificate | None
    """The chain's first (the leaf) certificate."""


NO_MATERIAL = Material(None, None, None, None)


def read_pem(path: Path, what: str) -> bytes:
    try:
        return read_limited(path, PEM_LIMIT)
    except FileProblem as exc:
        msg = f"{what} {path}: {exc}"
        raise TlsProblem(msg) from exc


def _certificates(data: bytes, path: Path, what: str) -> list[x509.Certificate]:
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        msg = f"{what} {path}: no PEM certificate in it ({exc})"
        raise TlsProblem(msg) from exc
    return found


def _key(data: bytes, path: Path) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # cryptography's word for a key that needs a password
        msg = f"key {path}: encrypted with a password; the daemon needs it unencrypted"
        raise TlsProblem(msg) from exc
    except ValueError as exc:
        msg = f"key {path}: no PEM private key in it ({exc})"
        raise TlsProblem(msg) from exc


def describe(cert: x509.Certificate) -> Certificate:
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return Certificate(cert.subject.rfc4514_string(), cert.not_valid_after_utc,
                       f"sha256:{digest[:16]}")


def read_material(cert_file: Path | None, key_file: Path | None,
                  ca_file: Path | None, ca_what: str = "CA file") -> Material:
    """The files' bytes, checked: certificates parse, the key parses and belongs to the
    chain's first certificate, and an SSL context takes them. TlsProblem otherwise."""
    chain = key = cas = None
    leaf = None
    if cert_file is not None and key_file is not None:
        chain = read_pem(cert_file, "certificate")
        certificates = _certificates(chain, cert_file, "certificate")
        key = read_pem(key_file, "key")
        private = _key(key, key_file)
        public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if private.public_key().public_bytes(*public) != \
                certificates[0].public_key().public_bytes(*public):
            msg = (f"key {key_file} does not belong to certificate {cert_file} (their public "
                   "keys differ)")
            raise TlsProblem(msg)
        leaf = describe(certificates[0])
    if ca_file is not None:
        cas = read_pem(ca_file, ca_what)
        _certificates(cas, ca_file, ca_what)
    material = Material(chain, key, cas, leaf)
    if chain is not None:
        server_context(material)  # OpenSSL's own checks, beyond the parse above
    else:
        client_context(material)
    return material


@contextlib.contextmanager
def _private_file(data: bytes) -> Iterator[str]:
    """A path holding ``data`` only this process can read, for `load_cert_chain`, which
    takes paths alone: the bytes already checked, not the file again (which may have
    changed, or become a FIFO, since)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("failover-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as folder:  # 0700, removed at once
        path = Path(folder) / "pem"
        path.write_bytes(data)
        yield str(path)


def _load_chain(context: ssl.SSLContext, material: Material) -> None:
    if material.chain is None or material.key is None:
        return
    with _private_file(material.chain) as chain, _private_file(material.key) as key:
        try:
            context.load_cert_chain(chain, key)
        except ssl.SSLError as exc:
            msg = f"certificate and key refused by OpenSSL: {exc.reason or exc}"
            raise TlsProblem(msg) from exc


def _load_cas(context: ssl.SSLContext, material: Material) -> None:
    if material.cas is not None:
        try:
            context.load_verify_locations(cadata=material.cas.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError) as exc:
            msg = f"CA certificates refused by OpenSSL: {exc}"
            raise TlsProblem(msg) from exc


def server_context(material: Material) -> ssl.SSLContext:
    """TLS 1.2 and later; with CAs, a client certificate signed by one is required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSION
    _load_chain(context, material)
    if material.cas is not None:
        _load_cas(context, material)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(material: Material) -> ssl.SSLContext:
    """TLS 1.2 and later, the server's certificate verified against the CAs given (the
    system's without), host names checked; the client certificate when there is one."""
    context = ssl.create_default_context()
    context.minimum_version = MIN_VERSION
    if material.cas is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = MIN_VERSION
        _load_cas(context, material)
    _load_chain(context, material)
    return context


class _TlsFiles(Strict):
    """What both sections share: paths relative to the config, material read once."""

    _material: Material = PrivateAttr(default_factory=lambda: NO_MATERIAL)

    @field_validator("*")
    @classmethod
    def _relative_to_config(cls, value: object, info: ValidationInfo) -> object:
        return resolve(value, info) if isinstance(value, Path) else value

    def _read(self, cert: Path | None, key: Path | None, cas: Path | None,
              ca_what: str = "CA file") -> None:
        try:
            self._material = read_material(cert, key, cas, ca_what)
        except TlsProblem as exc:
            raise located((), str(exc)) from exc

    @property
    def material(self) -> Material:
        return self._material


class ServerTls(_TlsFiles):
    """``listen.tls``: every TCP listener speaks HTTPS only."""

    cert_file: Path
    """PEM certificate chain, the server's own first."""
    key_file: Path
    """PEM private key of that certificate, unencrypted."""
    client_ca_file: Path | None = None
    """PEM CAs: with it, a client certificate signed by one of them is required."""

    @model_validator(mode="after")
    def _read_once(self, info: ValidationInfo) -> ServerTls:
        if isinstance(info.context, dict) and info.context.get(SERVED_BY_ANOTHER):
            return self  # a client reading the daemon's config: the key is not its to read
        self._read(self.cert_file, self.key_file, self.client_ca_file, "client CA file")
        return self


class ClientTls(_TlsFiles):
    """``coordination.etcd.tls``: how the daemon talks TLS to etcd."""

    ca_file: Path | None = None
    """PEM CAs that sign etcd's server certificates; the system's CAs without it."""
    cert_file: Path | None = None
    """PEM client certificate chain, for etcd's ``--client-cert-auth``."""
    key_file: Path | None = None
    """Its unencrypted PEM private key."""

    @model_validator(mode="after")
    def _read_once(self) -> ClientTls:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            raise located((missing,), "a client certificate needs both cert_file and "
                                      "key_file")
        self._read(self.cert_file, self.key_file, self.ca_file)
        return self
