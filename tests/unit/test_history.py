"""Tests of brokerapp.domain.history: merging an object's detection history and its statistics.

Every statistic is checked against an oracle written here with numpy and astropy, which does
not share code with the module: ``np.polyfit`` for the rates, ``np.mean`` and ``np.lexsort``
for means, latest and peak values, astropy's ``SkyCoord`` (sum of Cartesian unit vectors,
``separation``) for the mean position and its scatter. The light curve is a realistic
three-band ZTF one (30 detections over 40 days, rising then fading, with missing magnitudes
and positions, and detections outside the rate and colour windows).
"""

from __future__ import annotations

import copy
import json
import math
import random
from itertools import pairwise

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from hypothesis import given, settings
from hypothesis import strategies as st

from brokerapp.domain.history import BAND_ORDER, merge_history, object_statistics

RATE_WINDOW = 10.0
COLOUR_WINDOW = 1.0
BAND_FIELDS = {
    "n",
    "first_mjd",
    "last_mjd",
    "latest_mag",
    "latest_mag_err",
    "latest_mjd",
    "peak_mag",
    "peak_mjd",
    "mean_mag",
    "rate_mag_per_day",
    "rate_n",
}


def detection(
    candidate_id: int,
    mjd: float | None,
    band: str | None = "g",
    mag: float | None = 18.0,
    *,
    ra: float | None = 150.0,
    dec: float | None = 2.0,
    mag_err: float | None = 0.05,
    survey: str = "ztf",
    object_id: str = "ZTF24aaaaaaa",
    **extra: object,
) -> dict:
    return {
        "candidate_id": candidate_id,
        "object_id": object_id,
        "survey": survey,
        "mjd": mjd,
        "band": band,
        "ra": ra,
        "dec": dec,
        "mag": mag,
        "mag_err": mag_err,
        "flux": None,
        "flux_err": None,
        "visit_id": None,
        **extra,
    }


def stats(history: list[dict], **kwargs: object) -> dict:
    kwargs.setdefault("rate_window_days", RATE_WINDOW)
    kwargs.setdefault("colour_window_days", COLOUR_WINDOW)
    return object_statistics(history, **kwargs)


# --- the realistic light curve

G_MJD = [60000.1, 60002.3, 60005.2, 60008.9, 60012.0, 60016.5]
G_MJD += [60021.1, 60025.7, 60030.2, 60033.3, 60036.4, 60039.6]
R_MJD = [60000.15, 60003.4, 60006.0, 60009.7, 60013.2, 60017.8]
R_MJD += [60022.0, 60026.9, 60031.0, 60035.5, 60038.1, 60040.0]
I_MJD = [60001.0, 60007.5, 60015.2, 60024.4, 60034.0, 60039.8]
PEAK = {"g": 18.0, "r": 18.3, "i": 18.6}
NO_MAG = {("g", 60016.5), ("r", 60038.1), ("i", 60039.8)}  # i has no magnitude in colour window
NO_POSITION = {("g", 60002.3), ("r", 60026.9)}
RA0, DEC0 = 150.1, 2.2


def light_curve(seed: int = 1) -> list[dict]:
    """Return the 30 detections in time order, candidate IDs not in time order."""
    rng = np.random.default_rng(seed)
    epochs = [(m, "g") for m in G_MJD] + [(m, "r") for m in R_MJD] + [(m, "i") for m in I_MJD]
    epochs.sort()
    ids = rng.permutation(len(epochs)) * 7 + 1_000_000_000_000
    detections = []
    for (mjd, band), cid in zip(epochs, ids, strict=True):
        dt = mjd - 60015.0
        model = PEAK[band] + (0.05 * dt if dt > 0 else -0.15 * dt)
        mag = float(model + rng.normal(0.0, 0.03))
        err = float(rng.uniform(0.02, 0.08))
        ra = float(RA0 + rng.normal(0.0, 0.3 / 3600) / math.cos(math.radians(DEC0)))
        dec = float(DEC0 + rng.normal(0.0, 0.3 / 3600))
        if (band, mjd) in NO_MAG:
            mag, err = None, None
        if (band, mjd) in NO_POSITION:
            ra, dec = None, None
        detections.append(
            detection(int(cid), mjd, band, mag, ra=ra, dec=dec, mag_err=err, fid=band)
        )
    return detections


# --- the oracle


def finite(value: object) -> bool:
    return value is not None and bool(np.isfinite(value))


def oracle_band(detections: list[dict], band: str, rate_window: float) -> dict:
    dets = [d for d in detections if d["band"] == band]
    mjd = np.array([d["mjd"] for d in dets], dtype=float)
    out = {"n": len(dets), "first_mjd": mjd.min(), "last_mjd": mjd.max()}
    with_mag = [d for d in dets if finite(d["mag"])]
    if not with_mag:
        none = dict.fromkeys(BAND_FIELDS - {"n", "first_mjd", "last_mjd", "rate_n"})
        return {**out, **none, "rate_n": 0}
    t = np.array([d["mjd"] for d in with_mag], dtype=float)
    m = np.array([d["mag"] for d in with_mag], dtype=float)
    cid = np.array([d["candidate_id"] for d in with_mag])
    last = np.lexsort((cid, t))[-1]  # latest by (mjd, candidate_id)
    peak = np.lexsort((cid, t, m))[0]  # brightest, then earliest
    err = with_mag[last]["mag_err"]
    in_window = t >= t[last] - rate_window
    tw, mw = t[in_window], m[in_window]
    rate = float(np.polyfit(tw, mw, 1)[0]) if len(np.unique(tw)) >= 2 else None
    return {
        **out,
        "latest_mag": m[last],
        "latest_mag_err": err if finite(err) else None,
        "latest_mjd": t[last],
        "peak_mag": m[peak],
        "peak_mjd": t[peak],
        "mean_mag": np.mean(m),
        "rate_mag_per_day": rate,
        "rate_n": int(in_window.sum()),
    }


def oracle_position(detections: list[dict]) -> tuple[float, float, float] | None:
    dets = [d for d in detections if finite(d["ra"]) and finite(d["dec"])]
    if not dets:
        return None
    coords = SkyCoord([d["ra"] for d in dets] * u.deg, [d["dec"] for d in dets] * u.deg)
    x, y, z = coords.cartesian.xyz.value.sum(axis=1)
    mean = SkyCoord(x=x, y=y, z=z, representation_type="cartesian", frame="icrs")
    mean = SkyCoord(mean.spherical.lon, mean.spherical.lat, frame="icrs")
    sep = coords.separation(mean).arcsec
    return mean.ra.deg, mean.dec.deg, float(np.sqrt(np.mean(sep**2)))


def oracle_colours(detections: list[dict], order: tuple[str, ...], window: float) -> dict:
    last_mjd = max(d["mjd"] for d in detections)
    latest = {}
    for band in order:
        dets = [
            d
            for d in detections
            if d["band"] == band and finite(d["mag"]) and d["mjd"] >= last_mjd - window
        ]
        if dets:
            keys = np.lexsort(([d["candidate_id"] for d in dets], [d["mjd"] for d in dets]))
            latest[band] = dets[keys[-1]]["mag"]
    return {
        f"{a}-{b}": latest[a] - latest[b] for a, b in pairwise(order) if a in latest and b in latest
    }


def close(a: object, b: object, rel: float, abs_: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == pytest.approx(b, rel=rel, abs=abs_)


def assert_matches_oracle(detections: list[dict], result: dict, order: tuple[str, ...]) -> None:
    mjds = [d["mjd"] for d in detections]
    latest = max(detections, key=lambda d: (d["mjd"], d["candidate_id"]))
    assert result["object_id"] == latest["object_id"]
    assert result["survey"] == latest["survey"]
    assert result["n_detections"] == len(detections)
    assert result["history_length"] == len(detections)
    assert result["first_mjd"] == min(mjds)
    assert result["last_mjd"] == max(mjds)
    assert result["colour_mjd"] == max(mjds)
    assert result["latest"] == {
        "candidate_id": latest["candidate_id"],
        "mjd": latest["mjd"],
        "band": latest["band"],
        "mag": latest["mag"] if finite(latest["mag"]) else None,
        "mag_err": latest["mag_err"] if finite(latest["mag_err"]) else None,
    }

    position = oracle_position(detections)
    if position is None:
        assert result["ra_mean"] is None
        assert result["dec_mean"] is None
        assert result["position_scatter_arcsec"] is None
    else:
        ra, dec, scatter = position
        dra = (result["ra_mean"] - ra + 180.0) % 360.0 - 180.0
        assert abs(dra) * math.cos(math.radians(dec)) < 1e-10
        assert 0.0 <= result["ra_mean"] < 360.0
        assert result["dec_mean"] == pytest.approx(dec, abs=1e-10)
        assert result["position_scatter_arcsec"] == pytest.approx(scatter, rel=1e-7, abs=1e-7)

    bands = sorted({d["band"] for d in detections if d["band"] is not None})
    assert sorted(result["bands"]) == bands
    for band in bands:
        got = result["bands"][band]
        expected = oracle_band(detections, band, RATE_WINDOW)
        assert set(got) == BAND_FIELDS
        for key in ("n", "rate_n", "first_mjd", "last_mjd", "latest_mjd", "peak_mjd"):
            assert got[key] == expected[key], (band, key)
        for key in ("latest_mag", "latest_mag_err", "peak_mag", "mean_mag"):
            assert close(got[key], expected[key], 1e-12, 1e-12), (band, key)
        assert close(got["rate_mag_per_day"], expected["rate_mag_per_day"], 1e-6, 1e-9), band

    expected_colours = oracle_colours(detections, order, COLOUR_WINDOW)
    assert set(result["colours"]) == set(expected_colours)
    for key, value in expected_colours.items():
        assert result["colours"][key] == pytest.approx(value, rel=1e-12, abs=1e-12)
    json.dumps(result, allow_nan=False)


# --- statistics


def test_light_curve_against_oracle():
    curve = light_curve()
    result = stats(curve)
    assert_matches_oracle(curve, result, BAND_ORDER["ztf"])
    # The scenario covers what it is meant to: points outside the rate window, a missing
    # magnitude inside it, a colour outside the colour window, missing positions.
    assert result["bands"]["g"]["rate_n"] == 4 < result["bands"]["g"]["n"] - 1
    assert result["bands"]["r"]["rate_n"] == 3  # 60031.0, 60035.5, 60040.0 (60038.1 no mag)
    assert result["bands"]["i"]["last_mjd"] == 60039.8
    assert result["bands"]["i"]["latest_mjd"] == 60034.0
    assert set(result["colours"]) == {"g-r"}
    assert result["latest"]["band"] == "r" and result["latest"]["mjd"] == 60040.0
    # The light curve fades after its peak and rises before it.
    assert result["bands"]["g"]["rate_mag_per_day"] == pytest.approx(0.05, abs=0.02)
    assert 0.0 < result["position_scatter_arcsec"] < 1.0
    assert list(result["bands"]) == ["g", "r", "i"]


@pytest.mark.parametrize("seed", range(2, 12))
def test_light_curves_with_other_noise(seed):
    curve = light_curve(seed)
    assert_matches_oracle(curve, stats(curve), BAND_ORDER["ztf"])


def test_statistics_do_not_depend_on_input_order():
    curve = light_curve()
    shuffled = curve[:]
    random.Random(5).shuffle(shuffled)
    assert stats(shuffled) == stats(curve)


def test_statistics_do_not_modify_input():
    curve = light_curve()
    frozen = copy.deepcopy(curve)
    stats(curve)
    merge_history(curve[:10], curve[10:], 20)
    assert curve == frozen


def test_rate_window_bounds_are_inclusive():
    history = [
        detection(1, 60000.0, mag=20.0),  # exactly rate_window before the latest: included
        detection(2, 60005.0, mag=19.0),
        detection(3, 60010.0, mag=17.0),
    ]
    band = stats(history)["bands"]["g"]
    assert band["rate_n"] == 3
    assert band["rate_mag_per_day"] == pytest.approx(np.polyfit([0, 5, 10], [20, 19, 17], 1)[0])
    band = stats(history, rate_window_days=9.5)["bands"]["g"]
    assert band["rate_n"] == 2
    assert band["rate_mag_per_day"] == pytest.approx(-0.4)  # rising


def test_rate_needs_two_distinct_epochs():
    history = [detection(1, 60000.0, mag=20.0), detection(2, 60000.0, mag=19.0)]
    band = stats(history)["bands"]["g"]
    assert band["rate_mag_per_day"] is None
    assert band["rate_n"] == 2


def test_one_detection():
    single = detection(42, 60100.25, "r", 19.5, ra=10.0, dec=-30.0, mag_err=0.1)
    result = stats([single])
    assert result["n_detections"] == result["history_length"] == 1
    assert result["first_mjd"] == result["last_mjd"] == 60100.25
    assert result["latest"] == {
        "candidate_id": 42,
        "mjd": 60100.25,
        "band": "r",
        "mag": 19.5,
        "mag_err": 0.1,
    }
    assert result["ra_mean"] == pytest.approx(10.0, abs=1e-12)
    assert result["dec_mean"] == pytest.approx(-30.0, abs=1e-12)
    assert result["position_scatter_arcsec"] == 0.0
    assert result["bands"]["r"] == {
        "n": 1,
        "first_mjd": 60100.25,
        "last_mjd": 60100.25,
        "latest_mag": 19.5,
        "latest_mag_err": 0.1,
        "latest_mjd": 60100.25,
        "peak_mag": 19.5,
        "peak_mjd": 60100.25,
        "mean_mag": 19.5,
        "rate_mag_per_day": None,
        "rate_n": 1,
    }
    assert result["colours"] == {}
    assert result["colour_mjd"] == 60100.25
    json.dumps(result, allow_nan=False)


def test_band_with_a_single_point_has_no_rate():
    history = [
        detection(1, 60000.0, "g", 18.0),
        detection(2, 60001.0, "g", 18.1),
        detection(3, 60002.5, "r", 18.4),
    ]
    result = stats(history)
    assert result["bands"]["r"]["rate_mag_per_day"] is None
    assert result["bands"]["r"]["rate_n"] == 1
    assert result["bands"]["g"]["rate_mag_per_day"] == pytest.approx(0.1)
    assert result["colours"] == {}  # g's latest is 1.5 days before the last detection
    assert stats(history, colour_window_days=1.5)["colours"] == {"g-r": pytest.approx(-0.3)}


def test_band_without_any_magnitude():
    history = [
        detection(1, 60000.0, "g", 18.0),
        detection(2, 60000.5, "r", None, mag_err=None),
        detection(3, 60001.0, "r", float("nan"), mag_err=float("nan")),
    ]
    result = stats(history)
    assert result["bands"]["r"] == {
        "n": 2,
        "first_mjd": 60000.5,
        "last_mjd": 60001.0,
        "latest_mag": None,
        "latest_mag_err": None,
        "latest_mjd": None,
        "peak_mag": None,
        "peak_mjd": None,
        "mean_mag": None,
        "rate_mag_per_day": None,
        "rate_n": 0,
    }
    assert result["latest"]["mag"] is None and result["latest"]["mag_err"] is None
    assert result["colours"] == {}
    json.dumps(result, allow_nan=False)


def test_no_nan_or_infinity_in_output():
    inf = float("inf")
    nan = float("nan")
    history = [
        detection(1, 60000.0, "g", inf, mag_err=nan, ra=nan, dec=1.0),
        detection(2, 60000.5, "g", 18.0, mag_err=inf, ra=10.0, dec=inf),
        detection(3, 60001.0, "r", nan, mag_err=None, ra=None, dec=None),
    ]
    result = stats(history)
    text = json.dumps(result, allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text
    assert result["bands"]["g"]["n"] == 2
    assert result["bands"]["g"]["latest_mag"] == 18.0
    assert result["bands"]["g"]["latest_mag_err"] is None
    assert result["bands"]["g"]["mean_mag"] == 18.0
    assert result["ra_mean"] is None and result["position_scatter_arcsec"] is None


def test_peak_tie_takes_the_earliest():
    history = [
        detection(5, 60001.0, mag=17.5),
        detection(3, 60002.0, mag=17.0),
        detection(4, 60003.0, mag=17.0),
        detection(1, 60003.0, mag=17.0),
    ]
    band = stats(history)["bands"]["g"]
    assert band["peak_mag"] == 17.0
    assert band["peak_mjd"] == 60002.0
    assert band["latest_mjd"] == 60003.0


def test_latest_ties_broken_by_candidate_id():
    history = [
        detection(9, 60003.0, "g", 17.0, object_id="A"),
        detection(2, 60003.0, "r", 17.4, object_id="A"),
    ]
    result = stats(history)
    assert result["latest"]["candidate_id"] == 9
    assert result["latest"]["band"] == "g"
    assert result["colours"] == {"g-r": pytest.approx(-0.4)}


def test_ra_wrap():
    history = [
        detection(1, 60000.0, ra=359.9, dec=10.0),
        detection(2, 60000.1, ra=0.1, dec=10.0),
        detection(3, 60000.2, ra=359.95, dec=10.05),
        detection(4, 60000.3, ra=0.02, dec=9.97),
    ]
    result = stats(history)
    ra, dec, scatter = oracle_position(history)
    dra = (result["ra_mean"] - ra + 180.0) % 360.0 - 180.0
    assert abs(dra) < 1e-10
    assert min(result["ra_mean"], 360.0 - result["ra_mean"]) < 0.05  # near 0, not 180
    assert result["dec_mean"] == pytest.approx(dec, abs=1e-10)
    assert result["position_scatter_arcsec"] == pytest.approx(scatter, rel=1e-9)
    assert result["position_scatter_arcsec"] < 400.0  # 0.1 deg; a naive mean gives ~180 deg


def test_ra_mean_of_points_symmetric_about_zero_is_zero():
    history = [detection(1, 60000.0, ra=359.9, dec=0.0), detection(2, 60001.0, ra=0.1, dec=0.0)]
    result = stats(history)
    assert result["ra_mean"] < 1e-9 or result["ra_mean"] == 0.0
    assert 0.0 <= result["ra_mean"] < 360.0
    assert result["position_scatter_arcsec"] == pytest.approx(360.0, rel=1e-9)


def test_near_the_pole():
    history = [
        detection(i, 60000.0 + i, ra=ra, dec=89.9995 + 0.0001 * (i % 3))
        for i, ra in enumerate([0.0, 90.0, 170.0, 250.0, 359.0])
    ]
    result = stats(history)
    ra, dec, scatter = oracle_position(history)
    assert result["dec_mean"] == pytest.approx(dec, abs=1e-10)
    dra = (result["ra_mean"] - ra + 180.0) % 360.0 - 180.0
    assert abs(dra) * math.cos(math.radians(dec)) < 1e-9
    assert result["position_scatter_arcsec"] == pytest.approx(scatter, rel=1e-7)
    assert result["position_scatter_arcsec"] < 3.0


def test_antipodal_positions_have_no_mean():
    history = [detection(1, 60000.0, ra=0.0, dec=0.0), detection(2, 60001.0, ra=180.0, dec=0.0)]
    result = stats(history)
    assert result["ra_mean"] is None
    assert result["dec_mean"] is None
    assert result["position_scatter_arcsec"] is None


def test_default_band_order_by_survey():
    assert BAND_ORDER["ztf"] == ("g", "r", "i")
    assert BAND_ORDER["lsst"] == ("u", "g", "r", "i", "z", "y")
    history = [
        detection(1, 60000.0, "u", 20.0, survey="lsst"),
        detection(2, 60000.1, "g", 19.5, survey="lsst"),
        detection(3, 60000.2, "r", 19.2, survey="lsst"),
        detection(4, 60000.3, "z", 19.0, survey="lsst"),  # i missing: no r-i, no i-z
        detection(5, 60000.4, "y", 18.9, survey="lsst"),
        detection(6, 60000.5, "w", 18.0, survey="lsst"),  # not in the order: no colour
    ]
    result = stats(history)
    order = BAND_ORDER["lsst"]
    assert_matches_oracle(history, result, order)
    assert set(result["colours"]) == {"u-g", "g-r", "z-y"}
    assert list(result["bands"]) == ["u", "g", "r", "z", "y", "w"]
    # A ZTF object with the same bands only gets g-r.
    ztf = [dict(d, survey="ztf") for d in history]
    assert set(stats(ztf)["colours"]) == {"g-r"}
    # An explicit order wins.
    result = stats(history, band_order=("w", "y"))
    assert result["colours"] == {"w-y": pytest.approx(18.0 - 18.9)}


def test_detections_without_band_are_not_in_bands():
    history = [detection(1, 60000.0, None, 18.0), detection(2, 60001.0, "g", 18.2)]
    result = stats(history)
    assert list(result["bands"]) == ["g"]
    assert result["n_detections"] == 2
    assert result["latest"]["band"] == "g"


def test_empty_history_raises():
    with pytest.raises(ValueError):
        object_statistics([], rate_window_days=10.0, colour_window_days=1.0)


@pytest.mark.parametrize("window", [-1.0, float("nan")])
def test_bad_window_raises(window):
    with pytest.raises(ValueError):
        stats([detection(1, 60000.0)], rate_window_days=window)
    with pytest.raises(ValueError):
        stats([detection(1, 60000.0)], colour_window_days=window)


def test_detection_without_mjd_raises_in_statistics():
    with pytest.raises(ValueError):
        stats([detection(1, 60000.0), detection(2, None)])


# --- merging


def expected_history(detections: list[dict], max_length: int) -> list[dict]:
    """The latest ``max_length`` of a set of detections with distinct IDs."""
    timed = [d for d in detections if d["mjd"] is not None]
    ordered = sorted(timed, key=lambda d: (d["mjd"], d["candidate_id"]))
    return ordered[max(0, len(ordered) - max_length) :]


def merge_all(chunks: list[list[dict]], max_length: int) -> list[dict]:
    history: list[dict] = []
    for chunk in chunks:
        history = merge_history(history, chunk, max_length)
    return history


def test_merge_one_by_one_builds_the_sorted_history():
    curve = light_curve()
    shuffled = curve[:]
    random.Random(3).shuffle(shuffled)
    history = merge_all([[d] for d in shuffled], 100)
    assert history == curve
    assert all(a is b for a, b in zip(history, curve, strict=True))  # same dicts, extras kept
    assert history[0]["fid"] == curve[0]["fid"]


def test_out_of_order_arrival_gives_the_same_history_and_statistics():
    curve = light_curve()
    late = curve[20]  # older than the newest
    in_order = merge_all([[d] for d in curve], 100)
    out_of_order = merge_all([[d] for d in curve if d is not late] + [[late]], 100)
    assert out_of_order == in_order == curve
    assert stats(out_of_order) == stats(in_order)
    # Bounded histories too: the late candidate lands in its place or falls off.
    for max_length in (5, 10, 15):
        in_order = merge_all([[d] for d in curve], max_length)
        out_of_order = merge_all([[d] for d in curve if d is not late] + [[late]], max_length)
        assert out_of_order == in_order == curve[-max_length:]
        assert stats(out_of_order) == stats(in_order)


def test_max_length_keeps_the_latest():
    curve = light_curve()
    history = merge_history([], curve, 7)
    assert history == curve[-7:]
    history = merge_history(history, [detection(1, 59000.0)], 7)  # too old: dropped
    assert history == curve[-7:]
    newer = detection(2, 60050.0)
    history = merge_history(history, [newer], 7)
    assert history == curve[-6:] + [newer]
    assert merge_history(curve, [], 1) == [curve[-1]]


def test_bad_max_length_raises():
    with pytest.raises(ValueError):
        merge_history([], [detection(1, 60000.0)], 0)


def test_merge_is_idempotent():
    curve = light_curve()
    for max_length in (1, 10, 30, 100):
        once = merge_history(curve[:10], curve[5:], max_length)
        assert merge_history(once, curve[5:], max_length) == once
        assert merge_history(once, once, max_length) == once
        assert merge_history(once, [], max_length) == once


def test_duplicate_candidate_ids():
    old = detection(7, 60000.0, mag=18.0)
    other = detection(8, 60000.5, mag=18.2)
    corrected = detection(7, 60000.0, mag=17.9, note="reprocessed")
    history = merge_history([old, other], [corrected], 10)
    assert history == [corrected, other]
    assert history[0] is corrected
    # Within `new`, the last one wins; duplicates in the history are collapsed too.
    again = detection(7, 60000.0, mag=17.8)
    assert merge_history([old, old, other], [corrected, again], 10) == [again, other]
    assert stats(merge_history([old, other], [old, other], 10))["n_detections"] == 2


def test_detections_without_mjd_are_skipped():
    good = detection(1, 60000.0)
    history = merge_history([], [detection(2, None), good, detection(3, float("nan"))], 10)
    assert history == [good]


timed_detections = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.one_of(
            st.sampled_from([60000.0, 60000.5, 60001.0, 60001.25]),  # ties on mjd
            st.floats(59000.0, 61000.0, allow_nan=False),
        ),
    ),
    unique_by=lambda pair: pair[0],
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(pairs=timed_detections, data=st.data())
def test_merge_order_does_not_matter(pairs, data):
    detections = [detection(cid, mjd, mag=18.0 + (cid % 7) / 10) for cid, mjd in pairs]
    max_length = data.draw(st.integers(1, len(detections) + 3), label="max_length")
    expected = expected_history(detections, max_length)

    # The same detections (some repeated, as copies, and some without mjd), in any order,
    # in any chunks, starting from any prefix as the history.
    repeats = data.draw(st.lists(st.sampled_from(detections), max_size=10)) if detections else []
    untimed = [detection(20_000 + i, None) for i in range(data.draw(st.integers(0, 2)))]
    stream = detections + [dict(d) for d in repeats] + untimed
    stream = data.draw(st.permutations(stream), label="order")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6), label="cuts"))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in pairwise(bounds)]

    assert merge_history([], detections, max_length) == expected
    assert merge_all(chunks, max_length) == expected
    assert merge_history(chunks[0], stream, max_length) == expected
    assert merge_history(expected, stream, max_length) == expected  # idempotent
    ids = [d["candidate_id"] for d in merge_all(chunks, max_length)]
    assert len(ids) == len(set(ids)) == min(max_length, len(detections))
