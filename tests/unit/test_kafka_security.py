"""The upstream's security settings as each Kafka client library takes them."""

import ssl

import pytest

from brokerapp.adapters.kafka_security import (
    GroupPrefixError,
    aiokafka_options,
    check_group,
    librdkafka_config,
    upstream_security,
)
from brokerapp.model.settings import load_settings


def test_the_default_is_rubins_sasl_ssl_with_scram_sha_512(tmp_path):
    (tmp_path / "kafka-upstream").mkdir()
    (tmp_path / "kafka-upstream" / "client.password").write_text("from-file\n")
    (tmp_path / "tls").mkdir()
    security = upstream_security(load_settings(home=tmp_path))
    assert (security.protocol, security.mechanism, security.username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "brokerapp",
    )
    assert security.password.get_secret_value() == "from-file"
    assert security.cafile is None  # no <home>/tls/ca.pem yet: the system trust store


def test_aiokafka_gets_sasl_credentials_and_a_verifying_tls_context(tmp_path):
    settings = load_settings(home=tmp_path, upstream_sasl_password="pw")
    options = aiokafka_options(upstream_security(settings))
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("brokerapp", "pw")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_librdkafka_gets_the_same_in_its_own_names(tmp_path):
    ca = tmp_path / "ca.pem"
    settings = load_settings(
        home=tmp_path,
        upstream_sasl_password="pw",
        upstream_ssl_cafile=ca,
        upstream_sasl_mechanism="SCRAM-SHA-256",
    )
    assert librdkafka_config(upstream_security(settings)) == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": "brokerapp",
        "sasl.password": "pw",
        "ssl.ca.location": str(ca.resolve()),
    }


def test_plaintext_sends_neither_credentials_nor_tls(tmp_path):
    settings = load_settings(
        home=tmp_path, upstream_security_protocol="PLAINTEXT", upstream_sasl_password="pw"
    )
    assert aiokafka_options(upstream_security(settings)) == {"security_protocol": "PLAINTEXT"}
    assert librdkafka_config(upstream_security(settings)) == {"security.protocol": "plaintext"}


def test_a_group_must_start_with_the_prefix_unless_it_is_empty(tmp_path):
    security = upstream_security(load_settings(home=tmp_path))
    check_group(security, "brokerapp-gateway")
    with pytest.raises(GroupPrefixError, match="'gateway' does not start with 'brokerapp-'"):
        check_group(security, "gateway")
    check_group(upstream_security(load_settings(home=tmp_path, upstream_group_prefix="")), "x")


def test_the_upstream_password_is_masked_everywhere(tmp_path):
    settings = load_settings(home=tmp_path, upstream_sasl_password="s3cret-up")
    assert "s3cret-up" not in repr(settings)
    assert settings.masked()["upstream_sasl_password"] == "**********"
    assert "s3cret-up" not in repr(upstream_security(settings))
