"""An object's light curve as archive files: a FITS binary table and a VOTable (pure).

Input: the object's history as the objects worker keeps it and writes it to its table's
changelog on every change (:mod:`tables.objects`, :func:`brokerapp.domain.history.merge_history`):
a list of detection dicts (``candidate_id``, ``object_id``, ``survey``, ``mjd``, ``band``,
``ra``, ``dec``, ``mag``, ``mag_err``, ``flux``, ``flux_err``, ``visit_id``; see
:mod:`brokerapp.domain.candidates`), at most ``history_length`` of the latest.

Output of :func:`light_curve_files`: ``{relative path: bytes}``, two files per object under
``lightcurves/<survey>/``:

``<object ID>.fits``
    An empty primary HDU, then a binary table ``LIGHTCURVE`` (one row per detection, in time
    order, ascending ``(mjd, candidate_id)``), header cards ``OBJECT``, ``SURVEY``,
    ``TIMESYS`` (``UTC`` for ZTF, whose times are exposure starts; ``TAI`` for LSST,
    mid-exposure) and ``NDET``.
``<object ID>.vot``
    The same table as a VOTable 1.4 (``astropy.io.votable``, TABLEDATA), each field with its
    unit, UCD and description, the same four values as ``PARAM`` elements.

Columns (:data:`COLUMNS`): ``candidate_id`` (int64), ``mjd`` [d], ``band`` (string, empty
when none), ``mag``, ``mag_err`` [mag], ``flux``, ``flux_err`` [nJy; ZTF has none], ``ra``,
``dec`` [deg] (float64; NaN where the detection has no value) and ``visit_id`` (int64,
masked where none: ``TNULL = -1`` in FITS, an empty cell in the VOTable).

The bytes depend only on the history (both writers are deterministic), so an object that
changes is rewritten in place and a replayed change rewrites the same bytes.

A history that is empty, mixes objects or surveys, or names an object that is not a safe file
name (letters, digits, ``.``, ``_``, ``-``) raises :class:`LightCurveError`.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.votable import from_table
from astropy.io.votable.tree import Param
from astropy.table import Column, MaskedColumn, Table

__all__ = [
    "COLUMNS",
    "NO_VISIT",
    "TIME_SYSTEMS",
    "LightCurveError",
    "light_curve_files",
    "light_curve_table",
]

COLUMNS: tuple[tuple[str, str, str | None, str, str], ...] = (
    ("candidate_id", "int64", None, "meta.id", "Detection ID (ZTF candid, LSST diaSourceId)"),
    ("mjd", "float64", "d", "time.epoch", "Modified Julian date of the detection"),
    ("band", "str", None, "instr.bandpass", "Filter"),
    ("mag", "float64", "mag", "phot.mag", "AB magnitude (PSF fit; LSST from psfFlux)"),
    ("mag_err", "float64", "mag", "stat.error;phot.mag", "Error of mag"),
    ("flux", "float64", "nJy", "phot.flux.density", "Difference-image PSF flux (LSST)"),
    ("flux_err", "float64", "nJy", "stat.error;phot.flux.density", "Error of flux"),
    ("ra", "float64", "deg", "pos.eq.ra", "Right ascension (ICRS)"),
    ("dec", "float64", "deg", "pos.eq.dec", "Declination (ICRS)"),
    ("visit_id", "int64", None, "meta.id;obs", "Visit (ZTF pid, LSST visit)"),
)
"""Name, type, unit, UCD and description of each column, in order."""
TIME_SYSTEMS: Mapping[str, str] = {"ztf": "UTC", "lsst": "TAI"}
"""Time scale of ``mjd`` by survey (the profiles' docstring: ZTF ``jd`` in UTC, LSST TAI)."""
NO_VISIT = -1
"""``visit_id`` of a detection without one in the FITS table (its ``TNULL``)."""
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class LightCurveError(ValueError):
    """A history that cannot be written as a light curve."""


def _float(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise LightCurveError(f"not a number: {value!r}") from exc
    return number if math.isfinite(number) else math.nan


def _ordered(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    try:
        return sorted(history, key=lambda d: (float(d["mjd"]), int(d["candidate_id"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise LightCurveError(f"a detection without mjd or candidate_id: {exc!r}") from exc


def _identity(history: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    if not history:
        raise LightCurveError("empty history")
    objects = {str(d.get("object_id")) for d in history}
    surveys = {str(d.get("survey")) for d in history}
    if len(objects) != 1 or len(surveys) != 1:
        raise LightCurveError(f"a history of several objects or surveys: {objects} {surveys}")
    object_id, survey = objects.pop(), surveys.pop()
    for name in (object_id, survey):
        if not _SAFE.match(name) or ".." in name:
            raise LightCurveError(f"{name!r} is not a safe file name")
    return object_id, survey


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[Column]:
    columns = []
    for name, kind, unit, ucd, description in COLUMNS:
        meta = {"ucd": ucd}
        if kind == "str":
            values = [str(d.get(name) or "") for d in rows]
            width = max(1, *(len(v) for v in values))
            columns.append(
                Column(
                    np.array(values, dtype=f"U{width}"),
                    name=name,
                    description=description,
                    meta=meta,
                )
            )
        elif kind == "int64" and name != "candidate_id":
            raw = [d.get(name) for d in rows]
            mask = [v is None for v in raw]
            data = np.array([0 if v is None else int(v) for v in raw], dtype=np.int64)
            columns.append(
                MaskedColumn(
                    data,
                    name=name,
                    mask=mask,
                    fill_value=NO_VISIT,
                    description=description,
                    meta=meta,
                )
            )
        elif kind == "int64":
            data = np.array([int(d[name]) for d in rows], dtype=np.int64)
            columns.append(Column(data, name=name, description=description, meta=meta))
        else:
            data = np.array([_float(d.get(name)) for d in rows], dtype=np.float64)
            columns.append(Column(data, name=name, unit=unit, description=description, meta=meta))
    return columns


def light_curve_table(history: Sequence[Mapping[str, Any]]) -> Table:
    """Return the light curve of one object's history as an astropy table.

    Parameters
    ----------
    history : sequence of dict
        The object's detections (any order).

    Returns
    -------
    astropy.table.Table
        :data:`COLUMNS`, one row per detection in time order; ``meta`` holds ``OBJECT``,
        ``SURVEY``, ``TIMESYS`` and ``NDET``.

    Raises
    ------
    LightCurveError
        See the module docstring.
    """
    object_id, survey = _identity(history)
    rows = _ordered(history)
    try:
        columns = _columns(rows)
    except (TypeError, ValueError, OverflowError) as exc:
        raise LightCurveError(f"a detection with a bad value: {exc}") from exc
    table = Table(columns, masked=False)
    table.meta.update(
        {
            "OBJECT": object_id,
            "SURVEY": survey,
            "TIMESYS": TIME_SYSTEMS.get(survey, "UTC"),
            "NDET": len(rows),
        }
    )
    return table


def _fits(table: Table) -> bytes:
    hdu = fits.table_to_hdu(table)
    hdu.name = "LIGHTCURVE"
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    return out.getvalue()


def _votable(table: Table) -> bytes:
    meta = dict(table.meta)
    plain = Table(table, copy=True)
    plain.meta.clear()
    votable = from_table(plain, table_id="lightcurve")
    resource_table = votable.get_first_table()
    resource_table.name = f"{meta['OBJECT']} light curve"
    for name, value in meta.items():
        datatype = "long" if isinstance(value, int) else "char"
        param = Param(
            votable,
            name=name,
            datatype=datatype,
            value=str(value),
            arraysize=None if datatype == "long" else "*",
        )
        resource_table.params.append(param)
    out = io.BytesIO()
    votable.to_xml(out, tabledata_format="tabledata")
    return out.getvalue()


def light_curve_files(history: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    """Return the light-curve files of one object, ``{relative path: bytes}``.

    Parameters
    ----------
    history : sequence of dict
        The object's detections, as the objects worker's history table holds them.

    Returns
    -------
    dict of str to bytes
        ``lightcurves/<survey>/<object ID>.fits`` and ``.vot`` (module docstring).

    Raises
    ------
    LightCurveError
        See the module docstring.
    """
    table = light_curve_table(history)
    stem = f"lightcurves/{table.meta['SURVEY']}/{table.meta['OBJECT']}"
    try:
        return {f"{stem}.fits": _fits(table), f"{stem}.vot": _votable(table)}
    except (TypeError, ValueError, OverflowError) as exc:  # a value a writer refuses
        raise LightCurveError(f"cannot write the light curve: {exc}") from exc
