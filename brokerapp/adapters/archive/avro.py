"""The Avro backup files: Avro object container files of whole alerts, schema embedded.

Each file is a standard Avro object container file (readable by fastavro, Avro's own tools,
Spark): its writer schema is the alert's schema exactly as the local registry holds it, its
records the alerts' bodies exactly as the gateway wrote them to the buffer (cutouts
included; never decoded and encoded again), compressed per block with
``archive_avro_codec``. Where each record came from is in the container's metadata:

``broker.topic``
    The input topic (one per file).
``broker.partition``
    The input partition (one per file).
``broker.offsets``
    JSON list of the records' offsets in that partition, increasing.
``broker.timestamps``
    JSON list of their append times in the buffer (ms).

The sync marker is derived from the file's path (the first 16 bytes of its SHA-256), not
drawn at random as writers usually do, so the same records give the same bytes: a replay
leaves a file byte-identical.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.write import Writer

from brokerapp.wire.codecs import CONFLUENT_HEADER_SIZE

__all__ = ["AvroBackupFormat", "AvroEntry", "decode_file", "encode_file"]


BLOCK_BYTES = 1 << 20
"""Uncompressed bytes of bodies per container block (a block ends after the body that
reaches it): large enough for the codec to find repeats across alerts."""


@dataclass(frozen=True, slots=True)
class AvroEntry:
    """One alert of a backup file.

    Attributes
    ----------
    offset : int
        Input offset.
    timestamp_ms : int
        Append time in the buffer (ms).
    body : bytes
        The alert's bare Avro body under the file's writer schema (the Kafka message without
        its 5-byte Confluent header): never decoded and encoded again.
    """

    offset: int
    timestamp_ms: int
    body: bytes


@dataclass(frozen=True, slots=True)
class _Block:
    """What ``fastavro.write.Writer.write_block`` reads of a block (as ``block_reader`` gives)."""

    num_records: int
    bytes_: io.BytesIO


def sync_marker(relpath: str) -> bytes:
    """Return the fixed 16-byte sync marker of the file at ``relpath``."""
    return hashlib.sha256(relpath.encode()).digest()[:16]


def encode_file(
    relpath: str,
    schema: Any,
    topic: str,
    partition: int,
    entries: Sequence[AvroEntry],
    codec: str,
    block_bytes: int = BLOCK_BYTES,
) -> bytes:
    """Write one backup file's bytes.

    The bodies go into the container as they are, in blocks of about ``block_bytes``,
    through fastavro's container writer (header, codec, sync markers).

    Parameters
    ----------
    relpath : str
        The file's path (its sync marker comes from it).
    schema : Any
        The alerts' writer schema as JSON (the registry's document, ``ParsedSchema.raw``),
        written into the header as ``json.dumps`` gives it. Not fastavro's parsed form: the
        key order of that one varies between processes, and the file's bytes with it.
    topic : str
        Input topic.
    partition : int
        Input partition.
    entries : sequence of AvroEntry
        The file's alerts, in offset order.
    codec : str
        ``"deflate"``, ``"zstandard"`` or ``"null"``.
    block_bytes : int, optional
        Uncompressed bytes per block.

    Returns
    -------
    bytes
        The container file.
    """
    metadata = {
        "broker.topic": topic,
        "broker.partition": str(partition),
        "broker.offsets": json.dumps([e.offset for e in entries]),
        "broker.timestamps": json.dumps([e.timestamp_ms for e in entries]),
    }
    buffer = io.BytesIO()
    writer = Writer(
        buffer, schema, codec=codec, metadata=metadata, sync_marker=sync_marker(relpath)
    )
    pending: list[bytes] = []
    size = 0
    for entry in entries:
        pending.append(entry.body)
        size += len(entry.body)
        if size >= block_bytes:
            writer.write_block(_Block(len(pending), io.BytesIO(b"".join(pending))))
            pending, size = [], 0
    if pending:
        writer.write_block(_Block(len(pending), io.BytesIO(b"".join(pending))))
    writer.flush()
    return buffer.getvalue()


def decode_file(data: bytes) -> tuple[str, int, list[dict], list[AvroEntry]]:
    """Read one backup file back.

    Parameters
    ----------
    data : bytes
        The container file.

    Returns
    -------
    topic : str
        Input topic.
    partition : int
        Input partition.
    records : list of dict
        The decoded alerts, in file order.
    entries : list of AvroEntry
        The same with their offsets and append times, bodies encoded again under the
        file's schema (Avro's binary encoding of a record is unique: the bytes written).

    Raises
    ------
    ValueError
        If the metadata does not list one offset per record.
    """
    reader = fastavro.reader(io.BytesIO(data))
    meta = reader.metadata
    schema = reader.writer_schema
    records: list[dict] = [r for r in reader if isinstance(r, dict)]
    offsets = json.loads(meta["broker.offsets"])
    stamps = json.loads(meta["broker.timestamps"])
    if not (len(offsets) == len(stamps) == len(records)):
        raise ValueError("backup file metadata does not list one offset per record")
    entries = []
    for offset, stamp, record in zip(offsets, stamps, records, strict=True):
        body = io.BytesIO()
        fastavro.schemaless_writer(body, schema, record)
        entries.append(AvroEntry(offset, stamp, body.getvalue()))
    return meta["broker.topic"], int(meta["broker.partition"]), records, entries


class AvroBackupFormat:
    """The Avro backup as an archive format (:class:`brokerapp.runtime.archive.ArchiveFormat`).

    Parameters
    ----------
    codec : str
        Container block codec (``archive_avro_codec``).
    block_records : int
        Offsets per file (``archive_block_records``).
    """

    kind = "avro"
    hourly = True

    def __init__(self, codec: str, block_records: int = 500):
        self.codec = codec
        self.block_records = block_records

    def entry(self, record: Any, alert: Any, schema: Any) -> AvroEntry:
        """Keep the alert's body as the buffer holds it."""
        return AvroEntry(
            record.offset, int(record.timestamp), bytes(record.value)[CONFLUENT_HEADER_SIZE:]
        )

    def encode(
        self, key: Any, path: str, schema: Any, profile: Any, topic: str, entries: list[Any]
    ) -> bytes:
        """Write the file (:func:`encode_file`)."""
        return encode_file(path, schema.raw, topic, key.partition, entries, self.codec)

    def decode(self, data: bytes) -> dict[int, Any]:
        """Read the entries back by offset (:func:`decode_file`)."""
        return {e.offset: e for e in decode_file(data)[3]}

    def check(self, key: Any, path: str, schema: Any, profile: Any, topic: str, entry: Any) -> None:
        """Bodies decoded whole by the worker always fit: nothing to check."""
