"""A Cassandra node of its own, with PasswordAuthenticator, bootstrapped as `services up` does.

The node runs in a temporary home on free ports (the shared node is left alone), with the jars
of the shared home. `Services.wait_databases` waits for it and runs the auth bootstrap: the
default cassandra/cassandra superuser is replaced by `broker_admin` and the broker's role gets a
generated password in `<home>/cassandra/password`, which the default settings read.
"""

from __future__ import annotations

import asyncio
import socket
import stat

import pytest
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable
from click.testing import CliRunner

from brokerapp.adapters.stores import open_store
from brokerapp.adapters.stores.cassandra import CassandraLoginRefused
from brokerapp.model.settings import load_settings
from brokerapp.tools.cli import main
from brokerapp.tools.services.manager import Services

KEYSPACE = "dbauth_ks"


def _unused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def auth_node(request, tmp_path_factory):
    lib = Services(load_settings()).lib  # the Cassandra jars `services install` resolved
    if not any((lib / "cassandra").glob("cassandra-all-*.jar")):
        reason = "Cassandra jars not installed: run `brokerapp services install`"
        if request.config.getoption("--need-servers"):
            pytest.fail(reason)
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("dbauth-home")
    (home / "lib").symlink_to(lib)
    settings = load_settings(
        home=home,
        cassandra_port=_unused_port(),
        cassandra_storage_port=_unused_port(),
        cassandra_heap="512M",
        cassandra_keyspace=KEYSPACE,
        startup_timeout=300,
    )
    svc = Services(settings)
    node = svc.cassandra()
    svc.start(node)
    try:
        svc.wait_databases([node])
        yield svc
    finally:
        svc.down()


def _login(settings, user, password):
    cluster = Cluster(
        ["127.0.0.1"],
        port=settings.cassandra_port,
        protocol_version=5,
        auth_provider=None if user is None else PlainTextAuthProvider(user, password),
        connect_timeout=10,
        control_connection_timeout=10,
    )
    try:
        session = cluster.connect()
        return session.execute("SELECT role FROM system_auth.roles").all()
    finally:
        cluster.shutdown()


def _refused(settings, user, password):
    with pytest.raises(NoHostAvailable) as failed:
        _login(settings, user, password)
    errors = list(failed.value.errors.values())
    return bool(errors) and all(isinstance(e, AuthenticationFailed) for e in errors)


def test_passwords_are_generated_private_files(auth_node):
    home = auth_node.settings.data_dir
    for path in (home / "cassandra" / "password", home / "cassandra" / "admin.password"):
        assert path.is_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(path.read_text().strip()) >= 20
    broker = (home / "cassandra" / "password").read_text().strip()
    admin = (home / "cassandra" / "admin.password").read_text().strip()
    assert broker != admin


def test_the_default_superuser_and_anonymous_logins_are_refused(auth_node):
    settings = auth_node.settings
    assert _refused(settings, "cassandra", "cassandra")
    assert _refused(settings, None, None)
    admin = (settings.data_dir / "cassandra" / "admin.password").read_text().strip()
    roles = {row.role for row in _login(settings, "broker_admin", admin)}
    assert roles == {"broker_admin", "broker"}


async def test_the_sink_store_writes_and_reads_with_the_generated_password(auth_node):
    settings = load_settings(
        home=auth_node.settings.data_dir,
        cassandra_port=auth_node.settings.cassandra_port,
        cassandra_keyspace=KEYSPACE,
    )
    assert settings.cassandra_user == "broker"
    store = await open_store(settings, "cassandra")
    try:
        await store.migrate()
        row = {
            "candidate_id": 42,
            "object_id": "ZTF26dbauth",
            "survey": "ztf",
            "mjd": 61000.5,
            "band": "r",
            "ra": 10.5,
            "decl": -3.25,
            "mag": 19.5,
            "mag_err": 0.1,
        }
        await store.upsert("candidates", [row])
        (read,) = await store.fetch("candidates", object_id="ZTF26dbauth")
        assert {k: read[k] for k in row} == row
    finally:
        await store.close()


async def test_a_wrong_password_is_refused_at_once_with_a_clear_message(auth_node):
    settings = load_settings(
        home=auth_node.settings.data_dir,
        cassandra_port=auth_node.settings.cassandra_port,
        cassandra_keyspace=KEYSPACE,
        cassandra_password="not-the-password",
    )
    with pytest.raises(CassandraLoginRefused) as refused:
        # A guard against a hang only: a refused login is not retried.
        await asyncio.wait_for(open_store(settings, "cassandra"), timeout=60)
    message = str(refused.value)
    assert "refused the login of role 'broker'" in message
    assert "not-the-password" not in message


def test_bootstrap_again_keeps_the_roles(auth_node):
    auth_node.bootstrap_cassandra()
    settings = auth_node.settings
    broker = settings.cassandra_secret().get_secret_value()
    assert {row.role for row in _login(settings, "broker", broker)} == {"broker_admin", "broker"}
    assert _refused(settings, "cassandra", "cassandra")


def test_db_migrate_logs_in_and_reports_a_refused_password_in_one_line(auth_node):
    env = {
        "BROKER_HOME": str(auth_node.settings.data_dir),
        "BROKER_CASSANDRA_PORT": str(auth_node.settings.cassandra_port),
        "BROKER_CASSANDRA_KEYSPACE": KEYSPACE,
        "BROKER_CASSANDRA_PASSWORD": "",
    }
    runner = CliRunner()
    ok = runner.invoke(main, ["db", "migrate", "--store", "cassandra"], env=env)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("cassandra: ")
    env["BROKER_CASSANDRA_PASSWORD"] = "not-the-password"
    refused = runner.invoke(main, ["db", "migrate", "--store", "cassandra"], env=env)
    assert refused.exit_code == 1, refused.output
    lines = [line for line in refused.output.splitlines() if line.startswith("cassandra:")]
    assert len(lines) == 1, refused.output
    assert "refused the login of role 'broker'" in lines[0]
    assert "not-the-password" not in refused.output
    assert "Traceback" not in refused.output
