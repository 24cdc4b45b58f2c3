"""The Parquet archiver: one row per alert, its detection flattened to columns.

Launch with ``faust -A agents.parquet_archive worker`` (app id
``<app_prefix>-parquet-archive``). A batch loop reads ``alerts_topic`` and writes each
alert's row (:func:`brokerapp.domain.archive.parquet_row`: IDs, where it was read, every
field of its detection, its previous detections as a nested list) into Parquet files
(:mod:`brokerapp.adapters.archive.parquet`), one per survey, night, partition, offset block
and schema, partitioned hive-style under
``<archive_url>/parquet/survey=<survey>/night=<YYYYMMDD>/``, row groups of
``archive_parquet_row_group_rows``. Files are rewritten whole and atomically; offsets are
committed once the files are in place; a replay leaves every file byte-identical
(:mod:`brokerapp.runtime.archive`).

Status: ``/parquet-archive/`` and ``/parquet-archive/status.json`` on
``parquet_archive_web_port``.
"""

from __future__ import annotations

import faust

from brokerapp.adapters.archive.parquet import ParquetFormat
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import lazy_app
from brokerapp.runtime.archive import build_archiver

__all__ = ["build"]


def parquet(settings: Settings) -> ParquetFormat:
    """Return the Parquet format the settings ask for."""
    return ParquetFormat(
        settings.archive_parquet_row_group_rows,
        settings.archive_parquet_compression,
        settings.archive_parquet_block_records,
    )


def build(settings: Settings) -> faust.App:
    """Build the Parquet archiver app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With ``app.batch_loops["process"]``, ``app.archiver`` and ``app.status``.
    """
    return build_archiver(settings, "parquet-archive", settings.parquet_archive_web_port, parquet)


__getattr__ = lazy_app(__name__, build)
