"""The store interface every database backend implements, and the errors it raises.

A store holds the sinks' tables of :mod:`brokerapp.adapters.dbschema`. Rows are dicts of
every column (missing nullable columns are None); :meth:`Store.fetch` and :meth:`Store.dump`
return them in the table's order (:attr:`brokerapp.adapters.dbschema.Table.order`, e.g.
object, then time, then candidate), the same in every store.

Failures come out as one of two exceptions, so a sink knows what to do with a batch:

:class:`StoreUnavailable`
    The database could not be reached or did not answer (connection refused or lost,
    time-out, no host available, server overloaded): retry later, the batch is fine.
:class:`StoreRejected`
    The database (or the client library, before sending) refuses the data itself: a value
    of the wrong type or out of range, a string too long, a required column missing.
    Retrying the same batch will not help.

Anything else (wrong credentials, tables not migrated, a statement the server cannot parse)
propagates unchanged: it is a set-up or programming error, not a property of the batch. The
client errors among those that a command line reports in one line (a refused account, a
missing database) are listed in :attr:`Store.setup_errors`.

Upserts write every column, so writing a row again replaces all of its values and replaying
the same input leaves the tables identical.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

from brokerapp.adapters import dbschema
from brokerapp.adapters.dbschema import Table
from brokerapp.model.settings import Settings

__all__ = [
    "DEFAULT_TIMEOUT",
    "MIGRATION_TIMEOUT",
    "Store",
    "StoreRejected",
    "StoreUnavailable",
]

#: Seconds a statement (or taking a connection) may take before the store is unavailable.
DEFAULT_TIMEOUT = 30.0
#: Seconds a migration step (DDL, schema agreement) may take.
MIGRATION_TIMEOUT = 120.0


class StoreUnavailable(Exception):  # noqa: N818 - the name the sinks catch
    """The database could not be reached or did not answer in time: retry later."""


class StoreRejected(Exception):  # noqa: N818 - the name the sinks catch
    """The database refuses the data itself (a bad value): retrying will not help."""


class Store(ABC):
    """The sinks' tables in one database: migrations, upserts, lookups (all async).

    Open one with :meth:`connect` (or :func:`brokerapp.adapters.stores.open_store` by name)
    and :meth:`close` it when done.
    """

    #: Name of the backend (``mariadb``, ``cassandra``), as settings and the CLI spell it.
    kind: ClassVar[str]
    #: Client errors that mean a set-up problem a user can fix (account, database): a command
    #: line reports them in one line. They propagate from the store unchanged.
    setup_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    @classmethod
    @abstractmethod
    async def connect(cls, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> Store:
        """Connect to the database the settings name.

        Parameters
        ----------
        settings : Settings
            Host, port, account and database or keyspace.
        timeout : float
            Seconds a connection attempt or a statement may take.

        Returns
        -------
        Store
            A connected store.

        Raises
        ------
        StoreUnavailable
            If the database does not answer.
        """

    @classmethod
    @abstractmethod
    def where(cls, settings: Settings) -> str:
        """Return where the tables are, for messages: database or keyspace, host and port."""

    @classmethod
    @abstractmethod
    def key_columns(cls, table: str) -> tuple[str, ...]:
        """Return the columns that identify a row of ``table`` in this store."""

    @classmethod
    @abstractmethod
    def can_fetch_by(cls, table: str, columns: Collection[str]) -> bool:
        """Return whether :meth:`fetch` can look ``table`` up by exactly these columns."""

    @abstractmethod
    async def migrate(self) -> list[int]:
        """Apply the pending migrations and return the versions applied ([] if none)."""

    @abstractmethod
    async def schema_version(self) -> int:
        """Return the highest migration version applied (0 before the first migrate)."""

    @abstractmethod
    async def upsert(self, table: str, rows: Sequence[Mapping[str, object]]) -> None:
        """Write one batch of rows; a row already there (same key) is replaced.

        Raises
        ------
        StoreRejected
            If a row lacks a required column or a value is refused.
        StoreUnavailable
            If the database cannot be reached.
        """

    @abstractmethod
    async def fetch(self, table: str, **equal: object) -> list[dict]:
        """Return the rows whose columns equal the given values, in the table's order."""

    @abstractmethod
    async def dump(self, table: str) -> list[dict]:
        """Return every row of a table, in the table's order (for tests and small tables)."""

    @abstractmethod
    async def count(self, table: str) -> int:
        """Return the number of rows of a table."""

    @abstractmethod
    async def close(self) -> None:
        """Close the store's connections."""


def where_columns(tbl: Table, equal: Mapping[str, object]) -> tuple[str, ...]:
    """Check a fetch's filter and return its columns in table order.

    Raises
    ------
    ValueError
        If the filter is empty or names a column that is neither key nor indexed.
    """
    if not equal:
        raise ValueError(f"fetch from {tbl.name} needs at least one column = value (or dump)")
    unknown = sorted(set(equal) - tbl.lookup_columns)
    if unknown:
        raise ValueError(
            f"{tbl.name} cannot be fetched by {', '.join(unknown)}; key and indexed columns "
            f"are {', '.join(sorted(tbl.lookup_columns))}"
        )
    return tuple(c for c in tbl.column_names if c in equal)


def row_params(tbl: Table, rows: Sequence[Mapping[str, object]]) -> list[tuple[object, ...]]:
    """Return every row's bound parameters, or raise StoreRejected for the first bad row."""
    params = []
    for i, row in enumerate(rows):
        try:
            params.append(dbschema.row_params(tbl, row))
        except ValueError as exc:
            raise StoreRejected(f"row {i}: {exc}") from exc
    return params


def sort_key(tbl: Table) -> Callable[[Mapping[str, Any]], tuple]:
    """Return the key that sorts rows of ``tbl`` in the table's order."""
    names = tbl.order
    return lambda row: tuple(row[n] for n in names)
