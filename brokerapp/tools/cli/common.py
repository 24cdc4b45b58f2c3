"""Helpers shared by the command groups: which cluster, which store."""

from __future__ import annotations

from brokerapp.model.settings import Settings


def cluster(settings: Settings, upstream: bool) -> tuple[str, str]:
    """Return (bootstrap, registry URL) of the local or the upstream side."""
    if upstream:
        return settings.upstream_bootstrap, settings.upstream_registry_url
    return settings.kafka_bootstrap, settings.registry_url


def store_where(settings: Settings, kind: str) -> str:
    """Return where a store's tables are: its database or keyspace and port."""
    if kind == "mariadb":
        return f"database {settings.mariadb_database} on 127.0.0.1:{settings.mariadb_port}"
    return f"keyspace {settings.cassandra_keyspace} on 127.0.0.1:{settings.cassandra_port}"
