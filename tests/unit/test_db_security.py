"""Database security settings turned into driver options (no server needed)."""

from __future__ import annotations

import datetime
import ssl

import pytest
from cassandra.auth import PlainTextAuthProvider
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from brokerapp.adapters.stores.cassandra import cassandra_cluster_options, cassandra_replication
from brokerapp.adapters.stores.mariadb import mariadb_ssl_context
from brokerapp.model.settings import load_settings


def _self_signed(folder, name="test-ca"):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_mariadb_without_ca_has_no_tls(tmp_path):
    assert mariadb_ssl_context(load_settings(home=tmp_path)) is None


def test_mariadb_with_ca_verifies_the_server(tmp_path):
    ca, _ = _self_signed(tmp_path)
    context = mariadb_ssl_context(load_settings(home=tmp_path, mariadb_ssl_ca=ca))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]


def test_mariadb_client_certificate_is_loaded(tmp_path):
    ca, _ = _self_signed(tmp_path)
    cert, key = _self_signed(tmp_path, "client")
    settings = load_settings(
        home=tmp_path, mariadb_ssl_ca=ca, mariadb_ssl_cert=cert, mariadb_ssl_key=key
    )
    assert mariadb_ssl_context(settings) is not None
    with pytest.raises(ValueError, match="both"):
        mariadb_ssl_context(load_settings(home=tmp_path, mariadb_ssl_ca=ca, mariadb_ssl_cert=cert))
    with pytest.raises(ValueError, match="need mariadb_ssl_ca"):
        mariadb_ssl_context(
            load_settings(home=tmp_path, mariadb_ssl_cert=cert, mariadb_ssl_key=key)
        )


def test_cassandra_options_default_to_the_local_node_and_its_password_file(tmp_path):
    (tmp_path / "cassandra").mkdir()
    (tmp_path / "cassandra" / "password").write_text("generated-pw\n")
    options = cassandra_cluster_options(load_settings(home=tmp_path))
    assert options["contact_points"] == ["127.0.0.1"]
    assert options["port"] == 9042
    assert options["ssl_context"] is None
    auth = options["auth_provider"]
    assert isinstance(auth, PlainTextAuthProvider)
    assert (auth.username, auth.password) == ("broker", "generated-pw")


def test_cassandra_options_for_a_remote_cluster_with_tls(tmp_path):
    ca, _ = _self_signed(tmp_path)
    settings = load_settings(
        home=tmp_path,
        cassandra_contact_points=["c1.example.org", "c2.example.org"],
        cassandra_port=9142,
        cassandra_user="alerts",
        cassandra_password="s3cret",
        cassandra_ssl_ca=ca,
    )
    options = cassandra_cluster_options(settings)
    assert options["contact_points"] == ["c1.example.org", "c2.example.org"]
    assert options["port"] == 9142
    assert (options["auth_provider"].username, options["auth_provider"].password) == (
        "alerts",
        "s3cret",
    )
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert options["ssl_context"].check_hostname


def test_cassandra_without_user_sends_no_credentials(tmp_path):
    assert (
        cassandra_cluster_options(load_settings(home=tmp_path, cassandra_user=""))["auth_provider"]
        is None
    )


def test_cassandra_replication_simple_or_per_datacenter(monkeypatch, tmp_path):
    assert cassandra_replication(load_settings(home=tmp_path)) == 1
    assert cassandra_replication(load_settings(home=tmp_path, cassandra_replication_factor=3)) == 3
    monkeypatch.setenv("BROKER_CASSANDRA_REPLICATION", '{"dc1": 3, "dc2": 2}')
    assert cassandra_replication(load_settings(home=tmp_path)) == {"dc1": 3, "dc2": 2}
