"""Bare Avro bodies: one record's binary encoding, read and written with a parsed schema.

A bare body is the record's fields encoded one after another in schema order, with no schema,
header or sync marker: the payload of a Confluent-framed message, of a schema-file message and
of each record in a container block. Reading one with fastavro's schemaless reader stops where
the record ends; :func:`read_body` then checks that this is where the body was meant to end, so
a truncated or over-long body is a :class:`~brokerapp.wire.codecs.errors.DecodeError` rather
than a silently different record.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any

import fastavro

from brokerapp.wire.codecs.errors import AVRO_ERRORS, DecodeError, EncodeError, describe
from brokerapp.wire.codecs.schemas import ParsedSchema

__all__ = ["NO_END", "read_body", "write_body"]

NO_END = -1
"""``end`` for a record that is not the last of its block: any position is accepted."""


def read_body(
    buffer: io.BytesIO,
    end: int,
    writer: ParsedSchema,
    mode: str,
    schema_id: int | None,
    reader: ParsedSchema | None = None,
) -> Any:
    """Decode one record from ``buffer`` at its position, which must end exactly at ``end``.

    Parameters
    ----------
    buffer : io.BytesIO
        The bytes, positioned at the start of the record; left after its end.
    end : int
        Position where the record must end, or :data:`NO_END` for a record followed by others.
    writer : ParsedSchema
        Schema the body was written with.
    mode : str
        ``mode`` of the :class:`~brokerapp.wire.codecs.errors.DecodeError` raised.
    schema_id : int or None
        Registry ID named in the error, when known.
    reader : ParsedSchema or None, optional
        Schema to read the record as (Avro schema resolution), when it differs from ``writer``.

    Returns
    -------
    Any
        The decoded datum: a dict for a record schema.

    Raises
    ------
    DecodeError
        If the body is truncated or corrupt, does not resolve to ``reader``, overruns ``end``
        or leaves trailing bytes before it.
    """
    try:
        record = fastavro.schemaless_reader(
            buffer, writer.parsed, None if reader is None else reader.parsed
        )
    except AVRO_ERRORS as exc:
        reason = f"truncated or corrupt Avro body: {describe(exc)}"
        raise DecodeError(mode, reason, schema_id) from exc
    if end == NO_END:
        return record
    position = buffer.tell()
    if position > end:
        reason = f"truncated or corrupt Avro body: record overruns its {end}-byte end"
        raise DecodeError(mode, reason, schema_id)
    if position != end:
        raise DecodeError(mode, f"{end - position} trailing bytes after record", schema_id)
    return record


def write_body(
    schema: ParsedSchema, record: Mapping, mode: str, schema_id: int | None = None
) -> bytes:
    """Encode one record as a bare Avro body.

    Parameters
    ----------
    schema : ParsedSchema
        Writer schema.
    record : Mapping
        The record.
    mode : str
        ``mode`` of the :class:`~brokerapp.wire.codecs.errors.EncodeError` raised.
    schema_id : int or None, optional
        Registry ID named in the error, when known.

    Returns
    -------
    bytes
        The body.

    Raises
    ------
    EncodeError
        If the record does not match the schema.
    """
    buffer = io.BytesIO()
    try:
        fastavro.schemaless_writer(buffer, schema.parsed, record)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error) as exc:
        raise EncodeError(
            mode, f"record does not match schema {schema.name}: {describe(exc)}", schema_id
        ) from exc
    return buffer.getvalue()
