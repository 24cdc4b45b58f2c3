"""Light-curve files of the sample alerts' histories, read back with astropy.

The history of each sample alert's object is built here from the alert's raw fields (the
detection and its previous detections, as the objects worker's table holds them: see
:mod:`brokerapp.domain.candidates`), and every column read back from the FITS table and the
VOTable is compared with those raw fields.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse

from brokerapp.domain.lightcurve_files import LightCurveError, light_curve_files

DATA = Path(__file__).parents[1] / "data"
BANDS = {1: "g", 2: "r", 3: "i"}


def number(value):
    return None if value is None or value == -999.0 else float(value)


def ztf_history(record):
    """Detections of the alert and its prv_candidates (upper limits have no candid)."""
    sources = [record["candidate"], *(record.get("prv_candidates") or ())]
    out = []
    for s in sources:
        if s.get("candid") is None:
            continue
        out.append(
            {
                "candidate_id": s["candid"],
                "object_id": record["objectId"],
                "survey": "ztf",
                "mjd": s["jd"] - 2400000.5,
                "band": BANDS[s["fid"]],
                "ra": s["ra"],
                "dec": s["dec"],
                "mag": number(s["magpsf"]),
                "mag_err": number(s["sigmapsf"]),
                "flux": None,
                "flux_err": None,
                "visit_id": s["pid"],
            }
        )
    return out


def lsst_history(record):
    object_id = str(record["diaObject"]["diaObjectId"])
    out = []
    for s in [record["diaSource"], *(record.get("prvDiaSources") or ())]:
        flux = s["psfFlux"]
        out.append(
            {
                "candidate_id": s["diaSourceId"],
                "object_id": object_id,
                "survey": "lsst",
                "mjd": s["midpointMjdTai"],
                "band": s["band"],
                "ra": s["ra"],
                "dec": s["dec"],
                "mag": -2.5 * math.log10(flux) + 31.4 if flux > 0 else None,
                "mag_err": 1.0857362047581294 * s["psfFluxErr"] / flux if flux > 0 else None,
                "flux": flux,
                "flux_err": s["psfFluxErr"],
                "visit_id": s["visit"],
            }
        )
    return out


def histories():
    out = []
    for path in sorted(DATA.glob("ztf/*.avro"))[:6]:
        out.append(ztf_history(next(fastavro.reader(path.open("rb")))))
    for path in sorted(DATA.glob("lsst/*.avro"))[:6]:
        record = next(fastavro.reader(path.open("rb")))
        if record.get("diaObject"):
            out.append(lsst_history(record))
    return out


def equal(got, want, rel=0.0):
    if want is None:
        return bool(np.ma.is_masked(got)) or (isinstance(got, float) and math.isnan(got))
    if isinstance(want, float):
        return math.isclose(float(got), want, rel_tol=rel, abs_tol=0)
    return got == want


@pytest.mark.parametrize("history", histories(), ids=lambda h: str(h[0]["object_id"]))
def test_fits_and_votable_hold_every_detection_in_time_order(history):
    files = light_curve_files(list(reversed(history)))  # any order in, time order out
    obj, survey = history[0]["object_id"], history[0]["survey"]
    assert set(files) == {f"lightcurves/{survey}/{obj}.fits", f"lightcurves/{survey}/{obj}.vot"}
    want = sorted(history, key=lambda d: (d["mjd"], d["candidate_id"]))

    hdul = fits.open(io.BytesIO(files[f"lightcurves/{survey}/{obj}.fits"]))
    table = hdul["LIGHTCURVE"]
    assert table.header["OBJECT"] == obj and table.header["SURVEY"] == survey
    assert table.header["TIMESYS"] == ("UTC" if survey == "ztf" else "TAI")
    assert table.header["NDET"] == len(want) == len(table.data)
    assert table.columns["mjd"].unit == "d" and table.columns["mag"].unit == "mag"
    null_visit = table.header["TNULL10"]
    for row, d in zip(table.data, want, strict=True):
        for name in ("candidate_id", "mjd", "band", "mag", "mag_err", "flux", "flux_err"):
            assert equal(row[name], d[name]), (name, row[name], d[name])
        assert equal(row["ra"], d["ra"]) and equal(row["dec"], d["dec"])
        assert row["visit_id"] == (null_visit if d["visit_id"] is None else d["visit_id"])

    votable = parse(io.BytesIO(files[f"lightcurves/{survey}/{obj}.vot"]))
    vt = votable.get_first_table()
    params = {p.name: p.value for p in vt.params}
    assert params["OBJECT"] == obj and params["SURVEY"] == survey
    fields = {f.name: f for f in vt.fields}
    assert fields["mjd"].ucd == "time.epoch" and str(fields["flux"].unit) == "nJy"
    rows = vt.to_table()
    assert len(rows) == len(want)
    for row, d in zip(rows, want, strict=True):
        for name in ("candidate_id", "band", "visit_id"):
            assert equal(row[name], d[name]), (name, row[name], d[name])
        for name in ("mjd", "mag", "mag_err", "flux", "flux_err", "ra", "dec"):
            assert equal(row[name], d[name], rel=1e-15), (name, row[name], d[name])


def test_the_same_history_gives_the_same_bytes():
    history = histories()[0]
    assert light_curve_files(history) == light_curve_files(list(reversed(history)))


def test_a_changed_history_rewrites_the_same_names():
    history = histories()[0]
    first = light_curve_files(history[:-1])
    second = light_curve_files(history)
    assert set(first) == set(second) and first != second


@pytest.mark.parametrize(
    "change",
    [
        lambda h: [],
        lambda h: [dict(h[0], object_id="../etc")] + h[1:],
        lambda h: [dict(d, object_id="../etc") for d in h],
        lambda h: [dict(d, mjd=None) for d in h],
        lambda h: [dict(h[0], mag="bright")] + h[1:],
        lambda h: [dict(h[0], visit_id="first")] + h[1:],
        lambda h: [dict(h[0], candidate_id=2**70)] + h[1:],
    ],
    ids=["empty", "two objects", "unsafe name", "no time", "not a number", "bad visit", "huge"],
)
def test_bad_histories_raise(change):
    with pytest.raises(LightCurveError):
        light_curve_files(change(histories()[0]))
