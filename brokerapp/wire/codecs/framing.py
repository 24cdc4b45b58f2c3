r"""Confluent framing: how one bare Avro body travels in a Kafka message with its schema ID.

The Confluent Schema Registry wire format is byte 0, the magic byte ``0``; bytes 1-4, the
writer schema's registry ID as a big-endian unsigned 32-bit integer; then one bare Avro binary
body (no schema, no sync markers). Rubin publishes alerts this way, and every branch reads the
local ``alerts`` topic in this format. ZTF publishes Avro object containers instead, which
start with ``b"Obj\x01"`` (see :mod:`brokerapp.wire.codecs.container`); :func:`detect_mode`
tells the two apart from the first bytes.
"""

from __future__ import annotations

import struct

from brokerapp.wire.codecs.errors import DecodeError

__all__ = [
    "AVRO_CONTAINER_MAGIC",
    "CONFLUENT_HEADER_SIZE",
    "CONFLUENT_MAGIC",
    "MAX_SCHEMA_ID",
    "detect_mode",
    "frame",
    "unframe",
]

CONFLUENT_MAGIC = 0
"""First byte of every Confluent wire-format message."""
CONFLUENT_HEADER_SIZE = 5
"""Magic byte plus the 4-byte big-endian schema ID."""
_CONFLUENT_HEADER = struct.Struct(">bI")
MAX_SCHEMA_ID = 2**32 - 1
"""Largest schema ID the 4-byte unsigned header field can carry."""

AVRO_CONTAINER_MAGIC = b"Obj\x01"
"""First four bytes of an Avro Object Container File (format version 1)."""


def frame(schema_id: int, body: bytes) -> bytes:
    r"""Prefix a bare Avro body with the Confluent wire-format header.

    Parameters
    ----------
    schema_id : int
        Registry ID of the writer schema, 0 to 2**32 - 1.
    body : bytes
        Bare Avro binary encoding of one record.

    Returns
    -------
    bytes
        ``b"\x00" + schema_id (4 bytes, big-endian) + body``.

    Raises
    ------
    ValueError
        If ``schema_id`` does not fit the 4-byte unsigned header field.
    """
    if not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise ValueError(f"schema ID {schema_id} outside 0..{MAX_SCHEMA_ID}")
    return _CONFLUENT_HEADER.pack(CONFLUENT_MAGIC, schema_id) + body


def unframe(data: bytes) -> tuple[int, memoryview]:
    """Split a Confluent wire-format message into schema ID and body.

    Parameters
    ----------
    data : bytes
        The Kafka message value.

    Returns
    -------
    schema_id : int
        Registry ID of the writer schema.
    body : memoryview
        The bare Avro body (a view on ``data``, not a copy).

    Raises
    ------
    DecodeError
        ``mode="confluent"``; reason ``"message shorter than 5-byte header"`` or
        ``"wrong magic byte 0x.."``.
    """
    if len(data) < CONFLUENT_HEADER_SIZE:
        raise DecodeError("confluent", f"message shorter than {CONFLUENT_HEADER_SIZE}-byte header")
    magic, schema_id = _CONFLUENT_HEADER.unpack_from(data)
    if magic != CONFLUENT_MAGIC:
        raise DecodeError("confluent", f"wrong magic byte 0x{data[0]:02x}")
    return schema_id, memoryview(data)[CONFLUENT_HEADER_SIZE:]


def detect_mode(data: bytes) -> str:
    r"""Tell which framing a message uses from its first bytes.

    Parameters
    ----------
    data : bytes
        The Kafka message value.

    Returns
    -------
    str
        ``"inline"`` for an Avro container (starts with ``b"Obj\x01"``), ``"confluent"`` when
        the first byte is the Confluent magic byte 0 and the header is complete.

    Raises
    ------
    DecodeError
        ``mode="unknown"`` for anything else.
    """
    if data[: len(AVRO_CONTAINER_MAGIC)] == AVRO_CONTAINER_MAGIC:
        return "inline"
    if len(data) >= CONFLUENT_HEADER_SIZE and data[0] == CONFLUENT_MAGIC:
        return "confluent"
    head = bytes(data[: len(AVRO_CONTAINER_MAGIC)]).hex()
    raise DecodeError(
        "unknown", f"neither Avro container nor Confluent framing (first bytes 0x{head})"
    )
