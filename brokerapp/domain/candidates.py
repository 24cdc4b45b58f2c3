"""CandidateUpdate records and the database rows made from them (pure functions).

The candidates worker turns every alert it reads into one small JSON record, a
*CandidateUpdate*, and sends it keyed by the object (non-solar alerts, ``candidates_topic``)
or by the solar-system object's name (``ss_candidates_topic``). Everything downstream (the
objects worker, the database sinks) reads these records and never decodes an alert again.

A *detection* is one measurement of an object, survey-agnostic::

    {"candidate_id": int,        # ZTF candid, LSST diaSourceId
     "object_id": str,           # ZTF objectId, LSST diaObjectId (decimal string)
     "survey": "ztf" | "lsst",
     "mjd": float,               # ZTF jd - 2400000.5 (UTC), LSST midpointMjdTai
     "band": str | None,         # g, r, i (ZTF fid 1, 2, 3); u g r i z y (LSST)
     "ra": float | None, "dec": float | None,    # degrees
     "mag": float | None, "mag_err": float | None,  # ZTF magpsf; LSST AB mag of a positive
                                 # flux with S/N >= MIN_MAGNITUDE_SNR, else None
     "flux": float | None, "flux_err": float | None,  # LSST psfFlux [nJy]; None for ZTF
     "visit_id": int | None}     # ZTF pid, LSST visit

A CandidateUpdate::

    {"alert_id": int, "object_id": str | None, "survey": str,
     "candidate": <detection>,               # the alert's own detection
     "previous": [<detection>, ...],         # its previous detections (no upper limits)
     "ss_name": str | None, "ss_distance_arcsec": float | None,
     "appended_ms": float}                   # append time of the alert in ``alerts`` [ms]

Previous detections are read with the same survey accessors as the alert's own detection:
a ZTF ``prv_candidates`` entry has the fields of ``candidate``, an LSST ``prvDiaSources``
entry those of ``diaSource``. Non-finite numbers become None, so every record is valid JSON.

The row functions give the rows of the tables :mod:`brokerapp.adapters.dbschema` describes:
``candidates`` (the alert's detection and its previous ones: upserts keyed on candidate ID,
so the same detection seen in many alerts is one row), ``ss_candidates``, ``annotations``
(from either annotation record on ``annotations_topic``) and ``objects`` (from an
ObjectUpdate, :func:`object_update`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from brokerapp.model.alert import Alert
from brokerapp.model.profiles import SurveyProfile

__all__ = [
    "CANDIDATE_READS",
    "CandidateError",
    "annotation_rows",
    "check_detection",
    "candidate_rows",
    "candidate_update",
    "detection",
    "meaningful_magnitude",
    "object_row",
    "object_update",
    "ss_candidate_rows",
]

MJD_RANGE = (40000.0, 100000.0)
"""First and last valid detection time, inclusive (1968-05-24 to 2132-09-01): anything
outside is a corrupt value, whatever the survey."""
MAG_RANGE = (-30.0, 50.0)
"""Possible *measured* magnitudes (ZTF ``magpsf``), inclusive: brighter than the Sun or
fainter than any telescope reaches cannot be a measurement. Not applied to magnitude errors,
nor to magnitudes derived from fluxes."""
MAX_ABS_FLUX_NJY = 1e20
"""Largest possible absolute flux [nJy] (AB magnitude -18.6). Flux *errors* have no upper
bound: a huge error is a real, faint measurement."""
MIN_MAGNITUDE_SNR = 1.0
"""Signal-to-noise (flux over its error) below which a magnitude derived from a flux means
nothing (its error would exceed 1.09 mag): the detection is stored with its flux and error,
its magnitude and magnitude error left null. Measured magnitudes (ZTF) are kept as given."""


CANDIDATE_READS = frozenset(
    {
        "alert_id",
        "survey",
        "object_id",
        "ss_name",
        "ss_distance_arcsec",
        "detection",
        "previous_detections",
    }
)
"""What :func:`candidate_update` reads of an alert (read names,
:data:`brokerapp.model.profiles.READS`): a candidates worker decodes only those fields."""


class CandidateError(ValueError):
    """A record cannot become a CandidateUpdate or a row (the reason says which field)."""


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _given(value: Any) -> bool:
    """Whether a photometric value is given (None and NaN are "no measurement")."""
    return value is not None and not math.isnan(value)


def check_detection(
    candidate_id: Any,
    mjd: float,
    ra: Any,
    dec: Any,
    magnitude: tuple[Any, Any],
    flux: tuple[Any, Any],
) -> None:
    """Refuse a detection whose position, time or photometry cannot be real.

    Only impossible values are refused. Missing photometry (None or NaN, stored as None) is
    allowed; so are negative and tiny fluxes and errors of any size. Refused: a missing,
    non-finite or out-of-range position; a time outside :data:`MJD_RANGE`; an infinite
    magnitude, flux or error; a negative error; a measured magnitude outside
    :data:`MAG_RANGE` (only where the survey gives no flux: a magnitude derived from a flux
    is not range-checked); a flux beyond :data:`MAX_ABS_FLUX_NJY`.

    Parameters
    ----------
    candidate_id : int
        For the message.
    mjd : float
        Time (finite).
    ra, dec : float or None
        Position [deg]: finite, ``0 <= ra <= 360``, ``-90 <= dec <= 90``.
    magnitude : tuple of (float or None, float or None)
        Magnitude and its error.
    flux : tuple of (float or None, float or None)
        Flux and its error [nJy] (None for ZTF, which gives magnitudes).

    Raises
    ------
    CandidateError
        Naming the first bad field and its value.
    """
    where = f"detection {candidate_id}"
    if not MJD_RANGE[0] <= mjd <= MJD_RANGE[1]:
        raise CandidateError(f"{where}: MJD {mjd} outside {MJD_RANGE}")
    for name, value, low, high in (("ra", ra, 0.0, 360.0), ("dec", dec, -90.0, 90.0)):
        if value is None or not math.isfinite(value) or not low <= value <= high:
            raise CandidateError(f"{where}: {name} {value!r} is not a position in [{low}, {high}]")
    # The measurement first (a flux, or a magnitude where the survey gives no flux), so the
    # reason names the field the survey sent, not one derived from it.
    for name, value in (("flux", flux[0]), ("flux_err", flux[1])):
        if _given(value) and not math.isfinite(value):
            raise CandidateError(f"{where}: {name} {value!r} is not finite")
    if _given(flux[0]) and not abs(flux[0]) <= MAX_ABS_FLUX_NJY:
        raise CandidateError(f"{where}: flux {flux[0]!r} is not a possible flux [nJy]")
    if _given(flux[1]) and flux[1] < 0.0:
        raise CandidateError(f"{where}: flux_err {flux[1]!r} is negative")
    measured = not _given(flux[0])
    for name, value in (("mag", magnitude[0]), ("mag_err", magnitude[1])):
        if _given(value) and not math.isfinite(value):
            raise CandidateError(f"{where}: {name} {value!r} is not finite")
    if measured and _given(magnitude[0]) and not MAG_RANGE[0] <= magnitude[0] <= MAG_RANGE[1]:
        raise CandidateError(f"{where}: mag {magnitude[0]!r} outside {MAG_RANGE}")
    if _given(magnitude[1]) and magnitude[1] < 0.0:
        raise CandidateError(f"{where}: mag_err {magnitude[1]!r} is negative")


def meaningful_magnitude(
    magnitude: tuple[float | None, float | None], flux: tuple[float | None, float | None]
) -> tuple[float | None, float | None]:
    """Return the magnitude and its error to store: null where they mean nothing.

    Parameters
    ----------
    magnitude : tuple of (float or None, float or None)
        Magnitude and error as the survey profile gives them (finite or None).
    flux : tuple of (float or None, float or None)
        Flux and error [nJy] (finite or None; None for a survey that measures magnitudes).

    Returns
    -------
    tuple of (float or None, float or None)
        ``magnitude`` unchanged, except ``(None, None)`` for a magnitude derived from a flux
        whose signal-to-noise is below :data:`MIN_MAGNITUDE_SNR`.
    """
    value, error = flux
    if value is None or error is None or error <= 0.0:
        return magnitude
    return magnitude if value / error >= MIN_MAGNITUDE_SNR else (None, None)


def detection(profile: SurveyProfile, record: Mapping[str, Any], object_id: str) -> dict:
    """Return the detection of one alert record (or of one wrapped previous detection).

    Parameters
    ----------
    profile : SurveyProfile
        The survey's profile.
    record : mapping
        An alert record, or a previous detection wrapped by
        :meth:`~brokerapp.model.profiles.SurveyProfile.previous_as_record`.
    object_id : str
        The object the detection belongs to.

    Returns
    -------
    dict
        The detection (module docstring).

    Raises
    ------
    CandidateError
        If the detection has no ID or no time, or fails :func:`check_detection`.
    """
    candidate_id = profile.detection_id(record)
    mjd = _finite(profile.mjd(record))
    if candidate_id is None or mjd is None:
        raise CandidateError(f"detection without an ID or a time: id {candidate_id}, mjd {mjd}")
    ra, dec = profile.ra_dec(record)
    mag, mag_err = profile.magnitude(record)
    flux, flux_err = profile.flux(record)
    check_detection(candidate_id, mjd, ra, dec, (mag, mag_err), (flux, flux_err))
    photometry = (_finite(flux), _finite(flux_err))
    mag, mag_err = meaningful_magnitude((_finite(mag), _finite(mag_err)), photometry)
    return {
        "candidate_id": int(candidate_id),
        "object_id": object_id,
        "survey": profile.survey,
        "mjd": mjd,
        "band": profile.band(record),
        "ra": _finite(ra),
        "dec": _finite(dec),
        "mag": mag,
        "mag_err": mag_err,
        "flux": photometry[0],
        "flux_err": photometry[1],
        "visit_id": profile.visit_id(record),
    }


def candidate_update(alert: Alert, appended_ms: float) -> dict:
    """Return the CandidateUpdate of one decoded alert.

    Parameters
    ----------
    alert : Alert
        The decoded alert.
    appended_ms : float
        Its append time in ``alerts`` [ms since the epoch].

    Returns
    -------
    dict
        The CandidateUpdate (module docstring). Its ``object_id`` is None for an LSST
        detection without a diaObject (solar-system only); the solar-system object's name is
        then the object of its detections.

    Raises
    ------
    CandidateError
        If neither an object nor a solar-system object names the alert, or a detection has
        no ID or time.
    """
    view = alert.view
    object_id = None if view.object_id is None else str(view.object_id)
    owner = object_id if object_id is not None else view.ss_name
    if owner is None:
        raise CandidateError(f"alert {view.alert_id} names no object")
    profile = alert.profile
    record = alert.record_for("detection", "previous_detections")
    previous = []
    for prv in profile.previous_detections(record):
        previous.append(detection(profile, profile.previous_as_record(prv), owner))
    return {
        "alert_id": view.alert_id,
        "object_id": object_id,
        "survey": view.survey,
        "candidate": detection(profile, record, owner),
        "previous": previous,
        "ss_name": view.ss_name,
        "ss_distance_arcsec": _finite(view.ss_distance_arcsec),
        "appended_ms": appended_ms,
    }


def _detection_row(item: Mapping[str, Any]) -> dict:
    return {
        "candidate_id": item["candidate_id"],
        "object_id": item["object_id"],
        "survey": item["survey"],
        "mjd": item["mjd"],
        "band": item.get("band"),
        "ra": item.get("ra"),
        "decl": item.get("dec"),
        "mag": item.get("mag"),
        "mag_err": item.get("mag_err"),
        "flux": item.get("flux"),
        "flux_err": item.get("flux_err"),
        "visit_id": item.get("visit_id"),
    }


def candidate_rows(update: Mapping[str, Any]) -> list[dict]:
    """Return the ``candidates`` rows of a non-solar CandidateUpdate.

    Parameters
    ----------
    update : mapping
        The CandidateUpdate.

    Returns
    -------
    list of dict
        The alert's detection, then its previous detections (a detection listed twice once).

    Raises
    ------
    CandidateError
        If the update has no object ID or a detection lacks a required field.
    """
    if update.get("object_id") is None:
        raise CandidateError(f"alert {update.get('alert_id')}: no object ID")
    rows: dict[int, dict] = {}
    try:
        for item in [update["candidate"], *update.get("previous", ())]:
            rows.setdefault(item["candidate_id"], _detection_row(item))
    except (KeyError, TypeError) as exc:
        raise CandidateError(f"alert {update.get('alert_id')}: bad detection: {exc!r}") from exc
    return list(rows.values())


def ss_candidate_rows(update: Mapping[str, Any]) -> list[dict]:
    """Return the ``ss_candidates`` row of a solar-system CandidateUpdate (the alert's own).

    Parameters
    ----------
    update : mapping
        The CandidateUpdate of a solar-system alert.

    Returns
    -------
    list of dict
        One row.

    Raises
    ------
    CandidateError
        If the update names no solar-system object or lacks a required field.
    """
    if not update.get("ss_name"):
        raise CandidateError(f"alert {update.get('alert_id')}: no solar-system object")
    try:
        row = _detection_row(update["candidate"])
    except (KeyError, TypeError) as exc:
        raise CandidateError(f"alert {update.get('alert_id')}: bad detection: {exc!r}") from exc
    row["object_id"] = update.get("object_id")
    row["ss_name"] = update["ss_name"]
    row["ss_distance_arcsec"] = update.get("ss_distance_arcsec")
    return [row]


def _annotation_row(
    alert_id: Any, object_id: Any, source: str, entry: Any, separation: Any, mjd: Any, rest: dict
) -> dict:
    if alert_id is None or entry is None:
        raise CandidateError(f"annotation without an alert ID or entry: {alert_id}, {entry}")
    return {
        "alert_id": int(alert_id),
        "source": source,
        "entry": str(entry),
        "object_id": None if object_id is None else str(object_id),
        "separation_arcsec": _finite(separation),
        "mjd": _finite(mjd),
        "detail": json.dumps(rest, sort_keys=True, default=str) if rest else None,
    }


def annotation_rows(record: Mapping[str, Any]) -> list[dict]:
    """Return the ``annotations`` rows of one record of ``annotations_topic``.

    Two producers write that topic. The watchlist worker sends one Annotation per match,
    ``{"alert_id", "object_id", "watchlist_id", "entry", "separation_arcsec", "mjd"}``: one
    row with source ``watchlist:<watchlist_id>``. A node's ``emit_annotations`` sends
    ``{"survey", "alert_id", "object_id", "annotations": {processor: annotation}}``; a
    ``catalogue_match`` annotation ``{"catalogue", "matches": [{"id", "separation_arcsec",
    ...}]}`` gives a row per match with source ``catalogue:<catalogue>``; any other
    processor's annotation one row with source ``<processor>`` and entry ``""``. Fields
    without a column go, as JSON, to ``detail``.

    Parameters
    ----------
    record : mapping
        The decoded JSON record.

    Returns
    -------
    list of dict
        Its rows.

    Raises
    ------
    CandidateError
        If the record is neither kind or lacks the alert ID.
    """
    if "watchlist_id" in record:
        known = {"alert_id", "object_id", "watchlist_id", "entry", "separation_arcsec", "mjd"}
        rest = {k: v for k, v in record.items() if k not in known}
        return [
            _annotation_row(
                record.get("alert_id"),
                record.get("object_id"),
                f"watchlist:{record['watchlist_id']}",
                record.get("entry"),
                record.get("separation_arcsec"),
                record.get("mjd"),
                rest,
            )
        ]
    annotations = record.get("annotations")
    if not isinstance(annotations, Mapping):
        raise CandidateError("neither a watchlist Annotation nor an emit_annotations record")
    rows = []
    for processor, annotation in sorted(annotations.items()):
        if isinstance(annotation, Mapping) and isinstance(annotation.get("matches"), list):
            source = f"catalogue:{annotation.get('catalogue', processor)}"
            for match in annotation["matches"]:
                rest = {k: v for k, v in match.items() if k not in ("id", "separation_arcsec")}
                rows.append(
                    _annotation_row(
                        record.get("alert_id"),
                        record.get("object_id"),
                        source,
                        match.get("id"),
                        match.get("separation_arcsec"),
                        None,
                        rest,
                    )
                )
        else:
            rows.append(
                _annotation_row(
                    record.get("alert_id"),
                    record.get("object_id"),
                    str(processor),
                    "",
                    None,
                    None,
                    {"annotation": annotation},
                )
            )
    return rows


def object_update(statistics: Mapping[str, Any], alert_id: int) -> dict:
    """Return the ObjectUpdate sent to ``objects_topic``: statistics and triggering alert.

    Parameters
    ----------
    statistics : mapping
        :func:`brokerapp.domain.history.object_statistics` of the object's history.
    alert_id : int
        The alert whose candidate led to this update.

    Returns
    -------
    dict
        ``statistics`` plus ``alert_id``.
    """
    return {**statistics, "alert_id": alert_id}


def object_row(update: Mapping[str, Any]) -> dict:
    """Return the ``objects`` row of an ObjectUpdate.

    Parameters
    ----------
    update : mapping
        The ObjectUpdate.

    Returns
    -------
    dict
        Key columns flattened; per-band statistics and colours as JSON in ``stats``. The
        alert that triggered the update is not stored, so a replay in another order of the
        same detections gives the same row.

    Raises
    ------
    CandidateError
        If a required statistic is missing.
    """
    try:
        latest = update["latest"]
        return {
            "object_id": str(update["object_id"]),
            "survey": update["survey"],
            "n_detections": int(update["n_detections"]),
            "first_mjd": update["first_mjd"],
            "last_mjd": update["last_mjd"],
            "latest_candidate_id": int(latest["candidate_id"]),
            "latest_band": latest.get("band"),
            "latest_mag": latest.get("mag"),
            "ra_mean": update.get("ra_mean"),
            "decl_mean": update.get("dec_mean"),
            "position_scatter_arcsec": update.get("position_scatter_arcsec"),
            "stats": json.dumps(
                {"bands": update.get("bands", {}), "colours": update.get("colours", {})},
                sort_keys=True,
                allow_nan=False,
            ),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise CandidateError(f"bad ObjectUpdate: {exc!r}") from exc
