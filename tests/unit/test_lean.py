"""Tests of brokerapp.wire.lean: the cutouts taken out of bare Avro bodies without decoding.

Every expected value comes from fastavro: the lean body of every sample alert (ZTF, the LSST
samples, the sample alert of every lsst-alert-packet schema version) must decode, with the
alert's own writer schema, to fastavro's decode of the original with the cutout fields set to
None, and the cutouts taken out must equal fastavro's decoded cutout fields.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import fastavro
import pytest
from lsst.alert.packet.schema import get_schema_root

from brokerapp.wire.avrokey.graph import schema_graph
from brokerapp.wire.avrokey.ops import value_reader
from brokerapp.wire.codecs import (
    ConfluentCodec,
    DecodeError,
    InlineCodec,
    SchemaCache,
    frame,
    parse_schema,
)
from brokerapp.wire.lean import (
    Cutouts,
    CutoutStripper,
    CutoutStrippers,
    decode_cutouts,
    encode_cutouts,
)

DATA = Path(__file__).parents[1] / "data"
ZTF_FILES = sorted((DATA / "ztf").glob("*.avro"))
LSST_FILES = sorted((DATA / "lsst").glob("*.avro"))
LSST_VERSION_DIRS = sorted(
    (d for d in Path(str(get_schema_root())).glob("[0-9]*/[0-9]*") if d.is_dir()),
    key=lambda d: (int(d.parent.name), int(d.name)),
)
PACKAGE_SAMPLES = [d / "sample_data" / "fakeAlert.avro" for d in LSST_VERSION_DIRS]
ALL_SAMPLES = ZTF_FILES + LSST_FILES + PACKAGE_SAMPLES
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
"""The cutout field names of the ZTF and LSST schema documents."""
CACHE = SchemaCache()
INLINE = InlineCodec(CACHE)


def sample(path: Path) -> tuple[Any, bytes, dict]:
    """Writer schema, original body and fastavro's decode of a one-alert container file."""
    schema, bodies = INLINE.record_bodies(path.read_bytes())
    (body,) = bodies
    return schema, body, decode(schema.parsed, body)


def decode(parsed: Any, body: bytes) -> dict:
    buffer = io.BytesIO(body)
    record = fastavro.schemaless_reader(buffer, parsed)
    assert buffer.tell() == len(body)
    return record


def sample_id(path: Path) -> str:
    return (
        f"{path.parents[2].name}.{path.parents[1].name}"
        if "sample_data" in str(path)
        else path.name
    )


def test_samples_are_there():
    assert len(ZTF_FILES) == 18
    assert len(LSST_FILES) == 50
    assert len(PACKAGE_SAMPLES) >= 10


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=sample_id)
def test_lean_body_decodes_to_the_alert_without_cutouts(path):
    schema, body, record = sample(path)
    stripper = CutoutStripper(schema)
    lean, cutouts = stripper.strip(body)
    present = [name for name in CUTOUT_FIELDS if name in record]
    assert present, "every ZTF and LSST schema has cutout fields"
    assert sorted(stripper.fields) == sorted(present)
    expected = {**record, **dict.fromkeys(present)}
    assert decode(schema.parsed, lean) == expected
    assert cutouts == {name: record[name] for name in present}
    removed = sum(
        len(value) if isinstance(value, bytes) else len(value["stampData"])
        for value in cutouts.values()
        if value is not None
    )
    assert len(lean) <= len(body) - removed


def test_ztf_lean_bodies_are_mostly_smaller():
    sizes = [
        (len(body), len(CutoutStripper(s).strip(body)[0])) for s, body, _ in map(sample, ZTF_FILES)
    ]
    # Each ZTF cutout is a gzipped FITS stamp of several kB: over 3/4 of each alert.
    assert all(lean * 4 < full for full, lean in sizes)


def test_null_branch_last_in_ztf_3():
    schema, body, record = sample(ZTF_FILES[0])
    assert record["schemavsn"].startswith("3.")
    lean, _cutouts = CutoutStripper(schema).strip(body)
    # ZTF 3.x: each cutout is [cutout, "null"]: null is index 1, zigzag varint 2.
    assert lean.endswith(b"\x02\x02\x02")
    assert body.startswith(lean[:-3])


def test_null_branch_first_in_lsst_package_schemas():
    schema, body, record = sample(PACKAGE_SAMPLES[-1])
    lean, _cutouts = CutoutStripper(schema).strip(body)
    # lsst-alert-packet: ["null", "bytes"], the last three fields: null is index 0.
    assert CutoutStripper(schema).trailing
    assert lean.endswith(b"\x00\x00\x00")
    assert body.startswith(lean[:-3])


def test_lsst_samples_keep_the_fields_after_the_cutouts():
    schema, body, record = sample(LSST_FILES[0])
    stripper = CutoutStripper(schema)
    assert not stripper.trailing
    lean, _cutouts = stripper.strip(body)
    decoded = decode(schema.parsed, lean)
    assert decoded["brokerIngestMjd"] == record["brokerIngestMjd"]
    assert decoded["lsst_schema_version"] == record["lsst_schema_version"]


@pytest.mark.parametrize("path", [ZTF_FILES[0], LSST_FILES[0]], ids=["ztf", "lsst"])
def test_confluent_message_keeps_its_header(path):
    schema, body, record = sample(path)
    cache = SchemaCache()
    cache.put_id(7, schema)
    message = frame(7, body)
    lean, cutouts = CutoutStripper(schema).strip(message, 5)
    assert lean[:5] == message[:5]
    _schema_id, decoded = ConfluentCodec(cache=cache).decode_known(lean)
    assert decoded == {**record, **dict.fromkeys(cutouts)}


@pytest.mark.parametrize("path", [ZTF_FILES[0], LSST_FILES[0]], ids=["ztf", "lsst"])
def test_truncated_body_raises(path):
    schema, body, _record = sample(path)
    stripper = CutoutStripper(schema, mode="inline")
    for size in (0, 20, len(body) // 2, len(body) - 1):
        with pytest.raises(DecodeError, match="truncated Avro body") as caught:
            stripper.strip(body[:size])
        assert caught.value.mode == "inline"


def test_trailing_bytes_raise():
    schema, body, _record = sample(ZTF_FILES[0])
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        CutoutStripper(schema).strip(body + b"\x00")


def test_corrupt_union_index_raises():
    schema, body, _record = sample(PACKAGE_SAMPLES[-1])
    lean, _cutouts = CutoutStripper(schema).strip(body)
    with pytest.raises(DecodeError, match="corrupt Avro body: index 2 outside 0..1"):
        CutoutStripper(schema).strip(lean[:-1] + b"\x04")


def test_schema_of_no_survey_raises():
    schema = parse_schema(
        {"type": "record", "name": "x", "fields": [{"name": "a", "type": "long"}]}
    )
    with pytest.raises(DecodeError, match="no known survey"):
        CutoutStripper(schema)


def _lsst_like(cutout_type: Any) -> dict:
    return {
        "type": "record",
        "name": "alert",
        "fields": [
            {
                "name": "diaSource",
                "type": {
                    "type": "record",
                    "name": "s",
                    "fields": [{"name": "diaSourceId", "type": "long"}],
                },
            },
            {"name": "cutoutDifference", "type": cutout_type},
        ],
    }


def test_cutout_that_cannot_be_null_raises():
    with pytest.raises(DecodeError, match="cutoutDifference of alert is not a union with null"):
        CutoutStripper(parse_schema(_lsst_like("bytes")))


def test_schema_without_cutouts_gives_the_body_back():
    schema = parse_schema(
        {
            "type": "record",
            "name": "alert",
            "fields": [
                {
                    "name": "diaSource",
                    "type": {
                        "type": "record",
                        "name": "s",
                        "fields": [{"name": "diaSourceId", "type": "long"}],
                    },
                }
            ],
        }
    )
    stripper = CutoutStripper(schema)
    assert stripper.fields == ()
    assert stripper.strip(b"\x02") == (b"\x02", {})


def test_strippers_compile_each_schema_once():
    strippers = CutoutStrippers()
    schema, body, record = sample(LSST_FILES[0])
    for path in LSST_FILES[:5]:
        other, other_body, _record = sample(path)
        strippers.strip(other, other_body)
    assert strippers.compiles == 1
    bad = parse_schema({"type": "record", "name": "x", "fields": [{"name": "a", "type": "long"}]})
    for _ in range(2):
        with pytest.raises(DecodeError):
            strippers.for_schema(bad)
    assert strippers.compiles == 2


@pytest.mark.parametrize("path", [ZTF_FILES[0], LSST_FILES[0]], ids=["ztf", "lsst"])
def test_cutouts_record_round_trip(path):
    schema, body, record = sample(path)
    stripper = CutoutStripper(schema)
    _lean, values = stripper.strip(body)
    cutouts = stripper.cutouts(values, 42)
    if "candidate" in record:
        assert cutouts.survey == "ztf"
        assert cutouts.images["science"] == record["cutoutScience"]["stampData"]
        assert cutouts.images["difference"] == record["cutoutDifference"]["stampData"]
        assert cutouts.file_names["template"] == record["cutoutTemplate"]["fileName"]
    else:
        assert cutouts.survey == "lsst"
        assert cutouts.images["science"] == record["cutoutScience"]
        assert cutouts.images["template"] == record["cutoutTemplate"]
        assert cutouts.file_names == {}
    again = decode_cutouts(encode_cutouts(cutouts))
    assert again == Cutouts(cutouts.survey, 42, cutouts.images, cutouts.file_names)


def test_cutouts_record_errors():
    data = encode_cutouts(Cutouts("lsst", 1, {"science": b"abc"}, {}))
    with pytest.raises(DecodeError, match="bad cutouts record"):
        decode_cutouts(data[:-3])
    with pytest.raises(DecodeError, match="2 trailing bytes"):
        decode_cutouts(data + b"\x00\x00")


def test_value_reader_matches_fastavro_on_every_type():
    schema = {
        "type": "record",
        "name": "node",
        "fields": [
            {"name": "flag", "type": "boolean"},
            {"name": "count", "type": "int"},
            {"name": "ratio", "type": "float"},
            {"name": "mag", "type": "double"},
            {"name": "label", "type": "string"},
            {"name": "blob", "type": "bytes"},
            {"name": "band", "type": {"type": "enum", "name": "band", "symbols": ["g", "r"]}},
            {"name": "tag", "type": {"type": "fixed", "name": "tag", "size": 2}},
            {"name": "values", "type": {"type": "array", "items": "long"}},
            {"name": "names", "type": {"type": "map", "values": ["null", "string"]}},
            {"name": "child", "type": ["null", "node"]},
        ],
    }
    leaf = {
        "flag": False,
        "count": -3,
        "ratio": 0.5,
        "mag": 21.25,
        "label": "é",
        "blob": b"",
        "band": "g",
        "tag": b"zz",
        "values": [],
        "names": {},
        "child": None,
    }
    record = {
        "flag": True,
        "count": 70000,
        "ratio": 1.5,
        "mag": -2.0,
        "label": "abc",
        "blob": b"\x00\x01",
        "band": "r",
        "tag": b"ab",
        "values": [1, -2, 2**40],
        "names": {"a": None, "b": "x"},
        "child": leaf,
    }
    parsed = fastavro.parse_schema(schema)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    body = buffer.getvalue()
    value, end = value_reader(schema_graph(schema), "node")(body, 0)
    assert end == len(body)
    assert value == decode(parsed, body)
