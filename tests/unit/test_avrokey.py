"""Tests of brokerapp.wire.avrokey: key fields read from bare Avro bodies without decoding them.

Every expected value comes from a full fastavro decode: of the sample alerts (ZTF, LSST, the
sample alert of every lsst-alert-packet schema version), of random alerts of every LSST schema
version, and of random records of small hand-written schemas that put the fields to read after
fields of every Avro type. Those records are encoded by a small encoder of this module that
splits arrays and maps into several blocks, some with negative counts and byte sizes (which
fastavro reads but never writes), so the skipping of every block form is compared with fastavro.
"""

from __future__ import annotations

import io
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import pytest
from lsst.alert.packet.schema import get_schema_root

from brokerapp.model.profiles import (
    LSST_PROFILE,
    PROFILES,
    ZTF_PROFILE,
    is_missing,
    profile_for,
)
from brokerapp.wire.avrokey import KeyPathError, KeyReader, KeyReaders, object_key_reader
from brokerapp.wire.codecs import DecodeError, InlineCodec, SchemaCache, SchemaFileCodec, frame

DATA = Path(__file__).parents[1] / "data"
ZTF_FILES = sorted((DATA / "ztf").glob("*.avro"))
LSST_FILES = sorted((DATA / "lsst").glob("*.avro"))
LSST_VERSION_DIRS = sorted(
    (d for d in Path(str(get_schema_root())).glob("[0-9]*/[0-9]*") if d.is_dir()),
    key=lambda d: (int(d.parent.name), int(d.name)),
)
LSST_VERSIONS = [f"{d.parent.name}.{d.name}" for d in LSST_VERSION_DIRS]
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
CACHE = SchemaCache()
INLINE = InlineCodec(CACHE)


def sample(path: Path) -> tuple[Any, bytes, dict]:
    """Writer schema, original body bytes and decoded record of a one-alert container."""
    data = path.read_bytes()
    schema, bodies = INLINE.record_bodies(data)
    (body,) = bodies
    return schema, body, decode(schema.parsed, body)


def decode(parsed: Any, body: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(body), parsed)


def lsst_missing(value: Any) -> bool:
    return is_missing(value) or value == 0


def _ztf_missing(value: Any) -> bool:
    """ZTF's "no value": absent, null, the string "null" or -999 (ZTF schema docs)."""
    return value is None or value == "null" or value == -999 or value == -999.0


def _lsst_no_object(value: Any) -> bool:
    """LSST's "no object": null, 0 or -999 (an orphan or solar-system diaSource)."""
    return value is None or value == 0 or value == -999


def expected_key(record: dict) -> bytes:
    """The key the module documents, written from the schema documents' field names.

    ZTF: ``objectId``, else ``candid`` (top level, else ``candidate.candid``). LSST:
    ``diaObject.diaObjectId``, else ``diaSource.diaObjectId``, else ``diaSource.ssObjectId``,
    else the first of ``diaSource.diaSourceId``, ``diaSourceId``, ``alertId``.
    """
    if "candidate" in record:
        if not _ztf_missing(record.get("objectId")):
            return str(record["objectId"]).encode()
        candid = record.get("candid")
        return str(candid if candid is not None else record["candidate"]["candid"]).encode()
    source = record["diaSource"] or {}
    for holder in (record.get("diaObject"), source):
        if holder and not _lsst_no_object(holder.get("diaObjectId")):
            return str(holder["diaObjectId"]).encode()
    ss_object_id = source.get("ssObjectId")
    if not lsst_missing(ss_object_id):
        return str(ss_object_id).encode()
    for value in (source.get("diaSourceId"), record.get("diaSourceId"), record.get("alertId")):
        if value is not None:
            return str(value).encode()
    raise AssertionError("record without any ID")


def truncation_point(key, body: bytes) -> int:
    """Length of the shortest prefix of ``body`` that gives a key."""
    for length in range(len(body) + 1):
        try:
            key(body[:length])
        except DecodeError:
            continue
        return length
    raise AssertionError("no prefix gives a key")


# ---------------------------------------------------------------------------- sample alerts


@pytest.mark.parametrize("path", ZTF_FILES + LSST_FILES, ids=lambda p: p.stem[:24])
def test_sample_alert_keys(path):
    schema, body, record = sample(path)
    expected = expected_key(record)
    readers = KeyReaders()
    assert readers.key(schema, body) == expected
    assert KeyReaders(exact=True).key(schema, body) == expected
    object_id = profile_for(record).object_id(record)
    if object_id is not None:
        assert expected == str(object_id).encode()
    # Whole Confluent messages (start=5), as bytes, bytearray and memoryview.
    message = frame(7, body)
    key = readers.for_schema(schema)
    for buffer in (message, bytearray(message), memoryview(message)):
        assert key(buffer, 5) == expected
    assert key(memoryview(message)[5:]) == expected


def test_sample_keys_by_survey():
    ztf = [sample(path) for path in ZTF_FILES]
    assert all(key_of(s, b) == r["objectId"].encode() for s, b, r in ztf)
    lsst = [sample(path) for path in LSST_FILES]
    solar = [(s, b, r) for s, b, r in lsst if LSST_PROFILE.object_id(r) is None]
    assert len(solar) == 2  # two solar-system detections: keyed by their ssObjectId
    for schema, body, record in solar:
        assert record["diaSource"]["diaObjectId"] == 0
        assert key_of(schema, body) == str(record["diaSource"]["ssObjectId"]).encode()


def key_of(schema, body: bytes) -> bytes:
    return object_key_reader(schema)(body)


@pytest.mark.parametrize("path", [ZTF_FILES[0], LSST_FILES[0]], ids=["ztf", "lsst"])
def test_sample_truncated_bodies_raise(path):
    schema, body, record = sample(path)
    key = object_key_reader(schema)
    length = truncation_point(key, body)
    assert 0 < length < 200 < len(body)  # the key sits near the start
    for short in range(length):
        with pytest.raises(DecodeError, match="truncated"):
            key(body[:short])
    assert key(body[:length]) == expected_key(record)


def test_solar_system_sample_truncated_bodies_raise():
    # The fallback pass (diaObject, then ssObjectId) needs more of the body than the first.
    samples = [sample(path) for path in LSST_FILES]
    schema, body, record = next(s for s in samples if LSST_PROFILE.object_id(s[2]) is None)
    key = object_key_reader(schema)
    length = truncation_point(key, body)
    for short in range(length):
        with pytest.raises(DecodeError, match="truncated"):
            key(body[:short])
    assert key(body[:length]) == str(record["diaSource"]["ssObjectId"]).encode()
    first = truncation_point(KeyReader(schema, [("diaSource", "diaObjectId")]).read, body)
    assert first < length < len(body)


def test_ztf_key_ends_with_object_id():
    schema, body, record = sample(ZTF_FILES[0])
    # schemavsn, publisher, objectId: three short strings (one-byte zigzag length 2 * n).
    prefix = b"".join(
        bytes([2 * len(record[name])]) + record[name].encode()
        for name in ("schemavsn", "publisher", "objectId")
    )
    assert body.startswith(prefix)
    assert truncation_point(object_key_reader(schema), body) == len(prefix)


@pytest.mark.parametrize("version_dir", LSST_VERSION_DIRS, ids=LSST_VERSIONS)
def test_lsst_package_sample_alert(version_dir):
    schema, body, record = sample(version_dir / "sample_data" / "fakeAlert.avro")
    # The package's samples leave diaSource.diaObjectId null and carry a diaObject.
    assert record["diaSource"]["diaObjectId"] is None
    expected = str(record["diaObject"]["diaObjectId"]).encode()
    assert expected_key(record) == expected
    assert object_key_reader(schema)(body) == expected
    assert object_key_reader(schema, exact=True)(body) == expected


# --------------------------------------------------------------- random data of any schema


@dataclass(frozen=True)
class Branch:
    """A union value with the branch it is written as."""

    index: int
    value: Any


def float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


class Schema:
    """Navigation in fastavro's parsed form: named references looked up by full name."""

    def __init__(self, parsed: Any):
        self.parsed = parsed
        self.named = parsed.get("__named_schemas", {}) if isinstance(parsed, dict) else {}

    def resolve(self, node: Any) -> Any:
        while True:
            if isinstance(node, str):
                if node in PRIMITIVES:
                    return node
                node = self.named[node]
            elif isinstance(node, dict) and isinstance(node["type"], str | list | dict):
                kind = node["type"]
                if isinstance(kind, str) and kind in PRIMITIVES:
                    return kind  # logical types and annotated primitives
                if kind in ("record", "error", "enum", "fixed", "array", "map"):
                    return node
                node = kind
            else:
                return node

    def kind(self, node: Any) -> str:
        node = self.resolve(node)
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            return "union"
        return "record" if node["type"] == "error" else node["type"]


class Generator:
    """Random values of any schema; union values tagged with their branch (:class:`Branch`)."""

    def __init__(self, schema: Schema, rng: random.Random, max_items: int = 3):
        self.schema = schema
        self.rng = rng
        self.max_items = max_items

    def long(self, bits: int) -> int:
        rng = self.rng
        top = 2 ** (bits - 1)
        return rng.choice(
            [
                rng.randint(-64, 63),
                rng.randint(-(2**20), 2**20),
                rng.randint(-top, top - 1),
                rng.choice([-top, top - 1, 0, -1]),
            ]
        )

    def text(self) -> str:
        rng = self.rng
        size = rng.choice([0, 1, rng.randint(2, 12), rng.randint(60, 200)])
        alphabet = "abcXYZ019_-é€😀"
        return "".join(rng.choice(alphabet) for _ in range(size))

    def raw(self) -> bytes:
        rng = self.rng
        return rng.randbytes(rng.choice([0, 1, rng.randint(2, 12), rng.randint(60, 300)]))

    def value(self, node: Any, depth: int = 0) -> Any:
        rng = self.rng
        schema = self.schema
        if isinstance(node, dict) and "logicalType" in node:
            return rng.randint(0, 10**6)  # dates and times fastavro can represent
        kind = schema.kind(node)
        node = schema.resolve(node)
        deep = depth > 4
        if kind == "null":
            return None
        if kind == "boolean":
            return rng.random() < 0.5
        if kind in ("int", "long"):
            return self.long(32 if kind == "int" else 64)
        if kind == "float":
            return float32(rng.uniform(-1e6, 1e6))
        if kind == "double":
            return rng.uniform(-1e12, 1e12)
        if kind == "string":
            return self.text()
        if kind == "bytes":
            return self.raw()
        if kind == "fixed":
            return rng.randbytes(node["size"])
        if kind == "enum":
            return rng.choice(node["symbols"])
        if kind == "array":
            count = 0 if deep else rng.randint(0, self.max_items)
            return [self.value(node["items"], depth + 1) for _ in range(count)]
        if kind == "map":
            count = 0 if deep else rng.randint(0, self.max_items)
            return {
                self.text() + str(i): self.value(node["values"], depth + 1) for i in range(count)
            }
        if kind == "union":
            choices = list(range(len(node)))
            if deep and "null" in node:
                choices = [node.index("null")]
            index = rng.choice(choices)
            return Branch(index, self.value(node[index], depth + 1))
        return {f["name"]: self.value(f["type"], depth + 1) for f in node["fields"]}


def plain(datum: Any) -> Any:
    """The value fastavro decodes for a generated datum (union tags removed)."""
    if isinstance(datum, Branch):
        return plain(datum.value)
    if isinstance(datum, dict):
        return {key: plain(value) for key, value in datum.items()}
    if isinstance(datum, list):
        return [plain(item) for item in datum]
    return datum


def varint(value: int) -> bytes:
    zigzag = value << 1 if value >= 0 else ((-value) << 1) - 1
    out = bytearray()
    while zigzag >= 0x80:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


class Encoder:
    """Avro binary encoder writing arrays and maps as random blocks, some with byte sizes."""

    def __init__(self, schema: Schema, rng: random.Random):
        self.schema = schema
        self.rng = rng

    def blocks(self, items: list[bytes]) -> bytes:
        out = bytearray()
        rest = list(items)
        while rest:
            count = self.rng.randint(1, len(rest))
            chunk, rest = rest[:count], rest[count:]
            payload = b"".join(chunk)
            if self.rng.random() < 0.5:
                out += varint(-count) + varint(len(payload)) + payload
            else:
                out += varint(count) + payload
        return bytes(out + varint(0))

    def encode(self, node: Any, datum: Any) -> bytes:
        schema = self.schema
        kind = schema.kind(node)
        node = schema.resolve(node)
        if kind == "null":
            return b""
        if kind == "boolean":
            return b"\x01" if datum else b"\x00"
        if kind in ("int", "long"):
            return varint(datum)
        if kind == "float":
            return struct.pack("<f", datum)
        if kind == "double":
            return struct.pack("<d", datum)
        if kind == "string":
            datum = datum.encode()
        if kind in ("bytes", "string"):
            return varint(len(datum)) + datum
        if kind == "fixed":
            return datum
        if kind == "enum":
            return varint(node["symbols"].index(datum))
        if kind == "array":
            return self.blocks([self.encode(node["items"], item) for item in datum])
        if kind == "map":
            return self.blocks(
                [
                    self.encode("string", key) + self.encode(node["values"], value)
                    for key, value in datum.items()
                ]
            )
        if kind == "union":
            return varint(datum.index) + self.encode(node[datum.index], datum.value)
        return b"".join(self.encode(f["type"], datum[f["name"]]) for f in node["fields"])


def at(record: Any, path: tuple[str, ...]) -> Any:
    """Value at ``path`` of a decoded record; None below a null (or non-record) branch."""
    for name in path:
        if not isinstance(record, dict):
            return None
        record = record.get(name)
    return record


def without_logical_types(node: Any) -> Any:
    """The schema with logical types removed: fastavro then decodes the underlying values."""
    if isinstance(node, list):
        return [without_logical_types(item) for item in node]
    if isinstance(node, dict):
        return {k: without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    return node


def check_random_records(raw: dict, paths: list[tuple[str, ...]], seed: int, count: int = 25):
    """Encode random records with random block layouts; compare reads with fastavro."""
    parsed = fastavro.parse_schema(raw)
    plain_parsed = fastavro.parse_schema(without_logical_types(raw))
    schema = Schema(parsed)
    rng = random.Random(seed)
    reader = KeyReader(parsed, paths)
    raw_reader = KeyReader(raw, paths)  # the unparsed JSON gives the same reader
    for _ in range(count):
        datum = Generator(schema, rng).value(parsed)
        body = Encoder(schema, rng).encode(parsed, datum)
        record = decode(plain_parsed, body)
        assert record == plain(datum)  # the encoder is right, fastavro reads its blocks
        expected = [at(record, path) for path in paths]
        assert reader.read(body) == expected
        assert raw_reader.read(body) == expected
        assert reader.read(b"\xff\x00" + body, start=2) == expected
        assert reader.read(memoryview(body)) == expected
    return reader


# ------------------------------------------------------- every Avro type before the target

TARGETS: dict[str, Any] = {
    "long": "long",
    "int": "int",
    "string": "string",
    "null|long": ["null", "long"],
    "long|null": ["long", "null"],
    "null|string": ["null", "string"],
    "boolean": "boolean",
    "float": "float",
    "double": "double",
    "bytes": "bytes",
    "enum": {"type": "enum", "name": "TargetEnum", "symbols": ["A", "B", "C"]},
    "fixed": {"type": "fixed", "name": "TargetFixed", "size": 3},
    "multi-union": ["null", "string", "long", "double", "boolean", "bytes"],
}

REGULAR_RECORD = {
    "type": "record",
    "name": "Regular",
    "fields": [
        {"name": "a", "type": "long"},
        {"name": "b", "type": ["null", "double"]},
        {"name": "c", "type": "boolean"},
        {"name": "d", "type": ["float", "null", "int"]},
        {"name": "e", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "f", "type": {"type": "enum", "name": "Colour", "symbols": ["R", "G", "B"]}},
        {"name": "g", "type": "null"},
        {
            "name": "h",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Pair",
                    "fields": [
                        {"name": "x", "type": "int"},
                        {"name": "y", "type": ["null", "long"]},
                    ],
                },
            ],
        },
    ],
}

PREFIXES: dict[str, list[dict]] = {
    "null": [{"name": "p", "type": "null"}],
    "boolean": [{"name": "p", "type": "boolean"}],
    "int": [{"name": "p", "type": "int"}],
    "long": [{"name": "p", "type": "long"}],
    "logical long": [{"name": "p", "type": {"type": "long", "logicalType": "timestamp-micros"}}],
    "float": [{"name": "p", "type": "float"}],
    "double": [{"name": "p", "type": "double"}],
    "bytes": [{"name": "p", "type": "bytes"}],
    "string": [{"name": "p", "type": "string"}],
    "fixed": [{"name": "p", "type": {"type": "fixed", "name": "F", "size": 5}}],
    "enum": [{"name": "p", "type": {"type": "enum", "name": "E", "symbols": list("abcdefgh")}}],
    "array of long": [{"name": "p", "type": {"type": "array", "items": "long"}}],
    "array of string": [{"name": "p", "type": {"type": "array", "items": "string"}}],
    "array of double": [{"name": "p", "type": {"type": "array", "items": "double"}}],
    "array of null": [{"name": "p", "type": {"type": "array", "items": "null"}}],
    "array of arrays": [
        {"name": "p", "type": {"type": "array", "items": {"type": "array", "items": "int"}}}
    ],
    "map of double": [{"name": "p", "type": {"type": "map", "values": "double"}}],
    "map of string": [{"name": "p", "type": {"type": "map", "values": "string"}}],
    "map of arrays": [
        {"name": "p", "type": {"type": "map", "values": {"type": "array", "items": "string"}}}
    ],
    "union": [{"name": "p", "type": ["null", "string", "long", "double", "bytes", "boolean"]}],
    "union of constants": [{"name": "p", "type": ["null", "double", "float", "boolean"]}],
    "union with a record": [
        {
            "name": "p",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "WithText",
                    "fields": [{"name": "s", "type": "string"}, {"name": "n", "type": "long"}],
                },
                "string",
            ],
        }
    ],
    "array of constant-size records": [
        {
            "name": "p",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "XY",
                    "fields": [{"name": "x", "type": "double"}, {"name": "y", "type": "float"}],
                },
            },
        }
    ],
    "regular record": [{"name": "p", "type": REGULAR_RECORD}],
    "array of regular records": [
        {"name": "p", "type": {"type": "array", "items": REGULAR_RECORD}},
    ],
    "map of regular records": [{"name": "p", "type": {"type": "map", "values": REGULAR_RECORD}}],
    "mixed record": [
        {
            "name": "p",
            "type": {
                "type": "record",
                "name": "Mixed",
                "fields": [
                    {"name": "s", "type": "string"},
                    {"name": "n", "type": ["null", "long"]},
                    {"name": "m", "type": {"type": "map", "values": ["null", "bytes"]}},
                    {"name": "r", "type": REGULAR_RECORD},
                    {"name": "t", "type": ["null", "string"]},
                ],
            },
        },
    ],
    "named reference": [
        {"name": "p", "type": REGULAR_RECORD},
        {"name": "q", "type": "Regular"},  # short name in the enclosing namespace
        {"name": "r", "type": {"type": "array", "items": "test.Regular"}},  # full name
        {"name": "s", "type": ["null", "Colour", "Four"]},
    ],
    "recursive list": [
        {
            "name": "p",
            "type": {
                "type": "record",
                "name": "Node",
                "fields": [
                    {"name": "value", "type": "string"},
                    {"name": "next", "type": ["null", "Node"]},
                ],
            },
        },
    ],
    "recursive tree": [
        {
            "name": "p",
            "type": {
                "type": "record",
                "name": "Tree",
                "fields": [
                    {"name": "label", "type": "long"},
                    {"name": "children", "type": {"type": "array", "items": "Tree"}},
                ],
            },
        },
    ],
    "other namespace": [
        {
            "name": "p",
            "type": {
                "type": "record",
                "name": "Far",
                "namespace": "other.space",
                "fields": [
                    {"name": "x", "type": {"type": "fixed", "name": "Two", "size": 2}},
                    {"name": "y", "type": "Two"},
                ],
            },
        },
        {"name": "q", "type": "other.space.Two"},
    ],
    "empty record": [{"name": "p", "type": {"type": "record", "name": "Empty", "fields": []}}],
    "everything": [
        {"name": f"e{i}", "type": t}
        for i, t in enumerate(
            [
                "null",
                "boolean",
                "int",
                "long",
                "float",
                "double",
                "bytes",
                "string",
                {"type": "array", "items": ["null", "string"]},
                {"type": "map", "values": {"type": "map", "values": "long"}},
            ]
        )
    ],
}


def target_schema(prefix: list[dict], target: Any) -> dict:
    after = {"name": "after", "type": {"type": "array", "items": "string"}}
    return {
        "type": "record",
        "name": "Top",
        "namespace": "test",
        "fields": [*prefix, {"name": "target", "type": target}, after],
    }


@pytest.mark.parametrize("prefix", PREFIXES, ids=str)
def test_target_after_every_type(prefix):
    fields = PREFIXES[prefix]
    readable = [(f["name"],) for f in fields if is_readable(f["type"])]
    for seed, target in enumerate(TARGETS.values()):
        raw = target_schema(fields, target)
        check_random_records(raw, [("target",)], seed=seed)
        if readable:  # the prefix fields and the target in one pass
            check_random_records(raw, [*readable, ("target",)], seed=100 + seed, count=5)


def is_readable(node: Any) -> bool:
    """Whether a field type is read as fastavro decodes it (no logical types)."""
    for kind in node if isinstance(node, list) else [node]:
        if isinstance(kind, dict):
            if "logicalType" in kind or kind["type"] not in ("enum", "fixed", *PRIMITIVES):
                return False
        elif kind not in PRIMITIVES:
            return False
    return True


@pytest.mark.parametrize("prefix", PREFIXES, ids=str)
def test_nested_target_in_union_of_records(prefix):
    # Top: prefix fields, then outer: [null, Outer{prefix type again, inner: Inner{..., id}}]
    inner = {
        "type": "record",
        "name": "Inner",
        "fields": [{"name": "skip", "type": ["null", "string"]}, {"name": "id", "type": "long"}],
    }
    outer = {
        "type": "record",
        "name": "Outer",
        "fields": [
            {"name": "first", "type": ["null", "long"]},
            {"name": "inner", "type": inner},
            {"name": "name", "type": ["null", "string"]},
        ],
    }
    alternative = {
        "type": "record",
        "name": "Alternative",
        "fields": [{"name": "name", "type": "string"}, {"name": "other", "type": "double"}],
    }
    raw = {
        "type": "record",
        "name": "Top",
        "namespace": "test",
        "fields": [
            *PREFIXES[prefix],
            {"name": "outer", "type": ["null", outer, "string", alternative]},
            {"name": "last", "type": "long"},
        ],
    }
    paths = [("outer", "inner", "id"), ("outer", "name"), ("outer", "first"), ("last",)]
    check_random_records(raw, paths, seed=7)
    check_random_records(raw, [("outer", "inner", "id")], seed=8)
    check_random_records(raw, [("outer", "name")], seed=9)  # in two of the four branches


def test_paths_read_in_one_pass_in_any_order():
    raw = target_schema(PREFIXES["everything"], ["null", "long"])
    reader = check_random_records(raw, [("e7",), ("target",), ("e3",), ("e0",)], seed=3)
    assert reader.steps == 4 + 3  # four reads, three runs of skips
    assert reader.paths == (("e7",), ("target",), ("e3",), ("e0",))


def test_regular_runs_are_single_steps():
    raw = target_schema(PREFIXES["regular record"] + PREFIXES["long"][:0], "long")
    reader = KeyReader(raw, [("target",)])
    assert reader.steps == 2  # one regex match over the whole regular record, one read
    assert "target" in repr(reader)


# ------------------------------------------------------------------------ hand-made bodies

BLOCKS = {
    "type": "record",
    "name": "Blocks",
    "fields": [
        {"name": "numbers", "type": {"type": "array", "items": "long"}},
        {"name": "words", "type": {"type": "map", "values": "string"}},
        {"name": "pairs", "type": {"type": "array", "items": "double"}},
        {"name": "id", "type": ["null", "long"]},
    ],
}


def test_negative_block_counts_are_jumped_over_by_size():
    numbers = varint(-3) + varint(3) + varint(1) + varint(2) + varint(3)
    numbers += varint(2) + varint(4) + varint(5) + varint(0)
    words = varint(-1) + varint(4) + varint(1) + b"k" + varint(1) + b"v" + varint(0)
    pairs = varint(-2) + varint(16) + struct.pack("<2d", 1.5, 2.5) + varint(0)
    body = numbers + words + pairs + varint(1) + varint(123456789012)
    parsed = fastavro.parse_schema(BLOCKS)
    assert decode(parsed, body) == {
        "numbers": [1, 2, 3, 4, 5],
        "words": {"k": "v"},
        "pairs": [1.5, 2.5],
        "id": 123456789012,
    }
    assert KeyReader(parsed, [("id",)]).read(body) == [123456789012]


def test_byte_size_is_trusted_over_block_content():
    # A negative-count block is skipped by its byte size alone, whatever its items look like.
    junk = b"\xff\xff\xff"  # not valid longs, never looked at
    body = varint(-5) + varint(len(junk)) + junk + varint(0)
    body += varint(0) + varint(0) + varint(1) + varint(-7)
    assert KeyReader(BLOCKS, [("id",)]).read(body) == [-7]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (varint(-1) + varint(-4) + varint(0), "negative block size"),
        (varint(0) + varint(1) + varint(-2) + b"k", "negative length"),
        (varint(0) + varint(0) + varint(0) + varint(2) + varint(1), "index 2 outside 0..1"),
        (varint(0) + varint(0) + varint(0) + varint(-1), "index -1 outside 0..1"),
        (varint(0) + varint(0) + varint(0) + varint(1) + b"\xff" * 11, "longer than 10"),
    ],
    ids=["block size", "string length", "union index", "negative union index", "varint"],
)
def test_corrupt_bodies_raise(body, reason):
    reader = KeyReader(BLOCKS, [("id",)], mode="schemafile")
    with pytest.raises(DecodeError, match=reason) as caught:
        reader.read(body)
    assert caught.value.mode == "schemafile"
    assert "corrupt Avro body" in caught.value.reason
    assert caught.value.schema_id is None


def test_corrupt_union_inside_a_regular_run_names_the_fault():
    raw = target_schema(PREFIXES["regular record"], "long")
    parsed = fastavro.parse_schema(raw)
    rng = random.Random(1)
    datum = Generator(Schema(parsed), rng).value(parsed)
    body = Encoder(Schema(parsed), rng).encode(parsed, datum)
    reader = KeyReader(parsed, [("target",)])
    assert reader.read(body) == [plain(datum)["target"]]
    a_size = len(varint(datum["p"]["a"]))
    corrupt = body[:a_size] + b"\x08" + body[a_size + 1 :]  # union "b" has 2 branches, not 5
    with pytest.raises(DecodeError, match="index 4 outside 0..1"):
        reader.read(corrupt)


def test_overlong_tenth_varint_byte_wraps_to_64_bits_like_fastavro():
    raw = target_schema([], "long")
    body = b"\xfe" * 9 + b"\x7f" + varint(0)  # bits above the 64th set in the 10th byte
    assert KeyReader(raw, [("target",)]).read(body) == [
        decode(fastavro.parse_schema(raw), body)["target"]
    ]


def test_invalid_utf8_in_a_read_string():
    reader = KeyReader(target_schema([], "string"), [("target",)])
    with pytest.raises(DecodeError, match="invalid UTF-8"):
        reader.read(varint(2) + b"\xc3\x28" + varint(0))
    assert reader.read(varint(2) + "é".encode() + varint(0)) == ["é"]


@pytest.mark.parametrize("prefix", ["string", "array of regular records", "everything"])
def test_truncated_random_bodies_raise(prefix):
    raw = target_schema(PREFIXES[prefix], ["null", "string"])
    parsed = fastavro.parse_schema(raw)
    schema = Schema(parsed)
    rng = random.Random(5)
    reader = KeyReader(parsed, [("target",)])
    for _ in range(10):
        datum = Generator(schema, rng).value(parsed)
        encoder = Encoder(schema, rng)
        head = b"".join(encoder.encode(f["type"], datum[f["name"]]) for f in parsed["fields"][:-1])
        body = head + encoder.encode(parsed["fields"][-1]["type"], datum["after"])
        assert decode(parsed, body) == plain(datum)
        for length in range(len(head)):
            with pytest.raises(DecodeError, match="truncated"):
                reader.read(body[:length])
        assert reader.read(head) == [plain(datum)["target"]]


# ------------------------------------------------------------------------- schema errors


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ([("nope",)], "has no field nope"),
        ([("target", "x")], "has no field target.x"),
        ([("p",)], "cannot read a record"),
        ([("after",)], "cannot read a array"),
        ([("target",), ("target",)], "repeats or nests"),
        ([("p", "a"), ("p",)], "repeats or nests"),
        ([()], "non-empty tuple"),
        ([], "no field paths"),
    ],
)
def test_bad_paths_fail_at_compile_time(paths, message):
    raw = target_schema(PREFIXES["regular record"], "long")
    with pytest.raises(KeyPathError, match=message):
        KeyReader(raw, paths)


def test_path_through_a_non_record_fails():
    raw = target_schema(PREFIXES["string"], "long")
    with pytest.raises(KeyPathError, match="is a string, not a record"):
        KeyReader(fastavro.parse_schema(raw), [("p", "x"), ("target",)])


def test_unknown_type_name_fails():
    raw = target_schema([{"name": "p", "type": "Missing"}], "long")
    with pytest.raises(KeyPathError, match="unknown Avro type name 'Missing'"):
        KeyReader(raw, [("target",)])


def test_schema_text_is_accepted():
    raw = target_schema(PREFIXES["named reference"], "long")
    parsed = fastavro.parse_schema(raw)
    text = CACHE.intern(raw).text
    rng = random.Random(2)
    datum = Generator(Schema(parsed), rng).value(parsed)
    body = Encoder(Schema(parsed), rng).encode(parsed, datum)
    assert KeyReader(text, [("target",)]).read(body) == [datum["target"]]
    assert KeyReader(CACHE.intern(raw), [("target",)]).read(body) == [datum["target"]]


def test_neither_survey_is_a_decode_error():
    schema = CACHE.intern(target_schema([], "long"))
    with pytest.raises(DecodeError, match="neither a ZTF alert .* nor an LSST alert"):
        object_key_reader(schema)
    readers = KeyReaders(mode="inline")
    for _ in range(3):
        with pytest.raises(DecodeError, match="neither") as caught:
            readers.for_schema(schema)
        assert caught.value.mode == "inline"
    assert readers.compiles == 1
    assert len(readers) == 1


@pytest.mark.parametrize("profile", PROFILES, ids=lambda profile: profile.survey)
def test_survey_fields_are_what_the_profile_matches(profile):
    """The key reader tells a schema's survey by the fields profile_for tells a record's by."""
    fields = profile.key_paths.survey_fields
    assert profile_for(dict.fromkeys(fields, 1)) is profile
    for name in fields:
        assert not profile.matches(dict.fromkeys(set(fields) - {name}, 1))


def test_readers_compile_each_schema_once():
    readers = KeyReaders()
    samples = [sample(path) for path in ZTF_FILES + LSST_FILES]
    for schema, body, record in samples:
        assert readers.key(schema, body) == expected_key(record)
    distinct = {schema.fingerprint for schema, _body, _record in samples}
    assert readers.compiles == len(readers) == len(distinct)
    schema = samples[0][0]
    assert readers.for_schema(schema) is readers.for_schema(schema)


# ----------------------------------------------------------------- LSST and ZTF semantics


def lsst_codec(version: str) -> SchemaFileCodec:
    return SchemaFileCodec.lsst(version, cache=CACHE)


def nullable(node: Any) -> bool:
    return isinstance(node, list) and "null" in node


def random_lsst_alert(codec: SchemaFileCodec, rng: random.Random, consistent: bool) -> dict:
    """A random alert of the schema with IDs drawn from null, 0, -999 and real values.

    ``consistent``: a diaObject carries the diaSource's diaObjectId when that is set, as in
    Rubin alerts (the diaObject sent is the diaSource's object).
    """
    parsed = codec.schema.parsed
    record = plain(Generator(Schema(parsed), rng, max_items=2).value(parsed))
    source = record["diaSource"]
    source_type = {f["name"]: f["type"] for f in codec.schema.raw["fields"]}["diaSource"]
    types = {f["name"]: f["type"] for f in Schema(parsed).resolve(source_type)["fields"]}
    big = rng.randint(1, 2**62)
    choices = {"id": big, "zero": 0, "missing": -999, "null": None}
    for name in ("diaObjectId", "ssObjectId"):
        if name in source:
            kinds = list(choices) if nullable(types[name]) else ["id", "zero", "missing"]
            source[name] = choices[rng.choice(kinds)] if rng.random() < 0.8 else big + 1
    if record.get("diaObject") is not None:
        dia_object = record["diaObject"]
        dia_object["diaObjectId"] = rng.choice([big + 2, 0, big])
        if consistent and not lsst_missing(source.get("diaObjectId")):
            dia_object["diaObjectId"] = source["diaObjectId"]
    return record


@pytest.mark.parametrize("version", LSST_VERSIONS)
def test_random_lsst_alerts_of_every_version(version):
    codec = lsst_codec(version)
    rng = random.Random(version)
    default, exact = KeyReaders(), KeyReaders(exact=True)
    seen = set()
    for i in range(40):
        record = random_lsst_alert(codec, rng, consistent=i % 2 == 0)
        body = codec.encode(record)
        record = codec.decode(body)  # what a full decode gives, e.g. floats as float32
        expected = expected_key(record)
        assert exact.key(codec.schema, body) == expected
        source_id = record["diaSource"]["diaObjectId"]
        dia_object_id = (record["diaObject"] or {}).get("diaObjectId")
        agree = lsst_missing(source_id) or lsst_missing(dia_object_id) or source_id == dia_object_id
        if agree:
            assert default.key(codec.schema, body) == expected
        else:  # only when the two IDs disagree, which Rubin alerts never do
            assert default.key(codec.schema, body) == str(source_id).encode()
        seen.add(("source" if not lsst_missing(source_id) else "no source", agree))
    assert ("no source", True) in seen
    assert ("source", True) in seen


def test_default_and_exact_differ_only_on_disagreeing_ids():
    codec = lsst_codec("9.0")
    _schema, _body, sample_record = sample(LSST_FILES[0])
    record = random_lsst_alert(codec, random.Random(0), consistent=True)
    record["diaSource"]["diaObjectId"] = 5
    record["diaObject"] = {**sample_record["diaObject"], "diaObjectId": 7}
    body = codec.encode(record)
    assert LSST_PROFILE.object_id(codec.decode(body)) == 7
    assert object_key_reader(codec.schema, exact=True)(body) == b"7"
    assert object_key_reader(codec.schema)(body) == b"5"


@pytest.mark.parametrize(
    ("dia_source", "dia_object", "ss_object", "key"),
    [
        (11, 11, 0, b"11"),
        (11, None, 0, b"11"),
        (0, 12, 0, b"12"),  # Rubin's 0: the diaObject's ID
        (None, 12, 0, b"12"),
        (0, None, 13, b"13"),  # solar-system only: the ssObjectId
        (0, 0, None, b"99"),  # nothing: the alert ID
        (-999, None, -999, b"99"),  # ZTF-style missing marker, as is_missing says
    ],
)
def test_lsst_fallback_order(dia_source, dia_object, ss_object, key):
    codec = lsst_codec("9.0")
    _schema, _body, sample_record = sample(LSST_FILES[0])
    record = random_lsst_alert(codec, random.Random(1), consistent=True)
    record = LSST_PROFILE.with_alert_id(record, 99)
    record["diaSource"].update(diaObjectId=dia_source, ssObjectId=ss_object)
    record["diaObject"] = (
        None if dia_object is None else {**sample_record["diaObject"], "diaObjectId": dia_object}
    )
    body = codec.encode(record)
    assert expected_key(codec.decode(body)) == key
    assert object_key_reader(codec.schema)(body) == key
    assert object_key_reader(codec.schema, exact=True)(body) == key


def test_lsst_before_8_has_alert_id_and_same_key():
    codec = lsst_codec("7.4")
    record = random_lsst_alert(codec, random.Random(2), consistent=True)
    record["diaSource"].update(diaObjectId=None, ssObjectId=None)
    record["diaObject"] = None
    record["alertId"] = 4242
    body = codec.encode(record)
    diasource_id = record["diaSource"]["diaSourceId"]
    assert object_key_reader(codec.schema)(body) == str(diasource_id).encode()


def test_ztf_null_object_id_falls_back_to_candid():
    schema, _body, record = sample(ZTF_FILES[0])
    record = dict(record, objectId="null")
    body = fastavro_body(schema.parsed, record)
    assert ZTF_PROFILE.object_id(decode(schema.parsed, body)) is None
    assert object_key_reader(schema)(body) == str(record["candid"]).encode()


def fastavro_body(parsed: Any, record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, record)
    return out.getvalue()


def test_key_errors_name_the_alert():
    schema, body, _record = sample(LSST_FILES[0])
    key = KeyReaders(mode="confluent").for_schema(schema)
    message = "truncated Avro body: ran past its 20 bytes .* of topLevelRecord"
    with pytest.raises(DecodeError, match=message) as caught:
        key(body[:20])
    assert caught.value.mode == "confluent"


@pytest.mark.parametrize("version", LSST_VERSIONS)
def test_project_simulator_alerts(version):
    from brokerapp.tools.produce import simulate

    for alert in simulate(3, version, seed=4):
        body = SchemaFileCodec(alert.schema).encode(alert.record)
        record = decode(alert.schema.parsed, body)
        assert object_key_reader(alert.schema)(body) == expected_key(record)
