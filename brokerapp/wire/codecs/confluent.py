"""The Confluent codec: Confluent-framed messages, their schemas fetched from a registry by ID.

A message is the 5-byte header of :mod:`brokerapp.wire.codecs.framing` (magic byte ``0`` and
the writer schema's registry ID) followed by one bare Avro body. The schema is looked up by ID
in a :class:`~brokerapp.wire.codecs.schemas.SchemaCache`; on a miss, :meth:`ConfluentCodec.decode`
asks an asynchronous :class:`SchemaFetcher` (a schema registry client) and caches the answer, so
the registry is asked once per schema ID. :meth:`ConfluentCodec.decode_known` is the synchronous
hot path for IDs already cached.

An ID the registry does not know is a :class:`~brokerapp.wire.codecs.errors.DecodeError` (a bad
message); a registry that cannot be reached is
:class:`~brokerapp.wire.codecs.errors.RegistryUnavailable` (an outage, to retry).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Protocol

from brokerapp.wire.codecs.body import read_body, write_body
from brokerapp.wire.codecs.errors import DecodeError, EncodeError, RegistryUnavailable, describe
from brokerapp.wire.codecs.framing import CONFLUENT_HEADER_SIZE, frame, unframe
from brokerapp.wire.codecs.schemas import ParsedSchema, SchemaCache

__all__ = ["ConfluentCodec", "SchemaFetcher"]


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
        return read_body(buffer, len(data), schema, self.mode, schema_id)

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
            raise DecodeError(self.mode, f"unknown schema ID: {describe(exc)}", schema_id) from exc
        except Exception as exc:  # any other fetcher failure is an outage, not a bad message
            raise RegistryUnavailable(schema_id, f"{describe(exc)}") from exc
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
        return frame(schema_id, write_body(schema, record, self.mode, schema_id))
