"""What the archivers decide, without I/O: which file an alert goes to, and its Parquet row.

Offset blocks
    The archivers read the ``alerts`` buffer. The records of partition ``p`` at offsets
    ``[k*n, (k+1)*n)`` (``n`` = ``archive_block_records``) form block ``k``; an archive file
    holds the records of one block that share a survey, a night (and, for the Avro backup, an
    hour) and a writer schema. The file's name carries the block's first offset ``k*n``, not
    that of its first record, so a file's name is known before its content: replaying any of
    its offsets rewrites the same file (and, with the same records, the same bytes).

File names (paths below the archive root, hive-style folders)::

    avro/survey=<survey>/night=<YYYYMMDD>/<survey>-<YYYYMMDD>-<HH>h-p<PP>-<offset:012d>-<tag>.avro
    parquet/survey=<survey>/night=<YYYYMMDD>/<survey>-<YYYYMMDD>-p<PP>-<offset:012d>-<tag>.parquet

    ``HH`` is the UTC hour of the detection, ``PP`` the partition, ``offset`` the block's
    first offset and ``tag`` the first 8 hex digits of the writer schema's fingerprint (SHA-256
    of its canonical form: the same in every registry). An alert without a detection time goes
    to night ``unknown`` (hour ``xx``).

Parquet rows (:func:`parquet_row`)
    One row per alert: ``alert_id`` and ``object_id`` (as a string: ZTF's are strings,
    Rubin's integers), where the alert came from (``kafka_topic``, ``kafka_partition``,
    ``kafka_offset``, ``kafka_timestamp_ms``), then every field of the alert's detection (ZTF
    ``candidate``, Rubin ``diaSource``: :attr:`SurveyProfile.detection_field`) under its own
    survey name, and ``previous_detections``, the list of previous detections (upper limits
    excluded) as records of the survey's own layout. Survey and night are the hive folders,
    not columns. A detection field named like a broker column is prefixed ``detection_``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from brokerapp.model.profiles import SurveyProfile

__all__ = [
    "BROKER_COLUMNS",
    "PREVIOUS_COLUMN",
    "UNKNOWN_NIGHT",
    "FileKey",
    "block_start",
    "column_name",
    "file_key",
    "hour_of",
    "merge_by_offset",
    "parquet_row",
    "relpath",
]

UNKNOWN_NIGHT = "unknown"
"""Night folder of alerts without a detection time."""
BROKER_COLUMNS = (
    "alert_id",
    "object_id",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp_ms",
)
"""The columns a Parquet row starts with, before the detection's fields."""
PREVIOUS_COLUMN = "previous_detections"
"""The nested list column of previous detections."""
SUFFIXES = {"avro": "avro", "parquet": "parquet"}
"""File name suffix of each archive kind."""
TAG_DIGITS = 8
"""Hex digits of the schema fingerprint in a file name."""


def block_start(offset: int, block_records: int) -> int:
    """Return the first offset of the block holding ``offset``.

    Parameters
    ----------
    offset : int
        A partition offset (``>= 0``).
    block_records : int
        Offsets per block (``archive_block_records``).

    Returns
    -------
    int
        ``(offset // block_records) * block_records``.
    """
    if offset < 0 or block_records < 1:
        raise ValueError(f"no block for offset {offset} with {block_records} per block")
    return (offset // block_records) * block_records


def hour_of(mjd: float | None) -> int | None:
    """Return the UTC hour (0-23) of an MJD, None without one.

    Parameters
    ----------
    mjd : float or None
        Detection time.

    Returns
    -------
    int or None
        ``floor(frac(mjd) * 24)``.
    """
    if mjd is None or mjd != mjd or mjd in (float("inf"), float("-inf")):
        return None
    return min(int((mjd % 1.0) * 24.0), 23)


@dataclass(frozen=True, slots=True, order=True)
class FileKey:
    """Which archive file one alert goes to (see the module docstring).

    Attributes
    ----------
    kind : str
        ``"avro"`` or ``"parquet"``.
    survey : str
        ``"ztf"`` or ``"lsst"``.
    night : str
        ``YYYYMMDD``, or :data:`UNKNOWN_NIGHT`.
    hour : int or None
        UTC hour of the detection (Avro files); None for files rolled per night only, or
        without a detection time in an hourly kind.
    partition : int
        Input partition.
    first_offset : int
        The block's first offset.
    tag : str
        Short schema fingerprint.
    """

    kind: str
    survey: str
    night: str
    hour: int | None
    partition: int
    first_offset: int
    tag: str


def file_key(
    kind: str,
    profile: SurveyProfile,
    mjd: float | None,
    partition: int,
    offset: int,
    block_records: int,
    fingerprint: str,
    hourly: bool,
) -> FileKey:
    """Return the file an alert goes to.

    Parameters
    ----------
    kind : str
        ``"avro"`` or ``"parquet"``.
    profile : SurveyProfile
        The alert's survey profile (its survey and night convention).
    mjd : float or None
        Detection time (:attr:`AlertView.mjd`).
    partition : int
        Input partition.
    offset : int
        Input offset.
    block_records : int
        Offsets per block.
    fingerprint : str
        Hex fingerprint of the writer schema.
    hourly : bool
        Roll files per hour within the night too.

    Returns
    -------
    FileKey
        The file's key.
    """
    if kind not in SUFFIXES:
        raise ValueError(f"unknown archive kind {kind!r}")
    night = profile.night(mjd) or UNKNOWN_NIGHT
    return FileKey(
        kind,
        profile.survey,
        night,
        hour_of(mjd) if hourly else None,
        partition,
        block_start(offset, block_records),
        fingerprint[:TAG_DIGITS],
    )


def relpath(key: FileKey, hourly: bool) -> str:
    """Return the file's path below the archive root (see the module docstring).

    Parameters
    ----------
    key : FileKey
        The file.
    hourly : bool
        Whether the kind rolls per hour (the name then carries ``<HH>h``).

    Returns
    -------
    str
        ``/``-separated path.
    """
    parts = [key.survey, key.night]
    if hourly:
        parts.append("xxh" if key.hour is None else f"{key.hour:02d}h")
    parts += [f"p{key.partition:02d}", f"{key.first_offset:012d}", key.tag]
    name = "-".join(parts) + "." + SUFFIXES[key.kind]
    return f"{key.kind}/survey={key.survey}/night={key.night}/{name}"


def merge_by_offset(held: Mapping[int, Any], new: Iterable[tuple[int, Any]]) -> dict[int, Any]:
    """Return the entries of a file after a batch: those held, replaced or added by offset.

    A replayed offset replaces its entry (never a second copy), so replaying records a file
    already holds leaves it as it was.

    Parameters
    ----------
    held : Mapping of int to Any
        Entries already in the file, by input offset.
    new : iterable of (int, Any)
        The batch's entries for the file.

    Returns
    -------
    dict of int to Any
        By offset, in increasing offset order.
    """
    merged = dict(held)
    merged.update(new)
    return {offset: merged[offset] for offset in sorted(merged)}


def column_name(name: str) -> str:
    """Return the column of detection field ``name`` (prefixed when a broker column has it)."""
    if name in BROKER_COLUMNS or name == PREVIOUS_COLUMN:
        return f"detection_{name}"
    return name


def parquet_row(
    profile: SurveyProfile,
    record: Mapping[str, Any],
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
) -> dict[str, Any]:
    """Flatten one alert to its Parquet row (see the module docstring).

    Parameters
    ----------
    profile : SurveyProfile
        The alert's survey profile.
    record : Mapping
        The decoded alert.
    topic, partition, offset, timestamp_ms
        Where it was read (``timestamp_ms``: its append time in the buffer).

    Returns
    -------
    dict
        Column name -> value.
    """
    object_id = profile.object_id(record)
    row: dict[str, Any] = {
        "alert_id": profile.alert_id(record),
        "object_id": None if object_id is None else str(object_id),
        "kafka_topic": topic,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp_ms": timestamp_ms,
    }
    for name, value in profile.detection_record(record).items():
        row[column_name(name)] = value
    row[PREVIOUS_COLUMN] = [dict(p) for p in profile.previous_detections(record)]
    return row
