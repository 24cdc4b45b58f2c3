"""What the image and light-curve archivers share: writing files off the loop, their status.

Both archivers (``agents/cutout_archive.py``, ``agents/lightcurve_archive.py``) run on a
batch loop (:mod:`brokerapp.runtime.batch`) with ``transactional=False``: their real output
is files, so the handler writes every file of the batch, and only then returns, after which
the loop sends the batch's dead letters and commits its offsets. A crash repeats at most one
batch, whose files are written again with the same names and bytes (a replay overwrites).

:class:`FileWriter` does the writing: each file through
:func:`brokerapp.adapters.archive.files.write_atomic` (temporary name, then rename) in a
worker thread (:func:`asyncio.to_thread`), so the event loop keeps serving Kafka, the web
view and the consumer's heartbeats. A write that fails (``OSError``: a full disk, an object
store that does not answer) is retried after a backoff (``sink_retry_backoff`` doubling to
``sink_retry_backoff_max``), for as long as it fails: nothing is committed meanwhile, and
``write_failures`` counts the attempts. ``archive_delay_ms`` adds a sleep per item (alert or
object), also off the loop's critical path, to run a deliberately slow archiver.

:class:`Pending` keeps the append times of the records of the batch in hand not yet written,
for the age of the oldest unwritten one in the status. :meth:`FileWriter.written_after`
records, per alert or object, the time from its record's append time to its files being in
place, as the branch's ``end_to_end`` latency (the overview's rate and p50/p99 of an
archiver).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from brokerapp.adapters.archive.files import write_atomic
from brokerapp.model.settings import Settings
from brokerapp.runtime.backoff import backoff_delay
from brokerapp.runtime.batch import Record
from brokerapp.runtime.latency import LatencyWindow

__all__ = ["FileWriter", "Pending"]

logger = logging.getLogger(__name__)


class FileWriter:
    """Write ``{relative path: bytes}`` under the archive root, atomically, off the loop.

    Parameters
    ----------
    settings : Settings
        ``archive_url``, ``archive_delay_ms``, ``sink_retry_backoff``,
        ``sink_retry_backoff_max``.
    name : str
        The archiver's name, for the log.

    Attributes
    ----------
    counts : Counter
        ``files``, ``bytes`` written; ``write_failures`` (attempts that failed).
    last_error : str or None
        The last write error.
    """

    def __init__(self, settings: Settings, name: str):
        self.settings = settings
        self.root = settings.archive_url
        self.name = name
        self.counts: Counter[str] = Counter()
        self.last_error: str | None = None

    async def delay(self) -> None:
        """Sleep ``archive_delay_ms`` (nothing when 0): one item's extra time."""
        if self.settings.archive_delay_ms > 0:
            await asyncio.sleep(self.settings.archive_delay_ms / 1000.0)

    def _write_all(self, files: Mapping[str, bytes]) -> None:
        for relpath, data in files.items():
            write_atomic(self.root, relpath, data)

    async def write(self, files: Mapping[str, bytes]) -> None:
        """Write every file (each atomically), retrying with backoff until all are written.

        Parameters
        ----------
        files : Mapping of str to bytes
            Relative path below the archive root to the file's whole content.
        """
        if not files:
            return
        attempt = 0
        while True:
            try:
                await asyncio.to_thread(self._write_all, files)
                break
            except OSError as exc:
                attempt += 1
                self.counts["write_failures"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff_delay(
                    attempt, self.settings.sink_retry_backoff, self.settings.sink_retry_backoff_max
                )
                logger.warning(
                    "%s: writing %d files failed (%s); again in %.1f s",
                    self.name,
                    len(files),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
        self.counts["files"] += len(files)
        self.counts["bytes"] += sum(len(data) for data in files.values())

    @staticmethod
    def written_after(window: LatencyWindow, record: Record) -> None:
        """Record the time from ``record``'s append to its files in place (``end_to_end``).

        What the overview shows as an archiver's rate and p50/p99 latency.
        """
        now = time.time()
        window.add(now, [now * 1000.0 - record.timestamp])

    def status(self) -> dict[str, Any]:
        """Files and bytes written, failed write attempts, the last error, the root."""
        return {
            "root": self.root,
            "files": self.counts["files"],
            "bytes": self.counts["bytes"],
            "write_failures": self.counts["write_failures"],
            "last_error": self.last_error,
            "delay_ms": self.settings.archive_delay_ms,
        }


class Pending:
    """Append times of the batch in hand's records not yet written (oldest unwritten age)."""

    def __init__(self) -> None:
        self._times: dict[tuple[str, int, int], float] = {}

    def hold(self, records: Sequence[Record]) -> None:
        """Record the batch's records as unwritten."""
        for record in records:
            self._times[(record.topic, record.partition, record.offset)] = record.timestamp / 1e3

    def done(self, record: Record) -> None:
        """Record one record as written (or dead-lettered, or superseded)."""
        self._times.pop((record.topic, record.partition, record.offset), None)

    def clear(self) -> None:
        """Nothing held (the batch is over)."""
        self._times.clear()

    def oldest_age_s(self, now: float | None = None) -> float | None:
        """Seconds since the append time of the oldest unwritten record; None if none."""
        if not self._times:
            return None
        now = time.time() if now is None else now
        return round(max(0.0, now - min(self._times.values())), 3)
