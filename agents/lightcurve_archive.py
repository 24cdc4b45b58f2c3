"""The light-curve archiver: per object, a FITS binary table and a VOTable, rewritten on change.

Launch with ``faust -A agents.lightcurve_archive worker`` (app id
``<app_prefix>-lightcurve-archive``). A batch loop reads each object's history as the
objects worker keeps it: by default the changelog of its history table,
``<app_prefix>-objects-object_history-changelog`` (:func:`source_topic`; setting
``lightcurve_source_topic``), where that worker writes, on every change of an object, its
whole history (key: the object ID as a JSON string; value: the JSON list of its latest
``history_length`` detections, :mod:`tables.objects`). The ``objects`` topic carries the
object's statistics, not its detections, so the history is read where it is published whole.
The topic is compacted: a replay from the start, or a new archiver, sees each object's
latest history.

For each object changed in a batch (its last record of the batch; the earlier ones are
superseded), both files are rewritten under the archive root (``archive_root``)::

    lightcurves/<survey>/<object ID>.fits   and   .vot

(:func:`brokerapp.domain.lightcurve_files.light_curve_files`), each atomically, in a worker
thread, before the batch's offsets are committed. The same history gives the same bytes, so a
replay leaves every file as it was. A record that is not a history (not JSON, an empty or
mixed list, an unsafe object ID) is dead-lettered to
``<topic_prefix>lightcurve-archive-deadletter`` with its reason; a tombstone (null value,
an object deleted from the table) writes nothing.

Status: ``/lightcurve-archive/`` and ``/lightcurve-archive/status.json`` on
``lightcurve_archive_web_port``: records read, objects written, superseded and
dead-lettered, files and bytes written, failures, backlog (lag) and the age of the oldest
unwritten change.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import faust

from brokerapp.domain.lightcurve_files import LightCurveError, light_curve_files
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.batch import Outbox, Record
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.runtime.file_archive import FileWriter, Pending
from brokerapp.wire import records as jsonrecords

__all__ = ["BRANCH", "build", "parse_history", "source_topic"]

BRANCH = "lightcurve-archive"
"""Branch name: app id ``<app_prefix>-lightcurve-archive``, status ``/lightcurve-archive/``."""
CHANGELOG_CONFIG = {"cleanup.policy": "compact"}
"""How the archiver creates its input if it starts first: as Faust creates a changelog."""


def source_topic(settings: Settings) -> str:
    """Return the archiver's input: ``lightcurve_source_topic`` or the objects changelog."""
    return (
        settings.lightcurve_source_topic
        or f"{settings.app_prefix}-objects-object_history-changelog"
    )


def parse_history(key: bytes | None, value: bytes | None) -> tuple[str, list[dict] | None]:
    """Read one changelog record: the object ID and its history (None for a tombstone).

    Raises
    ------
    LightCurveError
        If the key is not a JSON string or the value not a JSON list of detections of that
        object.
    """
    try:
        object_id = jsonrecords.loads(key or b"")
    except ValueError as exc:
        raise LightCurveError(f"key is not a JSON object ID: {exc}") from exc
    if not isinstance(object_id, str | int) or isinstance(object_id, bool):
        raise LightCurveError(f"key is not an object ID: {object_id!r}")
    if value is None:
        return str(object_id), None
    try:
        history = jsonrecords.loads(value)
    except ValueError as exc:
        raise LightCurveError(f"value is not JSON: {exc}") from exc
    if not isinstance(history, list) or not all(isinstance(d, dict) for d in history):
        raise LightCurveError("value is not a list of detections")
    if any(str(d.get("object_id")) != str(object_id) for d in history):
        raise LightCurveError(f"a detection of another object than {object_id!r}")
    return str(object_id), history


def build(settings: Settings) -> faust.App:
    """Build the light-curve archiver's app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With its batch loop ``app.batch_loops["process"]`` and ``app.writer``.
    """
    app = create_app(settings, BRANCH, web_port=settings.lightcurve_archive_web_port)
    source = source_topic(settings)
    runtime = BranchRuntime(app, settings, BRANCH, source)
    writer = FileWriter(settings, BRANCH)
    pending = Pending()
    counts: Counter[str] = Counter()

    async def process(records: list[Record], out: Outbox) -> None:
        """Rewrite the files of each object changed in the batch, then return (commit)."""
        pending.hold(records)
        try:
            latest: dict[tuple[int, bytes | None], Record] = {}
            for record in records:
                runtime.received += 1
                previous = latest.get((record.partition, record.key))
                if previous is not None:
                    counts["superseded"] += 1
                    pending.done(previous)
                latest[(record.partition, record.key)] = record
            for record in latest.values():
                started = time.perf_counter()
                try:
                    _object_id, history = parse_history(record.key, record.value)
                    if history is None:
                        counts["tombstones"] += 1
                        pending.done(record)
                        continue
                    files = await asyncio.to_thread(light_curve_files, history)
                except LightCurveError as exc:
                    counts["failures"] += 1
                    runtime.dead_letter_to(out, record, exc)
                    pending.done(record)
                    continue
                await writer.delay()
                await writer.write(files)
                counts["objects"] += 1
                writer.written_after(runtime.end_to_end, record)
                pending.done(record)
                runtime.processed(started)
        finally:
            pending.clear()

    loop = runtime.run_batches(process, transactional=False)
    changelog = app.topic(
        source,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.alerts_partitions,
        internal=True,
        config=CHANGELOG_CONFIG,
    )

    async def declare_input() -> None:
        # Never the branches' delete-policy output configuration: a changelog is compacted.
        await changelog.maybe_declare()

    loop.declare = declare_input

    @app.task
    async def declare_outputs() -> None:
        """Create the dead-letter topic when the worker starts."""
        await runtime.declare([])

    def status() -> dict[str, Any]:
        base = runtime.status()
        files = writer.status()
        oldest = pending.oldest_age_s()
        return {
            **base,
            "notifier": BRANCH,  # the overview's slow-branch row: written, backlog, oldest
            "archiver": "lightcurves",
            "objects_written": counts["objects"],
            "superseded": counts["superseded"],
            "tombstones": counts["tombstones"],
            "written": files["files"],
            "bytes": files["bytes"],
            "failures": counts["failures"] + files["write_failures"],
            "dead_lettered": counts["failures"],
            "backlog": base.get("lag"),
            "oldest_unsent_age_s": oldest,
            "oldest_unwritten_age_s": oldest,
            "files": files,
        }

    add_status_pages(app, BRANCH, status)
    app.status = status
    app.writer = writer
    return app


__getattr__ = lazy_app(__name__, build)
