"""Message headers: where a mirrored alert came from, and why a message was dead-lettered.

Kafka headers are an ordered list of ``(name, value)`` pairs; a name may repeat. The values
written here are bytes: numbers as ASCII decimal, text as UTF-8.

Origin headers (:func:`trace_headers`)
    Every message the gateway mirrors into the local ``alerts`` topic keeps its upstream
    headers and gains ``origin-topic``, ``origin-partition``, ``origin-offset`` and
    ``origin-timestamp`` (the upstream message timestamp, ms since the epoch), so an alert can be
    traced to the upstream record it came from, and a branch or sink can measure latency from
    upstream. Mirroring an already mirrored message replaces those headers instead of stacking
    a second set.
The dead-letter envelope (:func:`deadletter_headers`)
    A message that cannot be mirrored or processed goes to a dead-letter topic unchanged (key,
    value and its own headers), followed by ``error-reason``, ``error-mode`` (the framing of
    the failed decode, or ``unknown``), ``error-schema-id`` (only when known) and the
    ``origin-topic``, ``origin-partition`` and ``origin-offset`` of the failed message itself.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

from brokerapp.wire.codecs.errors import DecodeError

__all__ = [
    "ERROR_MODE",
    "ERROR_REASON",
    "ERROR_SCHEMA_ID",
    "ORIGIN_OFFSET",
    "ORIGIN_PARTITION",
    "ORIGIN_TIMESTAMP",
    "ORIGIN_TOPIC",
    "Headers",
    "deadletter_headers",
    "trace_headers",
]

ORIGIN_TOPIC = "origin-topic"
"""Header: upstream topic the message was read from (UTF-8)."""
ORIGIN_PARTITION = "origin-partition"
"""Header: upstream partition (ASCII decimal)."""
ORIGIN_OFFSET = "origin-offset"
"""Header: upstream offset (ASCII decimal)."""
ORIGIN_TIMESTAMP = "origin-timestamp"
"""Header: upstream message timestamp in milliseconds since the epoch (ASCII decimal)."""
ERROR_REASON = "error-reason"
"""Dead-letter header: why the message was not mirrored or processed (UTF-8)."""
ERROR_MODE = "error-mode"
"""Dead-letter header: framing of the failed decode, or ``unknown``."""
ERROR_SCHEMA_ID = "error-schema-id"
"""Dead-letter header: the message's schema ID, present only when known (ASCII decimal)."""

_ORIGIN_NAMES = frozenset({ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET, ORIGIN_TIMESTAMP})

Headers = list[tuple[str, bytes]]
"""Kafka message headers as sent: ``(name, value)`` pairs in order."""


def _decimal(value: int) -> bytes:
    """ASCII decimal of an integer (rejects floats and other non-integers)."""
    return str(operator.index(value)).encode("ascii")


def _origin(topic: str, partition: int, offset: int) -> Headers:
    return [
        (ORIGIN_TOPIC, topic.encode("utf-8")),
        (ORIGIN_PARTITION, _decimal(partition)),
        (ORIGIN_OFFSET, _decimal(offset)),
    ]


def trace_headers(
    upstream_headers: Iterable[tuple[str, bytes]] | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
) -> Headers:
    """Return the headers of a mirrored message: upstream headers plus its origin.

    Parameters
    ----------
    upstream_headers : iterable of (str, bytes) or None
        Headers of the upstream message, in order; None for none.
    topic : str
        Upstream topic.
    partition : int
        Upstream partition.
    offset : int
        Upstream offset.
    timestamp_ms : int
        Upstream message timestamp, milliseconds since the epoch.

    Returns
    -------
    list of (str, bytes)
        Every upstream header except earlier ``origin-topic``, ``origin-partition``,
        ``origin-offset`` and ``origin-timestamp`` (order kept, repeated names kept), followed
        by those four headers for this message. Re-mirroring therefore never stacks them.

    Raises
    ------
    TypeError
        If ``partition``, ``offset`` or ``timestamp_ms`` is not an integer.
    """
    kept = [(name, value) for name, value in upstream_headers or () if name not in _ORIGIN_NAMES]
    return [
        *kept,
        *_origin(topic, partition, offset),
        (ORIGIN_TIMESTAMP, _decimal(timestamp_ms)),
    ]


def deadletter_headers(
    reason: str,
    error: DecodeError | Exception,
    topic: str,
    partition: int,
    offset: int,
) -> Headers:
    """Return the headers of a message sent to the dead-letter topic.

    Parameters
    ----------
    reason : str
        Why the message was not mirrored or processed, e.g. ``str(error)``.
    error : DecodeError or Exception
        The failure; its ``mode`` and ``schema_id`` are used when it is a :class:`DecodeError`.
    topic : str
        Topic the failed message was read from.
    partition : int
        Its partition.
    offset : int
        Its offset.

    Returns
    -------
    list of (str, bytes)
        ``error-reason`` (UTF-8), ``error-mode`` (the DecodeError's mode, else ``unknown``),
        ``error-schema-id`` (only when the DecodeError names one), then ``origin-topic``,
        ``origin-partition`` and ``origin-offset``.

    Raises
    ------
    TypeError
        If ``partition`` or ``offset`` is not an integer.
    """
    decode_error = error if isinstance(error, DecodeError) else None
    mode = "unknown" if decode_error is None else decode_error.mode
    headers: Headers = [
        (ERROR_REASON, reason.encode("utf-8")),
        (ERROR_MODE, mode.encode("utf-8")),
    ]
    if decode_error is not None and decode_error.schema_id is not None:
        headers.append((ERROR_SCHEMA_ID, _decimal(decode_error.schema_id)))
    headers.extend(_origin(topic, partition, offset))
    return headers
