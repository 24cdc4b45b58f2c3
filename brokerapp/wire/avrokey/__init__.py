"""Read a few fields of a bare Avro body without decoding it: the Kafka key of an alert.

The gateway mirrors thousands of alerts per second and keys each message by its object ID, so
that all alerts of one object land on one partition. A full decode of a ZTF alert (cutouts,
up to a few dozen previous detections) costs about a millisecond; the object ID sits among the
first bytes of the body. This package reads just those bytes, in three layers:

:mod:`~brokerapp.wire.avrokey.graph`
    The writer schema as a graph of types with named types resolved.
:mod:`~brokerapp.wire.avrokey.ops` and :mod:`~brokerapp.wire.avrokey.reader`
    :class:`KeyReader`, compiled once per schema into a flat tuple of steps that walk over the
    fields before the requested ones (one jump, one regular-expression match or one closure
    per run of fields) and read the requested ones, in one pass that stops after the last.
:mod:`~brokerapp.wire.avrokey.keys`
    :func:`object_key_reader` and :class:`KeyReaders`: the key function of an alert schema,
    from the key field paths its survey profile declares
    (:class:`~brokerapp.model.profiles.KeyPaths`).

A body that cannot be walked raises :class:`~brokerapp.wire.codecs.DecodeError`; a schema
that cannot be read along the requested paths raises :class:`KeyPathError` (a
``ValueError``) when the :class:`KeyReader` is built.
"""

from brokerapp.wire.avrokey.graph import KeyPathError
from brokerapp.wire.avrokey.keys import KeyFunction, KeyReaders, object_key_reader
from brokerapp.wire.avrokey.reader import KeyReader

__all__ = [
    "KeyFunction",
    "KeyPathError",
    "KeyReader",
    "KeyReaders",
    "object_key_reader",
]
