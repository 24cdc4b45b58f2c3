r"""Avro object containers: one container file per message, the way ZTF publishes.

An Avro Object Container File is the 4-byte magic ``b"Obj\x01"``; a metadata map (Avro map
blocks of string keys and bytes values) whose ``avro.schema`` entry is the writer schema as
JSON text and whose ``avro.codec`` entry names the block compression (``null``, ``deflate`` as
raw deflate without zlib header, ``bzip2``, ``xz``); a 16-byte sync marker; then blocks, each a
varint record count, a varint byte size, that many bytes of (compressed) bare Avro bodies
concatenated without length prefixes, and the sync marker again. ZTF messages hold exactly one
record in one block.

:class:`InlineCodec` reads the header itself, checks every sync marker and block size, interns
the header's schema text in a :class:`~brokerapp.wire.codecs.schemas.SchemaCache` (parsed once
per distinct schema) and reads the records with fastavro's schemaless reader.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import fastavro

from brokerapp.wire.codecs.body import NO_END, read_body
from brokerapp.wire.codecs.errors import DECOMPRESS_ERRORS, DecodeError, EncodeError, describe
from brokerapp.wire.codecs.framing import AVRO_CONTAINER_MAGIC
from brokerapp.wire.codecs.schemas import ParsedSchema, SchemaCache

__all__ = ["SYNC_MARKER_SIZE", "InlineCodec", "read_container_file"]

SYNC_MARKER_SIZE = 16
"""Length in bytes of a container file's sync marker."""

_VARINT_PAYLOAD = 0x7F
_VARINT_CONTINUE = 0x80
_VARINT_MAX_SHIFT = 63
_RAW_DEFLATE_WBITS = -15
"""zlib window bits for raw deflate without zlib header, as the Avro spec prescribes."""

_BLOCK_DECOMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "null": bytes,
    "deflate": lambda data: zlib.decompress(data, _RAW_DEFLATE_WBITS),
    "bzip2": bz2.decompress,
    "xz": lzma.decompress,
}
"""Container block codecs supported by :class:`InlineCodec` (standard library only)."""


def _read_long(data: bytes, position: int) -> tuple[int, int]:
    """Read one zig-zag varint Avro ``long`` at ``position``; return it and the next position."""
    accumulated = 0
    shift = 0
    while True:
        if position >= len(data):
            raise EOFError("data ends inside a varint")
        byte = data[position]
        position += 1
        accumulated |= (byte & _VARINT_PAYLOAD) << shift
        if not byte & _VARINT_CONTINUE:
            return (accumulated >> 1) ^ -(accumulated & 1), position
        shift += 7
        if shift > _VARINT_MAX_SHIFT:
            raise ValueError("varint longer than 64 bits")


def _read_bytes(data: bytes, position: int) -> tuple[bytes, int]:
    size, position = _read_long(data, position)
    end = position + size
    if size < 0 or end > len(data):
        raise EOFError(f"{size}-byte field runs past the end of data")
    return data[position:end], end


@dataclass(frozen=True, slots=True)
class _Block:
    count: int
    start: int  # offset of the (compressed) block data in the message
    end: int


def _parse_container(data: bytes) -> tuple[dict[str, bytes], list[_Block]]:
    """Read a container's header and locate its blocks, checking every sync marker."""
    if data[: len(AVRO_CONTAINER_MAGIC)] != AVRO_CONTAINER_MAGIC:
        head = bytes(data[: len(AVRO_CONTAINER_MAGIC)]).hex()
        raise DecodeError("inline", f"not an Avro container: magic 0x{head}")
    position = len(AVRO_CONTAINER_MAGIC)
    metadata: dict[str, bytes] = {}
    try:
        while True:
            count, position = _read_long(data, position)
            if count == 0:
                break
            if count < 0:  # negative count: a byte size follows (Avro map block encoding)
                count = -count
                _size, position = _read_long(data, position)
            for _ in range(count):
                key, position = _read_bytes(data, position)
                value, position = _read_bytes(data, position)
                metadata[key.decode()] = value
    except (EOFError, ValueError) as exc:
        raise DecodeError(
            "inline", f"truncated or corrupt container header: {describe(exc)}"
        ) from exc
    sync = data[position : position + SYNC_MARKER_SIZE]
    if len(sync) != SYNC_MARKER_SIZE:
        raise DecodeError("inline", "truncated or corrupt container header: no sync marker")
    position += SYNC_MARKER_SIZE
    blocks: list[_Block] = []
    while position < len(data):
        try:
            count, position = _read_long(data, position)
            size, position = _read_long(data, position)
        except (EOFError, ValueError) as exc:
            reason = f"truncated or corrupt block {len(blocks)} header: {describe(exc)}"
            raise DecodeError("inline", reason) from exc
        end = position + size
        if count < 0 or size < 0 or end + SYNC_MARKER_SIZE > len(data):
            reason = f"truncated block {len(blocks)} ({count} records, {size} bytes)"
            raise DecodeError("inline", reason)
        if data[end : end + SYNC_MARKER_SIZE] != sync:
            raise DecodeError("inline", f"sync marker mismatch after block {len(blocks)}")
        blocks.append(_Block(count, position, end))
        position = end + SYNC_MARKER_SIZE
    return metadata, blocks


class InlineCodec:
    """One Avro object container file per message (schema in the header), the way ZTF publishes.

    The header's writer schema text is interned in the :class:`SchemaCache`, so a stream of
    containers carrying the same schema parses it once; records are then read from the blocks
    with fastavro's schemaless reader and the cached parsed schema. Block codecs ``null``,
    ``deflate``, ``bzip2`` and ``xz`` are supported. Sync markers are checked after every
    block, and each block must hold exactly its announced records with no bytes left over.

    Parameters
    ----------
    cache : SchemaCache or None, optional
        Shared schema cache; a private one when omitted.

    Attributes
    ----------
    cache : SchemaCache
        The schema cache used.
    """

    mode = "inline"

    def __init__(self, cache: SchemaCache | None = None):
        self.cache = cache if cache is not None else SchemaCache()

    def _open(self, data: bytes) -> tuple[ParsedSchema, Callable[[_Block], bytes], list[_Block]]:
        metadata, blocks = _parse_container(data)
        schema_text = metadata.get("avro.schema")
        if schema_text is None:
            raise DecodeError(self.mode, "container header has no avro.schema")
        schema = self.cache.intern(schema_text, mode=self.mode)
        codec = metadata.get("avro.codec", b"null").decode(errors="replace")
        decompress = _BLOCK_DECOMPRESSORS.get(codec)
        if decompress is None:
            raise DecodeError(self.mode, f"unsupported block codec {codec!r}")

        def block_bytes(block: _Block) -> bytes:
            try:
                return decompress(data[block.start : block.end])
            except DECOMPRESS_ERRORS as exc:
                raise DecodeError(self.mode, f"corrupt {codec} block: {describe(exc)}") from exc

        return schema, block_bytes, blocks

    def decode(self, data: bytes) -> tuple[ParsedSchema, list[dict]]:
        """Decode every record of a container.

        Parameters
        ----------
        data : bytes
            The Kafka message value (a whole container file).

        Returns
        -------
        schema : ParsedSchema
            The (cached) writer schema from the header.
        records : list of dict
            All records in file order (ZTF: exactly one).

        Raises
        ------
        DecodeError
            ``mode="inline"``: bad magic, truncated header or block, sync mismatch,
            unsupported codec, invalid schema, corrupt or over-long record data.
        """
        schema, block_bytes, blocks = self._open(data)
        records: list[dict] = []
        for block in blocks:
            raw = block_bytes(block)
            buffer = io.BytesIO(raw)
            for index in range(block.count):
                end = len(raw) if index == block.count - 1 else NO_END
                records.append(read_body(buffer, end, schema, self.mode, None))
        return schema, records

    def decode_one(self, data: bytes) -> dict:
        """Decode a container that must hold exactly one record.

        Parameters
        ----------
        data : bytes
            The Kafka message value.

        Returns
        -------
        dict
            The record.

        Raises
        ------
        DecodeError
            As :meth:`decode`, or when the container holds zero or several records.
        """
        _schema, records = self.decode(data)
        if len(records) != 1:
            raise DecodeError(self.mode, f"container holds {len(records)} records, expected 1")
        return records[0]

    def record_bodies(self, data: bytes) -> tuple[ParsedSchema, list[bytes]]:
        """Return the bare Avro body of each record without decoding single-record blocks.

        Records in a block are concatenated without length prefixes. A block announcing one
        record (the ZTF case) is therefore returned as is (decompressed): this is cheap, but the
        body is *not* validated against the schema. Blocks with several records are decoded to
        find the record boundaries, and sliced at the reader's offsets.

        Parameters
        ----------
        data : bytes
            The Kafka message value (a whole container file).

        Returns
        -------
        schema : ParsedSchema
            The (cached) writer schema, e.g. to register and re-frame the bodies with
            :func:`frame`.
        bodies : list of bytes
            One bare Avro body per record.

        Raises
        ------
        DecodeError
            As :meth:`decode` (record-level errors only for multi-record blocks).
        """
        schema, block_bytes, blocks = self._open(data)
        bodies: list[bytes] = []
        for block in blocks:
            raw = block_bytes(block)
            if block.count == 1:
                bodies.append(raw)
                continue
            buffer = io.BytesIO(raw)
            start = 0
            for index in range(block.count):
                end = len(raw) if index == block.count - 1 else NO_END
                read_body(buffer, end, schema, self.mode, None)
                stop = buffer.tell()
                bodies.append(raw[start:stop])
                start = stop
        return schema, bodies

    def encode(
        self, records: Iterable[Mapping] | Mapping, schema: ParsedSchema, codec: str = "null"
    ) -> bytes:
        """Write records as one container file.

        Parameters
        ----------
        records : Mapping or iterable of Mapping
            One record, or several.
        schema : ParsedSchema
            Writer schema, stored in the header.
        codec : str, optional
            Block codec (``"null"``, ``"deflate"``, ``"bzip2"``, ``"xz"``).

        Returns
        -------
        bytes
            The container file.

        Raises
        ------
        EncodeError
            If the codec is unsupported or a record does not match the schema.
        """
        if codec not in _BLOCK_DECOMPRESSORS:
            raise EncodeError(self.mode, f"unsupported block codec {codec!r}")
        if isinstance(records, Mapping):
            records = [records]
        buffer = io.BytesIO()
        try:
            fastavro.writer(buffer, schema.parsed, records, codec=codec)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            reason = f"record does not match schema {schema.name}: {describe(exc)}"
            raise EncodeError(self.mode, reason) from exc
        return buffer.getvalue()


def read_container_file(
    path: str | os.PathLike[str], cache: SchemaCache | None = None
) -> tuple[ParsedSchema, list[dict]]:
    """Load all records of an Avro container file on disk (e.g. a sample alert).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.avro`` file.
    cache : SchemaCache or None, optional
        Schema cache to intern the writer schema in.

    Returns
    -------
    schema : ParsedSchema
        The writer schema.
    records : list of dict
        The records.

    Raises
    ------
    DecodeError
        If the file is not a valid container.
    OSError
        If the file cannot be read.
    """
    return InlineCodec(cache).decode(Path(path).read_bytes())
