"""Tests of brokerapp.model.profiles on real ZTF alerts and every LSST schema version.

Records are read with plain fastavro; expected values are taken straight from the raw dicts by
each survey's (and LSST schema version's) own field names.
"""

from __future__ import annotations

import copy
import io
import math
from pathlib import Path

import fastavro
import pytest
from fastavro.validation import validate
from lsst.alert.packet.schema import get_schema_root

from brokerapp.model.profiles import (
    LSST_PROFILE,
    MISSING_NUMBER,
    MISSING_STRING,
    ZTF_PROFILE,
    AlertView,
    UnknownSurveyError,
    is_missing,
    profile_for,
    view,
)
from brokerapp.tools.produce import simulate
from brokerapp.wire.codecs import SchemaFileCodec

DATA = Path(__file__).parents[1] / "data"
ZTF_FILES = sorted((DATA / "ztf").glob("*.avro"))
LSST_FILES = sorted((DATA / "lsst").glob("*.avro"))
LSST_VERSION_DIRS = sorted(
    (d for d in Path(str(get_schema_root())).glob("[0-9]*/[0-9]*") if d.is_dir()),
    key=lambda d: (int(d.parent.name), int(d.name)),
)
ZTF_FILTERS = {1: "g", 2: "r", 3: "i"}


def read(path: Path) -> tuple[dict, dict]:
    with path.open("rb") as fh:
        reader = fastavro.reader(fh)
        (record,) = list(reader)
        return reader.writer_schema, record


def still_valid(schema: dict, record: dict) -> bool:
    out = io.BytesIO()
    parsed = fastavro.parse_schema(schema)
    fastavro.schemaless_writer(out, parsed, record)
    return fastavro.schemaless_reader(io.BytesIO(out.getvalue()), parsed) == record


def file_id(path: Path) -> str:
    return path.stem[:24]


# ---------------------------------------------------------------------------------- ZTF


@pytest.mark.parametrize("path", ZTF_FILES, ids=file_id)
def test_ztf_view(path):
    _schema, record = read(path)
    candidate = record["candidate"]
    alert = view(record)
    assert isinstance(alert, AlertView)
    assert alert.survey == "ztf"
    assert alert.alert_id == record["candid"] == candidate["candid"]
    assert alert.object_id == record["objectId"]
    assert (alert.ra, alert.dec) == (candidate["ra"], candidate["dec"])
    assert alert.mjd == pytest.approx(candidate["jd"] - 2400000.5, abs=1e-9)
    assert alert.band == ZTF_FILTERS[candidate["fid"]]
    assert alert.magnitude == candidate["magpsf"]
    assert alert.magnitude_error == candidate["sigmapsf"]
    assert (alert.flux, alert.flux_error) == (None, None)
    assert alert.visit_id == candidate["pid"]
    detections = [p for p in record["prv_candidates"] or [] if p["candid"] is not None]
    assert alert.n_previous == len(detections)
    assert ZTF_PROFILE.previous_detections(record) == detections
    assert alert.has_cutouts


@pytest.mark.parametrize("path", ZTF_FILES, ids=file_id)
def test_ztf_solar_system_fields(path):
    _schema, record = read(path)
    candidate = record["candidate"]
    alert = view(record)
    if candidate["ssnamenr"] == "null":
        assert alert.ss_name is None
        assert alert.ss_distance_arcsec is None
        assert candidate["ssdistnr"] == -999.0
        assert not alert.is_solar_system
    else:
        assert alert.ss_name == candidate["ssnamenr"]
        assert alert.ss_distance_arcsec == candidate["ssdistnr"]
        assert alert.is_solar_system


def test_ztf_sample_has_11_solar_system_alerts():
    views = [view(read(path)[1]) for path in ZTF_FILES]
    assert len(views) == 18
    assert sum(v.is_solar_system for v in views) == 11


def test_ztf_cutouts_are_gzipped_fits():
    _schema, record = read(ZTF_FILES[0])
    cutouts = ZTF_PROFILE.cutouts(record)
    assert set(cutouts) == {"science", "template", "difference"}
    assert cutouts["science"] == record["cutoutScience"]["stampData"]
    assert cutouts["difference"] == record["cutoutDifference"]["stampData"]
    assert all(image[:2] == b"\x1f\x8b" for image in cutouts.values())


def test_ztf_with_alert_id():
    schema, record = read(ZTF_FILES[1])
    original = record["candid"]
    fresh = ZTF_PROFILE.with_alert_id(record, 12345)
    assert fresh["candid"] == fresh["candidate"]["candid"] == 12345
    assert view(fresh).alert_id == 12345
    assert record["candid"] == record["candidate"]["candid"] == original
    assert fresh["objectId"] == record["objectId"]
    assert still_valid(schema, fresh)


# --------------------------------------------------------------------------------- LSST


@pytest.mark.parametrize("path", LSST_FILES, ids=file_id)
def test_lsst_view_of_sample_alerts(path):
    _schema, record = read(path)
    source = record["diaSource"]
    alert = view(record)
    assert alert.survey == "lsst"
    assert alert.alert_id == source["diaSourceId"] == record["diaSourceId"]
    assert (alert.ra, alert.dec) == (source["ra"], source["dec"])
    assert alert.mjd == source["midpointMjdTai"]
    assert alert.band == source["band"]
    assert alert.visit_id == source["visit"]
    assert (alert.flux, alert.flux_error) == (source["psfFlux"], source["psfFluxErr"])
    if source["psfFlux"] > 0:
        assert alert.magnitude == pytest.approx(-2.5 * math.log10(source["psfFlux"]) + 31.4)
        assert alert.magnitude_error == pytest.approx(
            2.5 / math.log(10) * source["psfFluxErr"] / source["psfFlux"]
        )
    else:
        assert alert.magnitude is None
        assert alert.magnitude_error is None
    assert alert.n_previous == len(record["prvDiaSources"] or [])
    assert alert.has_cutouts
    assert LSST_PROFILE.cutouts(record)["science"] == record["cutoutScience"]
    assert alert.ss_distance_arcsec is None


@pytest.mark.parametrize("path", LSST_FILES, ids=file_id)
def test_lsst_objects_and_solar_system_objects(path):
    # Rubin writes 0 for "no such object".
    _schema, record = read(path)
    source = record["diaSource"]
    alert = view(record)
    if source["ssObjectId"] != 0:
        assert record["diaObject"] is None
        assert alert.object_id is None
        assert alert.ss_name == str(source["ssObjectId"]) == str(record["ssSource"]["ssObjectId"])
        assert alert.is_solar_system
    else:
        assert alert.object_id == record["diaObject"]["diaObjectId"]
        assert alert.ss_name is None
        assert not alert.is_solar_system


def test_lsst_sample_has_2_solar_system_alerts():
    assert sum(view(read(path)[1]).is_solar_system for path in LSST_FILES) == 2


def test_lsst_with_alert_id():
    schema, record = read(LSST_FILES[0])
    original = record["diaSource"]["diaSourceId"]
    fresh = LSST_PROFILE.with_alert_id(record, 777)
    assert fresh["diaSourceId"] == fresh["diaSource"]["diaSourceId"] == 777
    assert view(fresh).alert_id == 777
    assert record["diaSourceId"] == record["diaSource"]["diaSourceId"] == original
    assert still_valid(schema, fresh)


def lsst_names(major: int) -> dict[str, str]:
    """Field names of diaSource per LSST schema major version (from the .avsc files)."""
    return {
        "dec": "decl" if major < 5 else "dec",
        "mjd": "midPointTai" if major < 5 else "midpointMjdTai",
        "band": "filterName" if major < 5 else "band",
        "flux": "psFlux" if major < 5 else "psfFlux",
        "visit": "ccdVisitId" if major < 7 else "visit",
    }


@pytest.mark.parametrize(
    "version_dir", LSST_VERSION_DIRS, ids=lambda d: f"v{d.parent.name}.{d.name}"
)
def test_lsst_view_for_every_schema_version(version_dir):
    schema, record = read(version_dir / "sample_data" / "fakeAlert.avro")
    names = lsst_names(int(version_dir.parent.name))
    source = record["diaSource"]
    assert profile_for(record) is LSST_PROFILE
    alert = view(record)
    assert alert.alert_id == source["diaSourceId"]
    assert alert.ra == source["ra"]
    assert alert.dec == source[names["dec"]]
    assert alert.mjd == source[names["mjd"]]
    assert alert.band == source[names["band"]]
    assert alert.flux == source[names["flux"]]
    assert alert.visit_id == source[names["visit"]]
    for value in (alert.alert_id, alert.ra, alert.dec, alert.mjd, alert.band, alert.visit_id):
        assert value is not None
    assert alert.object_id == record["diaObject"]["diaObjectId"]
    assert alert.n_previous == len(record["prvDiaSources"])
    ss_object = record.get("ssObject") or record.get("ssSource")
    if ss_object is not None:
        assert alert.ss_name == str(ss_object["ssObjectId"])
    else:
        assert alert.ss_name is None
    fresh = LSST_PROFILE.with_alert_id(record, 99)
    assert view(fresh).alert_id == 99
    assert still_valid(schema, fresh)


def test_lsst_versions_cover_3_0_to_11_1():
    versions = [f"{d.parent.name}.{d.name}" for d in LSST_VERSION_DIRS]
    assert versions[0] == "3.0"
    assert versions[-1] == "11.1"
    assert len(versions) >= 15


# ----------------------------------------------------------------- the solar-system rule
# The one definition of solar-system membership (SurveyProfile.is_solar_system, also
# AlertView.is_solar_system), checked against rules written out from the raw fields.


def record_of(path: Path) -> dict:
    return read(path)[1]


def version_of(version_dir: Path) -> tuple[int, int]:
    return int(version_dir.parent.name), int(version_dir.name)


ZTF_RECORDS = {path.name: record_of(path) for path in ZTF_FILES}
LSST_RECORDS = {path.name: record_of(path) for path in LSST_FILES}


def is_solar_system(record: dict) -> bool:
    """The rule through both its doors: the profile's method and the view's attribute."""
    answer = profile_for(record).is_solar_system(record)
    assert view(record).is_solar_system is answer
    return answer


def ztf_expected_solar(candidate: dict) -> bool:
    """Explicit rule: ssdistnr, ssmagnr and ssnamenr all set."""
    return (
        candidate["ssdistnr"] is not None
        and candidate["ssdistnr"] != -999.0
        and candidate["ssmagnr"] is not None
        and candidate["ssmagnr"] != -999.0
        and candidate["ssnamenr"] is not None
        and candidate["ssnamenr"] != "null"
    )


@pytest.mark.parametrize("name", sorted(ZTF_RECORDS), ids=lambda n: n[:24])
def test_is_solar_system_on_ztf_samples(name):
    record = ZTF_RECORDS[name]
    assert is_solar_system(record) is ztf_expected_solar(record["candidate"])


def test_ztf_samples_have_11_solar_system_alerts():
    expected = [ztf_expected_solar(r["candidate"]) for r in ZTF_RECORDS.values()]
    assert len(expected) == 18 and sum(expected) == 11
    assert sum(is_solar_system(r) for r in ZTF_RECORDS.values()) == 11


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, True),
        ({"ssdistnr": 0.0}, True),
        ({"ssnamenr": "null"}, False),
        ({"ssnamenr": None}, False),
        ({"ssmagnr": -999.0}, False),
        ({"ssmagnr": None}, False),
        ({"ssdistnr": -999.0}, False),
        ({"ssdistnr": float("nan")}, False),
    ],
)
def test_is_solar_system_ztf_edge_cases(changes, expected):
    solar = next(r for r in ZTF_RECORDS.values() if r["candidate"]["ssnamenr"] != "null")
    record = {**solar, "candidate": {**solar["candidate"], **changes}}
    assert is_solar_system(record) is expected
    # A missing field counts as unset too.
    for name in changes:
        del record["candidate"][name]
        assert not is_solar_system(record)


@pytest.mark.parametrize("name", sorted(LSST_RECORDS), ids=lambda n: n[:24])
def test_is_solar_system_on_lsst_samples(name):
    record = LSST_RECORDS[name]
    ss_object_id = record["diaSource"]["ssObjectId"]
    expected = (ss_object_id is not None and ss_object_id != 0) or record["ssSource"] is not None
    assert is_solar_system(record) is expected


def test_lsst_samples_have_2_solar_system_alerts():
    assert sum(is_solar_system(r) for r in LSST_RECORDS.values()) == 2


@pytest.mark.parametrize(
    "version_dir",
    LSST_VERSION_DIRS,
    ids=lambda d: "v{}.{}".format(*version_of(d)),
)
def test_is_solar_system_on_official_samples_of_every_version(version_dir):
    record = record_of(version_dir / "sample_data" / "fakeAlert.avro")
    if version_of(version_dir) < (8, 0):
        assert "ssSource" not in record
        ss_object = record["ssObject"]
        expected = ss_object is not None and ss_object["ssObjectId"] not in (None, 0)
    else:
        assert "ssObject" not in record
        ss_object_id = record["diaSource"]["ssObjectId"]
        expected = ss_object_id not in (None, 0) or record["ssSource"] is not None
    assert is_solar_system(record) is expected


def lsst_ss_source_9_0() -> dict:
    """The ssSource record of a 9.0 sample alert that has one."""
    return next(r["ssSource"] for r in LSST_RECORDS.values() if r["ssSource"] is not None)


@pytest.mark.parametrize("version", ["3.0", "5.0", "7.4"])
def test_is_solar_system_on_simulated_records_before_8_0(version):
    codec = SchemaFileCodec.lsst(version)
    major, minor = version.split(".")
    official = record_of(
        Path(str(get_schema_root())) / major / minor / "sample_data" / "fakeAlert.avro"
    )
    (simulated,) = [s.record for s in simulate(1, version, seed=3)]
    assert simulated["ssObject"] is None and simulated["diaSource"]["ssObjectId"] is None
    assert not is_solar_system(simulated)

    with_object = {**simulated, "ssObject": copy.deepcopy(official["ssObject"])}
    assert with_object["ssObject"]["ssObjectId"] != 0
    assert is_solar_system(with_object)
    zero_object = {**with_object, "ssObject": {**with_object["ssObject"], "ssObjectId": 0}}
    assert not is_solar_system(zero_object)
    by_source = {**simulated, "diaSource": {**simulated["diaSource"], "ssObjectId": 42}}
    assert is_solar_system(by_source)
    zero_source = {**simulated, "diaSource": {**simulated["diaSource"], "ssObjectId": 0}}
    assert not is_solar_system(zero_source)
    for record in (simulated, with_object, zero_object, by_source, zero_source):
        assert validate(record, codec.schema.parsed, raise_errors=True)


@pytest.mark.parametrize("version", ["9.0", "10.0", "11.0", "11.1"])
def test_is_solar_system_on_simulated_records_from_8_0(version):
    # simulate() cannot make 8.0 alerts; 8.0 is covered by its official sample above.
    codec = SchemaFileCodec.lsst(version)
    (simulated,) = [s.record for s in simulate(1, version, seed=5)]
    assert simulated["ssSource"] is None and simulated["diaSource"]["ssObjectId"] is None
    assert "ssObject" not in simulated
    assert not is_solar_system(simulated)
    by_source = {**simulated, "diaSource": {**simulated["diaSource"], "ssObjectId": 7}}
    assert is_solar_system(by_source)
    zero_source = {**simulated, "diaSource": {**simulated["diaSource"], "ssObjectId": 0}}
    assert not is_solar_system(zero_source)
    for record in (simulated, by_source, zero_source):
        assert validate(record, codec.schema.parsed, raise_errors=True)
    # An ssSource record naming its object is enough.
    with_ss_source = {**simulated, "ssSource": lsst_ss_source_9_0()}
    assert is_solar_system(with_ss_source)
    if version == "9.0":
        assert validate(with_ss_source, codec.schema.parsed, raise_errors=True)


def test_is_solar_system_rejects_other_records():
    with pytest.raises(UnknownSurveyError):
        is_solar_system({"foo": 1})


# ------------------------------------------------------------------------------ helpers


def test_profile_for():
    assert profile_for(read(ZTF_FILES[0])[1]) is ZTF_PROFILE
    assert profile_for(read(LSST_FILES[0])[1]) is LSST_PROFILE
    with pytest.raises(ValueError, match="neither"):
        profile_for({"foo": 1})


def test_is_missing():
    assert MISSING_NUMBER == -999.0
    assert MISSING_STRING == "null"
    for value in (None, math.nan, -999.0, -999, "null"):
        assert is_missing(value), value
    for value in (0, 0.0, "", "119257", -998.9, False, b"null"):
        assert not is_missing(value), value


# ------------------------------------------------------ profile methods on hand-made dicts


def ztf_dict(**candidate) -> dict:
    return {"objectId": "ZTF18aaaaaaa", "candid": 1, "candidate": {"candid": 1, **candidate}}


def lsst_dict(source: dict | None = None, **top) -> dict:
    return {"diaSource": {"diaSourceId": 7, **(source or {})}, **top}


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ({"ssnamenr": "1036", "ssdistnr": 1.25, "ssmagnr": 18.5}, ("1036", 1.25)),
        ({"ssnamenr": "1036", "ssdistnr": 0, "ssmagnr": 18.5}, ("1036", 0.0)),
        ({"ssnamenr": "1036", "ssdistnr": 1.25, "ssmagnr": -999.0}, (None, None)),
        ({"ssnamenr": "1036", "ssdistnr": -999.0, "ssmagnr": 18.5}, (None, None)),
        ({"ssnamenr": "1036", "ssmagnr": 18.5}, (None, None)),
        ({"ssnamenr": "null", "ssdistnr": 1.25, "ssmagnr": 18.5}, (None, None)),
        ({}, (None, None)),
    ],
)
def test_ztf_solar_system_needs_all_three_fields(candidate, expected):
    record = ztf_dict(**candidate)
    assert ZTF_PROFILE.solar_system(record) == expected
    assert ZTF_PROFILE.is_solar_system(record) is (expected[0] is not None)
    assert view(record).is_solar_system is (expected[0] is not None)
    assert (view(record).ss_name, view(record).ss_distance_arcsec) == expected


@pytest.mark.parametrize(
    ("record", "name"),
    [
        (lsst_dict(), None),
        (lsst_dict({"ssObjectId": 0}), None),
        (lsst_dict({"ssObjectId": 42}), "42"),
        (lsst_dict({"ssObjectId": None}, ssSource={"ssObjectId": 43}), "43"),
        (lsst_dict(ssSource={"ssObjectId": 0, "designation": "2011 AB1"}), "2011 AB1"),
        (lsst_dict(ssSource={"ssObjectId": 0}), None),
        (lsst_dict(ssObject={"ssObjectId": 44}), "44"),
        (lsst_dict(ssObject={"ssObjectId": 0}), None),
        (lsst_dict(MPCORB={"ssObjectId": 0, "mpcDesignation": "2019 XY3"}), "2019 XY3"),
        (lsst_dict(mpc_orbits={"ssObjectId": 45}), "45"),
    ],
)
def test_lsst_solar_system_by_object_id_then_designation(record, name):
    assert LSST_PROFILE.solar_system(record) == (name, None)
    assert LSST_PROFILE.is_solar_system(record) is (name is not None)


@pytest.mark.parametrize(
    ("flag", "sign"),
    [("t", 1), ("1", 1), (" T ", 1), (True, 1), ("f", -1), ("0", -1), (False, -1)]
    + [("x", None), (None, None), (1, None)],
)
def test_ztf_difference_sign(flag, sign):
    assert ZTF_PROFILE.difference_sign(ztf_dict(isdiffpos=flag)) == sign


def test_ztf_difference_sign_without_a_candidate():
    assert ZTF_PROFILE.difference_sign({"objectId": "x"}) is None


@pytest.mark.parametrize(
    ("source", "sign"),
    [({"psfFlux": 1200.0}, 1), ({"psfFlux": -3.5}, -1), ({"psfFlux": 0.0}, None), ({}, None)]
    + [({"psFlux": 8.0}, 1)],
)
def test_lsst_difference_sign(source, sign):
    assert LSST_PROFILE.difference_sign(lsst_dict(source)) == sign


def test_detection_ids_and_previous_detections_as_records():
    prv_ztf = {"candid": 99, "jd": 2460000.5, "fid": 2}
    wrapped = ZTF_PROFILE.previous_as_record(prv_ztf)
    assert wrapped == {"candidate": prv_ztf}
    assert ZTF_PROFILE.detection_id(wrapped) == 99
    assert ZTF_PROFILE.mjd(wrapped) == 60000.0
    assert ZTF_PROFILE.band(wrapped) == "r"
    assert ZTF_PROFILE.detection_id(ztf_dict()) == 1
    assert ZTF_PROFILE.detection_id({"candidate": {}}) is None

    prv_lsst = {"diaSourceId": 5, "midpointMjdTai": 60001.25, "band": "i"}
    wrapped = LSST_PROFILE.previous_as_record(prv_lsst)
    assert wrapped == {"diaSource": prv_lsst}
    assert LSST_PROFILE.detection_id(wrapped) == 5
    assert LSST_PROFILE.mjd(wrapped) == 60001.25
    assert LSST_PROFILE.band(wrapped) == "i"
    assert LSST_PROFILE.detection_id(lsst_dict()) == 7
    assert LSST_PROFILE.detection_id({"diaSource": {}}) is None
