"""Mutated messages through every decoder: a clear DecodeError or a record, never a crash.

The fuzz part of the fault suite (issue 7, scenario d), bounded so it runs in seconds: real
sample alerts, in each framing, truncated, bit-flipped, with bytes inserted or overwritten
and with wrong magic bytes. Whatever a decoder does with such input, the only exception it
may raise is our ``DecodeError``, which the branches turn into a dead letter.
"""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokerapp.wire.avrokey import KeyReaders
from brokerapp.wire.codecs import (
    ConfluentCodec,
    DecodeError,
    InlineCodec,
    SchemaCache,
    frame,
    parse_schema,
)

DATA = Path(__file__).parents[1] / "data"
FILES = [sorted(DATA.glob("ztf/*.avro"))[0], sorted(DATA.glob("lsst/*.avro"))[0]]


def _sample(path):
    raw = path.read_bytes()
    reader = fastavro.reader(io.BytesIO(raw))
    schema = parse_schema(reader.writer_schema)
    record = next(reader)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema.parsed, record)
    return raw, schema, body.getvalue()


SAMPLES = [_sample(path) for path in FILES]
SCHEMA_ID = 7


@st.composite
def mutated(draw, original: bytes):
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


BOUNDED = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _confluent_codec(schema):
    cache = SchemaCache()
    cache.put_id(SCHEMA_ID, schema)
    return ConfluentCodec(None, cache)


@pytest.mark.parametrize("index", [0, 1], ids=["ztf", "lsst"])
@BOUNDED
@given(data=st.data())
def test_mutated_confluent_messages_decode_or_raise_decode_error(index, data):
    _raw, schema, body = SAMPLES[index]
    codec = _confluent_codec(schema)
    message = data.draw(mutated(frame(SCHEMA_ID, body)))
    try:
        codec.decode_known(message)
    except DecodeError:
        pass


@pytest.mark.parametrize("index", [0, 1], ids=["ztf", "lsst"])
@BOUNDED
@given(data=st.data())
def test_mutated_containers_decode_or_raise_decode_error(index, data):
    raw, _schema, _body = SAMPLES[index]
    message = data.draw(mutated(raw))
    codec = InlineCodec()
    try:
        codec.decode(message)
    except DecodeError:
        pass
    try:
        codec.record_bodies(message)
    except DecodeError:
        pass


@pytest.mark.parametrize("index", [0, 1], ids=["ztf", "lsst"])
@BOUNDED
@given(data=st.data())
def test_mutated_bodies_give_a_key_or_decode_error(index, data):
    _raw, schema, body = SAMPLES[index]
    key_of = KeyReaders().for_schema(schema)
    try:
        key = key_of(data.draw(mutated(body)))
    except DecodeError:
        return
    assert isinstance(key, bytes)


def test_unknown_schema_id_and_wrong_magic_byte_are_decode_errors():
    _raw, schema, body = SAMPLES[1]
    codec = _confluent_codec(schema)
    with pytest.raises(DecodeError):
        codec.decode_known(frame(SCHEMA_ID + 1, body))
    with pytest.raises(DecodeError):
        codec.decode_known(b"\x01" + frame(SCHEMA_ID, body)[1:])
