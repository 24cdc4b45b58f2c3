r"""Alert (de)serialisation: the one place that turns Kafka message bytes into alert dicts.

Alerts are Apache Avro records. Three framings of those records reach the broker:

``confluent``
    The Confluent Schema Registry wire format: byte 0 is the magic byte ``0``, bytes 1-4 are
    the writer schema's registry ID as a big-endian unsigned 32-bit integer, and the rest of
    the message is one bare Avro binary body (no schema, no sync markers). Rubin publishes
    alerts this way, and every branch reads the local ``alerts`` topic in this format. The
    schema is looked up by ID in a :class:`SchemaCache`, filled on a miss by an asynchronous
    :class:`SchemaFetcher` (a schema registry client).
``inline``
    One Avro Object Container File per message, the way ZTF publishes: the 4-byte magic
    ``b"Obj\x01"``, a metadata map whose ``avro.schema`` entry is the writer schema as JSON
    text and whose ``avro.codec`` entry names the block compression, a 16-byte sync marker,
    then blocks of ``(record count, byte size, records, sync marker)``. ZTF messages hold
    exactly one record in one block.
``schemafile``
    Bare Avro bodies whose schema is agreed out of band in ``.avsc`` files on disk, e.g. the
    ``lsst-alert-packet`` layout ``schema/<major>/<minor>/lsst.v<M>_<m>.alert.avsc`` where the
    top-level file refers to sub-records (``lsst.v9_0.diaSource`` ...) kept in sibling files.

Decoding never parses a schema per message. A :class:`SchemaCache` keeps each distinct schema
parsed once (a :class:`ParsedSchema`), keyed by registry ID, by fingerprint (SHA-256 of the
Avro Parsing Canonical Form) and by the exact JSON text it was given as, so the schema text of
each container header costs one dictionary lookup after the first message.

Every failure to decode, whatever library raised it (``EOFError``, ``ValueError``,
``struct.error``, ``zlib.error``, fastavro's ``SchemaParseException`` ...), is raised as
:class:`DecodeError` naming the framing mode, the schema ID when known and the reason, chained
to the original exception. The only other error a decode can raise is
:class:`RegistryUnavailable`, when the schema registry cannot be reached: that is an outage to
retry, not a bad message to dead-letter.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException, fingerprint, to_parsing_canonical_form

__all__ = [
    "AVRO_CONTAINER_MAGIC",
    "CONFLUENT_HEADER_SIZE",
    "CONFLUENT_MAGIC",
    "ConfluentCodec",
    "DecodeError",
    "EncodeError",
    "InlineCodec",
    "MAX_SCHEMA_ID",
    "ParsedSchema",
    "RegistryUnavailable",
    "SchemaCache",
    "SchemaFetcher",
    "SchemaFileCodec",
    "detect_mode",
    "frame",
    "load_avsc",
    "parse_schema",
    "read_container_file",
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
SYNC_MARKER_SIZE = 16
"""Length in bytes of a container file's sync marker."""
FINGERPRINT_ALGORITHM = "sha256"
"""Hash of the Parsing Canonical Form used as schema fingerprint (collision-safe cache key)."""

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

MAX_LIBRARY_MESSAGE = 300
"""Longest library error text quoted in a :class:`DecodeError` reason."""

_NO_END = -1
"""``end`` for a record that is not the last of its block: any position is accepted."""

_AVRO_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    ValueError,  # includes UnicodeDecodeError and fastavro's UnknownType
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    StopIteration,
    struct.error,
    SchemaResolutionError,
)
"""What fastavro raises on a truncated, corrupt or mismatched Avro body."""

_SCHEMA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # includes json.JSONDecodeError and UnicodeDecodeError
    TypeError,
    KeyError,
    AttributeError,
    SchemaParseException,
)
"""What ``json.loads`` and fastavro raise on schema text that is not a valid Avro schema."""

_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (zlib.error, OSError, EOFError, ValueError)
"""What the block decompressors raise on corrupt data (``bz2``/``lzma`` raise OSError)."""


class _CodecError(Exception):
    """Common form of :class:`DecodeError` and :class:`EncodeError`."""

    verb = ""

    def __init__(self, mode: str, reason: str, schema_id: int | None = None):
        super().__init__(mode, reason, schema_id)
        self.mode = mode
        self.reason = reason
        self.schema_id = schema_id

    def __str__(self) -> str:
        return f"{self.mode} {self.verb} failed (schema_id={self.schema_id}): {self.reason}"


class DecodeError(_CodecError):
    """Raised for any failure to decode; wraps library errors.

    Parameters
    ----------
    mode : str
        Framing the message was decoded as: ``"confluent"``, ``"inline"``, ``"schemafile"``,
        ``"schema"`` (a schema text itself is bad) or ``"unknown"`` (framing not recognised).
    reason : str
        What went wrong, e.g. ``"unknown schema ID"`` or
        ``"truncated or corrupt Avro body: <library message>"``.
    schema_id : int or None, optional
        Registry ID of the writer schema, when the message carries one.

    Attributes
    ----------
    mode : str
        As given.
    reason : str
        As given.
    schema_id : int or None
        As given.
    """

    verb = "decode"


class EncodeError(_CodecError):
    """Raised when a record cannot be encoded (it does not match the schema, or no schema).

    Parameters
    ----------
    mode : str
        Framing being written: ``"confluent"``, ``"inline"`` or ``"schemafile"``.
    reason : str
        What went wrong.
    schema_id : int or None, optional
        Registry ID the record was to be framed with.

    Attributes
    ----------
    mode : str
        As given.
    reason : str
        As given.
    schema_id : int or None
        As given.
    """

    verb = "encode"


class RegistryUnavailable(Exception):  # noqa: N818 - name fixed by the codec API
    """The schema registry could not be asked for a schema (outage, timeout, HTTP 5xx).

    Not a property of the message: the caller should retry later rather than dead-letter it.

    Parameters
    ----------
    schema_id : int
        The schema ID that was being fetched.
    reason : str
        Description of the underlying failure.

    Attributes
    ----------
    schema_id : int
        As given.
    reason : str
        As given.
    """

    def __init__(self, schema_id: int, reason: str):
        super().__init__(schema_id, reason)
        self.schema_id = schema_id
        self.reason = reason

    def __str__(self) -> str:
        return f"schema registry unavailable fetching schema_id={self.schema_id}: {self.reason}"


def _describe(exc: BaseException) -> str:
    """Name and message of a library exception, shortened (fastavro quotes whole schemas)."""
    message = f"{type(exc).__name__}: {exc}"
    if len(message) > MAX_LIBRARY_MESSAGE:
        message = message[: MAX_LIBRARY_MESSAGE - 1] + "\u2026"
    return message


# --------------------------------------------------------------------------- Confluent framing


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


# --------------------------------------------------------------------------------- schemas


@dataclass(frozen=True, slots=True)
class ParsedSchema:
    """An Avro schema parsed once, with its identity.

    Two instances compare equal (and hash alike) when their fingerprints are equal, i.e. when
    they have the same Parsing Canonical Form, whatever their docs or field order of JSON keys.

    Attributes
    ----------
    raw : dict or list or str
        The schema JSON as given (a dict for record schemas).
    parsed : dict or list or str
        fastavro's parsed form, handed to its readers and writers (not re-parsed by them).
    fingerprint : str
        Hex SHA-256 of the Parsing Canonical Form.
    name : str
        Full name of the top-level named type (``"ztf.alert"``, ``"lsst.v9_0.alert"``), the
        primitive type name for a primitive schema, or ``"union"``.
    canonical : str
        The Parsing Canonical Form (names, types, sizes, symbols only; no docs or defaults).
    """

    raw: Any = field(compare=False, repr=False)
    parsed: Any = field(compare=False, repr=False)
    fingerprint: str
    name: str = field(compare=False)
    canonical: str = field(compare=False, repr=False)

    @property
    def text(self) -> str:
        """The schema as JSON text (from :attr:`raw`), e.g. to register it in a registry."""
        return json.dumps(self.raw)


def _schema_name(parsed: Any) -> str:
    if isinstance(parsed, list):
        return "union"
    if isinstance(parsed, str):
        return parsed
    name = parsed.get("name")
    return name if isinstance(name, str) else str(parsed.get("type"))


def _load_schema_json(schema: str | bytes | Mapping | list, mode: str) -> Any:
    if isinstance(schema, str | bytes | bytearray):
        try:
            return json.loads(schema)
        except ValueError as exc:
            raise DecodeError(mode, f"schema is not valid JSON: {_describe(exc)}") from exc
    return schema


def _canonical(raw: Any, mode: str) -> tuple[str, str]:
    try:
        canonical = to_parsing_canonical_form(raw)
    except _SCHEMA_ERRORS as exc:
        raise DecodeError(mode, f"invalid Avro schema: {_describe(exc)}") from exc
    return canonical, fingerprint(canonical, FINGERPRINT_ALGORITHM)


def _build(raw: Any, canonical: str, fp: str, mode: str) -> ParsedSchema:
    try:
        parsed = fastavro.parse_schema(raw)
    except _SCHEMA_ERRORS as exc:
        raise DecodeError(mode, f"invalid Avro schema: {_describe(exc)}") from exc
    return ParsedSchema(
        raw=raw, parsed=parsed, fingerprint=fp, name=_schema_name(parsed), canonical=canonical
    )


def parse_schema(schema: str | bytes | dict, mode: str = "schema") -> ParsedSchema:
    """Parse an Avro schema once (uncached; see :class:`SchemaCache` for the cached way).

    Parameters
    ----------
    schema : str or bytes or dict
        Schema JSON text or the already-loaded JSON value.
    mode : str, optional
        ``mode`` of the :class:`DecodeError` raised on failure (the caller's framing).

    Returns
    -------
    ParsedSchema
        The parsed schema with its fingerprint.

    Raises
    ------
    DecodeError
        If the text is not JSON or not a valid Avro schema.
    """
    raw = _load_schema_json(schema, mode)
    canonical, fp = _canonical(raw, mode)
    return _build(raw, canonical, fp, mode)


class SchemaCache:
    """Parsed schemas by registry ID and by fingerprint; never parses the same schema twice.

    A third index maps the exact schema JSON text (str or bytes) seen before to its parsed
    schema, so handing the same text again (each ZTF container header carries it) costs one
    dictionary lookup, without canonicalising it again. Schemas given as dicts are
    canonicalised on each call (cheap next to a parse) but parsed only if their fingerprint is
    new. The cache is meant for one event loop / thread and has no locking.

    Attributes
    ----------
    parses : int
        Number of schemas actually parsed by this cache (distinct fingerprints).
    hits : int
        Number of look-ups and interns served from the cache.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, ParsedSchema] = {}
        self._by_fp: dict[str, ParsedSchema] = {}
        self._by_text: dict[str | bytes, ParsedSchema] = {}
        self.parses = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._by_fp)

    def __contains__(self, schema_id: object) -> bool:
        return schema_id in self._by_id

    def by_id(self, schema_id: int) -> ParsedSchema | None:
        """Return the schema registered under ``schema_id``, or None when unknown.

        Parameters
        ----------
        schema_id : int
            Registry ID.

        Returns
        -------
        ParsedSchema or None
            The cached schema.
        """
        found = self._by_id.get(schema_id)
        if found is not None:
            self.hits += 1
        return found

    def by_fingerprint(self, fp: str) -> ParsedSchema | None:
        """Return the schema with fingerprint ``fp``, or None when unknown.

        Parameters
        ----------
        fp : str
            Hex SHA-256 of the Parsing Canonical Form (:attr:`ParsedSchema.fingerprint`).

        Returns
        -------
        ParsedSchema or None
            The cached schema.
        """
        found = self._by_fp.get(fp)
        if found is not None:
            self.hits += 1
        return found

    def intern(
        self, schema: str | bytes | dict | ParsedSchema, mode: str = "schema"
    ) -> ParsedSchema:
        """Return the one cached :class:`ParsedSchema` for ``schema``, parsing it if new.

        Parameters
        ----------
        schema : str or bytes or dict or ParsedSchema
            Schema JSON text, loaded JSON value, or an already parsed schema (adopted as the
            cached instance if its fingerprint is new).
        mode : str, optional
            ``mode`` of the :class:`DecodeError` raised for an invalid schema.

        Returns
        -------
        ParsedSchema
            The cached instance; identical for every schema with the same canonical form.

        Raises
        ------
        DecodeError
            If the schema is not JSON or not a valid Avro schema.
        """
        if isinstance(schema, ParsedSchema):
            known = self._by_fp.get(schema.fingerprint)
            if known is not None:
                self.hits += 1
                return known
            self._by_fp[schema.fingerprint] = schema
            return schema
        text: str | bytes | None
        if isinstance(schema, str | bytes):
            text = schema
        elif isinstance(schema, bytearray):
            text = bytes(schema)
        else:
            text = None
        if text is not None:
            known = self._by_text.get(text)
            if known is not None:
                self.hits += 1
                return known
        raw = _load_schema_json(schema if text is None else text, mode)
        canonical, fp = _canonical(raw, mode)
        known = self._by_fp.get(fp)
        if known is not None:
            self.hits += 1
        else:
            known = _build(raw, canonical, fp, mode)
            self.parses += 1
            self._by_fp[fp] = known
        if text is not None:
            self._by_text[text] = known
        return known

    def put_id(
        self, schema_id: int, schema: str | bytes | dict | ParsedSchema, mode: str = "schema"
    ) -> ParsedSchema:
        """Register ``schema`` under ``schema_id``; reuse the instance of an equal schema.

        Parameters
        ----------
        schema_id : int
            Registry ID.
        schema : str or bytes or dict or ParsedSchema
            The schema for that ID.
        mode : str, optional
            ``mode`` of the :class:`DecodeError` raised for an invalid schema.

        Returns
        -------
        ParsedSchema
            The cached instance now registered under ``schema_id``.

        Raises
        ------
        DecodeError
            If the schema is not JSON or not a valid Avro schema.
        """
        parsed = self.intern(schema, mode=mode)
        self._by_id[schema_id] = parsed
        return parsed


class SchemaFetcher(Protocol):
    """Anything that can fetch a schema's JSON text by registry ID (a registry client)."""

    async def get_schema(self, schema_id: int) -> str:
        """Return the JSON text of schema ``schema_id``.

        Parameters
        ----------
        schema_id : int
            Registry ID.

        Returns
        -------
        str
            The schema JSON text.

        Raises
        ------
        LookupError
            (``KeyError`` included) when the registry does not know the ID.
        Exception
            Anything else (``OSError``, an HTTP client's transport error ...) for an outage.
        """
        ...


# ------------------------------------------------------------------------- Avro bodies


def _read_body(
    buffer: io.BytesIO,
    end: int,
    writer: ParsedSchema,
    mode: str,
    schema_id: int | None,
    reader: ParsedSchema | None = None,
) -> dict:
    """Decode one record from ``buffer`` at its position, which must end exactly at ``end``."""
    try:
        record = fastavro.schemaless_reader(
            buffer, writer.parsed, None if reader is None else reader.parsed
        )
    except _AVRO_ERRORS as exc:
        reason = f"truncated or corrupt Avro body: {_describe(exc)}"
        raise DecodeError(mode, reason, schema_id) from exc
    if end == _NO_END:
        return record
    position = buffer.tell()
    if position > end:
        reason = f"truncated or corrupt Avro body: record overruns its {end}-byte end"
        raise DecodeError(mode, reason, schema_id)
    if position != end:
        raise DecodeError(mode, f"{end - position} trailing bytes after record", schema_id)
    return record


def _write_body(
    schema: ParsedSchema, record: Mapping, mode: str, schema_id: int | None = None
) -> bytes:
    buffer = io.BytesIO()
    try:
        fastavro.schemaless_writer(buffer, schema.parsed, record)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error) as exc:
        raise EncodeError(
            mode, f"record does not match schema {schema.name}: {_describe(exc)}", schema_id
        ) from exc
    return buffer.getvalue()


class ConfluentCodec:
    """Confluent wire format: magic byte 0, 4-byte big-endian schema ID, bare Avro body.

    Parameters
    ----------
    fetcher : SchemaFetcher or None, optional
        Source of schemas missing from the cache (used by :meth:`decode` only). Without one,
        only schemas put in the cache beforehand can be decoded.
    cache : SchemaCache or None, optional
        Shared schema cache; a private one when omitted.

    Attributes
    ----------
    cache : SchemaCache
        The schema cache used.
    fetcher : SchemaFetcher or None
        As given.
    """

    mode = "confluent"

    def __init__(self, fetcher: SchemaFetcher | None = None, cache: SchemaCache | None = None):
        self.fetcher = fetcher
        self.cache = cache if cache is not None else SchemaCache()

    def _decode_with(self, data: bytes, schema_id: int, schema: ParsedSchema) -> dict:
        buffer = io.BytesIO(data)
        buffer.seek(CONFLUENT_HEADER_SIZE)
        return _read_body(buffer, len(data), schema, self.mode, schema_id)

    def decode_known(self, data: bytes) -> tuple[int, dict]:
        """Decode a message whose schema is already cached (synchronous hot path).

        Parameters
        ----------
        data : bytes
            The Kafka message value.

        Returns
        -------
        schema_id : int
            Registry ID from the header.
        record : dict
            The decoded alert.

        Raises
        ------
        DecodeError
            Bad header, ``"unknown schema ID"`` when the ID is not cached, or a corrupt body.
        """
        schema_id, _body = unframe(data)
        schema = self.cache.by_id(schema_id)
        if schema is None:
            raise DecodeError(self.mode, "unknown schema ID", schema_id)
        return schema_id, self._decode_with(data, schema_id, schema)

    async def schema_for(self, schema_id: int) -> ParsedSchema:
        """Return the schema of ``schema_id`` from the cache, fetching and caching it on a miss.

        Parameters
        ----------
        schema_id : int
            Registry ID.

        Returns
        -------
        ParsedSchema
            The cached schema.

        Raises
        ------
        DecodeError
            ``"unknown schema ID ..."`` when there is no fetcher or the registry does not know
            the ID; ``"invalid schema from registry: ..."`` when its text does not parse.
        RegistryUnavailable
            When the fetcher fails for any other reason (outage).
        """
        schema = self.cache.by_id(schema_id)
        if schema is not None:
            return schema
        if self.fetcher is None:
            raise DecodeError(self.mode, "unknown schema ID (no registry configured)", schema_id)
        try:
            text = await self.fetcher.get_schema(schema_id)
        except LookupError as exc:
            raise DecodeError(self.mode, f"unknown schema ID: {_describe(exc)}", schema_id) from exc
        except Exception as exc:  # any other fetcher failure is an outage, not a bad message
            raise RegistryUnavailable(schema_id, f"{_describe(exc)}") from exc
        try:
            return self.cache.put_id(schema_id, text, mode=self.mode)
        except DecodeError as exc:
            raise DecodeError(
                self.mode, f"invalid schema from registry: {exc.reason}", schema_id
            ) from exc

    async def decode(self, data: bytes) -> tuple[int, dict]:
        """Decode a message, fetching its schema through the fetcher when not cached.

        Parameters
        ----------
        data : bytes
            The Kafka message value.

        Returns
        -------
        schema_id : int
            Registry ID from the header.
        record : dict
            The decoded alert.

        Raises
        ------
        DecodeError
            Bad header, unknown schema ID, invalid registry schema, or a corrupt body.
        RegistryUnavailable
            When the registry cannot be reached.
        """
        schema_id, _body = unframe(data)
        schema = await self.schema_for(schema_id)
        return schema_id, self._decode_with(data, schema_id, schema)

    def encode(self, schema_id: int, record: Mapping, schema: ParsedSchema | None = None) -> bytes:
        """Encode ``record`` as a Confluent wire-format message.

        Parameters
        ----------
        schema_id : int
            Registry ID to put in the header.
        record : Mapping
            The alert.
        schema : ParsedSchema or None, optional
            Writer schema; looked up in the cache by ``schema_id`` when omitted.

        Returns
        -------
        bytes
            Header plus bare Avro body.

        Raises
        ------
        EncodeError
            If the schema is unknown or the record does not match it.
        """
        if schema is None:
            schema = self.cache.by_id(schema_id)
            if schema is None:
                raise EncodeError(self.mode, "unknown schema ID", schema_id)
        return frame(schema_id, _write_body(schema, record, self.mode, schema_id))


# ------------------------------------------------------------------------ container files


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
            "inline", f"truncated or corrupt container header: {_describe(exc)}"
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
            reason = f"truncated or corrupt block {len(blocks)} header: {_describe(exc)}"
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
            except _DECOMPRESS_ERRORS as exc:
                raise DecodeError(self.mode, f"corrupt {codec} block: {_describe(exc)}") from exc

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
                end = len(raw) if index == block.count - 1 else _NO_END
                records.append(_read_body(buffer, end, schema, self.mode, None))
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
                end = len(raw) if index == block.count - 1 else _NO_END
                _read_body(buffer, end, schema, self.mode, None)
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
            reason = f"record does not match schema {schema.name}: {_describe(exc)}"
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


# ------------------------------------------------------------------------------ .avsc files

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED_TYPES = frozenset({"record", "error", "enum", "fixed"})


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _inline_references(
    node: Any, namespace: str | None, library: Mapping[str, dict], defined: set[str]
) -> Any:
    """Copy ``node`` with named-type references to ``library`` types inlined at first use."""
    if isinstance(node, list):
        return [_inline_references(item, namespace, library, defined) for item in node]
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node
        name = node if node in library else _full_name(node, namespace)
        if name in defined or name not in library:
            return node  # already defined above, or left for the parser to reject
        return _inline_references(library[name], None, library, defined)
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    out = dict(node)
    if kind in _NAMED_TYPES:
        namespace = node.get("namespace", namespace)
        full = _full_name(node["name"], namespace)
        defined.add(full)
        if "." in node["name"]:
            namespace = full.rsplit(".", 1)[0]
        if kind in {"record", "error"}:
            out["fields"] = [
                {**fld, "type": _inline_references(fld["type"], namespace, library, defined)}
                for fld in node.get("fields", [])
            ]
        return out
    if kind == "array":
        out["items"] = _inline_references(node["items"], namespace, library, defined)
    elif kind == "map":
        out["values"] = _inline_references(node["values"], namespace, library, defined)
    elif isinstance(kind, list | dict) or (isinstance(kind, str) and kind not in _PRIMITIVES):
        out["type"] = _inline_references(kind, namespace, library, defined)
    return out


def load_avsc(path: str | os.PathLike[str]) -> dict:
    """Load a top-level ``.avsc`` file as one self-contained schema.

    Named types the file refers to but does not define are taken from the other ``.avsc``
    files of the same directory, matched by the full name they define (whatever the file is
    called: ZTF's ``candidate.avsc`` defines ``ztf.alert.candidate``, lsst-alert-packet's
    ``lsst.v9_0.diaSource.avsc`` defines ``lsst.v9_0.diaSource``), and inlined at first use.

    Parameters
    ----------
    path : str or os.PathLike
        The top-level schema file.

    Returns
    -------
    dict
        The schema JSON with every reference resolved (suitable for a schema registry).

    Raises
    ------
    DecodeError
        ``mode="schemafile"`` if a file is not valid JSON.
    OSError
        If a file cannot be read.
    """
    top_path = Path(path)
    library: dict[str, dict] = {}
    for sibling in sorted(top_path.parent.glob("*.avsc")):
        if sibling == top_path:
            continue
        definition = _load_schema_json(sibling.read_text(), "schemafile")
        if isinstance(definition, dict) and definition.get("type") in _NAMED_TYPES:
            library[_full_name(definition["name"], definition.get("namespace"))] = definition
    top = _load_schema_json(top_path.read_text(), "schemafile")
    return _inline_references(top, None, library, set())


class SchemaFileCodec:
    """Bare Avro bodies whose schema lives in .avsc files on disk (lsst-alert-packet layout).

    Parameters
    ----------
    schema : ParsedSchema
        The schema bodies are read as and written with.
    writer_schema : ParsedSchema or None, optional
        Schema the bodies were actually written with, when it differs from ``schema``: bodies
        are then read with Avro schema resolution (fields missing from the writer take their
        defaults in ``schema``, extra writer fields are skipped).

    Attributes
    ----------
    schema : ParsedSchema
        As given.
    writer_schema : ParsedSchema or None
        As given.
    """

    mode = "schemafile"

    def __init__(self, schema: ParsedSchema, writer_schema: ParsedSchema | None = None):
        self.schema = schema
        self.writer_schema = None if writer_schema == schema else writer_schema

    @classmethod
    def from_avsc(
        cls, path: str | os.PathLike[str], cache: SchemaCache | None = None
    ) -> SchemaFileCodec:
        """Build a codec from a top-level ``.avsc`` file and its sibling files.

        Parameters
        ----------
        path : str or os.PathLike
            Top-level schema file; see :func:`load_avsc` for how references are resolved.
        cache : SchemaCache or None, optional
            Cache to intern the schema in.

        Returns
        -------
        SchemaFileCodec
            The codec.

        Raises
        ------
        DecodeError
            ``mode="schemafile"`` if the files do not make a valid Avro schema.
        """
        raw = load_avsc(path)
        schema = (
            parse_schema(raw, mode=cls.mode) if cache is None else cache.intern(raw, mode=cls.mode)
        )
        return cls(schema)

    @classmethod
    def lsst(cls, version: str = "9.0", cache: SchemaCache | None = None) -> SchemaFileCodec:
        """Build a codec for an LSST alert schema version shipped by ``lsst-alert-packet``.

        Parameters
        ----------
        version : str, optional
            ``"<major>.<minor>"``, e.g. ``"9.0"``.
        cache : SchemaCache or None, optional
            Cache to intern the schema in.

        Returns
        -------
        SchemaFileCodec
            The codec for ``lsst.v<major>_<minor>.alert``.

        Raises
        ------
        ValueError
            If ``version`` is not ``"<major>.<minor>"``.
        FileNotFoundError
            If the installed package has no such version.
        """
        from lsst.alert.packet.schema import get_schema_path

        major, sep, minor = version.partition(".")
        if not (sep and major.isdigit() and minor.isdigit()):
            raise ValueError(f"LSST schema version must look like '9.0', got {version!r}")
        path = Path(get_schema_path(int(major), int(minor))) / (
            f"lsst.v{int(major)}_{int(minor)}.alert.avsc"
        )
        if not path.is_file():
            raise FileNotFoundError(f"lsst-alert-packet has no schema {version}: {path}")
        return cls.from_avsc(path, cache=cache)

    def decode(self, data: bytes) -> dict:
        """Decode one bare Avro body.

        Parameters
        ----------
        data : bytes
            The body (no header).

        Returns
        -------
        dict
            The record, shaped by :attr:`schema`.

        Raises
        ------
        DecodeError
            ``mode="schemafile"``: truncated, corrupt or over-long body.
        """
        buffer = io.BytesIO(data)
        if self.writer_schema is None:
            return _read_body(buffer, len(data), self.schema, self.mode, None)
        return _read_body(buffer, len(data), self.writer_schema, self.mode, None, self.schema)

    def encode(self, record: Mapping) -> bytes:
        """Encode one record as a bare Avro body with :attr:`schema`.

        Parameters
        ----------
        record : Mapping
            The alert.

        Returns
        -------
        bytes
            The body.

        Raises
        ------
        EncodeError
            If the record does not match the schema.
        """
        return _write_body(self.schema, record, self.mode)
