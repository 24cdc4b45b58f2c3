"""The Avro backup archiver: the whole alerts of the buffer in Avro container files.

Launch with ``faust -A agents.avro_archive worker`` (app id ``<app_prefix>-avro-archive``).
A batch loop reads ``alerts_topic`` and writes each alert's body, as the buffer holds it,
into an Avro object container file whose embedded writer schema is the alert's schema from
the local registry, compressed with ``archive_avro_codec``
(:mod:`brokerapp.adapters.archive.avro`), one file per survey, night, UTC hour, partition,
offset block and schema, under ``<archive_url>/avro/survey=<survey>/night=<YYYYMMDD>/``
(:mod:`brokerapp.domain.archive`). Files are rewritten whole and atomically; offsets are
committed once the files are in place; a replay leaves every file byte-identical
(:mod:`brokerapp.runtime.archive`).

Status: ``/avro-archive/`` and ``/avro-archive/status.json`` on ``avro_archive_web_port``.
"""

from __future__ import annotations

import faust

from brokerapp.adapters.archive.avro import AvroBackupFormat
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import lazy_app
from brokerapp.runtime.archive import build_archiver

__all__ = ["build"]


def avro_backup(settings: Settings) -> AvroBackupFormat:
    """Return the Avro backup format the settings ask for."""
    return AvroBackupFormat(settings.archive_avro_codec, settings.archive_block_records)


def build(settings: Settings) -> faust.App:
    """Build the Avro backup archiver app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With ``app.batch_loops["process"]``, ``app.archiver`` and ``app.status``.
    """
    return build_archiver(settings, "avro-archive", settings.avro_archive_web_port, avro_backup)


__getattr__ = lazy_app(__name__, build)
