"""Hosts and secrets are settings: defaults name the local services, secrets never print."""

import json
import logging

from click.testing import CliRunner

from brokerapp.model.settings import Settings, load_settings
from brokerapp.tools.cli import main


def test_database_defaults_are_the_embedded_local_services(tmp_path):
    settings = load_settings(home=tmp_path)
    assert settings.mariadb_host == "127.0.0.1"
    assert settings.mariadb_port == 3306
    assert settings.mariadb_user == "broker"
    assert settings.mariadb_password_path == tmp_path / "mariadb" / "password"
    assert settings.cassandra_contact_points == ["127.0.0.1"]
    assert settings.cassandra_port == 9042
    assert settings.cassandra_local_datacenter == "datacenter1"
    assert settings.cassandra_user == "broker"
    assert settings.cassandra_secret().get_secret_value() == ""


def test_hosts_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BROKER_MARIADB_HOST", "db.example.org")
    monkeypatch.setenv("BROKER_CASSANDRA_CONTACT_POINTS", '["c1.example.org", "c2.example.org"]')
    monkeypatch.setenv("BROKER_CASSANDRA_LOCAL_DATACENTER", "dc-edinburgh")
    settings = load_settings(home=tmp_path)
    assert settings.mariadb_host == "db.example.org"
    assert settings.cassandra_contact_points == ["c1.example.org", "c2.example.org"]
    assert settings.cassandra_local_datacenter == "dc-edinburgh"


def test_the_mariadb_password_comes_from_its_file_unless_set(tmp_path):
    (tmp_path / "mariadb").mkdir()
    (tmp_path / "mariadb" / "password").write_text("from-the-file\n")
    assert load_settings(home=tmp_path).mariadb_secret().get_secret_value() == "from-the-file"
    explicit = load_settings(home=tmp_path, mariadb_password="from-env")
    assert explicit.mariadb_secret().get_secret_value() == "from-env"
    elsewhere = tmp_path / "secret.txt"
    elsewhere.write_text("elsewhere\n")
    moved = load_settings(home=tmp_path, mariadb_password_file=elsewhere)
    assert moved.mariadb_secret().get_secret_value() == "elsewhere"


def test_no_password_file_means_an_empty_password(tmp_path):
    assert load_settings(home=tmp_path).mariadb_secret().get_secret_value() == ""


def test_the_cassandra_password_comes_from_env_or_file(monkeypatch, tmp_path):
    secret = tmp_path / "cassandra-password"
    secret.write_text("c-file\n")
    monkeypatch.setenv("BROKER_CASSANDRA_PASSWORD_FILE", str(secret))
    assert load_settings(home=tmp_path).cassandra_secret().get_secret_value() == "c-file"
    monkeypatch.setenv("BROKER_CASSANDRA_PASSWORD", "c-env")
    assert load_settings(home=tmp_path).cassandra_secret().get_secret_value() == "c-env"


def test_brokerapp_config_masks_every_secret(tmp_path, caplog):
    (tmp_path / "mariadb").mkdir()
    (tmp_path / "mariadb" / "password").write_text("file-s3cret\n")
    env = {
        "BROKER_HOME": str(tmp_path),
        "BROKER_CASSANDRA_USER": "broker",
        "BROKER_CASSANDRA_PASSWORD": "cass-s3cret",
        "BROKER_WEB_TOKEN": "web-s3cret",
        "BROKER_SMTP_PASSWORD": "smtp-s3cret",
        "BROKER_EMAIL_UNSUBSCRIBE_SECRET": "unsub-s3cret",
    }
    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(main, ["config"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["cassandra_user"] == "broker"
    assert shown["cassandra_password"] == "**********"
    assert shown["mariadb_password"] == ""  # not set: the file holds it
    assert shown["web_token"] == shown["smtp_password"] == "**********"
    assert "s3cret" not in result.output
    assert "s3cret" not in caplog.text


def test_the_settings_repr_masks_every_secret(tmp_path):
    settings = load_settings(
        home=tmp_path,
        cassandra_password="cass-s3cret",
        mariadb_password="maria-s3cret",
        web_token="web-s3cret",
        smtp_password="smtp-s3cret",
        email_unsubscribe_secret="unsub-s3cret",
    )
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings)
    assert settings.web_secret().get_secret_value() == "web-s3cret"


def test_the_web_token_comes_from_env_or_file(monkeypatch, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("t-file\n")
    assert load_settings(home=tmp_path).web_secret().get_secret_value() == ""
    settings = load_settings(home=tmp_path, web_token_file=token_file)
    assert settings.web_secret().get_secret_value() == "t-file"
    monkeypatch.setenv("BROKER_WEB_TOKEN", "t-env")
    settings = load_settings(home=tmp_path, web_token_file=token_file)
    assert settings.web_secret().get_secret_value() == "t-env"


def test_every_setting_is_documented():
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []


def test_no_two_servers_default_to_the_same_port():
    # web_port is the generic default that each worker's own *_web_port replaces.
    ports = {
        name: field.default
        for name, field in Settings.model_fields.items()
        if name.endswith("_port") and name != "web_port"
    }
    taken: dict[int, str] = {}
    clashes = []
    for name, port in ports.items():
        if port in taken:
            clashes.append((taken[port], name, port))
        taken[port] = name
    assert clashes == []
