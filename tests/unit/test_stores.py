"""The store interface without a server: names, keys, lookups, locations."""

import pytest

from brokerapp.adapters.stores import (
    STORE_KINDS,
    CassandraStore,
    MariaDbStore,
    Store,
    store_class,
)
from brokerapp.model.settings import load_settings


def test_the_stores_by_name():
    assert STORE_KINDS == ("mariadb", "cassandra")
    assert store_class("mariadb") is MariaDbStore
    assert store_class("cassandra") is CassandraStore
    with pytest.raises(ValueError, match="unknown store 'postgres': use 'mariadb' or 'cassandra'"):
        store_class("postgres")


def test_both_implement_the_whole_interface():
    for cls in (MariaDbStore, CassandraStore):
        assert issubclass(cls, Store)
        assert not cls.__abstractmethods__


def test_key_columns_per_store():
    assert MariaDbStore.key_columns("annotations") == ("alert_id", "source", "entry")
    assert CassandraStore.key_columns("candidates") == ("object_id", "mjd", "candidate_id")


def test_which_lookups_each_store_can_make():
    # MariaDB: key or indexed columns; Cassandra: the partition key (and clustering prefix).
    assert MariaDbStore.can_fetch_by("annotations", ["object_id"])
    assert not CassandraStore.can_fetch_by("annotations", ["object_id"])
    assert CassandraStore.can_fetch_by("candidates", ["object_id"])
    assert CassandraStore.can_fetch_by("candidates", ["object_id", "mjd"])
    assert not CassandraStore.can_fetch_by("candidates", ["mjd"])
    assert not MariaDbStore.can_fetch_by("candidates", [])


def test_where_names_host_port_and_database():
    settings = load_settings(
        mariadb_host="db.example.org",
        mariadb_port=3307,
        mariadb_database="alerts",
        cassandra_contact_points=["c1.example.org", "c2.example.org"],
        cassandra_port=9043,
        cassandra_keyspace="ks",
    )
    assert MariaDbStore.where(settings) == "database alerts on db.example.org:3307"
    assert CassandraStore.where(settings) == "keyspace ks on c1.example.org:9043 (+1 more)"
    assert CassandraStore.where(load_settings()) == "keyspace broker on 127.0.0.1:9042"
