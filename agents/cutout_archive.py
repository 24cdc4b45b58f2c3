"""The cutout image archiver: each alert's stamps as FITS, PNG and JPEG files.

Launch with ``faust -A agents.cutout_archive worker`` (app id
``<app_prefix>-cutout-archive``). A batch loop reads the 7-day ``alerts`` buffer (whole
alerts, Confluent-framed) and, for each alert with at least one stamp, writes under the
archive root (``archive_root``, a local path or any fsspec URL)::

    cutouts/<survey>/<night>/<alert ID>/<science|template|difference>.<fits|png|jpg>

(:func:`brokerapp.domain.cutout_images.cutout_files`: the stamp's FITS with every header
card, so the WCS where the alert has one; PNG and JPEG scaled by zscale; ``<night>`` the
survey's observing night of the detection, YYYYMMDD, as the other archivers name theirs:
:meth:`~brokerapp.model.profiles.SurveyProfile.night`).

Why the buffer and not the compacted ``cutouts`` topic: a cutouts record holds the stamps
and the alert ID but not the detection time the night comes from, and it exists only with
``lean_streams``. Reading the buffer costs little more: the archiver decodes only the
alert's ID, time and stamps (:class:`~brokerapp.wire.fields.FieldDecoder`, a walk over the
rest of the body): measured 0.12 ms per ZTF sample and 0.07 ms per Rubin sample, against
0.006 ms to decode a cutouts record, and 6 to 9 ms to encode the three FITS and six
pictures (``bench/bench_image_archives.py``): under 2 % either way.

Every file of a batch is written (each atomically, in a worker thread:
:class:`brokerapp.runtime.file_archive.FileWriter`) before the batch's offsets are
committed; a replay writes the same names with the same bytes. An alert that cannot be read,
or whose stamp is no FITS image, is dead-lettered to ``<topic_prefix>cutout-archive-deadletter``
with its reason, none of its files written; an alert without stamps writes nothing.

Status: ``/cutout-archive/`` and ``/cutout-archive/status.json`` on
``cutout_archive_web_port``: alerts read, files and bytes written, failures (dead letters
and failed write attempts), backlog (lag) and the age of the oldest unwritten alert.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import faust
import httpx

from brokerapp.domain.cutout_images import CutoutError, cutout_files
from brokerapp.model.profiles import UnknownSurveyError
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.batch import Outbox, Record
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.runtime.file_archive import FileWriter, Pending
from brokerapp.wire.codecs import DecodeError, RegistryUnavailable

__all__ = ["BRANCH", "READS", "build"]

BRANCH = "cutout-archive"
"""Branch name: app id ``<app_prefix>-cutout-archive``, status path ``/cutout-archive/``."""
READS = frozenset({"survey", "alert_id", "mjd", "has_cutouts"})
"""What the archiver decodes of an alert (:data:`brokerapp.model.profiles.READS`)."""


def build(settings: Settings) -> faust.App:
    """Build the cutout archiver's app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With its batch loop ``app.batch_loops["process"]`` and ``app.writer`` (its
        :class:`~brokerapp.runtime.file_archive.FileWriter`).
    """
    app = create_app(settings, BRANCH, web_port=settings.cutout_archive_web_port)
    runtime = BranchRuntime(app, settings, BRANCH)
    # Not the buffer's first reader: only the fields above are decoded, no cutout stripped.
    runtime.validate = False
    runtime.lean = False
    writer = FileWriter(settings, BRANCH)
    pending = Pending()
    counts: Counter[str] = Counter()
    quality = settings.cutout_jpeg_quality

    async def process(records: list[Record], out: Outbox) -> None:
        """Write the cutout files of each alert of the batch, then return (commit)."""
        pending.hold(records)
        try:
            for record in records:
                started = time.perf_counter()
                runtime.received += 1
                try:
                    _schema_id, alert = await runtime.decode_alert(record.value, READS)
                    view = alert.view
                    stamps = alert.profile.cutouts(alert.record_for("has_cutouts"))
                    night = alert.profile.night(view.mjd)
                    files = await asyncio.to_thread(
                        cutout_files, view.survey, view.alert_id, night, stamps, quality
                    )
                except (
                    DecodeError,
                    RegistryUnavailable,
                    httpx.TransportError,
                    UnknownSurveyError,
                    CutoutError,
                ) as exc:
                    counts["failures"] += 1
                    runtime.dead_letter_to(out, record, exc)
                    pending.done(record)
                    continue
                await writer.delay()
                await writer.write(files)
                counts["alerts" if files else "without_stamps"] += 1
                writer.written_after(runtime.end_to_end, record)
                pending.done(record)
                runtime.processed(started)
        finally:
            pending.clear()

    runtime.run_batches(process, transactional=False)

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
            "archiver": "cutouts",
            "alerts_archived": counts["alerts"],
            "alerts_without_stamps": counts["without_stamps"],
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
