"""An alert's image cutouts as archive files: FITS, and PNG and JPEG for a web page (pure).

Input: the stamps of one alert by kind (``"science"``, ``"template"``, ``"difference"``, the
keys of :data:`~brokerapp.model.profiles.CUTOUT_KINDS`), as the survey profile's
:meth:`~brokerapp.model.profiles.SurveyProfile.cutouts` returns them: ZTF's ``stampData``
(a gzipped FITS image, no WCS in the public alerts), Rubin's FITS bytes (not compressed; a
primary image in nJy with its WCS, then ``UNCERT`` and ``PSFIMAGE`` extensions). A stamp that
is None is skipped.

Output of :func:`cutout_files`: ``{relative path: bytes}``, three files per stamp, under the
alert's folder :func:`alert_folder` ``cutouts/<survey>/<night>/<alert ID>/``:

``<kind>.fits``
    The stamp's FITS file uncompressed, every HDU and header card kept (so the WCS where the
    alert has one), rewritten by astropy with its header cards fixed to the FITS standard
    (``output_verify="silentfix"``: ZTF's ``SIMPLE  =  T`` is not in the fixed format).
``<kind>.png``, ``<kind>.jpg``
    The first image HDU with data as 8-bit greyscale at its own size: scaled linearly between
    the limits astropy's :class:`~astropy.visualization.ZScaleInterval` (default parameters)
    finds over its finite pixels, clipped to [0, 255] and rounded; non-finite pixels are 0
    (black). Row 0 of the FITS array is the bottom row of the picture (FITS images start at
    the lower left, pictures at the upper left), as ds9 shows it. JPEG at ``jpeg_quality``.

``<night>`` is the survey's observing night of the detection
(:meth:`~brokerapp.model.profiles.SurveyProfile.night`, as the Avro and Parquet archivers
name theirs: the UTC date for ZTF, Rubin's ``dayObs``, the date at UTC-12h, for LSST).
Names depend only on the alert (survey, night, ID), and the bytes only on the stamps (every
encoder here is deterministic), so a replayed alert writes the same files with the same
bytes.

A stamp that is not a FITS image (not gzip nor FITS, truncated, no 2-D image) raises
:class:`CutoutError`; the caller dead-letters the alert and writes none of its files.
"""

from __future__ import annotations

import gzip
import io
import re
import warnings
import zlib
from collections.abc import Mapping

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.visualization import ZScaleInterval
from PIL import Image

__all__ = [
    "FORMATS",
    "CutoutError",
    "alert_folder",
    "cutout_files",
    "stamp_fits",
    "stamp_image",
    "stamp_pictures",
    "zscale_bytes",
]

FORMATS = ("fits", "png", "jpg")
"""File name extensions written per stamp."""
_GZIP_MAGIC = b"\x1f\x8b"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class CutoutError(ValueError):
    """A stamp that is no FITS image, or an alert that cannot be named."""


def alert_folder(survey: str, night: str | None, alert_id: int) -> str:
    """Return the folder of an alert's cutout files, ``cutouts/<survey>/<night>/<alert ID>``.

    Raises
    ------
    CutoutError
        If the survey or night is not a safe file name (a night None: no detection time).
    """
    if night is None:
        raise CutoutError("no detection time to name the night by")
    for name in (survey, night):
        if not _SAFE.match(name):
            raise CutoutError(f"{name!r} is not a safe file name")
    return f"cutouts/{survey}/{night}/{int(alert_id)}"


def _open(stamp: bytes, kind: str) -> fits.HDUList:
    data = bytes(stamp)
    try:
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            warnings.simplefilter("ignore", AstropyUserWarning)
            hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False)
            for hdu in hdul:
                _ = hdu.data  # read every HDU now: a truncated one fails here
    except (OSError, EOFError, ValueError, TypeError, IndexError, zlib.error) as exc:
        raise CutoutError(f"{kind} stamp is not a FITS file: {exc}") from exc
    return hdul


def _image_of(hdul: fits.HDUList, kind: str) -> np.ndarray:
    for hdu in hdul:
        if isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU) and hdu.data is not None:
            pixels = np.asarray(hdu.data, dtype=np.float64)
            if pixels.ndim == 2 and pixels.size:
                return pixels
    raise CutoutError(f"{kind} stamp holds no 2-D image")


def _write(hdul: fits.HDUList, kind: str) -> bytes:
    out = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            hdul.writeto(out, output_verify="silentfix")
    except (fits.VerifyError, ValueError, TypeError) as exc:
        raise CutoutError(f"{kind} stamp cannot be written as FITS: {exc}") from exc
    return out.getvalue()


def _pictures(pixels: np.ndarray, jpeg_quality: int) -> dict[str, bytes]:
    picture = Image.fromarray(zscale_bytes(pixels))
    png, jpg = io.BytesIO(), io.BytesIO()
    picture.save(png, format="PNG")
    picture.save(jpg, format="JPEG", quality=jpeg_quality)
    return {"png": png.getvalue(), "jpg": jpg.getvalue()}


def stamp_image(stamp: bytes, kind: str = "stamp") -> np.ndarray:
    """Return the pixels of a stamp's first image HDU with data (2-D, float64).

    Raises
    ------
    CutoutError
        If the stamp is no FITS file or has no 2-D image.
    """
    return _image_of(_open(stamp, kind), kind)


def stamp_fits(stamp: bytes, kind: str = "stamp") -> bytes:
    """Return the stamp as an uncompressed FITS file, every HDU and card kept (fixed form).

    Raises
    ------
    CutoutError
        If the stamp is no FITS file or has no 2-D image.
    """
    hdul = _open(stamp, kind)
    _image_of(hdul, kind)  # refuse a file without an image
    return _write(hdul, kind)


def zscale_bytes(pixels: np.ndarray) -> np.ndarray:
    """Return the 8-bit picture of an image: zscale limits, clipped, rows bottom-up.

    Parameters
    ----------
    pixels : numpy.ndarray
        2-D image, row 0 at the bottom (FITS order).

    Returns
    -------
    numpy.ndarray
        ``uint8``, the same shape, row 0 at the top (picture order).
    """
    finite = np.isfinite(pixels)
    out = np.zeros(pixels.shape, dtype=np.float64)
    if finite.any():
        low, high = ZScaleInterval().get_limits(pixels[finite])
        if high > low:
            scaled = (pixels - low) / (high - low)
            out = np.where(finite, np.clip(scaled, 0.0, 1.0), 0.0)
    return np.flipud(np.rint(out * 255.0).astype(np.uint8))


def stamp_pictures(stamp: bytes, kind: str = "stamp", jpeg_quality: int = 90) -> dict[str, bytes]:
    """Return ``{"png": bytes, "jpg": bytes}``: the stamp's image scaled by zscale.

    Raises
    ------
    CutoutError
        If the stamp is no FITS file or has no 2-D image.
    """
    return _pictures(stamp_image(stamp, kind), jpeg_quality)


def cutout_files(
    survey: str,
    alert_id: int,
    night: str | None,
    stamps: Mapping[str, bytes | None],
    jpeg_quality: int = 90,
) -> dict[str, bytes]:
    """Return the archive files of one alert's stamps, ``{relative path: bytes}``.

    Parameters
    ----------
    survey : str
        ``"ztf"`` or ``"lsst"``.
    alert_id : int
        ZTF ``candid``, LSST ``diaSourceId``.
    night : str or None
        The observing night of the alert's detection, ``YYYYMMDD``
        (:meth:`~brokerapp.model.profiles.SurveyProfile.night`; None: it has no time).
    stamps : Mapping of str to bytes or None
        Stamp by kind; None for a kind the alert does not have.
    jpeg_quality : int, optional
        JPEG quality (1-95).

    Returns
    -------
    dict of str to bytes
        ``<folder>/<kind>.<fits|png|jpg>`` for each stamp present (see the module docstring);
        empty when the alert has no stamp.

    Raises
    ------
    CutoutError
        If a stamp is no FITS image, or the alert has no night (no detection time).
    """
    present = {kind: stamp for kind, stamp in stamps.items() if stamp is not None}
    if not present:
        return {}
    folder = alert_folder(survey, night, alert_id)
    files: dict[str, bytes] = {}
    for kind, stamp in present.items():
        if not _SAFE.match(kind):
            raise CutoutError(f"cutout kind {kind!r} is not a safe file name")
        hdul = _open(stamp, kind)
        pixels = _image_of(hdul, kind)
        files[f"{folder}/{kind}.fits"] = _write(hdul, kind)
        try:
            pictures = _pictures(pixels, jpeg_quality)
        except (ValueError, TypeError, OSError, IndexError) as exc:  # a picture refused
            raise CutoutError(f"{kind} stamp cannot be drawn: {exc}") from exc
        for ext, data in pictures.items():
            files[f"{folder}/{kind}.{ext}"] = data
    return files
