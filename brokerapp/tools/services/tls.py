"""TLS material of the embedded upstream: a private CA and the broker's certificate.

``services up --upstream`` makes, once, under ``<home>/tls/``:

``ca.pem``, ``ca.key``
    A self-signed CA (EC P-256, ten years). Clients trust ``ca.pem`` (the default
    ``upstream_ssl_cafile``); the key stays readable by its owner only.
``upstream-broker.p12``, ``upstream-broker.password``
    The upstream broker's key and certificate, signed by the CA, for ``127.0.0.1`` and
    ``localhost`` (so clients check the host name), as the PKCS#12 keystore Kafka reads, with
    a random password in the second file (owner-only).

``registry-<name>.pem``, ``registry-<name>.key``
    A schema registry's certificate and key (PEM, key owner-only), signed by the same CA and
    for the same names, as Quarkus reads them (``quarkus.http.ssl.certificate.files`` and
    ``.key-files``): :func:`ensure_registry_tls`.

Files that exist are kept, so a restart serves the same certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

__all__ = ["BrokerKeystore", "RegistryCertificate", "ensure_registry_tls", "ensure_upstream_tls"]

#: How long the CA and the broker certificate are valid.
VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class BrokerKeystore:
    """Where the upstream broker's keystore is, and its password."""

    ca: Path
    keystore: Path
    password: str


@dataclass(frozen=True)
class RegistryCertificate:
    """Where a registry's PEM certificate and key are, and the CA that signed them."""

    ca: Path
    certificate: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _make_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("brokerapp local CA"))
        .issuer_name(_name("brokerapp local CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_private(
        folder / "ca.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    (folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _load_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())


def ensure_upstream_tls(home: Path, host: str) -> BrokerKeystore:
    """Make (once) the CA and the upstream broker's keystore under ``<home>/tls``.

    Parameters
    ----------
    home : Path
        The services home.
    host : str
        The address the broker serves on (put in the certificate with ``localhost``).

    Returns
    -------
    BrokerKeystore
        The CA file, keystore file and keystore password.
    """
    folder = home / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    keystore = folder / "upstream-broker.p12"
    password_file = folder / "upstream-broker.password"
    if (folder / "ca.pem").is_file() and (folder / "ca.key").is_file():
        ca_key, ca_cert = _load_ca(folder)
    else:
        ca_key, ca_cert = _make_ca(folder)
        keystore.unlink(missing_ok=True)
    if keystore.is_file() and password_file.is_file():
        return BrokerKeystore(folder / "ca.pem", keystore, password_file.read_text().strip())
    key, cert = _server_certificate(ca_key, ca_cert, host)
    password = secrets.token_urlsafe(24)
    data = pkcs12.serialize_key_and_certificates(
        b"upstream-broker",
        key,
        cert,
        [ca_cert],
        serialization.BestAvailableEncryption(password.encode()),
    )
    _write_private(keystore, data)
    _write_private(password_file, password.encode())
    return BrokerKeystore(folder / "ca.pem", keystore, password)


def _ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, bool]:
    """Load the CA of ``folder``, or make it; the flag says whether it is new."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "ca.pem").is_file() and (folder / "ca.key").is_file():
        return (*_load_ca(folder), False)
    return (*_make_ca(folder), True)


def _server_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, host: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Return a new key and a server certificate for ``host`` and ``localhost``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _signed_by(cert_file: Path, ca_cert: x509.Certificate) -> bool:
    """Whether ``cert_file`` exists and its (first) certificate was issued by ``ca_cert``."""
    if not cert_file.is_file():
        return False
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def ensure_registry_tls(home: Path, host: str, name: str) -> RegistryCertificate:
    """Make (once) the CA and a registry's PEM certificate and key under ``<home>/tls``.

    Parameters
    ----------
    home : Path
        The services home (or any folder: a test's own).
    host : str
        The address the registry serves on (put in the certificate with ``localhost``).
    name : str
        Names the files, ``registry-<name>.pem`` and ``registry-<name>.key``.

    Returns
    -------
    RegistryCertificate
        The CA file, the certificate (with the CA after it) and the key. A certificate
        that the current CA did not sign (the CA was made again) is replaced.
    """
    folder = home / "tls"
    ca_key, ca_cert, new_ca = _ca(folder)
    cert_file, key_file = folder / f"registry-{name}.pem", folder / f"registry-{name}.key"
    if not new_ca and key_file.is_file() and _signed_by(cert_file, ca_cert):
        return RegistryCertificate(folder / "ca.pem", cert_file, key_file)
    key, cert = _server_certificate(ca_key, ca_cert, host)
    _write_private(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_file.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    return RegistryCertificate(folder / "ca.pem", cert_file, key_file)
