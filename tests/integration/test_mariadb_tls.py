"""The MariaDB store over TLS, against a MariaDB server of its own that requires TLS.

The server runs in a temporary home on a free port (the shared server is left alone), with a
CA and a server certificate for 127.0.0.1 made here, and `require_secure_transport`: a client
without TLS is refused, so a store that connects and writes did use TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from brokerapp.adapters.stores import open_store
from brokerapp.adapters.stores.mariadb import MariaDbStore
from brokerapp.model.settings import load_settings
from brokerapp.tools.services.manager import Services


def _unused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pem_key(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(subject, issuer, public_key, signer, *, ca, san=None):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _make_tls(folder, name):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(f"{name} CA", f"{name} CA", ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = _certificate("127.0.0.1", f"{name} CA", key.public_key(), ca_key, ca=False, san=san)
    paths = {k: folder / f"{name}-{k}.pem" for k in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(_pem_key(key))
    return paths


@pytest.fixture(scope="module")
def tls_mariadb(tmp_path_factory):
    home = tmp_path_factory.mktemp("dbauth-mariadb")
    tls = _make_tls(home, "server")
    settings = load_settings(home=home, mariadb_port=_unused_port(), startup_timeout=120)
    svc = Services(settings)
    node = svc.mariadb()
    cnf = node.command[1].split("=", 1)[1]
    with open(cnf, "a") as out:  # [mariadbd] is the file's last section
        out.write(
            f"ssl_ca = {tls['ca']}\nssl_cert = {tls['cert']}\nssl_key = {tls['key']}\n"
            "require_secure_transport = ON\n"
        )
    svc.init_mariadb(node)
    svc.start(node)
    try:
        svc.wait_databases([node])
        yield settings, tls, home
    finally:
        svc.down()


async def test_the_store_writes_and_reads_over_tls(tls_mariadb):
    settings, tls, _ = tls_mariadb
    store = await open_store(settings.model_copy(update={"mariadb_ssl_ca": tls["ca"]}), "mariadb")
    try:
        await store.migrate()
        row = {"object_id": "ZTF26tls", "source": "dbauth", "entry": "e1", "alert_id": 5}
        await store.upsert("annotations", [row])
        (read,) = await store.fetch("annotations", object_id="ZTF26tls")
        assert {k: read[k] for k in row} == row
    finally:
        await store.close()


async def test_without_tls_the_server_refuses(tls_mariadb):
    settings, _, _ = tls_mariadb
    with pytest.raises(MariaDbStore.setup_errors, match="1045|3159"):  # refused, or insecure
        await open_store(settings, "mariadb")


async def test_a_certificate_from_another_ca_is_refused(tls_mariadb):
    settings, _, home = tls_mariadb
    other = _make_tls(home, "other")
    with pytest.raises(MariaDbStore.setup_errors, match="TLS with MariaDB .* failed") as refused:
        await open_store(settings.model_copy(update={"mariadb_ssl_ca": other["ca"]}), "mariadb")
    assert "certificate verify failed" in str(refused.value)
