"""The real MariaDB and Cassandra in integration tests: are they up, and private stores.

Tests skip (with the reason) when `services status` does not show both databases answering,
so a Kafka-only `services up` still runs the rest of the tier; under `make test`, which starts
them and passes ``--need-servers``, they fail instead. A test that writes tables gets
its own MariaDB database and Cassandra keyspace (:func:`private_stores`): the broker account
may not create databases (it has all privileges on `mariadb_database` only), so the database
is created, granted to it and dropped through root's unix socket, as `services up` does for
the real one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pymysql
import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy

from brokerapp.adapters.sql import cql_name, sql_name
from brokerapp.adapters.stores.cassandra import cassandra_cluster_options
from brokerapp.model.settings import Settings, load_settings
from brokerapp.tools.services import MARIADB_ACCOUNT_HOST, Services


def databases_or_skip(config: pytest.Config) -> Services:
    """Return the services when MariaDB and Cassandra both answer, else skip or fail the test.

    Parameters
    ----------
    config : pytest.Config
        The run's configuration: with ``--need-servers`` a database that is down fails the
        test (``make test`` started it, so it crashed), otherwise it skips.
    """
    svc = Services(load_settings())
    states = {state.name: state for state in svc.status()}
    down = [n for n in ("mariadb", "cassandra") if n not in states or not states[n].answering]
    if down:
        reason = (
            f"{' and '.join(down)} not up: run `brokerapp services up --databases` first "
            "(`brokerapp services status` lists them)"
        )
        if config.getoption("--need-servers"):
            pytest.fail(reason)
        pytest.skip(reason)
    return svc


def mariadb_root(svc: Services) -> pymysql.Connection:
    """A root connection through the server's unix socket (autocommit)."""
    return pymysql.connect(
        unix_socket=str(svc.mariadb_socket), user="root", password="", autocommit=True
    )


def cassandra_cluster(settings: Settings) -> Cluster:
    """A driver cluster object for the local node (call ``shutdown()`` when done)."""
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy(settings.cassandra_contact_points),
        request_timeout=60,
    )
    return Cluster(
        **cassandra_cluster_options(settings),
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )


@contextmanager
def private_stores(svc: Services, **updates: object) -> Iterator[Settings]:
    """Settings naming a fresh MariaDB database and Cassandra keyspace, both dropped after.

    Parameters
    ----------
    svc : Services
        The running services.
    **updates
        Further settings to change.

    Yields
    ------
    Settings
        ``mariadb_database`` and ``cassandra_keyspace`` both ``t_<random>``.
    """
    base = svc.settings
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        root = mariadb_root(svc)
    except pymysql.MySQLError as exc:
        pytest.skip(f"no root access through {svc.mariadb_socket} to make a test database: {exc}")
    with root.cursor() as cur:
        cur.execute(f"CREATE DATABASE {sql_name(name)} CHARACTER SET utf8mb4")
        cur.execute(
            f"GRANT ALL PRIVILEGES ON {sql_name(name)}.* TO %s@%s",
            (base.mariadb_user, MARIADB_ACCOUNT_HOST),
        )
    root.close()
    try:
        yield base.model_copy(
            update={"mariadb_database": name, "cassandra_keyspace": name, **updates}
        )
    finally:
        root = mariadb_root(svc)
        with root.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {sql_name(name)}")
            cur.execute(
                f"REVOKE ALL PRIVILEGES ON {sql_name(name)}.* FROM %s@%s",
                (base.mariadb_user, MARIADB_ACCOUNT_HOST),
            )
        root.close()
        cluster = cassandra_cluster(base)
        try:
            cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {cql_name(name)}")
        finally:
            cluster.shutdown()
