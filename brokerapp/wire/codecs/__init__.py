r"""Alert (de)serialisation: the one place that turns Kafka message bytes into alert dicts.

Alerts are Apache Avro records. Three framings of those records reach the broker, each in its
own module:

``confluent`` (:mod:`~brokerapp.wire.codecs.framing`, :mod:`~brokerapp.wire.codecs.confluent`)
    Magic byte ``0``, the writer schema's registry ID as 4 big-endian bytes, one bare Avro
    body. Rubin publishes alerts this way, and every branch reads the local ``alerts`` topic
    in this format; schemas are fetched from a registry by ID and cached.
``inline`` (:mod:`~brokerapp.wire.codecs.container`)
    One Avro Object Container File per message (schema in the header), the way ZTF
    publishes.
``schemafile`` (:mod:`~brokerapp.wire.codecs.schemafile`)
    Bare Avro bodies whose schema is agreed out of band in ``.avsc`` files on disk.

Decoding never parses a schema per message: :mod:`~brokerapp.wire.codecs.schemas` keeps each
distinct schema parsed once (:class:`ParsedSchema`, :class:`SchemaCache`). Every failure to
decode is a :class:`DecodeError`, whatever library raised it; the only other error a decode
can raise is :class:`RegistryUnavailable`, an outage to retry rather than a bad message to
dead-letter (:mod:`~brokerapp.wire.codecs.errors`).
"""

from brokerapp.wire.codecs.confluent import ConfluentCodec, SchemaFetcher
from brokerapp.wire.codecs.container import InlineCodec, read_container_file
from brokerapp.wire.codecs.errors import DecodeError, EncodeError, RegistryUnavailable
from brokerapp.wire.codecs.framing import (
    AVRO_CONTAINER_MAGIC,
    CONFLUENT_HEADER_SIZE,
    CONFLUENT_MAGIC,
    MAX_SCHEMA_ID,
    detect_mode,
    frame,
    unframe,
)
from brokerapp.wire.codecs.schemafile import SchemaFileCodec, load_avsc
from brokerapp.wire.codecs.schemas import ParsedSchema, SchemaCache, parse_schema

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
