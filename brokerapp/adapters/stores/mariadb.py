"""MariaDB behind the store interface: an ``aiomysql`` pool, autocommit, strict SQL mode.

Statements come from :mod:`brokerapp.adapters.dbschema`, always with bound parameters. An
upsert is one ``INSERT ... ON DUPLICATE KEY UPDATE`` of every column, sent as one multi-row
``executemany`` in one transaction, so a batch is written whole or not at all. Migrations
are serialised between concurrent callers by a named server lock (``GET_LOCK``) and recorded
in ``schema_migrations``. Client error numbers are sorted into
:class:`~brokerapp.adapters.stores.base.StoreUnavailable` (server gone, busy, lock wait) and
:class:`~brokerapp.adapters.stores.base.StoreRejected` (a value refused); the rest, such as a
refused account or an unknown database (``pymysql.err.OperationalError``, listed in
:attr:`MariaDbStore.setup_errors`), propagate.

With ``mariadb_ssl_ca`` set the connections use TLS (:func:`mariadb_ssl_context`): the
server's certificate and host name are verified, and ``mariadb_ssl_cert``/``mariadb_ssl_key``
are shown as the client's certificate when set.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

import pymysql

from brokerapp.adapters import dbschema
from brokerapp.adapters.dbschema import MIGRATIONS_TABLE, Table
from brokerapp.adapters.sql import sql_name
from brokerapp.adapters.stores.base import (
    DEFAULT_TIMEOUT,
    MIGRATION_TIMEOUT,
    Store,
    StoreRejected,
    StoreUnavailable,
    row_params,
    where_columns,
)
from brokerapp.model.settings import Settings

__all__ = ["MARIADB_MAX_POOL", "MariaDbStore", "mariadb_ssl_context"]

#: Most connections of a MariaDB store's pool.
MARIADB_MAX_POOL = 8
#: MariaDB and client error numbers meaning "the server is not there or is busy: retry".
_MARIADB_UNAVAILABLE = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown in progress
        1205,  # lock wait timeout
        1213,  # deadlock
        1927,  # connection killed
        2002,  # cannot connect through the socket
        2003,  # cannot connect to the server
        2006,  # server has gone away
        2013,  # lost connection during query
        2014,  # commands out of sync (a connection left half-way)
        2055,  # lost connection at a system call
    }
)
#: MariaDB error numbers pymysql raises as OperationalError that are about a value.
_MARIADB_VALUE_ERRORS = frozenset(
    {
        1292,  # truncated incorrect value
        1367,  # illegal double value
        1690,  # value out of range
    }
)


def mariadb_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """Return the TLS context of MariaDB connections, or None without ``mariadb_ssl_ca``.

    Parameters
    ----------
    settings : Settings
        ``mariadb_ssl_ca`` and the optional ``mariadb_ssl_cert``/``mariadb_ssl_key``.

    Returns
    -------
    ssl.SSLContext or None
        A client context that verifies the server's certificate against the CA and its
        name against ``mariadb_host``, with the client certificate loaded when set.

    Raises
    ------
    ValueError
        If a client certificate or key is set without a CA, or one without the other.
    """
    cert, key = settings.mariadb_ssl_cert, settings.mariadb_ssl_key
    if settings.mariadb_ssl_ca is None:
        if cert is not None or key is not None:
            raise ValueError("mariadb_ssl_cert and mariadb_ssl_key need mariadb_ssl_ca")
        return None
    if (cert is None) != (key is None):
        raise ValueError("set both mariadb_ssl_cert and mariadb_ssl_key, or neither")
    context = ssl.create_default_context(cafile=str(settings.mariadb_ssl_ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def _mariadb_error(exc: BaseException, what: str) -> Exception | None:
    """Return the store exception for a MariaDB client error, or None to let it through."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if isinstance(exc, pymysql.err.OperationalError):
        if code in _MARIADB_UNAVAILABLE:
            return StoreUnavailable(f"MariaDB unavailable ({what}): {exc}")
        if code in _MARIADB_VALUE_ERRORS:
            return StoreRejected(f"MariaDB rejected {what}: {exc}")
        return None
    if isinstance(exc, pymysql.err.InterfaceError | ConnectionError | OSError):
        return StoreUnavailable(f"MariaDB unavailable ({what}): {exc!r}")
    if isinstance(exc, pymysql.err.DataError | pymysql.err.IntegrityError):
        return StoreRejected(f"MariaDB rejected {what}: {exc}")
    if isinstance(exc, pymysql.err.ProgrammingError) and code is None:
        # Raised by pymysql itself while quoting a value it cannot send (nan, inf).
        return StoreRejected(f"MariaDB client refused a value in {what}: {exc}")
    return None


async def _has_migrations_table(cur: Any) -> bool:
    await cur.execute(
        "SELECT COUNT(*) FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        (MIGRATIONS_TABLE,),
    )
    return (await cur.fetchone())[0] > 0


class MariaDbStore(Store):
    """The sinks' tables in MariaDB, through an ``aiomysql`` pool (autocommit).

    Use :meth:`connect` rather than the constructor.

    Parameters
    ----------
    settings : Settings
        Host, port, account and database of the server.
    pool : aiomysql.Pool
        An open pool.
    timeout : float
        Seconds a statement may take before :class:`StoreUnavailable`.
    """

    kind = "mariadb"
    setup_errors = (pymysql.err.OperationalError,)

    def __init__(self, settings: Settings, pool: Any, timeout: float = DEFAULT_TIMEOUT):
        self.settings = settings
        self._pool = pool
        self._timeout = timeout

    @classmethod
    def where(cls, settings: Settings) -> str:
        """Return ``database <name> on <host>:<port>``."""
        return (
            f"database {settings.mariadb_database} on "
            f"{settings.mariadb_host}:{settings.mariadb_port}"
        )

    @classmethod
    def key_columns(cls, table: str) -> tuple[str, ...]:
        """Return the table's MariaDB primary key."""
        return dbschema.table(table).mariadb_key

    @classmethod
    def can_fetch_by(cls, table: str, columns: Collection[str]) -> bool:
        """Return whether every column is a key or indexed column of the table."""
        return bool(columns) and set(columns) <= dbschema.table(table).lookup_columns

    @classmethod
    async def connect(cls, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> MariaDbStore:
        """Open a pool of ``min(settings.sink_concurrency, 8)`` connections.

        Parameters
        ----------
        settings : Settings
            ``mariadb_host``, ``mariadb_port``, ``mariadb_user``, ``mariadb_database`` and
            the password (:meth:`~brokerapp.model.settings.Settings.mariadb_secret`).
        timeout : float
            Seconds a connection attempt or a statement may take.

        Returns
        -------
        MariaDbStore
            A store with one connection open.

        Raises
        ------
        StoreUnavailable
            If the server does not answer.
        """
        import aiomysql

        try:
            async with asyncio.timeout(timeout):
                pool = await aiomysql.create_pool(
                    minsize=1,
                    maxsize=min(settings.sink_concurrency, MARIADB_MAX_POOL),
                    pool_recycle=3600,
                    host=settings.mariadb_host,
                    port=settings.mariadb_port,
                    user=settings.mariadb_user,
                    password=settings.mariadb_secret().get_secret_value(),
                    db=settings.mariadb_database,
                    charset="utf8mb4",
                    autocommit=True,
                    # Strict: a bad value is an error, never silently truncated or zeroed.
                    sql_mode="TRADITIONAL",
                    connect_timeout=timeout,
                    ssl=mariadb_ssl_context(settings),
                )
        except TimeoutError as exc:
            raise StoreUnavailable(f"MariaDB did not answer within {timeout:g} s") from exc
        except (pymysql.MySQLError, OSError) as exc:
            if isinstance(exc.__cause__, ssl.SSLError):
                # A refused certificate is a set-up error (2026: SSL connection error).
                raise pymysql.err.OperationalError(
                    2026,
                    f"TLS with MariaDB at {settings.mariadb_host}:{settings.mariadb_port} "
                    f"failed: {exc.__cause__} (mariadb_ssl_ca {settings.mariadb_ssl_ca})",
                ) from exc
            mapped = _mariadb_error(exc, "connect")
            if mapped is None:
                raise
            raise mapped from exc
        return cls(settings, pool, timeout)

    async def _run(
        self,
        what: str,
        work: Callable[[Any], Awaitable[Any]],
        *,
        transaction: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Run ``work(cursor)`` on a pooled connection, mapping errors to the store's.

        A connection that saw any error is closed rather than returned to the pool, so a
        half-read answer or an open transaction never reaches the next caller.
        """
        timeout = timeout or self._timeout
        conn = None
        failed = True
        try:
            async with asyncio.timeout(timeout):
                conn = await self._pool.acquire()
                if transaction:
                    await conn.begin()
                async with conn.cursor() as cur:
                    result = await work(cur)
                if transaction:
                    await conn.commit()
            failed = False
            return result
        except TimeoutError as exc:
            raise StoreUnavailable(f"MariaDB did not answer within {timeout:g} s ({what})") from exc
        except (pymysql.MySQLError, OSError) as exc:
            mapped = _mariadb_error(exc, what)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if conn is not None:
                if failed:
                    conn.close()
                self._pool.release(conn)

    async def migrate(self) -> list[int]:
        """Apply the pending migrations, recording each in ``schema_migrations``.

        Concurrent callers are serialised by a named lock of the server.

        Returns
        -------
        list of int
            Versions applied by this call ([] when already up to date).
        """
        lock = f"brokerapp.migrate.{self.settings.mariadb_database}"[:64]
        steps = dbschema.migrations(self.settings.cassandra_keyspace)
        record = (
            f"INSERT INTO {sql_name(MIGRATIONS_TABLE)} ({sql_name('version')}, "
            f"{sql_name('description')}) VALUES (%s, %s)"
        )

        async def work(cur: Any) -> list[int]:
            await cur.execute("SELECT GET_LOCK(%s, %s)", (lock, MIGRATION_TIMEOUT))
            if (await cur.fetchone())[0] != 1:
                raise StoreUnavailable(f"another migration holds the MariaDB lock {lock!r}")
            # On an error the connection is closed (see _run), which releases the lock too.
            if not await _has_migrations_table(cur):
                await cur.execute(dbschema.mariadb_migrations_table())
            await cur.execute(f"SELECT {sql_name('version')} FROM {sql_name(MIGRATIONS_TABLE)}")
            done = {row[0] for row in await cur.fetchall()}
            applied: list[int] = []
            for step in steps:
                if step.version in done:
                    continue
                for statement in step.mariadb:
                    await cur.execute(statement)
                await cur.execute(record, (step.version, step.description))
                applied.append(step.version)
            await cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
            await cur.fetchall()
            return applied

        return await self._run("migrate", work, timeout=MIGRATION_TIMEOUT)

    async def schema_version(self) -> int:
        """Return the highest migration version applied (0 before the first migrate)."""

        async def work(cur: Any) -> int:
            if not await _has_migrations_table(cur):
                return 0
            await cur.execute(
                f"SELECT COALESCE(MAX({sql_name('version')}), 0) FROM {sql_name(MIGRATIONS_TABLE)}"
            )
            return int((await cur.fetchone())[0])

        return await self._run("schema version", work)

    async def upsert(self, table: str, rows: Sequence[Mapping[str, object]]) -> None:
        """Write one batch of rows in one transaction (``executemany``, a multi-row insert).

        Parameters
        ----------
        table : str
            One of :data:`brokerapp.adapters.dbschema.TABLES`.
        rows : sequence of mapping
            Column name -> value; a row already there (same primary key) is replaced.

        Raises
        ------
        StoreRejected
            If a row lacks a required column or the server refuses a value (nothing of the
            batch is written).
        StoreUnavailable
            If the server cannot be reached (nothing of the batch is written).
        """
        tbl = dbschema.table(table)
        if not rows:
            return
        params = row_params(tbl, rows)
        statement = dbschema.mariadb_upsert(tbl)

        async def work(cur: Any) -> None:
            try:
                await cur.executemany(statement, params)
            except TypeError as exc:  # pymysql cannot quote a value (a dict, a list...)
                raise StoreRejected(f"MariaDB client refused a {table} value: {exc}") from exc

        await self._run(f"{len(params)} {table} rows", work, transaction=True)

    async def _select(self, tbl: Table, where: tuple[str, ...], values: tuple) -> list[dict]:
        statement = dbschema.mariadb_select(tbl, where)
        names = tbl.column_names

        async def work(cur: Any) -> list[dict]:
            await cur.execute(statement, values)
            return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]

        return await self._run(f"select from {tbl.name}", work)

    async def fetch(self, table: str, **equal: object) -> list[dict]:
        """Return the rows whose columns equal the given values, in the table's order.

        Parameters
        ----------
        table : str
            One of :data:`brokerapp.adapters.dbschema.TABLES`.
        **equal
            Column = value, on key or indexed columns
            (:attr:`brokerapp.adapters.dbschema.Table.lookup_columns`).

        Returns
        -------
        list of dict
            Every column of each matching row.
        """
        tbl = dbschema.table(table)
        where = where_columns(tbl, equal)
        return await self._select(tbl, where, tuple(equal[c] for c in where))

    async def dump(self, table: str) -> list[dict]:
        """Return every row of a table, in the table's order (for tests and small tables)."""
        return await self._select(dbschema.table(table), (), ())

    async def count(self, table: str) -> int:
        """Return the number of rows of a table."""
        statement = dbschema.mariadb_count(dbschema.table(table))

        async def work(cur: Any) -> int:
            await cur.execute(statement)
            return int((await cur.fetchone())[0])

        return await self._run(f"count {table}", work)

    async def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()
        await self._pool.wait_closed()
