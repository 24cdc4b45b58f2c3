"""CandidateUpdate records and database rows, checked against the alerts' raw fields."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import fastavro
import pytest

from brokerapp.domain.candidates import (
    CandidateError,
    annotation_rows,
    candidate_rows,
    candidate_update,
    object_row,
    ss_candidate_rows,
)
from brokerapp.model.alert import Alert

DATA = Path(__file__).parents[1] / "data"


def records(survey):
    out = []
    for path in sorted(DATA.glob(f"{survey}/*.avro")):
        out.extend(fastavro.reader(io.BytesIO(path.read_bytes())))
    return out


def ztf_is_solar(record):
    return record["candidate"]["ssnamenr"] not in (None, "null")


@pytest.mark.parametrize("record", records("ztf"), ids=lambda r: str(r["candid"]))
def test_ztf_update_carries_the_candidate_and_previous_detections(record):
    update = candidate_update(Alert.of(record), 1234.0)
    json.dumps(update, allow_nan=False)
    c = record["candidate"]
    assert update["alert_id"] == record["candid"]
    assert update["object_id"] == record["objectId"]
    assert update["appended_ms"] == 1234.0
    own = update["candidate"]
    assert own["candidate_id"] == c["candid"]
    assert own["mjd"] == pytest.approx(c["jd"] - 2400000.5, abs=1e-9)
    assert own["band"] == {1: "g", 2: "r", 3: "i"}[c["fid"]]
    assert (own["ra"], own["dec"]) == (c["ra"], c["dec"])
    assert (own["mag"], own["mag_err"]) == (c["magpsf"], c["sigmapsf"])
    assert own["visit_id"] == c["pid"]
    # Upper limits (no candid) are not detections.
    prv = [p for p in record["prv_candidates"] or [] if p["candid"] is not None]
    assert [p["candidate_id"] for p in update["previous"]] == [p["candid"] for p in prv]
    assert [p["mag"] for p in update["previous"]] == [p["magpsf"] for p in prv]
    assert all(p["object_id"] == record["objectId"] for p in update["previous"])
    if ztf_is_solar(record):
        assert update["ss_name"] == c["ssnamenr"]
        assert update["ss_distance_arcsec"] == c["ssdistnr"]
        assert ss_candidate_rows(update)[0]["ss_name"] == c["ssnamenr"]
    else:
        assert update["ss_name"] is None
        rows = candidate_rows(update)
        assert {r["candidate_id"] for r in rows} == {c["candid"]} | {p["candid"] for p in prv}
        assert all(r["object_id"] == record["objectId"] for r in rows)
        assert rows[0]["decl"] == c["dec"]


@pytest.mark.parametrize("record", records("lsst"), ids=lambda r: str(r["diaSourceId"]))
def test_lsst_update_turns_fluxes_into_magnitudes(record):
    update = candidate_update(Alert.of(record), 0.0)
    json.dumps(update, allow_nan=False)
    source = record["diaSource"]
    own = update["candidate"]
    assert own["candidate_id"] == source["diaSourceId"]
    assert own["mjd"] == source["midpointMjdTai"]
    assert own["band"] == source["band"]
    assert own["flux"] == source["psfFlux"]
    if source["psfFlux"] > 0:
        assert own["mag"] == pytest.approx(-2.5 * math.log10(source["psfFlux"]) + 31.4)
        err = 2.5 / math.log(10) * source["psfFluxErr"] / source["psfFlux"]
        assert own["mag_err"] == pytest.approx(err)
    else:
        assert own["mag"] is None
    prv = record.get("prvDiaSources") or []
    assert [p["candidate_id"] for p in update["previous"]] == [p["diaSourceId"] for p in prv]
    assert [p["mjd"] for p in update["previous"]] == [p["midpointMjdTai"] for p in prv]


def test_a_detection_without_time_is_refused():
    record = records("ztf")[0]
    broken = dict(record, candidate=dict(record["candidate"], jd=float("nan")))
    with pytest.raises(CandidateError, match="time"):
        candidate_update(Alert.of(broken), 0.0)


def test_nan_photometry_is_missing_but_impossible_values_are_refused():
    record = records("ztf")[0]

    def alert_with(**fields):
        return Alert.of(dict(record, candidate=dict(record["candidate"], **fields)))

    update = candidate_update(alert_with(magpsf=float("nan")), 0.0)
    assert update["candidate"]["mag"] is None
    json.dumps(update, allow_nan=False)
    for fields, field in (
        ({"magpsf": float("inf")}, "mag"),
        ({"magpsf": 1e308}, "mag"),
        ({"sigmapsf": -1e300}, "mag_err"),
        ({"ra": float("nan")}, "ra"),
        ({"ra": 360.5}, "ra"),
        ({"dec": -90.01}, "dec"),
        ({"jd": 1e300}, "MJD"),
    ):
        with pytest.raises(CandidateError, match=field):
            candidate_update(alert_with(**fields), 0.0)
    lsst = records("lsst")[0]
    for fields, field in (
        ({"psfFlux": float("inf")}, "flux"),
        ({"psfFlux": -float("inf")}, "flux"),
        ({"psfFluxErr": float("inf")}, "flux_err"),
        ({"psfFluxErr": -3.0}, "flux_err"),
        ({"psfFlux": 1e25}, "flux"),
    ):
        broken = dict(lsst, diaSource=dict(lsst["diaSource"], **fields))
        with pytest.raises(CandidateError, match=field):
            candidate_update(Alert.of(broken), 0.0)


def _lsst_with(**fields):
    lsst = records("lsst")[0]
    return Alert.of(dict(lsst, diaSource=dict(lsst["diaSource"], **fields)))


def _ztf_with(**fields):
    ztf = records("ztf")[0]
    return Alert.of(dict(ztf, candidate=dict(ztf["candidate"], **fields)))


def test_a_faint_detection_is_stored_with_its_flux_and_no_magnitude():
    # A real Rubin 7.4 diaSource: signal-to-noise 0.02 (its magnitude error would be 63 mag).
    own = candidate_update(_lsst_with(psfFlux=12.35, psfFluxErr=720.6), 0.0)["candidate"]
    assert (own["flux"], own["flux_err"]) == (12.35, 720.6)
    assert (own["mag"], own["mag_err"]) == (None, None)
    # Huge errors of any size are measurements too.
    own = candidate_update(_lsst_with(psfFlux=5.0, psfFluxErr=1e308), 0.0)["candidate"]
    assert (own["flux"], own["flux_err"], own["mag"]) == (5.0, 1e308, None)


def test_extreme_but_valid_lsst_photometry_is_stored():
    # S/N exactly 1 keeps its magnitude: -2.5 log10(400) + 31.4, error 2.5 / ln 10.
    own = candidate_update(_lsst_with(psfFlux=400.0, psfFluxErr=400.0), 0.0)["candidate"]
    assert own["mag"] == pytest.approx(24.894850021680094)
    assert own["mag_err"] == pytest.approx(1.0857362047581294)
    # A tiny positive flux measured well: magnitude 38.9, beyond any measured-magnitude range.
    own = candidate_update(_lsst_with(psfFlux=1e-3, psfFluxErr=1e-4), 0.0)["candidate"]
    assert own["mag"] == pytest.approx(38.9)
    # A negative difference flux: stored, no magnitude.
    own = candidate_update(_lsst_with(psfFlux=-1523.0, psfFluxErr=80.0), 0.0)["candidate"]
    assert (own["flux"], own["mag"], own["mag_err"]) == (-1523.0, None, None)
    # No flux at all (NaN): missing, not refused.
    own = candidate_update(_lsst_with(psfFlux=float("nan")), 0.0)["candidate"]
    assert (own["flux"], own["mag"]) == (None, None)


def test_extreme_but_valid_ztf_photometry_is_stored_as_measured():
    own = candidate_update(_ztf_with(sigmapsf=63.37), 0.0)["candidate"]
    assert own["mag_err"] == pytest.approx(63.37)
    own = candidate_update(_ztf_with(magpsf=50.0, sigmapsf=0.0), 0.0)["candidate"]
    assert (own["mag"], own["mag_err"]) == (50.0, 0.0)


@pytest.mark.parametrize(
    ("ra", "dec"), [(0.0, 0.0), (360.0, 0.0), (10.0, 90.0), (10.0, -90.0), (359.9999999, 89.99)]
)
def test_positions_at_the_edges_of_the_sky_are_stored(ra, dec):
    for alert in (_ztf_with(ra=ra, dec=dec), _lsst_with(ra=ra, dec=dec)):
        own = candidate_update(alert, 0.0)["candidate"]
        assert (own["ra"], own["dec"]) == (ra, dec)


@pytest.mark.parametrize("mjd", [40000.0, 100000.0])
def test_the_first_and_last_valid_times_are_stored(mjd):
    assert candidate_update(_lsst_with(midpointMjdTai=mjd), 0.0)["candidate"]["mjd"] == mjd
    own = candidate_update(_ztf_with(jd=mjd + 2400000.5), 0.0)["candidate"]
    assert own["mjd"] == pytest.approx(mjd, abs=1e-6)
    for outside in (mjd - 1.0 if mjd == 40000.0 else mjd + 1.0,):
        with pytest.raises(CandidateError, match="MJD"):
            candidate_update(_lsst_with(midpointMjdTai=outside), 0.0)


def test_a_detection_seen_in_two_lists_is_one_row():
    det = {"candidate_id": 5, "object_id": "o", "survey": "ztf", "mjd": 1.0}
    update = {"alert_id": 5, "object_id": "o", "candidate": det, "previous": [det, det]}
    assert len(candidate_rows(update)) == 1
    with pytest.raises(CandidateError, match="no object"):
        candidate_rows(dict(update, object_id=None))
    with pytest.raises(CandidateError, match="bad detection"):
        candidate_rows(dict(update, previous=[{"object_id": "o"}]))
    with pytest.raises(CandidateError, match="solar-system"):
        ss_candidate_rows(dict(update, ss_name=None))


def test_watchlist_annotation_is_one_row_with_the_rest_as_detail():
    record = {
        "alert_id": 9,
        "object_id": "ZTF18a",
        "watchlist_id": "wl1",
        "entry": "M31",
        "separation_arcsec": 1.5,
        "mjd": 60000.5,
        "note": "x",
    }
    (row,) = annotation_rows(record)
    assert row == {
        "alert_id": 9,
        "source": "watchlist:wl1",
        "entry": "M31",
        "object_id": "ZTF18a",
        "separation_arcsec": 1.5,
        "mjd": 60000.5,
        "detail": '{"note": "x"}',
    }


def test_catalogue_annotations_give_a_row_per_match_other_processors_one_each():
    record = {
        "survey": "lsst",
        "alert_id": 7,
        "object_id": 123,
        "annotations": {
            "catalogue_match": {
                "catalogue": "gaia",
                "matches": [
                    {"id": 11, "separation_arcsec": 0.4, "mag": 17.0},
                    {"id": 12, "separation_arcsec": 1.9},
                ],
            },
            "AnnotateView": {"band": "r"},
        },
    }
    rows = annotation_rows(record)
    assert [(r["source"], r["entry"], r["separation_arcsec"]) for r in rows] == [
        ("AnnotateView", "", None),
        ("catalogue:gaia", "11", 0.4),
        ("catalogue:gaia", "12", 1.9),
    ]
    assert rows[0]["detail"] == '{"annotation": {"band": "r"}}'
    assert rows[1]["detail"] == '{"mag": 17.0}'
    assert rows[2]["detail"] is None
    assert {r["object_id"] for r in rows} == {"123"}
    with pytest.raises(CandidateError, match="neither"):
        annotation_rows({"alert_id": 1})


def test_object_row_flattens_the_statistics():
    update = {
        "object_id": "o",
        "survey": "ztf",
        "n_detections": 3,
        "first_mjd": 1.0,
        "last_mjd": 3.0,
        "latest": {"candidate_id": 30, "mjd": 3.0, "band": "r", "mag": 18.5, "mag_err": 0.1},
        "ra_mean": 10.0,
        "dec_mean": -5.0,
        "position_scatter_arcsec": 0.2,
        "bands": {"r": {"n": 3}},
        "colours": {},
        "alert_id": 30,
    }
    row = object_row(update)
    assert row["latest_candidate_id"] == 30
    assert row["decl_mean"] == -5.0
    assert json.loads(row["stats"]) == {"bands": {"r": {"n": 3}}, "colours": {}}
    assert "alert_id" not in row
    with pytest.raises(CandidateError):
        object_row({k: v for k, v in update.items() if k != "latest"})
