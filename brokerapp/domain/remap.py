"""Pure domain functions of the gateway agent (Stage 0: upstream mirror into ``alerts``).

The gateway consumes the upstream daily alert topics and republishes every alert into the local
``alerts`` topic in Confluent wire format, with schema IDs of the *local* schema registry. This
module holds the decisions the agent makes per message, free of Kafka, HTTP and asyncio, so
they can be tested on plain bytes; the agent does the I/O around them.

Two upstream framings are mirrored (see :mod:`brokerapp.wire.codecs` for the formats):

``confluent``
    The upstream schema ID (:func:`upstream_schema_id`) is looked up in a
    :class:`SchemaIdMap`; on a miss the agent fetches the schema from the upstream registry,
    registers it locally and records the pair. :func:`rewrite_schema_id` then swaps the 4-byte
    ID in the header. The Avro body is copied byte for byte and never decoded: a mirror must
    not alter alerts, and decoding every body would cost far more than the copy.
``inline``
    An Avro container per message (ZTF). :func:`reframe_container` returns the writer schema
    from the container header and the bare Avro body of each record; the agent registers the
    schema locally (getting ``local_id``) and sends ``frame(local_id, body)`` per record.

The upstream topics are subscribed to by one regular expression (:func:`combined_pattern`).
The headers a mirrored or dead-lettered message carries are the wire layer's
(:mod:`brokerapp.wire.headers`).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping

from brokerapp.wire.codecs import (
    CONFLUENT_HEADER_SIZE,
    MAX_SCHEMA_ID,
    InlineCodec,
    ParsedSchema,
    frame,
    unframe,
)

__all__ = [
    "SchemaIdMap",
    "combined_pattern",
    "reframe_container",
    "rewrite_schema_id",
    "upstream_schema_id",
]


def upstream_schema_id(value: bytes) -> int:
    """Return the schema ID of a Confluent-framed message.

    Parameters
    ----------
    value : bytes
        The Kafka message value.

    Returns
    -------
    int
        The big-endian unsigned 32-bit ID in bytes 1-4.

    Raises
    ------
    DecodeError
        ``mode="confluent"`` if the message is shorter than the header or the magic byte is
        not 0.
    """
    schema_id, _body = unframe(value)
    return schema_id


def rewrite_schema_id(value: bytes, local_id: int) -> bytes:
    r"""Replace the schema ID of a Confluent-framed message, leaving the Avro body untouched.

    The body is not decoded: bytes after the 5-byte header are copied as they are.

    Parameters
    ----------
    value : bytes
        The upstream message value.
    local_id : int
        The local registry ID of the same schema, 0 to 2**32 - 1.

    Returns
    -------
    bytes
        ``b"\x00" + local_id (4 bytes, big-endian) + value[5:]``.

    Raises
    ------
    DecodeError
        ``mode="confluent"`` if ``value`` is not a valid frame (see :func:`upstream_schema_id`).
    ValueError
        If ``local_id`` does not fit the 4-byte header field.
    """
    unframe(value)
    return frame(local_id, bytes(value[CONFLUENT_HEADER_SIZE:]))


def reframe_container(value: bytes, codec: InlineCodec) -> tuple[ParsedSchema, list[bytes]]:
    """Split an inline (Avro container) message into its writer schema and record bodies.

    The caller registers ``schema.text`` in the local registry and sends
    ``frame(local_id, body)`` for each body. Single-record blocks (ZTF) are not decoded, so
    their bodies are not validated against the schema (see :meth:`InlineCodec.record_bodies`).

    Parameters
    ----------
    value : bytes
        The upstream message value (a whole Avro container file).
    codec : InlineCodec
        Codec whose schema cache interns the header schema (parsed once per distinct schema).

    Returns
    -------
    schema : ParsedSchema
        The writer schema from the container header.
    bodies : list of bytes
        One bare Avro body per record, in file order.

    Raises
    ------
    DecodeError
        ``mode="inline"`` for a container that is malformed, truncated, uses an unsupported
        block codec or carries an invalid schema.
    """
    return codec.record_bodies(value)


def _check_id(kind: str, schema_id: int) -> int:
    schema_id = operator.index(schema_id)
    if not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise ValueError(f"{kind} schema ID {schema_id} outside 0..{MAX_SCHEMA_ID}")
    return schema_id


class SchemaIdMap:
    """Upstream schema ID to local schema ID.

    A plain in-memory mapping; the gateway agent mirrors it into a Faust table so that a
    restarted worker need not ask the registries again. A later :meth:`put` for the same
    upstream ID replaces the earlier local ID (e.g. after the local registry was rebuilt).

    Parameters
    ----------
    initial : Mapping of int to int or None, optional
        Pairs to start with (e.g. read back from the table).

    Raises
    ------
    TypeError
        If an ID is not an integer.
    ValueError
        If an ID is outside 0 to 2**32 - 1.
    """

    def __init__(self, initial: Mapping[int, int] | None = None):
        self._ids: dict[int, int] = {}
        for upstream_id, local_id in (initial or {}).items():
            self.put(upstream_id, local_id)

    def get(self, upstream_id: int) -> int | None:
        """Return the local ID for ``upstream_id``, or None when not yet known.

        Parameters
        ----------
        upstream_id : int
            Schema ID in the upstream registry.

        Returns
        -------
        int or None
            Schema ID in the local registry.
        """
        return self._ids.get(upstream_id)

    def put(self, upstream_id: int, local_id: int) -> None:
        """Record that ``upstream_id`` is ``local_id`` locally.

        Parameters
        ----------
        upstream_id : int
            Schema ID in the upstream registry.
        local_id : int
            Schema ID in the local registry.

        Raises
        ------
        TypeError
            If an ID is not an integer.
        ValueError
            If an ID is outside 0 to 2**32 - 1.
        """
        upstream_id = _check_id("upstream", upstream_id)
        self._ids[upstream_id] = _check_id("local", local_id)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, upstream_id: object) -> bool:
        return upstream_id in self._ids

    def items(self) -> list[tuple[int, int]]:
        """Return the ``(upstream_id, local_id)`` pairs, in insertion order.

        Returns
        -------
        list of (int, int)
            A snapshot; later changes to the map do not affect it.
        """
        return list(self._ids.items())

    def as_dict(self) -> dict[int, int]:
        """Return a copy of the mapping.

        Returns
        -------
        dict of int to int
            Upstream ID to local ID.
        """
        return dict(self._ids)


def combined_pattern(patterns: Iterable[str]) -> str:
    """Return one regular expression matching a topic when any of ``patterns`` matches it.

    Parameters
    ----------
    patterns : iterable of str
        Regular expressions (Python syntax, matched from the start of the topic name as
        Kafka clients do).

    Returns
    -------
    str
        ``(?:p1)|(?:p2)...``.

    Raises
    ------
    ValueError
        If no pattern is given or one does not compile.
    """
    patterns = list(patterns)
    if not patterns:
        raise ValueError("no upstream topic pattern given")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad upstream topic pattern {pattern!r}: {exc}") from exc
    return "|".join(f"(?:{pattern})" for pattern in patterns)
