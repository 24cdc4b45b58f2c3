"""The Parquet analysis files: one row per alert, its detection flattened to columns.

The rows are :func:`brokerapp.domain.archive.parquet_row`; the Arrow schema of a file comes
from the alert's Avro writer schema (:func:`arrow_schema`), never from the values, so a
column that happens to be null in every row of a file still has its type and every file of
one schema version has the same columns:

- Avro ``boolean``/``int``/``long``/``float``/``double``/``string``/``bytes`` ->
  ``bool``/``int32``/``int64``/``float32``/``float64``/``string``/``binary``; ``enum`` ->
  ``string``, ``fixed`` -> ``binary``; a union with ``null`` -> the other type, nullable;
- records -> ``struct``, arrays -> ``list``, maps -> ``map<string, ...>``;
- the previous detections -> ``list<struct>`` of the survey's previous-detection record.

Files are written with ``archive_parquet_compression`` in row groups of
``archive_parquet_row_group_rows`` rows, with column statistics (so DuckDB, pandas or Spark
skip row groups on ``alert_id``, ``jd``/``midpointMjdTai``, ``ra``/``dec``...). pyarrow
writes no time stamp into a file: the same rows give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from brokerapp.domain.archive import BROKER_COLUMNS, PREVIOUS_COLUMN, column_name, parquet_row
from brokerapp.model.profiles import SurveyProfile

__all__ = ["ParquetFormat", "arrow_schema", "arrow_type", "decode_file", "encode_file"]

_PRIMITIVES: dict[str, pa.DataType] = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}
_LOGICAL: dict[tuple[str, str], pa.DataType] = {
    ("long", "timestamp-millis"): pa.timestamp("ms", tz="UTC"),
    ("long", "timestamp-micros"): pa.timestamp("us", tz="UTC"),
    ("int", "date"): pa.date32(),
}
_BROKER_TYPES: dict[str, pa.DataType] = {
    "alert_id": pa.int64(),
    "object_id": pa.string(),
    "kafka_topic": pa.string(),
    "kafka_partition": pa.int32(),
    "kafka_offset": pa.int64(),
    "kafka_timestamp_ms": pa.int64(),
}


def arrow_type(schema: Any, named: Mapping[str, Any]) -> pa.DataType:
    """Return the Arrow type of an Avro type (fastavro's parsed form).

    Parameters
    ----------
    schema : Any
        A parsed Avro type: a name, a union list or a dict.
    named : Mapping
        Full name -> parsed named type (``fastavro.parse_schema(..., named_schemas=)``).

    Returns
    -------
    pyarrow.DataType
        Its Arrow type (see the module docstring).

    Raises
    ------
    ValueError
        For a union of several non-null types (none in the alert schemas' detections).
    """
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        return arrow_type(named[schema], named)
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) != 1:
            raise ValueError(f"no Arrow type for the union {schema!r}")
        return arrow_type(branches[0], named)
    kind = schema["type"]
    logical = _LOGICAL.get((kind, schema.get("logicalType", "")))
    if logical is not None:
        return logical
    if kind == "record":
        return pa.struct(
            [pa.field(f["name"], arrow_type(f["type"], named)) for f in schema["fields"]]
        )
    if kind == "array":
        return pa.list_(arrow_type(schema["items"], named))
    if kind == "map":
        return pa.map_(pa.string(), arrow_type(schema["values"], named))
    if kind == "enum":
        return pa.string()
    if kind == "fixed":
        return pa.binary()
    return arrow_type(kind, named)


def _field_type(record_schema: Mapping[str, Any], name: str, named: Mapping[str, Any]) -> Any:
    for item in record_schema["fields"]:
        if item["name"] == name:
            return item["type"]
    raise KeyError(f"the alert schema has no field {name!r}")


def _record_of(schema: Any, named: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the record type a (nullable, maybe named) Avro type stands for."""
    if isinstance(schema, str):
        return _record_of(named[schema], named)
    if isinstance(schema, list):
        return _record_of(next(b for b in schema if b != "null"), named)
    if schema["type"] == "array":
        return _record_of(schema["items"], named)
    return schema


def arrow_schema(profile: SurveyProfile, raw_schema: Any) -> pa.Schema:
    """Return the Arrow schema of the Parquet rows of alerts of one writer schema.

    Parameters
    ----------
    profile : SurveyProfile
        The survey profile (which fields hold the detection and the previous ones).
    raw_schema : Any
        The alerts' Avro writer schema (JSON, as the registry gives it).

    Returns
    -------
    pyarrow.Schema
        :data:`~brokerapp.domain.archive.BROKER_COLUMNS`, the detection's fields, then
        ``previous_detections``.
    """
    named: dict[str, Any] = {}
    top = _record_of(
        fastavro.parse_schema(raw_schema, named_schemas=named, _write_hint=False), named
    )
    detection = _record_of(_field_type(top, profile.detection_field, named), named)
    fields = [pa.field(name, _BROKER_TYPES[name]) for name in BROKER_COLUMNS]
    fields += [
        pa.field(column_name(f["name"]), arrow_type(f["type"], named)) for f in detection["fields"]
    ]
    previous = _record_of(_field_type(top, profile.previous_field, named), named)
    fields.append(pa.field(PREVIOUS_COLUMN, pa.list_(arrow_type(previous, named))))
    return pa.schema(fields)


def encode_file(
    schema: pa.Schema, rows: Sequence[Mapping[str, Any]], row_group_rows: int, compression: str
) -> bytes:
    """Write one Parquet file's bytes.

    Parameters
    ----------
    schema : pyarrow.Schema
        From :func:`arrow_schema`.
    rows : sequence of Mapping
        The rows, in offset order.
    row_group_rows : int
        Rows per row group.
    compression : str
        Parquet codec (``"zstd"``, ``"snappy"``, ``"gzip"``, ``"none"``).

    Returns
    -------
    bytes
        The Parquet file.

    Raises
    ------
    pyarrow.ArrowInvalid, pyarrow.ArrowTypeError
        If a value does not fit its column.
    """
    table = pa.Table.from_pylist(list(rows), schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_rows, compression=compression)
    return buffer.getvalue()


def decode_file(data: bytes) -> tuple[pa.Schema, list[dict[str, Any]]]:
    """Read one Parquet file back (as the archiver does to extend it after a restart).

    Parameters
    ----------
    data : bytes
        The file.

    Returns
    -------
    schema : pyarrow.Schema
        Its schema.
    rows : list of dict
        Its rows.
    """
    table = pq.read_table(pa.BufferReader(data))
    return table.schema, table.to_pylist()


class ParquetFormat:
    """Parquet as an archive format (:class:`brokerapp.runtime.archive.ArchiveFormat`).

    Parameters
    ----------
    row_group_rows : int
        Rows per row group (``archive_parquet_row_group_rows``).
    compression : str
        Column codec (``archive_parquet_compression``).
    block_records : int
        Offsets per file (``archive_parquet_block_records``).
    """

    kind = "parquet"
    hourly = False

    def __init__(self, row_group_rows: int, compression: str, block_records: int = 2000):
        self.block_records = block_records
        self.row_group_rows = row_group_rows
        self.compression = compression
        self._schemas: dict[tuple[str, str], pa.Schema] = {}

    def schema(self, profile: SurveyProfile, schema: Any) -> pa.Schema:
        """Return the Arrow schema of alerts of one writer schema (cached)."""
        key = (profile.survey, schema.fingerprint)
        found = self._schemas.get(key)
        if found is None:
            found = self._schemas[key] = arrow_schema(profile, schema.raw)
        return found

    def entry(self, record: Any, alert: Any, schema: Any) -> dict[str, Any]:
        """Return the alert's row (:func:`brokerapp.domain.archive.parquet_row`)."""
        return parquet_row(
            alert.profile,
            alert.record,
            record.topic,
            record.partition,
            record.offset,
            int(record.timestamp),
        )

    def encode(
        self, key: Any, path: str, schema: Any, profile: Any, topic: str, entries: list[Any]
    ) -> bytes:
        """Write the file (:func:`encode_file`)."""
        try:
            return encode_file(
                self.schema(profile, schema), entries, self.row_group_rows, self.compression
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
            raise ValueError(f"row does not fit the Parquet schema: {exc}") from exc

    def decode(self, data: bytes) -> dict[int, Any]:
        """Read the rows back by offset (:func:`decode_file`)."""
        try:
            rows = decode_file(data)[1]
        except pa.ArrowException as exc:
            raise ValueError(f"not a Parquet file: {exc}") from exc
        return {row["kafka_offset"]: row for row in rows}

    def check(self, key: Any, path: str, schema: Any, profile: Any, topic: str, entry: Any) -> None:
        """Raise BadEntry-compatible ValueError if ``entry`` alone does not encode."""
        self.encode(key, path, schema, profile, topic, [entry])
