"""Async access to the sinks' tables in MariaDB and Cassandra, behind one API.

:class:`MariaDbStore` (an ``aiomysql`` pool) and :class:`CassandraStore` (``cassandra-driver``
with its requests bridged to asyncio futures) both offer::

    store = await open_store(settings, "mariadb")     # or "cassandra"
    await store.migrate()                              # versions applied, [] when up to date
    await store.upsert("candidates", rows)             # one batch of dicts, idempotent
    await store.fetch("candidates", object_id="ZTF18abc")
    await store.dump("objects"), await store.count("objects")
    await store.close()

Tables, keys and statements come from :mod:`brokerapp.adapters.dbschema`. Rows are dicts of every
column (missing nullable columns are None); :meth:`fetch` and :meth:`dump` return them in the
table's order (:attr:`brokerapp.adapters.dbschema.Table.order`, e.g. object, then time, then
candidate), the same in both stores.

Failures come out as one of two exceptions, so a sink knows what to do with a batch:

:class:`StoreUnavailable`
    The database could not be reached or did not answer (connection refused or lost,
    time-out, no host available, server overloaded): retry later, the batch is fine.
:class:`StoreRejected`
    The database (or the client library, before sending) refuses the data itself: a value
    of the wrong type or out of range, a string too long, a required column missing.
    Retrying the same batch will not help.

Anything else (wrong credentials, tables not migrated, a statement the server cannot parse)
propagates unchanged: it is a set-up or programming error, not a property of the batch.

Upserts write every column, so writing a row again replaces all of its values and replaying
the same input leaves the tables identical. In Cassandra a None is written as a null (a cell
tombstone), not left unset, so that a replaced row loses values it no longer has, as in
MariaDB.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pymysql

from brokerapp.adapters import dbschema
from brokerapp.adapters.dbschema import MIGRATIONS_TABLE, Table
from brokerapp.adapters.sql import cql_name, sql_name
from brokerapp.model.settings import Settings

__all__ = [
    "DEFAULT_TIMEOUT",
    "CassandraStore",
    "MariaDbStore",
    "StoreRejected",
    "StoreUnavailable",
    "open_store",
]

#: Seconds a statement (or taking a connection) may take before the store is unavailable.
DEFAULT_TIMEOUT = 30.0
#: Seconds a migration step (DDL, schema agreement) may take.
MIGRATION_TIMEOUT = 120.0
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


class StoreUnavailable(Exception):  # noqa: N818 - the name the sinks catch
    """The database could not be reached or did not answer in time: retry later."""


class StoreRejected(Exception):  # noqa: N818 - the name the sinks catch
    """The database refuses the data itself (a bad value): retrying will not help."""


def _where(tbl: Table, equal: Mapping[str, object]) -> tuple[str, ...]:
    """Check a fetch's filter and return its columns in table order."""
    if not equal:
        raise ValueError(f"fetch from {tbl.name} needs at least one column = value (or dump)")
    unknown = sorted(set(equal) - tbl.lookup_columns)
    if unknown:
        raise ValueError(
            f"{tbl.name} cannot be fetched by {', '.join(unknown)}; key and indexed columns "
            f"are {', '.join(sorted(tbl.lookup_columns))}"
        )
    return tuple(c for c in tbl.column_names if c in equal)


def _params(tbl: Table, rows: Sequence[Mapping[str, object]]) -> list[tuple[object, ...]]:
    """Return every row's parameters, or raise StoreRejected for the first bad row."""
    params = []
    for i, row in enumerate(rows):
        try:
            params.append(dbschema.row_params(tbl, row))
        except ValueError as exc:
            raise StoreRejected(f"row {i}: {exc}") from exc
    return params


def _sort_key(tbl: Table) -> Callable[[Mapping[str, Any]], tuple]:
    names = tbl.order
    return lambda row: tuple(row[n] for n in names)


# ============================================================================== MariaDB
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


class MariaDbStore:
    """The sinks' tables in MariaDB, through an ``aiomysql`` pool (autocommit).

    Use :meth:`connect` rather than the constructor.

    Parameters
    ----------
    settings : Settings
        Port, account and database of the server on 127.0.0.1.
    pool : aiomysql.Pool
        An open pool.
    timeout : float
        Seconds a statement may take before :class:`StoreUnavailable`.
    """

    kind = "mariadb"

    def __init__(self, settings: Settings, pool: Any, timeout: float = DEFAULT_TIMEOUT):
        self.settings = settings
        self._pool = pool
        self._timeout = timeout

    @classmethod
    async def connect(cls, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> MariaDbStore:
        """Open a pool of ``min(settings.sink_concurrency, 8)`` connections.

        Parameters
        ----------
        settings : Settings
            ``mariadb_port``, ``mariadb_user``, ``mariadb_database``; the password is
            :func:`brokerapp.tools.services.local_mariadb_password`.
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

        from brokerapp.tools.services import local_mariadb_password

        try:
            async with asyncio.timeout(timeout):
                pool = await aiomysql.create_pool(
                    minsize=1,
                    maxsize=min(settings.sink_concurrency, MARIADB_MAX_POOL),
                    pool_recycle=3600,
                    host="127.0.0.1",
                    port=settings.mariadb_port,
                    user=settings.mariadb_user,
                    password=local_mariadb_password(settings),
                    db=settings.mariadb_database,
                    charset="utf8mb4",
                    autocommit=True,
                    # Strict: a bad value is an error, never silently truncated or zeroed.
                    sql_mode="TRADITIONAL",
                    connect_timeout=timeout,
                )
        except TimeoutError as exc:
            raise StoreUnavailable(f"MariaDB did not answer within {timeout:g} s") from exc
        except (pymysql.MySQLError, OSError) as exc:
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
        params = _params(tbl, rows)
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
        where = _where(tbl, equal)
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


# ============================================================================== Cassandra
def _cassandra_error(exc: BaseException, what: str) -> Exception | None:
    """Return the store exception for a driver error, or None to let it through."""
    import cassandra
    from cassandra import protocol
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException

    unavailable = (
        NoHostAvailable,
        cassandra.OperationTimedOut,
        cassandra.Unavailable,
        cassandra.Timeout,
        cassandra.CoordinationFailure,
        protocol.ServerError,
        protocol.OverloadedErrorMessage,
        protocol.IsBootstrappingErrorMessage,
        protocol.UnavailableErrorMessage,
        protocol.ReadTimeoutErrorMessage,
        protocol.WriteTimeoutErrorMessage,
        ConnectionException,
        ConnectionError,
        OSError,
    )
    if isinstance(exc, unavailable):
        return StoreUnavailable(f"Cassandra unavailable ({what}): {exc!r}")
    if isinstance(exc, cassandra.InvalidRequest | protocol.InvalidRequestException):
        return StoreRejected(f"Cassandra rejected {what}: {exc}")
    return None


def _describe(statement: Any) -> str:
    """Return the start of a statement's text (up to its column list) for messages."""
    prepared = getattr(statement, "prepared_statement", statement)
    text = getattr(prepared, "query_string", statement)
    return str(text).split("(", 1)[0].strip()


class _Pages:
    """The pages of one driver request, delivered to the asyncio loop.

    The driver calls back on its own thread, once per page; each call is handed to the loop
    with ``call_soon_threadsafe`` and resolves the future of the current page.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, response_future: Any):
        self._loop = loop
        self._rf = response_future
        self._page: asyncio.Future = loop.create_future()
        response_future.add_callbacks(self._on_rows, self._on_error)

    def _deliver(self, rows: Any, exc: BaseException | None) -> None:
        if self._page.done():
            return
        if exc is not None:
            self._page.set_exception(exc)
        else:
            self._page.set_result(rows)

    def _from_driver(self, rows: Any, exc: BaseException | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, rows, exc)
        except RuntimeError:  # the loop is closed: nobody waits for this answer any more
            pass

    def _on_rows(self, rows: Any) -> None:
        self._from_driver(rows, None)

    def _on_error(self, exc: BaseException) -> None:
        self._from_driver(None, exc)

    async def all(self) -> list:
        rows: list = []
        while True:
            page = await self._page
            if isinstance(page, list):  # rows; None or a result message for other statements
                rows.extend(page)
            if not self._rf.has_more_pages:
                return rows
            self._page = self._loop.create_future()
            self._rf.start_fetching_next_page()


class CassandraStore:
    """The sinks' tables in Cassandra, through ``cassandra-driver`` bridged to asyncio.

    Requests go out with ``execute_async``; the driver's callbacks resolve asyncio futures,
    so the event loop never waits on a driver call (connecting, preparing and shutting down,
    which block, run in a thread). At most ``settings.sink_concurrency`` statements are in
    flight. The driver reconnects by itself after the node restarts (every 0.5 s, then up
    to every 5 s); meanwhile requests fail at once with :class:`StoreUnavailable`.

    Use :meth:`connect` rather than the constructor.

    Parameters
    ----------
    settings : Settings
        ``cassandra_keyspace``, ``cassandra_replication_factor``, ``sink_concurrency``.
    cluster : cassandra.cluster.Cluster
        The driver's cluster object.
    session : cassandra.cluster.Session
        A session of that cluster (no keyspace: statements name it).
    timeout : float
        Seconds a statement may take before :class:`StoreUnavailable`.
    """

    kind = "cassandra"

    def __init__(
        self, settings: Settings, cluster: Any, session: Any, timeout: float = DEFAULT_TIMEOUT
    ):
        self.settings = settings
        self.keyspace = settings.cassandra_keyspace
        cql_name(self.keyspace)
        self._cluster = cluster
        self._session = session
        self._timeout = timeout
        self._inflight = asyncio.Semaphore(settings.sink_concurrency)
        self._prepared: dict[str, Any] = {}
        self._prepare_lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT
    ) -> CassandraStore:
        """Connect to the node on ``127.0.0.1:settings.cassandra_port`` (protocol v5).

        Parameters
        ----------
        settings : Settings
            Port, keyspace, concurrency.
        timeout : float
            Seconds a connection attempt or a statement may take.

        Returns
        -------
        CassandraStore
            A connected store (the keyspace need not exist before :meth:`migrate`).

        Raises
        ------
        StoreUnavailable
            If the node does not answer.
        """
        from cassandra import ConsistencyLevel
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import ExponentialReconnectionPolicy, WhiteListRoundRobinPolicy
        from cassandra.query import dict_factory

        cql_name(settings.cassandra_keyspace)
        profile = ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy(["127.0.0.1"]),
            request_timeout=timeout,
            row_factory=dict_factory,
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        )
        cluster = Cluster(
            ["127.0.0.1"],
            port=settings.cassandra_port,
            protocol_version=5,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            reconnection_policy=ExponentialReconnectionPolicy(0.5, 5.0),
            connect_timeout=min(timeout, 10.0),
            control_connection_timeout=min(timeout, 10.0),
        )
        try:
            session = await asyncio.to_thread(cluster.connect)
        except Exception as exc:
            await asyncio.to_thread(cluster.shutdown)
            mapped = _cassandra_error(exc, "connect")
            if mapped is None:
                raise
            raise mapped from exc
        return cls(settings, cluster, session, timeout)

    async def _execute(
        self, statement: Any, params: Sequence | None = None, *, timeout: float | None = None
    ) -> list:
        """Run one statement (every page of its result), mapping driver errors."""
        what = _describe(statement)
        async with self._inflight:
            try:
                response_future = self._session.execute_async(
                    statement, params, timeout=timeout or self._timeout
                )
                return await _Pages(asyncio.get_running_loop(), response_future).all()
            except Exception as exc:
                mapped = _cassandra_error(exc, what)
                if mapped is None:
                    raise
                raise mapped from exc

    async def _prepare(self, text: str) -> Any:
        """Return the prepared statement of ``text``, preparing it once (in a thread)."""
        prepared = self._prepared.get(text)
        if prepared is not None:
            return prepared
        async with self._prepare_lock:
            prepared = self._prepared.get(text)
            if prepared is None:
                try:
                    prepared = await asyncio.to_thread(self._session.prepare, text)
                except Exception as exc:
                    mapped = _cassandra_error(exc, "prepare")
                    # A refused prepare (no such table) is a set-up error, not bad data.
                    if mapped is None or isinstance(mapped, StoreRejected):
                        raise
                    raise mapped from exc
                self._prepared[text] = prepared
        return prepared

    async def _migrations_table_exists(self) -> bool:
        rows = await self._execute(
            "SELECT table_name FROM system_schema.tables "
            "WHERE keyspace_name = %s AND table_name = %s",
            (self.keyspace, MIGRATIONS_TABLE),
        )
        return bool(rows)

    async def _applied(self) -> set[int]:
        rows = await self._execute(
            f"SELECT {cql_name('version')} FROM {cql_name(self.keyspace)}."
            f"{cql_name(MIGRATIONS_TABLE)}"
        )
        return {row["version"] for row in rows}

    async def migrate(self) -> list[int]:
        """Create the keyspace if needed and apply the pending migrations.

        The keyspace gets SimpleStrategy with ``settings.cassandra_replication_factor``.
        Each applied version is recorded in ``schema_migrations`` with a lightweight
        transaction, so of two concurrent callers only one reports it.

        Returns
        -------
        list of int
            Versions applied by this call ([] when already up to date).
        """
        ks = self.keyspace
        rf = self.settings.cassandra_replication_factor
        await self._execute(dbschema.cassandra_create_keyspace(ks, rf), timeout=MIGRATION_TIMEOUT)
        await self._execute(dbschema.cassandra_migrations_table(ks), timeout=MIGRATION_TIMEOUT)
        done = await self._applied()
        record = await self._prepare(
            f"INSERT INTO {cql_name(ks)}.{cql_name(MIGRATIONS_TABLE)} "
            f"({cql_name('version')}, {cql_name('description')}) VALUES (?, ?) IF NOT EXISTS"
        )
        applied = []
        for step in dbschema.migrations(ks):
            if step.version in done:
                continue
            for statement in step.cassandra:
                await self._execute(statement, timeout=MIGRATION_TIMEOUT)
            rows = await self._execute(record, (step.version, step.description))
            if rows and rows[0].get("[applied]"):
                applied.append(step.version)
        return applied

    async def schema_version(self) -> int:
        """Return the highest migration version applied (0 before the first migrate)."""
        if not await self._migrations_table_exists():
            return 0
        return max(await self._applied(), default=0)

    async def upsert(self, table: str, rows: Sequence[Mapping[str, object]]) -> None:
        """Write one batch of rows: concurrent prepared inserts (no batches).

        Every row is checked and bound before anything is sent, so a row the driver cannot
        encode rejects the whole batch unwritten. A server-side refusal or an outage may
        leave part of the batch written; writing it again is harmless (inserts are upserts).

        Parameters
        ----------
        table : str
            One of :data:`brokerapp.adapters.dbschema.TABLES`.
        rows : sequence of mapping
            Column name -> value; a row already there (same primary key) is replaced.

        Raises
        ------
        StoreRejected
            If a row lacks a required column or a value is refused.
        StoreUnavailable
            If the node cannot be reached; takes precedence when both happen in a batch.
        """
        tbl = dbschema.table(table)
        if not rows:
            return
        params = _params(tbl, rows)
        insert = await self._prepare(dbschema.cassandra_upsert(tbl, self.keyspace))
        bound = []
        for i, values in enumerate(params):
            try:
                bound.append(insert.bind(values))
            except (TypeError, ValueError, AttributeError, OverflowError, struct.error) as exc:
                raise StoreRejected(f"Cassandra client refused {table} row {i}: {exc}") from exc
        results = await asyncio.gather(
            *(self._execute(statement) for statement in bound), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for kind in (StoreUnavailable, StoreRejected, BaseException):
            for error in errors:
                if isinstance(error, kind):
                    raise error

    async def _select(self, tbl: Table, where: tuple[str, ...], values: tuple) -> list[dict]:
        statement = await self._prepare(dbschema.cassandra_select(tbl, self.keyspace, where))
        rows = await self._execute(statement, values)
        return sorted(rows, key=_sort_key(tbl))

    async def fetch(self, table: str, **equal: object) -> list[dict]:
        """Return the rows whose columns equal the given values, in the table's order.

        Parameters
        ----------
        table : str
            One of :data:`brokerapp.adapters.dbschema.TABLES`.
        **equal
            Column = value: the whole partition key (e.g. ``object_id``), optionally with a
            prefix of the clustering columns.

        Returns
        -------
        list of dict
            Every column of each matching row.

        Raises
        ------
        ValueError
            If the filter is not a partition lookup (Cassandra would scan every node).
        """
        tbl = dbschema.table(table)
        where = _where(tbl, equal)
        return await self._select(tbl, where, tuple(equal[c] for c in where))

    async def dump(self, table: str) -> list[dict]:
        """Return every row of a table, in the table's order (for tests and small tables)."""
        return await self._select(dbschema.table(table), (), ())

    async def count(self, table: str) -> int:
        """Return the number of rows of a table (a full scan)."""
        rows = await self._execute(dbschema.cassandra_count(dbschema.table(table), self.keyspace))
        return int(rows[0]["count"])

    async def close(self) -> None:
        """Shut the driver's connections and threads down."""
        await asyncio.to_thread(self._cluster.shutdown)


async def open_store(settings: Settings, kind: str) -> MariaDbStore | CassandraStore:
    """Connect to one store.

    Parameters
    ----------
    settings : Settings
        The broker's settings.
    kind : str
        ``mariadb`` or ``cassandra``.

    Returns
    -------
    MariaDbStore or CassandraStore
        A connected store.

    Raises
    ------
    ValueError
        If ``kind`` is neither.
    StoreUnavailable
        If the database does not answer.
    """
    if kind == "mariadb":
        return await MariaDbStore.connect(settings)
    if kind == "cassandra":
        return await CassandraStore.connect(settings)
    raise ValueError(f"unknown store {kind!r}: use 'mariadb' or 'cassandra'")
