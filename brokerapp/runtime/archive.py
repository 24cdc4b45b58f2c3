"""What the archiver workers share: offset-block files rewritten whole, atomically, then commit.

Each archiver (``agents/avro_archive.py``, ``agents/parquet_archive.py``) is its own worker
and consumer group on a batch loop reading the ``alerts`` buffer (whole alerts, Confluent
framed). Per batch, :class:`Archiver`:

1. decodes each alert whole through the local registry (an undecodable one, or one of no
   known survey, is dead-lettered to ``<topic_prefix><branch>-deadletter`` with its reason,
   and the worker goes on), and finds its file (:func:`brokerapp.domain.archive.file_key`:
   survey, night, hour for the Avro backup, partition, offset block, schema);
2. per file the batch touches: the file's entries (by offset) merged with the batch's, a
   replayed offset replacing its entry; the whole file encoded again and written atomically
   (:func:`brokerapp.adapters.archive.files.write_atomic`: temporary name, fsync, rename),
   in a thread (:func:`asyncio.to_thread`) so the worker keeps serving Kafka;
3. returns: the batch loop commits the offsets only after every file of the batch is in
   place (and the dead letters acknowledged). A write that fails (disk full, object store
   down) is retried with backoff (``gateway_retry_backoff`` doubling to
   ``gateway_retry_backoff_max``), committing nothing meanwhile; ``failures`` counts them.

Memory or re-read: the entries of the files of each partition's current block are kept in
memory (at most one block per partition: ``archive_block_records`` alert bodies, as bytes,
for the Avro backup; ``archive_parquet_block_records`` rows for Parquet), with the version
of the file last written (:func:`brokerapp.adapters.archive.files.stat_token`). A file is
read back from the root only when it is not in memory or its version on the root is not
the one this worker wrote: after a restart, a rebalance (another worker wrote it
meanwhile) or a rewind to an earlier block. So a restarted worker extends a half-filled
block file instead of truncating it, and a replay of any offsets leaves every file as it
was. Entries of earlier blocks are dropped once a partition's batch reaches a later block.

A block file is rewritten whole each time a batch adds to it: with ``branch_batch``
records per batch and ``n`` offsets per block, each file is written about
``n / branch_batch`` times (Avro bodies are copied, not encoded again; Parquet rows are
encoded again). ``archive_linger_seconds`` makes a worker that is ahead of the stream wait
before its next fetch, so that batches stay large.

Status (``/<branch>/status.json``): ``written`` (file writes), ``files`` (distinct files
written), ``bytes``, ``archived`` (alerts in files), ``failures`` (failed writes),
``backlog`` (alerts in the buffer not yet read, the batch loop's lag) and
``oldest_unwritten_age_s`` (age of the oldest alert read but not yet in its file, by its
append time; None when none is in hand).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import faust
import httpx

from brokerapp.adapters.archive import files
from brokerapp.domain.archive import FileKey, file_key, merge_by_offset, relpath
from brokerapp.model.alert import Alert
from brokerapp.model.profiles import SurveyProfile, UnknownSurveyError
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app
from brokerapp.runtime.backoff import backoff_delay
from brokerapp.runtime.batch import BatchLoop, Outbox, Record
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.wire.codecs import DecodeError, ParsedSchema, RegistryUnavailable

__all__ = ["ArchiveFormat", "Archiver", "BadEntryError", "build_archiver"]

logger = logging.getLogger(__name__)


class BadEntryError(ValueError):
    """An alert that cannot go into its file (e.g. a value that fits no column)."""


class ArchiveFormat(Protocol):
    """One archive file format (the Avro backup, Parquet)."""

    kind: str
    """``"avro"`` or ``"parquet"`` (the first folder of its files)."""
    hourly: bool
    """Whether files roll per hour within a night too."""
    block_records: int
    """Offsets per file (per partition)."""

    def entry(self, record: Record, alert: Alert, schema: ParsedSchema) -> Any:
        """Return what the file keeps of one alert (raises :class:`BadEntryError`)."""

    def encode(
        self, key: FileKey, path: str, schema: ParsedSchema, profile: SurveyProfile, topic: str,
        entries: list[Any],
    ) -> bytes:  # fmt: skip
        """Return the whole file of ``entries`` (in offset order); ValueError if one is bad."""

    def decode(self, data: bytes) -> dict[int, Any]:
        """Return the entries of an existing file, by offset."""

    def check(
        self, key: FileKey, path: str, schema: ParsedSchema, profile: SurveyProfile, topic: str,
        entry: Any,
    ) -> None:  # fmt: skip
        """Raise ValueError (or TypeError) if ``entry`` alone cannot be encoded."""


@dataclass
class _Held:
    """The entries of one file as this worker last wrote it."""

    entries: dict[int, Any]
    token: str | None


@dataclass
class _Pending:
    """A batch's additions to one file."""

    schema: ParsedSchema
    profile: SurveyProfile
    topic: str
    items: list[tuple[int, Any, Record]] = field(default_factory=list)


class Archiver:
    """The batch handler and counters of one archiver worker (see the module docstring).

    Parameters
    ----------
    settings : Settings
        The one settings object (``archive_url``, ``archive_linger_seconds``, backoff).
    runtime : BranchRuntime
        The worker's branch runtime (decoding, dead letters).
    fmt : ArchiveFormat
        The file format.
    """

    def __init__(self, settings: Settings, runtime: BranchRuntime, fmt: ArchiveFormat):
        self.settings = settings
        self.runtime = runtime
        self.fmt = fmt
        self.root = settings.archive_url
        self.held: dict[FileKey, _Held] = {}
        self.written = 0
        self.bytes = 0
        self.archived = 0
        self.failures = 0
        self.reread = 0
        self.replaced_unreadable = 0
        self.last_error: str | None = None
        self.paths: set[str] = set()
        self.in_hand_since_ms: float | None = None
        self.loop: BatchLoop | None = None

    async def handle(self, records: list[Record], out: Outbox) -> None:
        """Write the batch's alerts into their files (returns once every file is in place).

        Parameters
        ----------
        records : list of Record
            One batch of the buffer, in offset order per partition.
        out : Outbox
            Its dead letters.
        """
        if not records:
            return
        self.in_hand_since_ms = float(min(r.timestamp for r in records))
        pending: dict[FileKey, _Pending] = {}
        for record in records:
            started = time.perf_counter()
            self.runtime.received += 1
            try:
                schema_id, alert = await self.runtime.decode_alert(record.value)
                schema = await self.runtime.codec.schema_for(schema_id)
                entry = self.fmt.entry(record, alert, schema)
            except (
                DecodeError,
                RegistryUnavailable,
                httpx.TransportError,
                UnknownSurveyError,
                BadEntryError,
            ) as exc:
                self.runtime.dead_letter_to(out, record, exc)
                continue
            key = file_key(
                self.fmt.kind,
                alert.profile,
                alert.view.mjd,
                record.partition,
                record.offset,
                self.fmt.block_records,
                schema.fingerprint,
                self.fmt.hourly,
            )
            slot = pending.get(key)
            if slot is None:
                slot = pending[key] = _Pending(schema, alert.profile, record.topic)
            slot.items.append((record.offset, entry, record))
            self.runtime.processed(started)
        for key in sorted(pending, key=lambda k: relpath(k, self.fmt.hourly)):
            await self._write(key, pending[key], out)
        self._evict(pending)
        self.in_hand_since_ms = None
        linger = self.settings.archive_linger_seconds
        if linger > 0 and len(records) < self.settings.branch_batch:
            await asyncio.sleep(linger)

    async def _write(self, key: FileKey, slot: _Pending, out: Outbox) -> None:
        attempt = 0
        fresh = False  # True: write the batch's entries alone (the file's did not encode)
        while True:
            held = _Held({}, None) if fresh else self.held.get(key)
            try:
                written = await asyncio.to_thread(self._write_file, key, slot, held, fresh)
                break
            except BadEntryError as exc:
                if fresh:  # each entry encodes alone, together they do not: none goes in
                    for _offset, _entry, record in slot.items:
                        self.runtime.dead_letter_to(out, record, exc)
                    return
                fresh = self._drop_bad(key, slot, out)
                if not slot.items:
                    return
            except OSError as exc:
                attempt += 1
                self.failures += 1
                self.last_error = f"{relpath(key, self.fmt.hourly)}: {exc!r}"
                delay = backoff_delay(
                    attempt,
                    self.settings.gateway_retry_backoff,
                    self.settings.gateway_retry_backoff_max,
                )
                logger.warning("%s: %s; again in %.1f s", self.runtime.branch, exc, delay)
                if self.loop is not None and self.loop.should_stop:
                    raise
                await asyncio.sleep(delay)
        size, path, merged, token, reread, unreadable = written
        self.held[key] = _Held(merged, token)
        self.paths.add(path)
        self.reread += reread
        self.replaced_unreadable += unreadable
        self.written += 1
        self.bytes += size
        self.archived += len(slot.items)

    def _drop_bad(self, key: FileKey, slot: _Pending, out: Outbox) -> bool:
        """Dead-letter the entries that cannot be encoded, keep the rest.

        Returns True when every entry encodes alone: it is the file's own entries that do not
        (a file of another version), and the file is to be replaced by the batch's.
        """
        path = relpath(key, self.fmt.hourly)
        kept = []
        for offset, entry, record in slot.items:
            try:
                self.fmt.check(key, path, slot.schema, slot.profile, slot.topic, entry)
            except (ValueError, TypeError) as exc:
                self.runtime.dead_letter_to(out, record, exc)
                continue
            kept.append((offset, entry, record))
        fresh = len(kept) == len(slot.items)
        if fresh:
            self.replaced_unreadable += 1
            logger.warning("%s: %s does not encode again, replaced", self.runtime.branch, path)
        slot.items = kept
        return fresh

    def _write_file(
        self, key: FileKey, slot: _Pending, held: _Held | None, fresh: bool
    ) -> tuple[int, str, dict[int, Any], str | None, int, int]:
        """Merge, encode and write one file (in a thread: it changes no attribute).

        Returns
        -------
        tuple
            Size, path, the file's entries by offset, its new version token, and whether
            it was read back (0/1) and found unreadable (0/1).
        """
        path = relpath(key, self.fmt.hourly)
        token = files.stat_token(self.root, path)
        reread = unreadable = 0
        if not fresh and (held is None or held.token != token):
            entries: dict[int, Any] = {}
            if token is not None:
                reread = 1
                try:
                    entries = self.fmt.decode(files.read_bytes(self.root, path))
                except (ValueError, KeyError, EOFError) as exc:
                    # Not one of ours, or damaged: it is replaced by what the buffer holds.
                    unreadable = 1
                    logger.warning(
                        "%s: %s unreadable, replaced: %r", self.runtime.branch, path, exc
                    )
            held = _Held(entries, token)
        assert held is not None
        merged = merge_by_offset(held.entries, ((o, e) for o, e, _r in slot.items))
        try:
            data = self.fmt.encode(
                key, path, slot.schema, slot.profile, slot.topic, list(merged.values())
            )
        except (ValueError, TypeError) as exc:
            raise BadEntryError(str(exc)) from exc
        files.write_atomic(self.root, path, data)
        return len(data), path, merged, files.stat_token(self.root, path), reread, unreadable

    def _evict(self, pending: dict[FileKey, _Pending]) -> None:
        """Forget the files of blocks before each partition's latest in this batch."""
        latest: dict[int, int] = defaultdict(int)
        for key in pending:
            latest[key.partition] = max(latest[key.partition], key.first_offset)
        for key in [k for k in self.held if k.first_offset < latest.get(k.partition, -1)]:
            del self.held[key]

    def status(self) -> dict[str, Any]:
        """Return the archiver's counters (see the module docstring)."""
        since = self.in_hand_since_ms
        return {
            "root": self.root,
            "written": self.written,
            "files": len(self.paths),
            "bytes": self.bytes,
            "archived": self.archived,
            "failures": self.failures,
            "last_error": self.last_error,
            "reread": self.reread,
            "replaced_unreadable": self.replaced_unreadable,
            "held_files": len(self.held),
            "held_entries": sum(len(h.entries) for h in self.held.values()),
            "oldest_unwritten_age_s": (
                None if since is None else round(max(time.time() - since / 1000.0, 0.0), 3)
            ),
        }


def build_archiver(
    settings: Settings, branch: str, web_port: int, fmt_of: Callable[[Settings], ArchiveFormat]
) -> faust.App:
    """Build an archiver app: a batch loop on the buffer writing ``fmt`` files.

    Parameters
    ----------
    settings : Settings
        The one settings object.
    branch : str
        Branch name (app id ``<app_prefix>-<branch>``, status path ``/<branch>/``).
    web_port : int
        Port of its web view.
    fmt_of : callable
        Builds the file format from the settings.

    Returns
    -------
    faust.App
        With ``app.batch_loops["process"]``, ``app.archiver`` and ``app.status``.
    """
    app = create_app(settings, branch, web_port=web_port)
    runtime = BranchRuntime(app, settings, branch)
    archiver = Archiver(settings, runtime, fmt_of(settings))
    archiver.loop = runtime.run_batches(archiver.handle, transactional=False)

    def status() -> dict[str, Any]:
        base = runtime.status()
        mine = archiver.status()
        return {
            **base,
            "notifier": branch,  # the overview shows it as a slow branch
            "archive": archiver.fmt.kind,
            **mine,
            "backlog": base["lag"],
            "oldest_unsent_age_s": mine["oldest_unwritten_age_s"],
        }

    add_status_pages(app, branch, status)
    app.status = status
    app.archiver = archiver
    return app
