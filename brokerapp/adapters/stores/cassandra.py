"""Cassandra behind the store interface: ``cassandra-driver`` bridged to asyncio.

Requests go out with the driver's ``execute_async``; its callbacks, on the driver's own
threads, resolve asyncio futures through ``call_soon_threadsafe`` (:class:`_Pages`, one future
per result page), so the event loop never waits on a driver call; connecting, preparing and
shutting down, which block, run in a thread. Statements are prepared once and bound
(:mod:`brokerapp.adapters.dbschema`). An upsert binds one prepared ``INSERT`` per row and
sends them as UNLOGGED batches of rows that share their first replica (at most
``cassandra_batch_rows`` rows and ``cassandra_batch_bytes`` bytes of values each), all in
flight at once (at most ``sink_concurrency``): one request per batch instead of one per row.
Unlogged batches are not atomic across partitions, which an upsert does not need. A None
is written as a null (a cell tombstone), not left unset, so that a replaced row loses values
it no longer has, as in MariaDB. The driver connects to ``cassandra_contact_points``,
balances over the nodes of ``cassandra_local_datacenter`` (token-aware) at LOCAL_QUORUM,
logs in with ``cassandra_user`` when that is set, and uses TLS, verifying the nodes'
certificates, when ``cassandra_ssl_ca`` is set (:func:`cassandra_cluster_options`). A refused
login raises :class:`CassandraLoginRefused` at once (no retry). ``db migrate`` creates the
keyspace with :func:`cassandra_replication`.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from brokerapp.adapters import dbschema
from brokerapp.adapters.dbschema import MIGRATIONS_TABLE, Table
from brokerapp.adapters.sql import cql_name
from brokerapp.adapters.stores.base import (
    DEFAULT_TIMEOUT,
    MIGRATION_TIMEOUT,
    Store,
    StoreRejected,
    StoreUnavailable,
    row_params,
    sort_key,
    where_columns,
)
from brokerapp.model.settings import Settings

__all__ = [
    "CassandraLoginRefused",
    "CassandraStore",
    "cassandra_cluster_options",
    "cassandra_replication",
]


class CassandraLoginRefused(Exception):  # noqa: N818 - reads as what happened
    """The nodes refused ``cassandra_user``'s credentials (a set-up error, not an outage)."""


def cassandra_replication(settings: Settings) -> int | dict[str, int]:
    """Return the replication ``db migrate`` gives a new keyspace.

    Returns
    -------
    int or dict
        ``cassandra_replication`` (datacenter -> replicas, NetworkTopologyStrategy) when it
        names datacenters, else ``cassandra_replication_factor`` (SimpleStrategy).
    """
    if settings.cassandra_replication:
        return dict(settings.cassandra_replication)
    return settings.cassandra_replication_factor


def cassandra_cluster_options(settings: Settings) -> dict[str, Any]:
    """Return the connection options of ``cassandra.cluster.Cluster`` from the settings.

    Parameters
    ----------
    settings : Settings
        ``cassandra_contact_points``, ``cassandra_port``, ``cassandra_user`` and its
        password (:meth:`~brokerapp.model.settings.Settings.cassandra_secret`),
        ``cassandra_ssl_ca``.

    Returns
    -------
    dict
        ``contact_points``, ``port``, ``auth_provider`` (a ``PlainTextAuthProvider``, or
        None without a user) and ``ssl_context`` (None without a CA; else a client context
        that requires and verifies the node's certificate, and its host name, the contact
        point's address).
    """
    from cassandra.auth import PlainTextAuthProvider

    auth = None
    if settings.cassandra_user:
        auth = PlainTextAuthProvider(
            username=settings.cassandra_user,
            password=settings.cassandra_secret().get_secret_value(),
        )
    context = None
    if settings.cassandra_ssl_ca is not None:
        context = ssl.create_default_context(cafile=str(settings.cassandra_ssl_ca))
    return {
        "contact_points": list(settings.cassandra_contact_points),
        "port": settings.cassandra_port,
        "auth_provider": auth,
        "ssl_context": context,
    }


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


class CassandraStore(Store):
    """The sinks' tables in Cassandra, through ``cassandra-driver`` bridged to asyncio.

    Requests go out with ``execute_async``; the driver's callbacks resolve asyncio futures,
    so the event loop never waits on a driver call (connecting, preparing and shutting down,
    which block, run in a thread). At most ``settings.sink_concurrency`` statements are in
    flight. The driver reconnects by itself after a node restarts (every 0.5 s, then up
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
    setup_errors = (CassandraLoginRefused,)

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
    def where(cls, settings: Settings) -> str:
        """Return ``keyspace <name> on <first contact point>:<port>``."""
        points = settings.cassandra_contact_points
        host = points[0] if points else "?"
        more = f" (+{len(points) - 1} more)" if len(points) > 1 else ""
        return f"keyspace {settings.cassandra_keyspace} on {host}:{settings.cassandra_port}{more}"

    @classmethod
    def key_columns(cls, table: str) -> tuple[str, ...]:
        """Return the table's partition and clustering columns."""
        return dbschema.table(table).order

    @classmethod
    def can_fetch_by(cls, table: str, columns: Collection[str]) -> bool:
        """Return whether the columns are the partition key and a part of the clustering."""
        tbl = dbschema.table(table)
        return set(tbl.partition_key) <= set(columns) <= set(tbl.order)

    @classmethod
    async def connect(
        cls, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT
    ) -> CassandraStore:
        """Connect to ``cassandra_contact_points`` on ``cassandra_port`` (protocol v5).

        Parameters
        ----------
        settings : Settings
            Contact points, port, local datacenter, account, keyspace, concurrency.
        timeout : float
            Seconds a connection attempt or a statement may take.

        Returns
        -------
        CassandraStore
            A connected store (the keyspace need not exist before :meth:`migrate`).

        Raises
        ------
        StoreUnavailable
            If no node answers.
        """
        from cassandra import AuthenticationFailed, ConsistencyLevel
        from cassandra.cluster import (
            EXEC_PROFILE_DEFAULT,
            Cluster,
            ExecutionProfile,
            NoHostAvailable,
        )
        from cassandra.policies import (
            DCAwareRoundRobinPolicy,
            ExponentialReconnectionPolicy,
            TokenAwarePolicy,
        )
        from cassandra.query import dict_factory

        cql_name(settings.cassandra_keyspace)
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(
                DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_datacenter)
            ),
            request_timeout=timeout,
            row_factory=dict_factory,
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        )
        cluster = Cluster(
            **cassandra_cluster_options(settings),
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
            errors = list(getattr(exc, "errors", {}).values())
            if (
                isinstance(exc, NoHostAvailable)
                and errors
                and all(isinstance(e, AuthenticationFailed) for e in errors)
            ):
                raise CassandraLoginRefused(
                    f"Cassandra refused the login of role {settings.cassandra_user!r}: check "
                    "cassandra_user and cassandra_password (or cassandra_password_file)"
                ) from exc
            mapped = _cassandra_error(exc, "connect")
            if mapped is None:
                raise
            raise mapped from exc
        return cls(settings, cluster, session, timeout)

    async def _execute(
        self,
        statement: Any,
        params: Sequence | None = None,
        *,
        timeout: float | None = None,
        what: str | None = None,
    ) -> list:
        """Run one statement (every page of its result), mapping driver errors."""
        what = what or _describe(statement)
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

        The keyspace gets :func:`cassandra_replication`: NetworkTopologyStrategy with
        ``cassandra_replication``'s datacenters, else SimpleStrategy with
        ``cassandra_replication_factor``.
        Each applied version is recorded in ``schema_migrations`` with a lightweight
        transaction, so of two concurrent callers only one reports it.

        Returns
        -------
        list of int
            Versions applied by this call ([] when already up to date).
        """
        ks = self.keyspace
        replication = cassandra_replication(self.settings)
        await self._execute(
            dbschema.cassandra_create_keyspace(ks, replication), timeout=MIGRATION_TIMEOUT
        )
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
        """Write one batch of rows: concurrent UNLOGGED batches of prepared inserts.

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
        params = row_params(tbl, rows)
        insert = await self._prepare(dbschema.cassandra_upsert(tbl, self.keyspace))
        bound = []
        for i, values in enumerate(params):
            try:
                bound.append(insert.bind(values))
            except (TypeError, ValueError, AttributeError, OverflowError, struct.error) as exc:
                raise StoreRejected(f"Cassandra client refused {table} row {i}: {exc}") from exc
        results = await asyncio.gather(
            *(
                self._execute(statement, what=f"{_describe(insert)} batch")
                for statement in self._batches(bound)
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for kind in (StoreUnavailable, StoreRejected, BaseException):
            for error in errors:
                if isinstance(error, kind):
                    raise error

    def _batches(self, bound: list[Any]) -> list[Any]:
        """Pack bound inserts into UNLOGGED batches, each of rows with the same first replica.

        Rows of one replica keep their order. With ``cassandra_batch_rows`` 1 the statements
        are returned as they are.
        """
        from cassandra.query import BatchStatement, BatchType

        most_rows, most_bytes = (
            self.settings.cassandra_batch_rows,
            self.settings.cassandra_batch_bytes,
        )
        if most_rows == 1 or len(bound) == 1:
            return bound
        metadata = self._cluster.metadata
        by_replica: dict[Any, list[Any]] = {}
        for statement in bound:
            replicas = metadata.get_replicas(self.keyspace, statement.routing_key)
            by_replica.setdefault(replicas[0] if replicas else None, []).append(statement)
        batches: list[Any] = []
        for statements in by_replica.values():
            batch, rows, size = None, 0, 0
            for statement in statements:
                length = sum(len(v) for v in statement.values if isinstance(v, bytes))
                if batch is None or rows >= most_rows or (rows and size + length > most_bytes):
                    batch, rows, size = BatchStatement(batch_type=BatchType.UNLOGGED), 0, 0
                    batches.append(batch)
                batch.add(statement)
                rows, size = rows + 1, size + length
        return batches

    async def _select(self, tbl: Table, where: tuple[str, ...], values: tuple) -> list[dict]:
        statement = await self._prepare(dbschema.cassandra_select(tbl, self.keyspace, where))
        rows = await self._execute(statement, values)
        return sorted(rows, key=sort_key(tbl))

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
        where = where_columns(tbl, equal)
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
