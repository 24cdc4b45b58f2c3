"""Database sinks: the listeners that upsert the broker's records into MariaDB or Cassandra.

A sink worker (``faust -A agents.mariadb_sink worker`` or ``agents.cassandra_sink``, app id
``<app_prefix>-<store>-sink``, so each store has its own consumer group and a slow store
never holds back the other) runs one batch loop (:mod:`brokerapp.runtime.batch`, named
``sink``) over the four topics, one table each:

=================  =============================  ==================================
table              reads                          rows (:mod:`brokerapp.domain.candidates`)
=================  =============================  ==================================
``candidates``     ``candidates_topic``           the alert's and previous detections
``ss_candidates``  ``ss_candidates_topic``        the solar-system detection
``annotations``    ``annotations_topic``          watchlist and catalogue matches
``objects``        ``objects_topic``              the object's statistics
=================  =============================  ==================================

Per fetched batch (the fetch waits at most ``sink_batch_seconds`` to fill), each JSON record
becomes rows collected per table (:class:`TableBatch`), written as one upsert keyed on the
table's primary key per ``sink_batch_size`` messages (rows with the same key in one write are
written once, the latest; a detection or annotation this worker has already stored, among the
last ``sink_remember_rows``, is not written again: each ZTF alert repeats up to 30 days of
previous detections). Only after the database has confirmed every write of the batch are its
offsets committed, so no offset is committed past a row that is not stored: at least once.
While the database is down or failing the sink retries with exponential backoff
(``sink_retry_backoff`` up to ``sink_retry_backoff_max``) for as long as it takes, reading
nothing further meanwhile; killed meanwhile, it starts again from the last committed offset,
and the upserts make the rewrites harmless.

A message that is not valid JSON or not a record of its table, and a row the database
refuses (:class:`brokerapp.adapters.stores.StoreRejected`: found by writing the batch's rows one by
one), go to ``<topic_prefix><store>-sink-deadletter`` with the reason; the sink goes on.
Status: ``/<store>-sink/`` and ``/<store>-sink/status.json``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from brokerapp.adapters.stores import (
    STORE_KINDS,
    Store,
    StoreRejected,
    StoreUnavailable,
    open_store,
    store_class,
)
from brokerapp.domain.candidates import (
    CandidateError,
    annotation_rows,
    candidate_rows,
    object_row,
    ss_candidate_rows,
)
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app
from brokerapp.runtime.backoff import backoff_delay
from brokerapp.runtime.batch import Outbox, Record
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.runtime.latency import LatencyWindow
from brokerapp.wire import records
from brokerapp.wire.headers import ORIGIN_TIMESTAMP

__all__ = [
    "SINK_TABLES",
    "SinkTable",
    "StoreWriter",
    "TableBatch",
    "build_sink",
    "key_columns",
    "rows_of",
]

logger = logging.getLogger(__name__)

STORES = STORE_KINDS
"""The stores a sink writes to."""


@dataclass(frozen=True)
class SinkTable:
    """One table a sink fills: its agent, source topic setting and row function.

    Attributes
    ----------
    table : str
        Table name (also the agent's name).
    topic_setting : str
        Settings field naming the source topic.
    rows : callable
        ``rows(record) -> list of dict``; raises :class:`CandidateError` for a bad record.
    immutable : bool
        Whether a row, once stored, never changes (a detection does; an object's statistics
        do not): the sink then skips rows it has already stored.
    """

    table: str
    topic_setting: str
    rows: Callable[[Mapping[str, Any]], list[dict]]
    immutable: bool = True


SINK_TABLES = (
    SinkTable("candidates", "candidates_topic", candidate_rows),
    SinkTable("ss_candidates", "ss_candidates_topic", ss_candidate_rows),
    SinkTable("annotations", "annotations_topic", annotation_rows),
    SinkTable("objects", "objects_topic", lambda update: [object_row(update)], immutable=False),
)
"""Every table of :mod:`brokerapp.adapters.dbschema` with where its rows come from."""


def rows_of(table: SinkTable, value: bytes | None) -> list[dict]:
    """Decode one message value and return its rows.

    Parameters
    ----------
    table : SinkTable
        The table.
    value : bytes or None
        The message value (JSON).

    Returns
    -------
    list of dict
        Rows of ``table.table``.

    Raises
    ------
    CandidateError
        If the value is not JSON or not a record of the table.
    """
    try:
        record = records.loads(value or b"")
    except ValueError as exc:
        raise CandidateError(f"not JSON: {exc}") from exc
    if not isinstance(record, Mapping):
        raise CandidateError(f"not a JSON object but {type(record).__name__}")
    return table.rows(record)


def origin_ms(headers: Any) -> float | None:
    """Return the ``origin-timestamp`` header (upstream append time, ms), if there is one.

    The gateway adds it to every alert and the branches keep their input's headers.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in pairs:
        if name == ORIGIN_TIMESTAMP:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def key_columns(table: str, kind: str) -> tuple[str, ...]:
    """Return the columns that identify a row of ``table`` in store ``kind``.

    MariaDB's primary key; Cassandra's partition and clustering columns
    (:meth:`brokerapp.adapters.stores.Store.key_columns`).
    """
    return store_class(kind).key_columns(table)


class TableBatch:
    """The rows of one table waiting to be written, and the messages they came from.

    Parameters
    ----------
    table : str
        Table name.
    write : callable
        ``await write(table, rows)``: writes one batch, retrying until it is stored;
        raises :class:`StoreRejected` for data the database refuses.
    reject : callable
        ``await reject(event, error)``: dead-letters the message of a refused row.
    settings : Settings
        Batch size and age.
    key : tuple of str
        Columns identifying a row in the store (rows with the same key in one batch are
        written once: the latest).
    remember : int
        How many keys of stored rows to remember (the latest), so that a row seen again is
        not rewritten; 0 for tables whose rows change.
    """

    def __init__(
        self,
        table: str,
        write: Callable[[str, Sequence[Mapping]], Any],
        reject: Callable[[Record, Exception], None],
        settings: Settings,
        key: tuple[str, ...],
        remember: int = 0,
    ):
        self.table = table
        self.key = key
        self.remember = remember
        self.stored: dict[tuple, None] = {}
        self.skipped = 0
        self._write = write
        self._reject = reject
        self.size = settings.sink_batch_size
        self.rows: dict[tuple, tuple[dict, Record]] = {}
        self.events: list[Record] = []
        self.lock = asyncio.Lock()
        self.stored_latency = LatencyWindow(60)
        self.from_upstream = LatencyWindow(60)
        self.written = 0
        self.batches = 0
        self.rejected = 0

    async def add(self, event: Record, rows: list[dict]) -> None:
        """Add one message's rows; write the batch when it is full."""
        self.events.append(event)
        for row in rows:
            key = tuple(row.get(column) for column in self.key)
            if key in self.stored:
                self.skipped += 1
            else:
                self.rows[key] = (row, event)
        if len(self.events) >= self.size:
            await self.flush()

    async def flush(self) -> None:
        """Write the pending rows (their messages are committed after this returns)."""
        async with self.lock:
            if not self.events:
                return
            rows, events = self.rows, self.events
            self.rows, self.events = {}, []
            try:
                if rows:
                    await self._write(self.table, [row for row, _ in rows.values()])
            except StoreRejected:
                await self._one_by_one(rows)
            if self.remember:
                for key in rows:
                    self.stored[key] = None
                while len(self.stored) > self.remember:
                    del self.stored[next(iter(self.stored))]
            now = time.time()
            self.written += len(rows)
            self.batches += 1
            self.stored_latency.add(now, [now * 1000.0 - e.timestamp for e in events])
            upstream = [origin_ms(e.headers) for e in events]
            self.from_upstream.add(now, [now * 1000.0 - t for t in upstream if t is not None])

    async def _one_by_one(self, rows: dict[tuple, tuple[dict, Record]]) -> None:
        """Find the refused rows of a batch, dead-letter their messages, store the rest."""
        for row, event in rows.values():
            try:
                await self._write(self.table, [row])
            except StoreRejected as exc:
                self.rejected += 1
                self._reject(event, exc)

    def status(self) -> dict[str, Any]:
        """Return counters and latencies to the write confirmed.

        ``stored_latency`` is measured from the input's append time, ``upstream_to_stored``
        from the upstream append time (``origin-timestamp`` header).
        """
        return {
            "rows_written": self.written,
            "batches": self.batches,
            "rejected": self.rejected,
            "skipped_already_stored": self.skipped,
            "pending": len(self.events),
            "stored_latency": self.stored_latency.summary(time.time()),
            "upstream_to_stored": self.from_upstream.summary(time.time()),
        }


class StoreWriter:
    """The sink's one connection to its store, reopened and retried while it is down.

    Parameters
    ----------
    settings : Settings
        Store addresses and retry timing.
    kind : str
        ``"mariadb"`` or ``"cassandra"``.
    """

    def __init__(self, settings: Settings, kind: str):
        self.settings = settings
        self.kind = kind
        self.store: Store | None = None
        self._connecting = asyncio.Lock()
        self.retries = 0
        self.last_error: str | None = None
        self.available = False

    async def connect(self) -> Store:
        """Return the open store, opening it on first use.

        Raises
        ------
        StoreUnavailable
            If the store cannot be reached.
        """
        async with self._connecting:
            if self.store is None:
                self.store = await open_store(self.settings, self.kind)
            return self.store

    async def write(self, table: str, rows: Sequence[Mapping]) -> None:
        """Upsert ``rows`` into ``table``, retrying with backoff until the store has them.

        Raises
        ------
        StoreRejected
            If the store refuses the data (retrying would not help).
        """
        attempt = 0
        while True:
            try:
                store = await self.connect()
                await store.upsert(table, rows)
                self.available = True
                return
            except StoreUnavailable as exc:
                attempt += 1
                self.retries += 1
                self.available = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff_delay(
                    attempt, self.settings.sink_retry_backoff, self.settings.sink_retry_backoff_max
                )
                logger.warning(
                    "%s sink: %s unavailable (%s); retry %d in %.1f s",
                    self.kind,
                    table,
                    exc,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)

    async def close(self) -> None:
        """Close the store's connections."""
        if self.store is not None:
            await self.store.close()
            self.store = None


def build_sink(settings: Settings, kind: str) -> faust.App:
    """Build the app of the sink into one store.

    Parameters
    ----------
    settings : Settings
        The one settings object.
    kind : str
        ``"mariadb"`` or ``"cassandra"``.

    Returns
    -------
    faust.App
        With its batch loop ``sink`` over the topics of :data:`SINK_TABLES`.
    """
    if kind not in STORES:
        raise ValueError(f"no sink for store {kind!r} (known: {', '.join(STORES)})")
    branch = f"{kind}-sink"
    web_port = {
        "mariadb": settings.mariadb_sink_web_port,
        "cassandra": settings.cassandra_sink_web_port,
    }[kind]
    app = create_app(settings, branch, web_port=web_port)
    runtime = BranchRuntime(app, settings, branch, settings.candidates_topic)
    writer = StoreWriter(settings, kind)
    batches: dict[str, TableBatch] = {}
    by_topic: dict[str, tuple[SinkTable, TableBatch]] = {}
    outbox: list[Outbox] = []  # the batch being handled: where refused rows go

    def reject(record: Record, error: Exception) -> None:
        runtime.dead_letter_to(outbox[-1], record, error)

    for table in SINK_TABLES:
        topic_name = getattr(settings, table.topic_setting)
        BranchRuntime.topic_of(app, settings, topic_name)  # created if missing
        batch = TableBatch(
            table.table,
            writer.write,
            reject,
            settings,
            key_columns(table.table, kind),
            settings.sink_remember_rows if table.immutable else 0,
        )
        batches[table.table] = batch
        by_topic[topic_name] = (table, batch)

    @app.task
    async def declare_outputs() -> None:
        """Create the dead-letter topic when the worker starts."""
        await runtime.declare([])

    async def sink(records: list[Record], out: Outbox) -> None:
        """Upsert the rows of one batch, each table's in ``sink_batch_size`` messages."""
        outbox[:] = [out]
        for record in records:
            runtime.received += 1
            table, batch = by_topic[record.topic]
            try:
                rows = rows_of(table, record.value)
            except CandidateError as exc:
                runtime.dead_letter_to(out, record, exc)
                continue
            await batch.add(record, rows)
        for batch in batches.values():
            await batch.flush()

    runtime.run_batches(
        sink,
        list(by_topic),
        name="sink",
        transactional=False,  # the output is the store; dead letters at least once
        wait_ms=int(settings.sink_batch_seconds * 1000),
    )

    @app.task
    async def connect() -> None:
        """Connect at start-up (the first batch would too) so the status shows the store."""
        try:
            await writer.connect()
            writer.available = True
        except StoreUnavailable as exc:
            writer.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("%s sink: store not available at start-up: %s", kind, exc)

    def status() -> dict[str, Any]:
        return {
            **runtime.status(),
            "store": kind,
            "store_available": writer.available,
            "retries": writer.retries,
            "last_error": writer.last_error,
            "tables": {name: batch.status() for name, batch in batches.items()},
        }

    add_status_pages(app, branch, status)
    app.status = status
    return app
