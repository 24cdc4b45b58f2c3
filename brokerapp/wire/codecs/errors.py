"""Errors of the codecs, and what the libraries underneath raise.

Every failure to decode, whatever library raised it (``EOFError``, ``ValueError``,
``struct.error``, ``zlib.error``, fastavro's ``SchemaParseException`` ...), is raised as
:class:`DecodeError` naming the framing mode, the schema ID when known and the reason, chained
to the original exception; a record that cannot be written is an :class:`EncodeError`. The only
other error a decode can raise is :class:`RegistryUnavailable`, when the schema registry cannot
be reached: that is an outage to retry, not a bad message to dead-letter.

The tuples :data:`AVRO_ERRORS`, :data:`SCHEMA_ERRORS` and :data:`DECOMPRESS_ERRORS` list what
fastavro, ``json`` and the block decompressors raise on bad input, so that the codecs catch
exactly those and let programming errors through; :func:`describe` quotes such an error in a
reason, shortened.
"""

from __future__ import annotations

import struct
import zlib

from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException

__all__ = [
    "AVRO_ERRORS",
    "DECOMPRESS_ERRORS",
    "MAX_LIBRARY_MESSAGE",
    "SCHEMA_ERRORS",
    "DecodeError",
    "EncodeError",
    "RegistryUnavailable",
    "describe",
]

MAX_LIBRARY_MESSAGE = 300
"""Longest library error text quoted in a :class:`DecodeError` reason."""

AVRO_ERRORS: tuple[type[BaseException], ...] = (
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

SCHEMA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # includes json.JSONDecodeError and UnicodeDecodeError
    TypeError,
    KeyError,
    AttributeError,
    SchemaParseException,
)
"""What ``json.loads`` and fastavro raise on schema text that is not a valid Avro schema."""

DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (zlib.error, OSError, EOFError, ValueError)
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


def describe(exc: BaseException) -> str:
    """Name and message of a library exception, shortened (fastavro quotes whole schemas).

    Parameters
    ----------
    exc : BaseException
        The library's exception.

    Returns
    -------
    str
        ``"<type>: <message>"``, at most :data:`MAX_LIBRARY_MESSAGE` characters (an ellipsis
        ends a shortened one).
    """
    message = f"{type(exc).__name__}: {exc}"
    if len(message) > MAX_LIBRARY_MESSAGE:
        message = message[: MAX_LIBRARY_MESSAGE - 1] + "\u2026"
    return message
