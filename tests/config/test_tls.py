"""TLS files are read and checked once, at load: each refusal names the file and why."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from failover.config.tls import ClientTls, ServerTls, TlsProblem, read_material, server_context
from tests.certs import Authority


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


def test_a_good_pair_is_read_with_what_an_operator_is_shown(ca: Authority) -> None:
    """Subject, expiry and fingerprint of the leaf; a TLS 1.2+ context that requires a
    client certificate when a client CA is given."""
    server = ca.issue("server", days=30)
    material = read_material(server.cert, server.key, ca.cert)
    assert material.certificate is not None
    assert material.certificate.subject == "CN=server"
    assert 29.9 < material.certificate.days_left(datetime.now(UTC)) <= 30
    assert material.certificate.fingerprint.startswith("sha256:")
    context = server_context(material)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert server_context(read_material(server.cert, server.key, None)).verify_mode == \
        ssl.CERT_NONE


def test_a_key_of_another_certificate_is_refused_naming_both(ca: Authority) -> None:
    first, second = ca.issue("first"), ca.issue("second")
    with pytest.raises(TlsProblem, match=rf"key {second.key} does not belong to certificate "
                                         rf"{first.cert}"):
        read_material(first.cert, second.key, None)


@pytest.mark.parametrize(("broken", "why"), [
    ("cert", "certificate .*: no PEM certificate in it"),
    ("key", "key .*: no PEM private key in it"),
    ("ca", "CA file .*: no PEM certificate in it"),
])
def test_a_file_that_is_not_pem_is_refused_by_name(ca: Authority, broken: str,
                                                   why: str) -> None:
    server = ca.issue("server")
    cas = ca.cert
    target = {"cert": server.cert, "key": server.key, "ca": cas}[broken]
    target.write_text("not a PEM file\n")
    with pytest.raises(TlsProblem, match=why):
        read_material(server.cert, server.key, cas)


def test_a_missing_file_and_a_password_protected_key_are_refused(ca: Authority,
                                                                tmp_path: Path) -> None:
    server = ca.issue("server")
    with pytest.raises(TlsProblem, match=r"certificate .*nowhere.crt: no such file"):
        read_material(tmp_path / "nowhere.crt", server.key, None)
    locked = tmp_path / "locked.key"
    key = ec.generate_private_key(ec.SECP256R1())
    locked.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(TlsProblem, match="encrypted with a password"):
        read_material(server.cert, locked, None)


def test_config_sections_resolve_paths_and_locate_errors(ca: Authority) -> None:
    """Paths are relative to the config's folder; a bad file fails the model with the
    reason, and a client certificate needs its key."""
    server = ca.issue("server")
    base = {"base_dir": str(ca.folder)}
    tls = ServerTls.model_validate({"cert_file": "server.crt", "key_file": "server.key",
                                    "client_ca_file": "ca.crt"}, context=base)
    assert tls.cert_file == server.cert
    assert tls.material.cas is not None
    with pytest.raises(ValueError, match="no such file"):
        ServerTls.model_validate({"cert_file": "server.crt", "key_file": "absent.key"},
                                 context=base)
    with pytest.raises(ValueError, match="needs both cert_file and key_file"):
        ClientTls.model_validate({"cert_file": "server.crt"}, context=base)
    assert ClientTls.model_validate({"ca_file": "ca.crt"}, context=base).material.chain is None
