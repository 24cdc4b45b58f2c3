"""The stores by name: ``mariadb`` and ``cassandra``, as settings and the CLI spell them."""

from __future__ import annotations

from brokerapp.adapters.stores.base import Store
from brokerapp.adapters.stores.cassandra import CassandraStore
from brokerapp.adapters.stores.mariadb import MariaDbStore
from brokerapp.model.settings import Settings

__all__ = ["STORE_KINDS", "open_store", "store_class"]

_STORES: dict[str, type[Store]] = {cls.kind: cls for cls in (MariaDbStore, CassandraStore)}

STORE_KINDS: tuple[str, ...] = tuple(_STORES)
"""Names of every store, in the order commands run them (``mariadb``, ``cassandra``)."""


def store_class(kind: str) -> type[Store]:
    """Return the store implementation called ``kind``.

    Raises
    ------
    ValueError
        If there is no such store.
    """
    try:
        return _STORES[kind]
    except KeyError:
        known = " or ".join(repr(k) for k in STORE_KINDS)
        raise ValueError(f"unknown store {kind!r}: use {known}") from None


async def open_store(settings: Settings, kind: str) -> Store:
    """Connect to one store.

    Parameters
    ----------
    settings : Settings
        The broker's settings.
    kind : str
        ``mariadb`` or ``cassandra``.

    Returns
    -------
    Store
        A connected store.

    Raises
    ------
    ValueError
        If ``kind`` is neither.
    StoreUnavailable
        If the database does not answer.
    """
    return await store_class(kind).connect(settings)
