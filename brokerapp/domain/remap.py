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

Every mirrored message keeps its upstream headers and gains ``origin-topic``,
``origin-partition``, ``origin-offset`` and ``origin-timestamp`` (:func:`trace_headers`), so an
alert can be traced to the upstream record it came from. Mirroring an already mirrored message
replaces those headers instead of stacking a second set. Messages that cannot be mirrored go to
a dead-letter topic with :func:`deadletter_headers` describing why.

Header values are bytes: numbers as ASCII decimal, text as UTF-8.
"""

from __future__ import annotations

import bisect
import math
import operator
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from brokerapp.wire.codecs import (
    CONFLUENT_HEADER_SIZE,
    MAX_SCHEMA_ID,
    DecodeError,
    InlineCodec,
    ParsedSchema,
    frame,
    unframe,
)

__all__ = [
    "LatencyWindow",
    "alerts_topic_config",
    "backoff_delay",
    "combined_pattern",
    "ERROR_MODE",
    "ERROR_REASON",
    "ERROR_SCHEMA_ID",
    "ORIGIN_OFFSET",
    "ORIGIN_PARTITION",
    "ORIGIN_TIMESTAMP",
    "ORIGIN_TOPIC",
    "SchemaIdMap",
    "deadletter_headers",
    "reframe_container",
    "rewrite_schema_id",
    "trace_headers",
    "upstream_schema_id",
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
"""Dead-letter header: why the message was not mirrored (UTF-8)."""
ERROR_MODE = "error-mode"
"""Dead-letter header: framing of the failed decode, or ``unknown``."""
ERROR_SCHEMA_ID = "error-schema-id"
"""Dead-letter header: upstream schema ID, present only when known (ASCII decimal)."""

_ORIGIN_NAMES = frozenset({ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET, ORIGIN_TIMESTAMP})

Headers = list[tuple[str, bytes]]


def _decimal(value: int) -> bytes:
    """ASCII decimal of an integer (rejects floats and other non-integers)."""
    return str(operator.index(value)).encode("ascii")


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
        Why the message was not mirrored, e.g. ``str(error)``.
    error : DecodeError or Exception
        The failure; its ``mode`` and ``schema_id`` are used when it is a :class:`DecodeError`.
    topic : str
        Upstream topic.
    partition : int
        Upstream partition.
    offset : int
        Upstream offset.

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
    is_decode = isinstance(error, DecodeError)
    mode = error.mode if is_decode else "unknown"
    headers: Headers = [
        (ERROR_REASON, reason.encode("utf-8")),
        (ERROR_MODE, mode.encode("utf-8")),
    ]
    if is_decode and error.schema_id is not None:
        headers.append((ERROR_SCHEMA_ID, _decimal(error.schema_id)))
    headers.extend(_origin(topic, partition, offset))
    return headers


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


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Parameters
    ----------
    attempt : int
        Retry number, from 1.
    initial : float
        Wait before the first retry.
    maximum : float
        Longest wait.

    Returns
    -------
    float
        ``min(maximum, initial * 2 ** (attempt - 1))``.
    """
    if attempt < 1:
        raise ValueError(f"retry numbers start at 1, not {attempt}")
    exponent = min(attempt - 1, 64)
    return min(maximum, initial * 2.0**exponent)


def alerts_topic_config(retention_ms: int, max_message_bytes: int) -> dict[str, str]:
    """Topic configuration of the local ``alerts`` buffer.

    The buffer keeps messages for ``retention_ms`` and deletes older segments. Its timestamps
    are the broker's append times (``LogAppendTime``): retention and replay by time then count
    from arrival in the buffer, and the gateway reads the latency it adds from its delivery
    reports. The upstream timestamp travels in the ``origin-timestamp`` header.

    Parameters
    ----------
    retention_ms : int
        ``retention.ms`` (-1 keeps everything).
    max_message_bytes : int
        Largest message the topic accepts.

    Returns
    -------
    dict of str to str
        Kafka topic configuration.
    """
    return {
        "retention.ms": str(retention_ms),
        "cleanup.policy": "delete",
        "message.timestamp.type": "LogAppendTime",
        "max.message.bytes": str(max_message_bytes),
    }


_LATENCY_BINS_PER_DECADE = 50
_LATENCY_MIN_MS = 0.01


def _bin_of(latency_ms: float) -> int:
    if latency_ms <= _LATENCY_MIN_MS:
        return 0
    return 1 + int(math.log10(latency_ms / _LATENCY_MIN_MS) * _LATENCY_BINS_PER_DECADE)


def _bin_upper(index: int) -> float:
    return _LATENCY_MIN_MS * 10.0 ** (index / _LATENCY_BINS_PER_DECADE)


@dataclass
class _Second:
    second: int
    count: int = 0
    maximum: float = 0.0
    bins: dict[int, int] = field(default_factory=dict)


class LatencyWindow:
    """Counts and latencies of the last ``window`` seconds, in one-second buckets.

    Each second keeps its message count, largest latency and a log-spaced histogram of
    latencies (50 bins per decade, so a percentile is exact to about 5 %); memory does not grow
    with the message rate. Times are passed in by the caller (seconds, any monotonic or wall
    clock), which keeps the class free of clocks and testable.

    Parameters
    ----------
    window : int
        Seconds of history kept and summarised.
    """

    def __init__(self, window: int = 60):
        if window < 1:
            raise ValueError("window must be at least one second")
        self.window = window
        self._seconds: deque[_Second] = deque()

    def _bucket(self, now: float) -> _Second:
        second = int(now)
        if not self._seconds or self._seconds[-1].second < second:
            self._seconds.append(_Second(second))
        self._expire(now)
        return self._seconds[-1]

    def _expire(self, now: float) -> None:
        oldest = int(now) - self.window + 1
        while self._seconds and self._seconds[0].second < oldest:
            self._seconds.popleft()

    def add(self, now: float, latencies_ms: Iterable[float]) -> None:
        """Record messages that arrived at ``now`` with their latencies.

        Parameters
        ----------
        now : float
            Current time in seconds.
        latencies_ms : iterable of float
            One latency per message, in milliseconds (negative values, from clock skew
            between hosts, count as 0).
        """
        bucket = self._bucket(now)
        bins = bucket.bins
        for latency in latencies_ms:
            latency = max(latency, 0.0)
            bucket.count += 1
            bucket.maximum = max(bucket.maximum, latency)
            index = _bin_of(latency)
            bins[index] = bins.get(index, 0) + 1

    def summary(self, now: float) -> dict[str, float | int | None]:
        """Summarise the last ``window`` seconds before ``now``.

        Parameters
        ----------
        now : float
            Current time in seconds.

        Returns
        -------
        dict
            ``count`` (messages), ``rate`` (messages per second over the window, or over the
            time since the first message when that is shorter), ``p50_ms``, ``p99_ms`` and
            ``max_ms`` (None when no message arrived in the window). Percentiles are the upper
            edge of their histogram bin, never above the true maximum.
        """
        self._expire(now)
        count = sum(b.count for b in self._seconds)
        result: dict[str, float | int | None] = {
            "count": count,
            "rate": 0.0,
            "p50_ms": None,
            "p99_ms": None,
            "max_ms": None,
        }
        if not count:
            return result
        span = min(self.window, max(1.0, now - self._seconds[0].second))
        maximum = max(b.maximum for b in self._seconds)
        merged: dict[int, int] = {}
        for bucket in self._seconds:
            for index, n in bucket.bins.items():
                merged[index] = merged.get(index, 0) + n
        indices = sorted(merged)
        cumulative = []
        total = 0
        for index in indices:
            total += merged[index]
            cumulative.append(total)
        for name, quantile in (("p50_ms", 0.5), ("p99_ms", 0.99)):
            rank = max(1, math.ceil(quantile * count))
            index = indices[bisect.bisect_left(cumulative, rank)]
            result[name] = min(_bin_upper(index), maximum)
        result["rate"] = count / span
        result["max_ms"] = maximum
        return result
