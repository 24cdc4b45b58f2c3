"""Decoding only the fields a branch reads (brokerapp.wire.fields, Alert.projected).

Expected values come from fastavro's own full decode of each body, never from the code under
test. The processors' declared reads are checked by running them on projected alerts whose
whole-record loader raises: a processor reading anything undeclared would fail.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import fastavro
import pytest

from brokerapp.domain.candidates import CANDIDATE_READS, candidate_update
from brokerapp.domain.processors import (
    AlertProcessor,
    AnnotateView,
    Chain,
    EmitAnnotations,
    MagnitudeCut,
    Pass,
    SolarSystem,
)
from brokerapp.domain.watchlists.annotated import (
    SS_WATCHLIST_READS,
    WATCHLIST_MATCH_READS,
    solar_system_annotations,
    solar_system_names,
)
from brokerapp.model.alert import Alert
from brokerapp.model.profiles import READS, VIEW_READS, UnknownReadError
from brokerapp.tools.produce import load_files, simulate
from brokerapp.wire.codecs import ConfluentCodec, DecodeError, frame
from brokerapp.wire.fields import FieldDecoder, FieldReader, present_paths

DATA = Path(__file__).resolve().parents[1] / "data"
SCHEMA_ID = 7


def _samples() -> list[tuple[str, Any, dict, bytes]]:
    found = []
    sources = {
        "ztf": load_files(str(DATA / "ztf")),
        "lsst": load_files(str(DATA / "lsst")),
        "lsst-sim-9.0": simulate(4, "9.0"),
    }
    for name, alerts in sources.items():
        for i, alert in enumerate(alerts):
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, alert.schema.parsed, alert.record)
            body = buffer.getvalue()
            expected = fastavro.schemaless_reader(io.BytesIO(body), alert.schema.parsed)
            found.append((f"{name}-{i}", alert.schema, expected, body))
    return found


SAMPLES = _samples()
IDS = [sample[0] for sample in SAMPLES]


def at(record: Any, path: tuple[str, ...]) -> Any:
    """Value at ``path`` of a decoded record: None past a null, a list across an array."""
    value = record
    for depth, name in enumerate(path):
        if value is None:
            return None
        if isinstance(value, list):
            return [at(item, path[depth:]) for item in value]
        value = value[name]
    return value


def codec_with(schema: Any) -> ConfluentCodec:
    codec = ConfluentCodec()
    codec.cache.put_id(SCHEMA_ID, schema.raw)
    return codec


def refuse() -> dict:
    raise AssertionError("the whole record was decoded")


def projected(schema: Any, body: bytes, reads: frozenset[str], load: Any = refuse) -> Alert:
    decoder = FieldDecoder(codec_with(schema))
    profile, reader = decoder.plan(schema, reads)
    fields = reader.read(frame(SCHEMA_ID, body), 5, SCHEMA_ID)
    return Alert.projected(fields, profile, reads, load, SCHEMA_ID)


@pytest.mark.parametrize("strategy", ["auto", "projection"])
@pytest.mark.parametrize(("name", "schema", "expected", "body"), SAMPLES, ids=IDS)
def test_projected_fields_equal_fastavro(
    name: str, schema: Any, expected: dict, body: bytes, strategy: str
) -> None:
    profile = FieldDecoder(ConfluentCodec()).profile_of(schema)
    paths = present_paths(schema, profile.field_paths(READS))
    assert ("candidate", "ra") in paths or ("diaSource", "ra") in paths
    for reads in [
        frozenset({"alert_id", "is_solar_system"}),
        READS - {"previous_detections"},
        READS,
    ]:
        wanted = present_paths(schema, profile.field_paths(reads))
        got = FieldReader(schema, wanted, strategy=strategy).read(body)
        for path in wanted:
            assert at(got, path) == at(expected, path), path
        assert set(got) <= {path[0] for path in wanted}


def test_auto_picks_the_key_reader_unless_an_array_is_crossed() -> None:
    _name, schema, _expected, _body = SAMPLES[0]
    profile = FieldDecoder(ConfluentCodec()).profile_of(schema)
    solar = present_paths(schema, profile.field_paths({"is_solar_system"}))
    previous = present_paths(schema, profile.field_paths({"previous_detections"}))
    assert FieldReader(schema, solar).strategy == "keyreader"
    assert FieldReader(schema, previous).strategy == "projection"


@pytest.mark.parametrize(("name", "schema", "expected", "body"), SAMPLES, ids=IDS)
def test_lazy_record_and_view_equal_fastavro(
    name: str, schema: Any, expected: dict, body: bytes
) -> None:
    decoder = FieldDecoder(codec_with(schema))
    schema_id, alert = asyncio.run(
        decoder.decode(frame(SCHEMA_ID, body), {"alert_id", "is_solar_system"})
    )
    assert schema_id == SCHEMA_ID
    assert alert.full_decodes == 0 and not alert.decoded
    whole = Alert.of(expected, SCHEMA_ID)
    assert alert.view.is_solar_system == whole.view.is_solar_system
    assert alert.full_decodes == 0
    assert alert.record == expected
    assert alert.record is alert.record  # decoded once, kept
    assert alert.full_decodes == 1
    assert alert.view.resolved() == whole.view


@pytest.mark.parametrize(("name", "schema", "expected", "body"), SAMPLES, ids=IDS)
def test_each_view_attribute_from_its_own_fields(
    name: str, schema: Any, expected: dict, body: bytes
) -> None:
    whole = Alert.of(expected).view
    for attribute in sorted(VIEW_READS):
        alert = projected(schema, body, frozenset({attribute}))
        assert getattr(alert.view, attribute) == getattr(whole, attribute), attribute


def run_chain(chain: Chain, schema: Any, body: bytes) -> Any:
    assert chain.reads is not None
    alert = projected(schema, body, chain.reads)
    return chain.run(alert), alert


@pytest.mark.parametrize(("name", "schema", "expected", "body"), SAMPLES, ids=IDS)
def test_builtin_chains_read_only_what_they_declare(
    name: str, schema: Any, expected: dict, body: bytes
) -> None:
    chains = [
        Chain([SolarSystem()], "ssfilter"),
        Chain([MagnitudeCut(max_mag=30.0, keep_missing=True), AnnotateView()], "example"),
        Chain([AnnotateView(fields=sorted(VIEW_READS)), EmitAnnotations(always=True)], "all"),
    ]
    for chain in chains:
        result, alert = run_chain(chain, schema, body)
        expected_result = chain.run(Alert.of(expected, SCHEMA_ID))
        assert result.emits == expected_result.emits
        assert result.annotations == expected_result.annotations
        assert alert.full_decodes == 0


@pytest.mark.parametrize(("name", "schema", "expected", "body"), SAMPLES, ids=IDS)
def test_candidate_update_reads_only_what_it_declares(
    name: str, schema: Any, expected: dict, body: bytes
) -> None:
    whole = Alert.of(expected, SCHEMA_ID)
    alert = projected(schema, body, CANDIDATE_READS)
    try:
        wanted = candidate_update(whole, 1.0)
    except ValueError as exc:  # an alert the candidates worker refuses: refused alike
        with pytest.raises(type(exc)):
            candidate_update(alert, 1.0)
    else:
        assert candidate_update(alert, 1.0) == wanted
    assert alert.full_decodes == 0


@pytest.mark.parametrize(("name", "schema", "expected", "body"), SAMPLES, ids=IDS)
def test_watchlist_reads_cover_what_it_reads(
    name: str, schema: Any, expected: dict, body: bytes
) -> None:
    whole = Alert.of(expected, SCHEMA_ID)
    alert = projected(schema, body, WATCHLIST_MATCH_READS)
    for attribute in ("alert_id", "ra", "dec", "object_id", "mjd"):  # lookup_in, annotation
        assert getattr(alert.view, attribute) == getattr(whole.view, attribute)
    solar = projected(schema, body, SS_WATCHLIST_READS)
    names = solar_system_names(solar.profile, solar.record_for("solar_system_names"))
    assert names == solar_system_names(whole.profile, whole.record)
    follow = {name: ["w1"] for name in names}.get
    assert solar_system_annotations(solar.view, names, follow) == solar_system_annotations(
        whole.view, names, follow
    )
    assert alert.full_decodes == 0 and solar.full_decodes == 0


class ReadsRecord(AlertProcessor):
    """A processor that reads outside its declaration (the whole record)."""

    name = "reads_record"
    reads = frozenset({"ra"})

    def process(self, alert: Alert) -> Pass:
        return Pass({"n": len(alert.record)})


def test_undeclared_read_decodes_the_whole_record_once() -> None:
    _name, schema, expected, body = SAMPLES[0]
    calls = []

    def load() -> dict:
        calls.append(1)
        return expected

    chain = Chain([ReadsRecord(), SolarSystem()])
    alert = projected(schema, body, chain.reads or frozenset(), load)
    result = chain.run(alert)
    assert result.annotations == {"reads_record": {"n": len(expected)}}
    assert alert.view.band == Alert.of(expected).view.band  # not read: from the whole record
    assert calls == [1]


def test_chain_reads_union_and_unknown() -> None:
    class Undeclared(AlertProcessor):
        name = "undeclared"

        def process(self, alert: Alert) -> Pass:
            return Pass()

    assert Chain([SolarSystem(), MagnitudeCut(max_mag=20.0)]).reads == {
        "alert_id",
        "is_solar_system",
        "band",
        "magnitude",
    }
    assert Chain([SolarSystem(), Undeclared()]).reads is None
    with pytest.raises(UnknownReadError):
        FieldDecoder(ConfluentCodec()).plan(SAMPLES[0][1], frozenset({"no_such_read"}))


def test_decode_without_reads_is_the_whole_decode() -> None:
    _name, schema, expected, body = SAMPLES[-1]
    _schema_id, alert = asyncio.run(
        FieldDecoder(codec_with(schema)).decode(frame(SCHEMA_ID, body), None)
    )
    assert alert.reads is None and alert.record == expected


@pytest.mark.parametrize("strategy", ["auto", "projection"])
@pytest.mark.parametrize("survey", ["ztf", "lsst"])
def test_corrupt_body_raises_decode_error(survey: str, strategy: str) -> None:
    _name, schema, _expected, body = next(s for s in SAMPLES if s[0].startswith(survey))
    decoder = FieldDecoder(codec_with(schema), strategy)
    reads = {"alert_id", "is_solar_system"}
    truncated = frame(SCHEMA_ID, body[:12])
    with pytest.raises(DecodeError) as error:
        asyncio.run(decoder.decode(truncated, reads))
    assert error.value.schema_id == SCHEMA_ID and error.value.mode == "confluent"
    # A union index out of range where the first union field of the body sits.
    bad = bytearray(body)
    bad[:] = b"\xff" * len(bad)
    with pytest.raises(DecodeError):
        asyncio.run(decoder.decode(frame(SCHEMA_ID, bytes(bad)), reads))


def test_corruption_after_the_fields_comes_out_of_the_whole_decode() -> None:
    _name, schema, _expected, body = SAMPLES[0]  # ZTF: candidate comes before the cutouts
    alert = asyncio.run(
        FieldDecoder(codec_with(schema)).decode(frame(SCHEMA_ID, body[:-10]), {"ra", "dec"})
    )[1]
    assert alert.view.ra is not None
    with pytest.raises(DecodeError):
        _ = alert.record
