"""Tests of brokerapp.domain.remap against real ZTF and LSST alerts.

Expected values come from ``struct`` and plain fastavro (``reader``, ``schemaless_reader``,
``schemaless_writer``), never from the code under test.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import fastavro
import pytest

from brokerapp.domain.remap import (
    SchemaIdMap,
    reframe_container,
    rewrite_schema_id,
    upstream_schema_id,
)
from brokerapp.wire.codecs import DecodeError, InlineCodec

DATA = Path(__file__).parents[1] / "data"
ZTF_FILES = sorted((DATA / "ztf").glob("*.avro"))
LSST_FILES = sorted((DATA / "lsst").glob("*.avro"))


def read_container(path: Path) -> tuple[dict, list[dict]]:
    with path.open("rb") as handle:
        reader = fastavro.reader(handle)
        return reader.writer_schema, list(reader)


def header_schema(path: Path) -> dict:
    """The writer schema exactly as the container header states it."""
    with path.open("rb") as handle:
        return json.loads(fastavro.reader(handle).metadata["avro.schema"])


def lsst_message(path: Path, schema_id: int) -> tuple[bytes, bytes, dict, dict]:
    """A Confluent-framed LSST alert: (message, body, writer schema, record)."""
    schema, records = read_container(path)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, records[0])
    body = buffer.getvalue()
    return struct.pack(">bI", 0, schema_id) + body, body, schema, records[0]


def plain_decode(body: bytes, schema: dict) -> dict:
    buffer = io.BytesIO(body)
    record = fastavro.schemaless_reader(buffer, schema)
    assert buffer.tell() == len(body)
    return record


@pytest.mark.parametrize("path", LSST_FILES[:3], ids=lambda p: p.stem)
def test_rewrite_schema_id_swaps_id_and_keeps_body(path):
    message, body, schema, record = lsst_message(path, 17)
    out = rewrite_schema_id(message, 90_210)
    assert struct.unpack(">bI", out[:5]) == (0, 90_210)
    assert out[5:] == body
    assert len(out) == len(message)
    assert plain_decode(out[5:], schema) == record


def test_rewrite_schema_id_does_not_decode_body():
    # A body that is not Avro at all is still copied byte for byte.
    message = struct.pack(">bI", 0, 3) + b"\xff\xfe not avro"
    assert rewrite_schema_id(message, 2**32 - 1) == b"\x00\xff\xff\xff\xff\xff\xfe not avro"
    assert rewrite_schema_id(struct.pack(">bI", 0, 3), 4) == b"\x00\x00\x00\x00\x04"


def test_rewrite_schema_id_rejects_out_of_range_local_id():
    message, *_ = lsst_message(LSST_FILES[0], 1)
    with pytest.raises(ValueError):
        rewrite_schema_id(message, 2**32)
    with pytest.raises(ValueError):
        rewrite_schema_id(message, -1)


def test_upstream_schema_id_reads_big_endian_id():
    message, *_ = lsst_message(LSST_FILES[0], 0x01020304)
    assert upstream_schema_id(message) == 16909060
    assert upstream_schema_id(b"\x00\xff\xff\xff\xff") == 4294967295


BAD_FRAMES = {
    "empty": b"",
    "short": b"\x00\x00\x00\x01",
    "wrong-magic": b"\x01\x00\x00\x00\x07avro",
    "container": b"Obj\x01rest-of-container",
}


@pytest.mark.parametrize("value", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_bad_frames_raise_decode_error(value):
    with pytest.raises(DecodeError) as upstream:
        upstream_schema_id(value)
    assert upstream.value.mode == "confluent"
    with pytest.raises(DecodeError) as rewrite:
        rewrite_schema_id(value, 5)
    assert rewrite.value.mode == "confluent"


@pytest.mark.parametrize("path", ZTF_FILES[:3] + LSST_FILES[:1], ids=lambda p: p.stem)
def test_reframe_container_gives_bodies_plain_fastavro_decodes(path):
    writer_schema, expected = read_container(path)
    schema, bodies = reframe_container(path.read_bytes(), InlineCodec())
    assert len(bodies) == len(expected) == 1
    assert schema.raw == header_schema(path)
    assert plain_decode(bodies[0], writer_schema) == expected[0]
    # The caller frames the body with the local ID; that is a valid Confluent message.
    message = struct.pack(">bI", 0, 42) + bodies[0]
    assert upstream_schema_id(message) == 42
    assert plain_decode(rewrite_schema_id(message, 43)[5:], writer_schema) == expected[0]


def test_reframe_container_with_several_records_and_deflate():
    writer_schema, expected = read_container(ZTF_FILES[0])
    _, second = read_container(ZTF_FILES[1])
    records = expected + second
    buffer = io.BytesIO()
    fastavro.writer(buffer, writer_schema, records, codec="deflate")
    container = buffer.getvalue()
    # The records as plain fastavro reads them back from this container (the second alert
    # comes from a file with another schema version, so it is shaped by the first's schema).
    written = list(fastavro.reader(io.BytesIO(container)))
    assert len(written) == 2
    schema, bodies = reframe_container(container, InlineCodec())
    assert schema.name == "ztf.alert"
    assert [plain_decode(body, writer_schema) for body in bodies] == written
    assert written[0] == expected[0]


def test_reframe_container_rejects_non_container():
    message, *_ = lsst_message(LSST_FILES[0], 1)
    with pytest.raises(DecodeError) as excinfo:
        reframe_container(message, InlineCodec())
    assert excinfo.value.mode == "inline"
    truncated = ZTF_FILES[0].read_bytes()[:200]
    with pytest.raises(DecodeError):
        reframe_container(truncated, InlineCodec())


def test_schema_id_map():
    ids = SchemaIdMap()
    assert len(ids) == 0
    assert ids.get(5) is None
    ids.put(5, 1)
    ids.put(700, 2)
    assert ids.get(5) == 1
    assert ids.get(700) == 2
    assert len(ids) == 2
    assert 5 in ids and 6 not in ids
    assert ids.items() == [(5, 1), (700, 2)]
    assert ids.as_dict() == {5: 1, 700: 2}
    ids.put(5, 9)
    assert ids.get(5) == 9
    assert len(ids) == 2


def test_schema_id_map_snapshots_and_initial_values():
    ids = SchemaIdMap({1: 10, 2: 20})
    snapshot = ids.as_dict()
    snapshot[3] = 30
    items = ids.items()
    ids.put(4, 40)
    assert ids.get(3) is None
    assert items == [(1, 10), (2, 20)]
    assert SchemaIdMap(ids.as_dict()).as_dict() == {1: 10, 2: 20, 4: 40}


@pytest.mark.parametrize("pair", [(-1, 1), (1, -1), (2**32, 1), (1, 2**32)])
def test_schema_id_map_rejects_out_of_range_ids(pair):
    ids = SchemaIdMap()
    with pytest.raises(ValueError):
        ids.put(*pair)
    assert len(ids) == 0


def test_schema_id_map_rejects_non_integer_ids():
    with pytest.raises(TypeError):
        SchemaIdMap().put("5", 1)


# --- patterns, topic configuration -------------------------------------------------


def test_combined_pattern_matches_any_daily_topic_and_nothing_else():
    import re

    from brokerapp.domain.remap import combined_pattern
    from brokerapp.model.settings import load_settings

    pattern = re.compile(combined_pattern(load_settings().gateway_topic_patterns))
    assert pattern.match("ztf_20260101_programid1")
    assert pattern.match("lsst-alerts-20260101")
    assert not pattern.fullmatch("ztf_2026010_programid1")
    assert not pattern.fullmatch("ztf_20260101_programid2")
    assert not pattern.fullmatch("alerts")
    assert not pattern.fullmatch("x-lsst-alerts-1")


def test_combined_pattern_refuses_nothing_and_bad_expressions():
    from brokerapp.domain.remap import combined_pattern

    with pytest.raises(ValueError, match="no upstream topic pattern"):
        combined_pattern([])
    with pytest.raises(ValueError, match="bad upstream topic pattern"):
        combined_pattern(["ztf_(unclosed"])


def test_alerts_topic_keeps_seven_days_by_append_time():
    from brokerapp.runtime.topic_config import alerts_topic_config

    config = alerts_topic_config(7 * 24 * 3600 * 1000, 10485760)
    assert config == {
        "retention.ms": "604800000",
        "cleanup.policy": "delete",
        "message.timestamp.type": "LogAppendTime",
        "max.message.bytes": "10485760",
    }
