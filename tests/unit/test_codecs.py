"""Tests of brokerapp.wire.codecs against real ZTF and LSST alerts.

Expected values come from plain fastavro (``fastavro.reader`` / ``schemaless_reader`` /
``schemaless_writer``) and from lsst-alert-packet, never from the code under test.
"""

from __future__ import annotations

import io
import json
import math
import zlib
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form
from lsst.alert.packet.schema import Schema, get_schema_root

from brokerapp.wire.codecs import (
    ConfluentCodec,
    DecodeError,
    EncodeError,
    InlineCodec,
    ParsedSchema,
    RegistryUnavailable,
    SchemaCache,
    SchemaFileCodec,
    detect_mode,
    frame,
    load_avsc,
    parse_schema,
    read_container_file,
    unframe,
)

DATA = Path(__file__).parents[1] / "data"
ZTF_FILES = sorted((DATA / "ztf").glob("*.avro"))
LSST_FILES = sorted((DATA / "lsst").glob("*.avro"))
ALL_FILES = ZTF_FILES + LSST_FILES
ZTF_SCHEMA_DIR = DATA / "ztf" / "schema"
LSST_VERSION_DIRS = sorted(
    (d for d in Path(str(get_schema_root())).glob("[0-9]*/[0-9]*") if d.is_dir()),
    key=lambda d: (int(d.parent.name), int(d.name)),
)


def file_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem[:24]}"


def reference(path: Path) -> tuple[dict, str, list[dict]]:
    """Writer schema (dict and header text) and records, read with plain fastavro."""
    with path.open("rb") as fh:
        reader = fastavro.reader(fh)
        records = list(reader)
        return reader.writer_schema, reader.metadata["avro.schema"], records


def bare_body(schema: dict, record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def read_bare(schema: dict, body: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(schema))


def zigzag(value: int) -> bytes:
    """Avro long encoding, written out here independently of the codec."""
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while encoded > 0x7F:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)
    return bytes(out)


def container(schema_text: str, blocks: list[tuple[int, bytes]], codec: str = "null") -> bytes:
    """Hand-built Avro container file (per the Avro spec) with the given raw blocks."""
    sync = bytes(range(16))
    meta = {b"avro.schema": schema_text.encode(), b"avro.codec": codec.encode()}
    header = bytearray(b"Obj\x01") + zigzag(len(meta))
    for key, value in meta.items():
        header += zigzag(len(key)) + key + zigzag(len(value)) + value
    header += zigzag(0) + sync
    for count, data in blocks:
        header += zigzag(count) + zigzag(len(data)) + data + sync
    return bytes(header)


class FakeRegistry:
    """A SchemaFetcher serving schemas from a dict, counting calls, or failing on demand."""

    def __init__(self, schemas: dict[int, str], error: BaseException | None = None):
        self.schemas = schemas
        self.error = error
        self.calls = 0

    async def get_schema(self, schema_id: int) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.schemas[schema_id]


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("path", ALL_FILES, ids=file_id)
def test_inline_decodes_like_fastavro_reader(path):
    writer_schema, _text, expected = reference(path)
    schema, records = InlineCodec().decode(path.read_bytes())
    assert records == expected
    assert schema.name == writer_schema["name"]
    assert schema.canonical == to_parsing_canonical_form(writer_schema)


@pytest.mark.parametrize("codec_name", ["null", "deflate", "bzip2", "xz"])
@pytest.mark.parametrize("path", [ZTF_FILES[0], LSST_FILES[0]], ids=file_id)
def test_inline_round_trip_with_each_block_codec(path, codec_name):
    _writer, _text, expected = reference(path)
    codec = InlineCodec()
    schema, _ = codec.decode(path.read_bytes())
    data = codec.encode(expected[0], schema, codec=codec_name)
    with io.BytesIO(data) as fh:
        reader = fastavro.reader(fh)
        assert reader.codec == codec_name
        assert list(reader) == expected
    assert codec.decode_one(data) == expected[0]


@pytest.mark.parametrize("path", ALL_FILES, ids=file_id)
def test_inline_round_trip(path):
    _writer, _text, expected = reference(path)
    codec = InlineCodec()
    schema, records = codec.decode(path.read_bytes())
    assert codec.decode(codec.encode(records, schema)) == (schema, expected)


@pytest.mark.parametrize("path", ALL_FILES, ids=file_id)
def test_confluent_round_trip(path):
    writer_schema, text, expected = reference(path)
    codec = ConfluentCodec()
    codec.cache.put_id(7, text)
    message = codec.encode(7, expected[0])
    assert message[:5] == b"\x00\x00\x00\x00\x07"
    assert message[5:] == bare_body(writer_schema, expected[0])
    assert codec.decode_known(message) == (7, expected[0])


@pytest.mark.parametrize("path", ALL_FILES, ids=file_id)
def test_confluent_decodes_bodies_framed_by_hand(path):
    writer_schema, text, expected = reference(path)
    codec = ConfluentCodec()
    codec.cache.put_id(123456, text)
    message = b"\x00" + (123456).to_bytes(4, "big") + bare_body(writer_schema, expected[0])
    assert detect_mode(message) == "confluent"
    assert codec.decode_known(message) == (123456, expected[0])


@pytest.mark.parametrize("path", ALL_FILES, ids=file_id)
def test_record_bodies_are_bare_avro_bodies(path):
    writer_schema, _text, expected = reference(path)
    schema, bodies = InlineCodec().record_bodies(path.read_bytes())
    assert [read_bare(writer_schema, body) for body in bodies] == expected
    assert bodies == [bare_body(writer_schema, record) for record in expected]


def test_record_bodies_splits_multi_record_blocks():
    writer_schema, _text, expected = reference(LSST_FILES[0])
    _, _, second = reference(LSST_FILES[1])
    records = expected + second + expected
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(writer_schema), records, codec="deflate")
    codec = InlineCodec()
    schema, bodies = codec.record_bodies(out.getvalue())
    assert bodies == [bare_body(writer_schema, record) for record in records]
    assert codec.decode(out.getvalue())[1] == records
    with pytest.raises(DecodeError) as err:
        codec.decode_one(out.getvalue())
    assert err.value.mode == "inline"
    assert err.value.reason == "container holds 3 records, expected 1"


@pytest.mark.parametrize("path", LSST_FILES, ids=file_id)
def test_schemafile_round_trip_with_the_writer_schema(path):
    writer_schema, text, expected = reference(path)
    codec = SchemaFileCodec(parse_schema(text))
    body = codec.encode(expected[0])
    assert body == bare_body(writer_schema, expected[0])
    assert codec.decode(body) == expected[0]


@pytest.mark.parametrize("path", LSST_FILES, ids=file_id)
def test_schemafile_lsst_9_0_keeps_every_official_field(path):
    _writer, _text, expected = reference(path)
    codec = SchemaFileCodec.lsst("9.0")
    decoded = codec.decode(codec.encode(expected[0]))
    # The sample files were re-serialised by a broker that added fields of its own
    # (e.g. brokerIngestMjd); every field of the official schema must survive.
    official = {field["name"] for field in codec.schema.raw["fields"]}
    assert set(decoded) == official
    assert decoded == {name: expected[0][name] for name in official}
    assert decoded["diaSource"]["diaSourceId"] == expected[0]["diaSource"]["diaSourceId"]


def test_ztf_schema_dir_resolves_names_defined_in_sibling_files():
    raw = load_avsc(ZTF_SCHEMA_DIR / "alert.avsc")
    candidate = next(f for f in raw["fields"] if f["name"] == "candidate")["type"]
    on_disk = json.loads((ZTF_SCHEMA_DIR / "candidate.avsc").read_text())
    assert candidate["fields"] == on_disk["fields"]
    codec = SchemaFileCodec.from_avsc(ZTF_SCHEMA_DIR / "alert.avsc")
    assert codec.schema.name == "ztf.alert"


def required_fields_missing_from_writer(writer_schema: dict) -> list[str]:
    """Candidate fields schema 4.02 requires (no default) that the writer schema lacks."""
    on_disk = json.loads((ZTF_SCHEMA_DIR / "candidate.avsc").read_text())
    written = next(f for f in writer_schema["fields"] if f["name"] == "candidate")["type"]
    have = {f["name"] for f in written["fields"]}
    return [f["name"] for f in on_disk["fields"] if "default" not in f and f["name"] not in have]


@pytest.mark.parametrize("path", ZTF_FILES, ids=file_id)
def test_ztf_schema_dir_reads_bodies_written_with_the_container_schema(path):
    # The .avsc files are schema 4.02 (adds fp_hists, requires candidate.drbversion); the
    # alerts were written with 3.1-3.3, so bodies are read with Avro schema resolution. That
    # works when the writer has every field 4.02 requires without a default, and must fail
    # cleanly otherwise.
    writer_schema, text, expected = reference(path)
    reader = SchemaFileCodec.from_avsc(ZTF_SCHEMA_DIR / "alert.avsc")
    codec = SchemaFileCodec(reader.schema, writer_schema=parse_schema(text))
    body = bare_body(writer_schema, expected[0])
    missing = required_fields_missing_from_writer(writer_schema)
    if missing:
        with pytest.raises(DecodeError) as err:
            codec.decode(body)
        assert err.value.mode == "schemafile"
        assert missing[0] in err.value.reason
        return
    decoded = codec.decode(body)
    for field in writer_schema["fields"]:
        assert decoded[field["name"]] == expected[0][field["name"]], field["name"]
    assert decoded["fp_hists"] is None


def test_ztf_files_include_a_schema_resolvable_to_4_02():
    resolvable = [p for p in ZTF_FILES if not required_fields_missing_from_writer(reference(p)[0])]
    assert len(resolvable) == 1


@pytest.mark.parametrize("path", ZTF_FILES, ids=file_id)
def test_ztf_schema_dir_round_trip(path):
    _writer, _text, expected = reference(path)
    codec = SchemaFileCodec.from_avsc(ZTF_SCHEMA_DIR / "alert.avsc")
    record = dict(expected[0])
    record.setdefault("fp_hists", None)
    record["candidate"] = {"drbversion": "unknown", **record["candidate"]}
    body = codec.encode(record)
    schema_402 = load_avsc(ZTF_SCHEMA_DIR / "alert.avsc")
    assert read_bare(schema_402, body) == codec.decode(body)
    # 4.02 adds optional fields; every value the 3.x record had must come back unchanged
    assert_superset(codec.decode(body), expected[0])


def assert_superset(decoded, original, where="record"):
    if isinstance(original, dict):
        for key, value in original.items():
            assert_superset(decoded[key], value, f"{where}.{key}")
    elif isinstance(original, list):
        assert len(decoded) == len(original), where
        for index, (got, want) in enumerate(zip(decoded, original, strict=True)):
            assert_superset(got, want, f"{where}[{index}]")
    else:
        assert decoded == original, where


@pytest.mark.parametrize(
    "version_dir", LSST_VERSION_DIRS, ids=lambda d: f"{d.parent.name}.{d.name}"
)
def test_lsst_schema_matches_lsst_alert_packet_and_decodes_its_sample(version_dir):
    version = f"{version_dir.parent.name}.{version_dir.name}"
    codec = SchemaFileCodec.lsst(version)
    stem = f"lsst.v{version_dir.parent.name}_{version_dir.name}.alert"
    official = Schema.from_file(str(version_dir / f"{stem}.avsc")).definition
    assert codec.schema.canonical == to_parsing_canonical_form(official)
    assert codec.schema.name == stem
    with (version_dir / "sample_data" / "fakeAlert.avro").open("rb") as fh:
        expected = list(fastavro.reader(fh))
    body = bare_body(official, expected[0])
    assert codec.decode(body) == expected[0]
    assert codec.encode(expected[0]) == body


def test_lsst_versions_3_0_to_11_1_are_installed():
    versions = {f"{d.parent.name}.{d.name}" for d in LSST_VERSION_DIRS}
    assert {"3.0", "9.0", "11.1"} <= versions


def test_lsst_unknown_version():
    with pytest.raises(FileNotFoundError):
        SchemaFileCodec.lsst("99.0")
    with pytest.raises(ValueError, match="9.0"):
        SchemaFileCodec.lsst("latest")


def test_read_container_file():
    _writer, _text, expected = reference(ZTF_FILES[0])
    schema, records = read_container_file(ZTF_FILES[0])
    assert records == expected
    assert isinstance(schema, ParsedSchema)


# ------------------------------------------------------------------------- framing helpers


def test_frame_and_unframe():
    message = frame(42, b"body")
    assert message == b"\x00\x00\x00\x00\x2abody"
    schema_id, body = unframe(message)
    assert schema_id == 42
    assert bytes(body) == b"body"
    assert frame(2**32 - 1, b"") == b"\x00\xff\xff\xff\xff"
    with pytest.raises(ValueError):
        frame(2**32, b"")
    with pytest.raises(ValueError):
        frame(-1, b"")


def test_detect_mode():
    assert detect_mode(ZTF_FILES[0].read_bytes()) == "inline"
    assert detect_mode(b"\x00\x00\x00\x00\x01") == "confluent"
    for data in (b"", b"\x00\x00", b"{}", b"Obj\x02...."):
        with pytest.raises(DecodeError) as err:
            detect_mode(data)
        assert err.value.mode == "unknown"


# ------------------------------------------------------------------------------ failures


@pytest.fixture
def lsst_confluent():
    writer_schema, text, expected = reference(LSST_FILES[0])
    codec = ConfluentCodec()
    codec.cache.put_id(42, text)
    return codec, bare_body(writer_schema, expected[0])


def test_truncated_body(lsst_confluent):
    codec, body = lsst_confluent
    with pytest.raises(DecodeError) as err:
        codec.decode_known(frame(42, body[:-100]))
    assert err.value.mode == "confluent"
    assert err.value.schema_id == 42
    assert err.value.reason.startswith("truncated or corrupt Avro body: ")
    assert isinstance(err.value.__cause__, EOFError)
    assert str(err.value).startswith("confluent decode failed (schema_id=42): truncated")


def test_garbage_body(lsst_confluent):
    codec, _body = lsst_confluent
    with pytest.raises(DecodeError) as err:
        codec.decode_known(frame(42, b"\xff" * 64))
    assert (err.value.mode, err.value.schema_id) == ("confluent", 42)
    assert err.value.reason.startswith("truncated or corrupt Avro body: ")


def test_trailing_bytes(lsst_confluent):
    codec, body = lsst_confluent
    with pytest.raises(DecodeError) as err:
        codec.decode_known(frame(42, body + b"\x00\x01\x02"))
    assert (err.value.mode, err.value.schema_id) == ("confluent", 42)
    assert err.value.reason == "3 trailing bytes after record"


def test_trailing_bytes_schemafile():
    writer_schema, text, expected = reference(LSST_FILES[0])
    codec = SchemaFileCodec(parse_schema(text))
    with pytest.raises(DecodeError) as err:
        codec.decode(bare_body(writer_schema, expected[0]) + b"\x00")
    assert (err.value.mode, err.value.schema_id) == ("schemafile", None)
    assert err.value.reason == "1 trailing bytes after record"


def test_wrong_magic_byte(lsst_confluent):
    codec, body = lsst_confluent
    with pytest.raises(DecodeError) as err:
        codec.decode_known(b"\x01\x00\x00\x00\x2a" + body)
    assert err.value.mode == "confluent"
    assert err.value.reason == "wrong magic byte 0x01"
    assert err.value.schema_id is None
    assert str(err.value) == "confluent decode failed (schema_id=None): wrong magic byte 0x01"


def test_message_shorter_than_header(lsst_confluent):
    codec, _body = lsst_confluent
    with pytest.raises(DecodeError) as err:
        codec.decode_known(b"\x00\x00")
    assert err.value.reason == "message shorter than 5-byte header"


def test_unknown_schema_id_without_fetcher(lsst_confluent):
    codec, body = lsst_confluent
    with pytest.raises(DecodeError) as err:
        codec.decode_known(frame(43, body))
    assert (err.value.mode, err.value.schema_id) == ("confluent", 43)
    assert err.value.reason == "unknown schema ID"
    assert str(err.value) == "confluent decode failed (schema_id=43): unknown schema ID"


async def test_unknown_schema_id_async_without_fetcher(lsst_confluent):
    codec, body = lsst_confluent
    with pytest.raises(DecodeError) as err:
        await codec.decode(frame(43, body))
    assert err.value.schema_id == 43
    assert err.value.reason.startswith("unknown schema ID")


async def test_unknown_schema_id_from_registry():
    writer_schema, text, expected = reference(LSST_FILES[0])
    registry = FakeRegistry({1: text})
    codec = ConfluentCodec(fetcher=registry)
    with pytest.raises(DecodeError) as err:
        await codec.decode(frame(2, bare_body(writer_schema, expected[0])))
    assert (err.value.mode, err.value.schema_id) == ("confluent", 2)
    assert err.value.reason.startswith("unknown schema ID")
    assert isinstance(err.value.__cause__, KeyError)


async def test_registry_outage_is_not_a_decode_error():
    writer_schema, _text, expected = reference(LSST_FILES[0])
    codec = ConfluentCodec(fetcher=FakeRegistry({}, error=ConnectionError("refused")))
    with pytest.raises(RegistryUnavailable) as err:
        await codec.decode(frame(5, bare_body(writer_schema, expected[0])))
    assert not isinstance(err.value, DecodeError)
    assert err.value.schema_id == 5
    assert isinstance(err.value.__cause__, ConnectionError)
    assert "refused" in str(err.value)


async def test_registry_serving_invalid_schema():
    codec = ConfluentCodec(fetcher=FakeRegistry({5: '{"type": "record", "name": '}))
    with pytest.raises(DecodeError) as err:
        await codec.decode(frame(5, b"\x00"))
    assert (err.value.mode, err.value.schema_id) == ("confluent", 5)
    assert err.value.reason.startswith("invalid schema from registry")


def test_garbage_container():
    with pytest.raises(DecodeError) as err:
        InlineCodec().decode(b"Obj\x01" + bytes(range(200, 256)) * 3)
    assert err.value.mode == "inline"
    assert err.value.schema_id is None


def test_not_a_container():
    with pytest.raises(DecodeError) as err:
        InlineCodec().decode(b"\x00\x00\x00\x00\x01abc")
    assert err.value.mode == "inline"
    assert err.value.reason.startswith("not an Avro container")


def test_truncated_container():
    data = ZTF_FILES[0].read_bytes()
    for cut in (3, 100, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError) as err:
            InlineCodec().decode(data[:cut])
        assert err.value.mode == "inline"


def test_container_with_wrong_sync_marker():
    writer_schema, text, expected = reference(ZTF_FILES[0])
    good = container(text, [(1, bare_body(writer_schema, expected[0]))])
    assert InlineCodec().decode_one(good) == expected[0]
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    with pytest.raises(DecodeError) as err:
        InlineCodec().decode(bad)
    assert err.value.reason == "sync marker mismatch after block 0"


def test_container_block_with_trailing_bytes():
    writer_schema, text, expected = reference(ZTF_FILES[0])
    data = container(text, [(1, bare_body(writer_schema, expected[0]) + b"\x00\x00")])
    with pytest.raises(DecodeError) as err:
        InlineCodec().decode(data)
    assert (err.value.mode, err.value.reason) == ("inline", "2 trailing bytes after record")


def test_container_with_unsupported_codec():
    writer_schema, text, expected = reference(ZTF_FILES[0])
    data = container(text, [(1, bare_body(writer_schema, expected[0]))], codec="lzo")
    with pytest.raises(DecodeError) as err:
        InlineCodec().decode(data)
    assert err.value.reason == "unsupported block codec 'lzo'"


def test_container_with_corrupt_deflate_block():
    writer_schema, text, expected = reference(ZTF_FILES[0])
    data = container(text, [(1, b"not deflate data")], codec="deflate")
    with pytest.raises(DecodeError) as err:
        InlineCodec().decode(data)
    assert err.value.reason.startswith("corrupt deflate block")
    assert isinstance(err.value.__cause__, zlib.error)


def test_container_with_invalid_schema():
    data = container('{"type": "record", "name": "x", "fields": [{"name": "a"}]}', [])
    with pytest.raises(DecodeError) as err:
        InlineCodec().decode(data)
    assert err.value.mode == "inline"
    assert err.value.reason.startswith("invalid Avro schema")


def test_encode_errors():
    _writer, text, expected = reference(LSST_FILES[0])
    codec = ConfluentCodec()
    with pytest.raises(EncodeError) as err:
        codec.encode(9, expected[0])
    assert (err.value.mode, err.value.schema_id, err.value.reason) == (
        "confluent",
        9,
        "unknown schema ID",
    )
    codec.cache.put_id(9, text)
    with pytest.raises(EncodeError):
        codec.encode(9, {"diaSourceId": "not a number"})


# -------------------------------------------------------------------------- schema cache


def test_decoding_never_parses_a_schema_per_message():
    writer_schema, text, _ = reference(LSST_FILES[0])
    cache = SchemaCache()
    codec = ConfluentCodec(cache=cache)
    messages = []
    for path in LSST_FILES:
        _, _, records = reference(path)
        messages.append(frame(1, bare_body(writer_schema, records[0])))
    assert len(messages) == 50
    codec.cache.put_id(1, text)
    for message in messages:
        codec.decode_known(message)
    assert cache.parses == 1


@pytest.mark.parametrize("files", [LSST_FILES, ZTF_FILES], ids=["lsst", "ztf"])
def test_inline_parses_each_distinct_writer_schema_once(files):
    distinct = {to_parsing_canonical_form(reference(path)[0]) for path in files}
    cache = SchemaCache()
    codec = InlineCodec(cache)
    for _ in range(3):
        for path in files:
            codec.decode(path.read_bytes())
    assert cache.parses == len(distinct)
    assert len(cache) == len(distinct)


async def test_fetches_each_schema_once():
    writer_schema, text, expected = reference(LSST_FILES[0])
    registry = FakeRegistry({11: text, 12: text})
    cache = SchemaCache()
    codec = ConfluentCodec(fetcher=registry, cache=cache)
    body = bare_body(writer_schema, expected[0])
    for _ in range(20):
        assert await codec.decode(frame(11, body)) == (11, expected[0])
        assert await codec.decode(frame(12, body)) == (12, expected[0])
    assert registry.calls == 2
    assert cache.parses == 1
    assert cache.by_id(11) is cache.by_id(12)


def test_cache_identity_and_fingerprints():
    writer_schema, text, _ = reference(LSST_FILES[0])
    cache = SchemaCache()
    from_text = cache.intern(text)
    from_dict = cache.put_id(3, writer_schema)
    assert from_dict is from_text
    assert cache.parses == 1
    assert cache.by_fingerprint(from_text.fingerprint) is from_text
    assert cache.by_id(3) is from_text
    assert cache.by_id(4) is None
    assert cache.by_fingerprint("0" * 64) is None
    assert len(from_text.fingerprint) == 64
    # docs and JSON formatting do not change the fingerprint
    reformatted = json.dumps(json.loads(text), indent=2)
    assert cache.intern(reformatted) is from_text
    assert cache.parses == 1
    assert parse_schema(text) == from_text


def test_cache_rejects_bad_schemas():
    cache = SchemaCache()
    for bad in (
        "not json",
        '{"type": "nonsense"}',
        '{"type": "record", "name": "r", "fields": [{"name": "a"}]}',
        b"\xff\xfe",
    ):
        with pytest.raises(DecodeError) as err:
            cache.intern(bad)
        assert err.value.mode == "schema"
    assert cache.parses == 0


def test_nan_survives_round_trip():
    schema = parse_schema(
        {"type": "record", "name": "r", "fields": [{"name": "x", "type": "double"}]}
    )
    codec = SchemaFileCodec(schema)
    assert math.isnan(codec.decode(codec.encode({"x": math.nan}))["x"])
