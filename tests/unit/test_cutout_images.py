"""Cutout archive files of the real sample alerts, read back with astropy and Pillow.

Expected pixels come from the alerts' own stamps (gunzipped with :mod:`gzip`, read with
astropy), and the expected pictures from astropy's ZScaleInterval on those pixels, never
from the code under test.
"""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from astropy.visualization import ZScaleInterval
from astropy.wcs import WCS
from PIL import Image

from brokerapp.domain.cutout_images import CutoutError, cutout_files

DATA = Path(__file__).parents[1] / "data"
KINDS = ("science", "template", "difference")


def alert(path):
    return next(fastavro.reader(io.BytesIO(path.read_bytes())))


def raw_stamps(record):
    """Stamp by kind as FITS bytes (ZTF gunzipped), straight from the raw record."""
    out = {}
    for kind in KINDS:
        value = record[f"cutout{kind.capitalize()}"]
        if isinstance(value, dict):
            out[kind] = gzip.decompress(value["stampData"])
        else:
            out[kind] = value
    return out


def stamps_as_sent(record):
    """What the profile hands over: ZTF ``stampData`` (gzipped), Rubin bytes."""
    return {
        kind: (v["stampData"] if isinstance(v, dict) else v)
        for kind in KINDS
        for v in [record[f"cutout{kind.capitalize()}"]]
    }


def night(mjd, hours=0.0):
    when = datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=mjd, hours=hours)
    return when.strftime("%Y%m%d")


def identity(record):
    """Survey, alert ID and night: ZTF's UTC date, Rubin's dayObs (the date at UTC-12h)."""
    if "candidate" in record:
        return "ztf", record["candid"], night(record["candidate"]["jd"] - 2400000.5)
    source = record["diaSource"]
    return "lsst", source["diaSourceId"], night(source["midpointMjdTai"], -12.0)


def expected_picture(pixels):
    low, high = ZScaleInterval().get_limits(pixels[np.isfinite(pixels)])
    scaled = np.clip((pixels - low) / (high - low), 0, 1)
    scaled[~np.isfinite(pixels)] = 0
    return np.rint(scaled[::-1] * 255).astype(np.uint8)


ALERTS = sorted(DATA.glob("ztf/*.avro"))[:4] + sorted(DATA.glob("lsst/*.avro"))[:4]


@pytest.mark.parametrize("path", ALERTS, ids=lambda p: p.name)
def test_every_stamp_read_back_equals_the_alert(path):
    record = alert(path)
    survey, alert_id, day = identity(record)
    files = cutout_files(survey, alert_id, day, stamps_as_sent(record))
    folder = f"cutouts/{survey}/{day}/{alert_id}"
    assert set(files) == {f"{folder}/{k}.{e}" for k in KINDS for e in ("fits", "png", "jpg")}
    for kind, raw in raw_stamps(record).items():
        original = fits.open(io.BytesIO(raw))
        written = fits.open(io.BytesIO(files[f"{folder}/{kind}.fits"]))
        assert len(written) == len(original)
        for a, b in zip(written, original, strict=True):
            np.testing.assert_array_equal(a.data, b.data)
            assert a.header.get("EXTNAME") == b.header.get("EXTNAME")
        pixels = np.asarray(original[0].data, dtype=np.float64)
        if "CRPIX1" in original[0].header:  # Rubin: the WCS is kept
            for card in ("CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "PC1_1", "PC2_2"):
                assert written[0].header[card] == original[0].header[card]
            here = WCS(original[0].header).pixel_to_world_values(3.0, 4.0)
            there = WCS(written[0].header).pixel_to_world_values(3.0, 4.0)
            np.testing.assert_allclose(there, here, rtol=0, atol=1e-12)
        png = np.asarray(Image.open(io.BytesIO(files[f"{folder}/{kind}.png"])))
        expected = expected_picture(pixels)
        assert png.shape == pixels.shape and png.dtype == np.uint8
        assert np.abs(png.astype(int) - expected).max() <= 1  # rounding at the limits only
        jpeg = Image.open(io.BytesIO(files[f"{folder}/{kind}.jpg"]))
        assert jpeg.format == "JPEG" and jpeg.mode == "L"
        assert np.abs(np.asarray(jpeg).astype(int) - expected).mean() < 4  # lossy


def test_the_same_alert_gives_the_same_bytes():
    record = alert(ALERTS[0])
    survey, alert_id, day = identity(record)
    first = cutout_files(survey, alert_id, day, stamps_as_sent(record))
    again = cutout_files(survey, alert_id, day, stamps_as_sent(record))
    assert first == again


def test_a_missing_stamp_is_skipped_and_no_stamp_writes_nothing():
    record = alert(ALERTS[-1])
    survey, alert_id, day = identity(record)
    stamps = stamps_as_sent(record)
    stamps["template"] = None
    files = cutout_files(survey, alert_id, day, stamps)
    assert sorted({name.rsplit("/", 1)[1].split(".")[0] for name in files}) == [
        "difference",
        "science",
    ]
    assert cutout_files(survey, alert_id, day, dict.fromkeys(KINDS)) == {}


@pytest.mark.parametrize(
    "bad",
    [b"not a fits file", gzip.compress(b"SIMPLE = nonsense"), b"\x1f\x8b\x08broken gzip"],
)
def test_an_undecodable_stamp_raises(bad):
    record = alert(ALERTS[0])
    survey, alert_id, day = identity(record)
    stamps = stamps_as_sent(record)
    stamps["difference"] = bad
    with pytest.raises(CutoutError, match="difference"):
        cutout_files(survey, alert_id, day, stamps)


def test_a_truncated_stamp_raises():
    record = alert(ALERTS[-1])
    survey, alert_id, day = identity(record)
    stamps = stamps_as_sent(record)
    stamps["science"] = stamps["science"][:5000]
    with pytest.raises(CutoutError, match="science"):
        cutout_files(survey, alert_id, day, stamps)


def test_no_detection_time_raises():
    record = alert(ALERTS[0])
    survey, alert_id, _day = identity(record)
    with pytest.raises(CutoutError, match="night"):
        cutout_files(survey, alert_id, None, stamps_as_sent(record))
    with pytest.raises(CutoutError, match="safe"):
        cutout_files(survey, alert_id, "../x", stamps_as_sent(record))


@pytest.mark.parametrize(
    "pixels",
    [np.full((5, 5), np.nan, dtype="f4"), np.zeros((3, 3), "f4"), np.full((4, 4), 1e38, "f4")],
    ids=["all NaN", "flat", "huge"],
)
def test_an_image_without_contrast_is_black_and_kept_as_it_is(pixels):
    stamp = io.BytesIO()
    fits.PrimaryHDU(pixels).writeto(stamp)
    files = cutout_files("ztf", 5, "20260101", {"science": stamp.getvalue()})
    back = fits.open(io.BytesIO(files["cutouts/ztf/20260101/5/science.fits"]))[0].data
    np.testing.assert_array_equal(back, pixels)
    png = np.asarray(Image.open(io.BytesIO(files["cutouts/ztf/20260101/5/science.png"])))
    assert png.shape == pixels.shape and not png.any()


def test_a_cube_is_no_stamp():
    stamp = io.BytesIO()
    fits.PrimaryHDU(np.zeros((2, 2, 2), "f4")).writeto(stamp)
    with pytest.raises(CutoutError, match="2-D"):
        cutout_files("ztf", 5, "20260101", {"science": stamp.getvalue()})
