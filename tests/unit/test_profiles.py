"""Tests of brokerapp.model.profiles on real ZTF alerts and every LSST schema version.

Records are read with plain fastavro; expected values are taken straight from the raw dicts by
each survey's (and LSST schema version's) own field names.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import fastavro
import pytest
from lsst.alert.packet.schema import get_schema_root

from brokerapp.model.profiles import (
    LSST_PROFILE,
    MISSING_NUMBER,
    MISSING_STRING,
    ZTF_PROFILE,
    AlertView,
    is_missing,
    profile_for,
    view,
)

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
