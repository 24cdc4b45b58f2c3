"""Helpers shared by the command groups: which cluster, which store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from brokerapp.model.settings import Settings

if TYPE_CHECKING:
    from brokerapp.adapters.registry import RegistryAccess


def cluster(settings: Settings, upstream: bool) -> tuple[str, str]:
    """Return (bootstrap, registry URL) of the local or the upstream side.

    ``--upstream`` commands act as the upstream's own side (its producers and admin), on the
    embedded stand-in's internal listener ``upstream_feed_bootstrap``; the broker itself reads
    the upstream only through the gateway.
    """
    if upstream:
        return settings.upstream_feed_bootstrap, settings.upstream_registry_url
    return settings.kafka_bootstrap, settings.registry_url


def cluster_registry(settings: Settings, upstream: bool) -> RegistryAccess:
    """Return how to reach the registry of the local or the upstream side (its security)."""
    from brokerapp.adapters.registry import registry_access

    return registry_access(settings, "upstream" if upstream else "local")


def store_where(settings: Settings, kind: str) -> str:
    """Return where a store's tables are: its database or keyspace, host and port."""
    from brokerapp.adapters.stores import store_class

    return store_class(kind).where(settings)
