"""The wire layer: how alerts and records look as bytes.

Confluent framing, Avro object containers, schema files, the field reader that takes a few
fields from an Avro body without decoding it, message headers and the dead-letter envelope.
Library errors are wrapped in :class:`brokerapp.wire.codecs.DecodeError`. Imports only the
model layer.
"""
