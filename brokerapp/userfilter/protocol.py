"""The user-filter line protocol, version 1: length-prefixed JSON frames over a pipe.

A frame is a 4-byte big-endian unsigned length ``N`` followed by ``N`` bytes of UTF-8 JSON
holding one JSON object with a ``"type"`` member. The runner writes frames to the filter's
standard input and reads the filter's answers from its standard output; standard error is the
filter's log. The full specification is ``docs/userfilter.md``; in short:

runner -> filter
    ``{"type": "start", "protocol": 1, "filter": NAME, "params": {...}, "streams": [...]}``
    once, then ``{"type": "alert", "id": N, ...}`` per alert, carrying either ``"alert"`` (the
    decoded alert as JSON) or ``"avro"`` (base64 of the bare Avro body), ``"schema_id"`` and,
    the first time that ID is used in the session, ``"schema"``.
filter -> runner
    ``{"type": "hello", "protocol": 1, "input": "json" | "avro"}`` once, after ``start``,
    then exactly one answer per alert, in order: ``{"type": "result", "id": N, "action":
    "drop" | "pass" | "emit", ...}`` or ``{"type": "error", "id": N, "reason": TEXT}``.

This module is pure stdlib: the SDK imports it inside the sandbox, and the runner uses the
same validation (:func:`check_answer`) on what comes back from any language.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

__all__ = [
    "ACTIONS",
    "INPUTS",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "FrameError",
    "check_answer",
    "check_hello",
    "decode_frame_body",
    "encode_frame",
    "read_frame",
    "write_frame",
]

PROTOCOL_VERSION = 1
"""Version of the protocol this module speaks (``"protocol"`` in ``start`` and ``hello``)."""

MAX_FRAME = 16 * 1024 * 1024
"""Largest frame body accepted, in bytes (a bigger length prefix is a protocol error)."""

ACTIONS = ("drop", "pass", "emit")
"""The answers a filter may give to an alert."""

INPUTS = ("json", "avro")
"""The alert encodings a filter may ask for in its ``hello``."""

_LENGTH = struct.Struct(">I")


class FrameError(ValueError):
    """A frame or message that breaks the protocol (bad length, not JSON, wrong fields)."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """Return one frame: the 4-byte big-endian length, then the UTF-8 JSON of ``message``.

    Parameters
    ----------
    message : dict
        A JSON-serialisable object with a ``"type"``.

    Returns
    -------
    bytes
        The frame.
    """
    body = json.dumps(message, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()
    return _LENGTH.pack(len(body)) + body


def decode_frame_body(body: bytes) -> dict[str, Any]:
    """Parse a frame body into a message.

    Parameters
    ----------
    body : bytes
        The ``N`` bytes after a length prefix.

    Returns
    -------
    dict
        The message.

    Raises
    ------
    FrameError
        If the body is not UTF-8 JSON of an object with a string ``"type"``.
    """
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"frame is not UTF-8 JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise FrameError("frame is not a JSON object with a string 'type'")
    return message


def read_frame(stream: BinaryIO, max_frame: int = MAX_FRAME) -> dict[str, Any] | None:
    """Read one frame from a blocking binary stream (the SDK's side of the pipe).

    Parameters
    ----------
    stream : BinaryIO
        Standard input, binary.
    max_frame : int
        Largest body accepted.

    Returns
    -------
    dict or None
        The message, or None at a clean end of stream (before any byte of a frame).

    Raises
    ------
    FrameError
        On a truncated frame, an oversized length or a bad body.
    """
    head = _read_exactly(stream, _LENGTH.size)
    if head is None:
        return None
    (length,) = _LENGTH.unpack(head)
    if length > max_frame:
        raise FrameError(f"frame of {length} bytes exceeds the {max_frame}-byte limit")
    body = _read_exactly(stream, length) if length else b""
    if body is None:
        raise FrameError("stream ended inside a frame")
    return decode_frame_body(body)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            if remaining == size:
                return None
            raise FrameError("stream ended inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def write_frame(stream: BinaryIO, message: dict[str, Any]) -> None:
    """Write one frame and flush.

    Parameters
    ----------
    stream : BinaryIO
        Standard output, binary.
    message : dict
        The message.
    """
    stream.write(encode_frame(message))
    stream.flush()


def check_hello(message: dict[str, Any]) -> str:
    """Validate a filter's ``hello`` and return the input encoding it asks for.

    Parameters
    ----------
    message : dict
        The first message from the filter.

    Returns
    -------
    str
        ``"json"`` or ``"avro"``.

    Raises
    ------
    FrameError
        If it is not a ``hello`` of protocol version 1 with a known ``input``.
    """
    if message.get("type") != "hello":
        raise FrameError(f"expected a 'hello' first, got {str(message.get('type'))[:40]!r}")
    if message.get("protocol") != PROTOCOL_VERSION:
        raise FrameError(
            f"filter speaks protocol {str(message.get('protocol'))[:20]!r}, "
            f"runner speaks {PROTOCOL_VERSION}"
        )
    encoding = message.get("input", "json")
    if encoding not in INPUTS:
        raise FrameError(f"unknown input encoding {str(encoding)[:40]!r}")
    return str(encoding)


def check_answer(message: dict[str, Any], expected_id: int, streams: frozenset[str]) -> dict:
    """Validate one answer and return it normalised.

    Parameters
    ----------
    message : dict
        A message from the filter.
    expected_id : int
        The ``id`` of the oldest alert not yet answered (answers come in order).
    streams : frozenset of str
        The output stream names the filter was granted.

    Returns
    -------
    dict
        ``{"action": "drop", "reason": str | None}``, ``{"action": "pass", "annotations":
        dict}``, ``{"action": "emit", "records": [(stream, value), ...]}`` or ``{"action":
        "error", "reason": str}``.

    Raises
    ------
    FrameError
        On a wrong type, an out-of-order ``id``, an unknown action or stream, or fields of
        the wrong JSON type.
    """
    kind = message.get("type")
    if kind not in ("result", "error"):
        raise FrameError(f"expected a 'result' or 'error', got {str(kind)[:40]!r}")
    if message.get("id") != expected_id:
        raise FrameError(f"answer for id {str(message.get('id'))[:20]}, expected {expected_id}")
    if kind == "error":
        return {"action": "error", "reason": str(message.get("reason", ""))[:500]}
    action = message.get("action")
    if action == "drop":
        reason = message.get("reason")
        return {"action": "drop", "reason": None if reason is None else str(reason)[:500]}
    if action == "pass":
        annotations = message.get("annotations", {})
        if not isinstance(annotations, dict):
            raise FrameError("'annotations' must be a JSON object")
        return {"action": "pass", "annotations": annotations}
    if action == "emit":
        records = message.get("records")
        if not isinstance(records, list) or not records:
            raise FrameError("'emit' needs a non-empty 'records' list")
        out = []
        for record in records:
            if not isinstance(record, dict) or "value" not in record:
                raise FrameError("each record is an object with 'stream' and 'value'")
            stream = record.get("stream")
            if stream not in streams:
                raise FrameError(f"stream {str(stream)[:60]!r} was not granted")
            out.append((stream, record["value"]))
        return {"action": "emit", "records": out}
    raise FrameError(f"unknown action {str(action)[:40]!r}; expected one of {ACTIONS}")
