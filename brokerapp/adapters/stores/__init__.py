"""Async access to the sinks' tables in MariaDB and Cassandra, behind one interface.

:class:`~brokerapp.adapters.stores.base.Store` is the interface;
:class:`~brokerapp.adapters.stores.mariadb.MariaDbStore` (an ``aiomysql`` pool) and
:class:`~brokerapp.adapters.stores.cassandra.CassandraStore` (``cassandra-driver`` with its
requests bridged to asyncio futures) implement it; :func:`open_store` picks one by name::

    store = await open_store(settings, "mariadb")     # or "cassandra"
    await store.migrate()                              # versions applied, [] when up to date
    await store.upsert("candidates", rows)             # one batch of dicts, idempotent
    await store.fetch("candidates", object_id="ZTF18abc")
    await store.dump("objects"), await store.count("objects")
    await store.close()

Tables, keys and statements come from :mod:`brokerapp.adapters.dbschema`; rows, order and
the two failure exceptions (:class:`StoreUnavailable`: retry; :class:`StoreRejected`: the
data is refused) are described in :mod:`brokerapp.adapters.stores.base`.

Modules: ``base`` (interface, errors, shared row helpers), ``mariadb``, ``cassandra``,
``factory`` (the stores by name).
"""

from brokerapp.adapters.stores.base import (
    DEFAULT_TIMEOUT,
    Store,
    StoreRejected,
    StoreUnavailable,
)
from brokerapp.adapters.stores.cassandra import CassandraStore
from brokerapp.adapters.stores.factory import STORE_KINDS, open_store, store_class
from brokerapp.adapters.stores.mariadb import MariaDbStore

__all__ = [
    "DEFAULT_TIMEOUT",
    "STORE_KINDS",
    "CassandraStore",
    "MariaDbStore",
    "Store",
    "StoreRejected",
    "StoreUnavailable",
    "open_store",
    "store_class",
]
