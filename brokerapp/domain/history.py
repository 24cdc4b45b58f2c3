"""Per-object detection history and its statistics, for the objects worker (pure code).

The objects worker keeps, for each astronomical object, its most recent detections in a table
(key = object ID, value = the JSON-ready list returned by :func:`merge_history`) and, on every
new alert, merges the alert's detections into that list and recomputes the object's
statistics (:func:`object_statistics`). Nothing here touches Kafka, Faust, a database or
asyncio, and nothing here modifies its arguments.

Detections
    A detection is a plain, JSON-ready ``dict``::

        {"candidate_id": int, "object_id": str, "survey": "ztf" or "lsst", "mjd": float,
         "band": str or None, "ra": float or None, "dec": float or None,
         "mag": float or None, "mag_err": float or None,
         "flux": float or None, "flux_err": float or None, "visit_id": int or None}

    ``mjd`` is the modified Julian date of the exposure, ``ra``/``dec`` the ICRS position
    [deg], ``mag``/``mag_err`` the AB magnitude and its error (None when there is none, e.g.
    for a negative LSST difference flux), ``flux``/``flux_err`` the survey's flux (unused
    here). Detections are treated as read-only; keys beyond these are tolerated and kept (the
    history holds the very dicts it was given). A value that is not a finite number (None,
    NaN, infinity) counts as missing: such a ``mag`` is no magnitude, such an ``ra``/``dec``
    no position.

History (:func:`merge_history`)
    A history is a list of detections with distinct ``candidate_id``, in ascending
    ``(mjd, candidate_id)`` order (the *time order* used throughout; the candidate ID breaks
    ties between detections of the same exposure time), at most ``max_length`` long. Merging
    takes the union by ``candidate_id``, a detection in ``new`` replacing the history's
    detection of the same ID (within ``new``, the last one wins), sorts it, and keeps the most
    recent ``max_length``. Detections without a finite ``mjd`` are skipped. The result is the
    latest ``max_length`` detections of everything ever merged, so merging is idempotent and,
    as long as a candidate ID always names the same detection (the same ``mjd``), independent
    of the order and grouping in which detections arrive: a late candidate older than the
    newest one lands in its place, or is dropped if it is older than all the ones kept.

Statistics (:func:`object_statistics`)
    A JSON-ready dict, with every float finite or None (never NaN or infinity)::

        {"object_id", "survey", "n_detections", "first_mjd", "last_mjd",
         "latest": {"candidate_id", "mjd", "band", "mag", "mag_err"},
         "ra_mean", "dec_mean", "position_scatter_arcsec",
         "bands": {band: {"n", "first_mjd", "last_mjd", "latest_mag", "latest_mag_err",
                          "latest_mjd", "peak_mag", "peak_mjd", "mean_mag",
                          "rate_mag_per_day", "rate_n"}},
         "colours": {"g-r": float, ...}, "colour_mjd", "history_length"}

    ``object_id``, ``survey`` and ``latest`` come from the latest detection in time order;
    ``n_detections`` and ``history_length`` both count the detections of the history;
    ``first_mjd``/``last_mjd`` are the earliest and latest ``mjd``.

    Position: ``ra_mean``/``dec_mean`` [deg] is the direction of the sum of the detections'
    unit vectors (right across RA = 0/360 and at the poles; ``ra_mean`` in [0, 360)), and
    ``position_scatter_arcsec`` the root-mean-square great-circle distance of the detections
    from it (Vincenty formula, as astropy's ``SkyCoord.separation``), exactly 0.0 for a
    single detection. Detections without a position are ignored; all three are None when no
    detection has one, or when the unit vectors cancel out (no mean direction, e.g. two
    antipodal positions).

    Bands (detections whose ``band`` is None are left out of ``bands``; bands are listed in
    ``band_order`` order, then others alphabetically): ``n``, ``first_mjd`` and
    ``last_mjd`` count all the band's detections. The magnitude fields use only detections
    with a magnitude and are None when there is none: ``latest_*`` is the latest of them in
    time order, ``peak_*`` the brightest (smallest ``mag``; ties: the earliest), ``mean_mag``
    the arithmetic mean. ``rate_mag_per_day`` is the ordinary least-squares slope of ``mag``
    against ``mjd`` over the band's detections with a magnitude and
    ``mjd >= latest_mjd - rate_window_days``, positive when the object fades (declines),
    negative when it brightens (rises); None unless those points have at least two distinct
    ``mjd``. ``rate_n`` is the number of those points (in the window, with a magnitude),
    whether or not a rate could be fitted: 0 for a band without magnitude, 1 for a single one.

    Colours: for each pair of *adjacent* bands ``(a, b)`` of ``band_order`` (default
    :data:`BAND_ORDER` of the survey, ``"ztf"`` = g, r, i; any other survey the LSST order
    u, g, r, i, z, y), ``colours["a-b"]`` is the latest magnitude of band ``a`` minus that of
    band ``b``, each among the band's detections with a magnitude and
    ``mjd >= last_mjd - colour_window_days`` (``last_mjd`` of the object). A pair without
    such a detection in both bands has no key; bands not in ``band_order`` give no colour.
    ``colour_mjd`` is the epoch the colours refer to, the object's ``last_mjd`` (a top-level
    key, so that ``colours`` maps pair names to colours only).

Cost
    Plain Python, linear in the history length (plus a sort, linear on a sorted history):
    about 0.03 ms for 30 detections in 3 bands, 0.07 ms for 100, and :func:`merge_history`
    4 us and 13 us (CPython 3.11).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

__all__ = [
    "BAND_ORDER",
    "merge_history",
    "object_statistics",
]

BAND_ORDER: dict[str, tuple[str, ...]] = {
    "ztf": ("g", "r", "i"),
    "lsst": ("u", "g", "r", "i", "z", "y"),
}
"""Bands of each survey from blue to red; colours are taken between adjacent bands."""

_isfinite = math.isfinite
_sin = math.sin
_cos = math.cos
_atan2 = math.atan2
_hypot = math.hypot
_sqrt = math.sqrt
_radians = math.radians
_degrees = math.degrees


def _time_key(detection: dict[str, Any]) -> tuple[Any, Any]:
    return (detection["mjd"], detection["candidate_id"])


def _number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None for None, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return value if _isfinite(value) else None


def _has_time(detection: dict[str, Any]) -> bool:
    mjd = detection.get("mjd")
    return mjd is not None and _isfinite(mjd)


def merge_history(
    history: list[dict[str, Any]], new: Iterable[dict[str, Any]], max_length: int
) -> list[dict[str, Any]]:
    """Merge new detections into an object's history and keep the most recent ones.

    Parameters
    ----------
    history : list of dict
        The object's current history (normally a previous result of this function; any
        order is accepted). Not modified.
    new : iterable of dict
        Detections to add. One with the ``candidate_id`` of a detection in ``history``
        replaces it; within ``new`` the last one of an ID wins.
    max_length : int
        Number of detections kept, at least 1: the latest ``max_length`` in time order.

    Returns
    -------
    list of dict
        A new list of the (same) detection dicts, distinct by ``candidate_id``, ascending by
        ``(mjd, candidate_id)``. Detections of ``history`` or ``new`` without a finite
        ``mjd`` are skipped.

    Raises
    ------
    ValueError
        If ``max_length`` is less than 1.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length!r}")
    by_id: dict[Any, dict[str, Any]] = {}
    for detection in history:
        if _has_time(detection):
            by_id[detection["candidate_id"]] = detection
    for detection in new:
        if _has_time(detection):
            by_id[detection["candidate_id"]] = detection
    merged = sorted(by_id.values(), key=_time_key)
    if len(merged) > max_length:
        del merged[:-max_length]
    return merged


def _check_window(name: str, value: float) -> None:
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def _slope(mjds: list[float], mags: list[float]) -> float | None:
    """Least-squares slope of ``mags`` against ascending ``mjds``; None without 2 epochs."""
    n = len(mjds)
    if n < 2 or mjds[0] == mjds[-1]:
        return None
    t0 = mjds[0]
    dts = [t - t0 for t in mjds]  # exact for nearby MJDs; keeps the sums well conditioned
    mean_t = sum(dts) / n
    mean_m = sum(mags) / n
    sxx = 0.0
    sxy = 0.0
    for dt, mag in zip(dts, mags, strict=True):
        u = dt - mean_t
        sxx += u * u
        sxy += u * (mag - mean_m)
    if not sxx > 0.0:
        return None
    return _number(sxy / sxx)


def _band_statistics(detections: list[dict[str, Any]], rate_window_days: float) -> dict[str, Any]:
    """Statistics of one band's detections, given in time order."""
    mjds: list[float] = []
    mags: list[float] = []
    latest: dict[str, Any] | None = None
    peak_mag = math.inf
    peak_mjd: float | None = None
    for detection in detections:
        mag = detection.get("mag")
        if mag is None or not _isfinite(mag):
            continue
        mag = float(mag)
        mjd = float(detection["mjd"])
        mjds.append(mjd)
        mags.append(mag)
        latest = detection
        if mag < peak_mag:
            peak_mag = mag
            peak_mjd = mjd
    stats: dict[str, Any] = {
        "n": len(detections),
        "first_mjd": float(detections[0]["mjd"]),
        "last_mjd": float(detections[-1]["mjd"]),
    }
    if latest is None:
        stats.update(
            latest_mag=None,
            latest_mag_err=None,
            latest_mjd=None,
            peak_mag=None,
            peak_mjd=None,
            mean_mag=None,
            rate_mag_per_day=None,
            rate_n=0,
        )
        return stats
    latest_mjd = mjds[-1]
    cutoff = latest_mjd - rate_window_days
    start = len(mjds) - 1
    while start > 0 and mjds[start - 1] >= cutoff:
        start -= 1
    window_mjds = mjds[start:]
    stats.update(
        latest_mag=mags[-1],
        latest_mag_err=_number(latest.get("mag_err")),
        latest_mjd=latest_mjd,
        peak_mag=peak_mag,
        peak_mjd=peak_mjd,
        mean_mag=_number(sum(mags) / len(mags)),
        rate_mag_per_day=_slope(window_mjds, mags[start:]),
        rate_n=len(window_mjds),
    )
    return stats


def _position(detections: list[dict[str, Any]]) -> tuple[float | None, ...]:
    """Mean position [deg] and RMS scatter [arcsec] of the detections that have one."""
    points: list[tuple[float, float, float]] = []  # (ra [rad], sin dec, cos dec)
    sx = sy = sz = 0.0
    for detection in detections:
        ra = detection.get("ra")
        dec = detection.get("dec")
        if ra is None or dec is None or not (_isfinite(ra) and _isfinite(dec)):
            continue
        lon = _radians(ra)
        lat = _radians(dec)
        slat = _sin(lat)
        clat = _cos(lat)
        sx += clat * _cos(lon)
        sy += clat * _sin(lon)
        sz += slat
        points.append((lon, slat, clat))
    n = len(points)
    if n == 0:
        return None, None, None
    if _sqrt(sx * sx + sy * sy + sz * sz) <= 1e-12 * n:
        return None, None, None  # the unit vectors cancel out: no mean direction
    lon0 = _atan2(sy, sx)
    lat0 = _atan2(sz, _hypot(sx, sy))
    ra_mean = _degrees(lon0) % 360.0
    if ra_mean >= 360.0:  # a tiny negative angle rounds to 360.0
        ra_mean = 0.0
    dec_mean = _degrees(lat0)
    if n == 1:
        return ra_mean, dec_mean, 0.0
    slat0 = _sin(lat0)
    clat0 = _cos(lat0)
    total = 0.0
    for lon, slat, clat in points:
        # Vincenty's formula, with point 1 the mean position (as astropy's separation).
        dlon = lon - lon0
        sdlon = _sin(dlon)
        cdlon = _cos(dlon)
        num1 = clat * sdlon
        num2 = clat0 * slat - slat0 * clat * cdlon
        denominator = slat0 * slat + clat0 * clat * cdlon
        separation = _degrees(_atan2(_hypot(num1, num2), denominator)) * 3600.0
        total += separation * separation
    return ra_mean, dec_mean, _sqrt(total / n)


def object_statistics(
    history: list[dict[str, Any]],
    *,
    rate_window_days: float,
    colour_window_days: float,
    band_order: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Compute an object's statistics from its detection history.

    Parameters
    ----------
    history : list of dict
        The object's detections (see the module docstring), normally the result of
        :func:`merge_history`; any order is accepted, candidate IDs should be distinct. Not
        modified.
    rate_window_days : float
        Per band, the rate is fitted to the detections with a magnitude within this many
        days of the band's latest one (inclusive), ``>= 0``.
    colour_window_days : float
        A colour uses each band's latest magnitude within this many days of the object's
        latest detection (inclusive), ``>= 0``.
    band_order : sequence of str, optional
        Bands from blue to red; colours are computed between adjacent ones. Default:
        ``BAND_ORDER["ztf"]`` for a ZTF object (``survey`` of the latest detection), else
        ``BAND_ORDER["lsst"]``.

    Returns
    -------
    dict
        JSON-ready statistics, floats finite or None (layout in the module docstring).

    Raises
    ------
    ValueError
        If ``history`` is empty, a detection has no finite ``mjd``, or a window is negative
        or NaN.
    """
    if not history:
        raise ValueError("cannot compute statistics of an empty history")
    _check_window("rate_window_days", rate_window_days)
    _check_window("colour_window_days", colour_window_days)
    for detection in history:
        if not _has_time(detection):
            raise ValueError(
                f"detection {detection.get('candidate_id')!r} has no finite mjd: "
                f"{detection.get('mjd')!r}"
            )
    ordered = sorted(history, key=_time_key)
    first = ordered[0]
    latest = ordered[-1]
    last_mjd = float(latest["mjd"])
    survey = latest.get("survey")
    if band_order is None:
        band_order = BAND_ORDER["ztf"] if survey == "ztf" else BAND_ORDER["lsst"]

    by_band: dict[Any, list[dict[str, Any]]] = {}
    for detection in ordered:
        band = detection.get("band")
        if band is not None:
            group = by_band.get(band)
            if group is None:
                by_band[band] = [detection]
            else:
                group.append(detection)
    rank = {band: i for i, band in enumerate(band_order)}
    n_order = len(rank)
    names = sorted(by_band, key=lambda b: (rank.get(b, n_order), str(b)))
    bands = {band: _band_statistics(by_band[band], rate_window_days) for band in names}

    colours: dict[str, float] = {}
    cutoff = last_mjd - colour_window_days
    for blue, red in pairwise(band_order):
        blue_stats = bands.get(blue)
        red_stats = bands.get(red)
        if blue_stats is None or red_stats is None:
            continue
        blue_mjd = blue_stats["latest_mjd"]
        red_mjd = red_stats["latest_mjd"]
        if blue_mjd is None or red_mjd is None or blue_mjd < cutoff or red_mjd < cutoff:
            continue
        colour = _number(blue_stats["latest_mag"] - red_stats["latest_mag"])
        if colour is not None:
            colours[f"{blue}-{red}"] = colour

    ra_mean, dec_mean, scatter = _position(ordered)
    return {
        "object_id": latest.get("object_id"),
        "survey": survey,
        "n_detections": len(ordered),
        "first_mjd": float(first["mjd"]),
        "last_mjd": last_mjd,
        "latest": {
            "candidate_id": latest["candidate_id"],
            "mjd": last_mjd,
            "band": latest.get("band"),
            "mag": _number(latest.get("mag")),
            "mag_err": _number(latest.get("mag_err")),
        },
        "ra_mean": ra_mean,
        "dec_mean": dec_mean,
        "position_scatter_arcsec": scatter,
        "bands": bands,
        "colours": colours,
        "colour_mjd": last_mjd,
        "history_length": len(history),
    }
