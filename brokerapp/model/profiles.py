"""Survey profiles: the one place that knows where ZTF and LSST alerts keep what branches need.

Branches work on an :class:`AlertView`, a small survey-agnostic summary of one decoded alert,
and on a few :class:`SurveyProfile` accessors (previous detections, cutouts). Only this module
knows the field names of each survey's alert schema.

ZTF (``ztf.alert``, schema 3.x/4.x)
    One alert per ``candid`` (a top-level ``long``, repeated as ``candidate.candid``) on the
    object ``objectId`` (a string such as ``"ZTF18abcdefg"``). ``candidate`` holds the
    detection: ``ra``/``dec`` [deg], ``jd`` (Julian date, converted here to MJD as
    ``jd - 2400000.5``), ``fid`` (filter 1 = g, 2 = r, 3 = i), PSF-fit magnitude ``magpsf``
    and its error ``sigmapsf`` [mag], ``pid`` (processing ID of the science image; ZTF has no
    visit ID so this serves as one), and the nearest known solar-system object ``ssnamenr``
    (its MPC name/number) at ``ssdistnr`` [arcsec] and of magnitude ``ssmagnr``, an
    association only when all three are set (:data:`ZTF_SOLAR_SYSTEM_FIELDS`). The sign of
    the difference is ``isdiffpos`` (``"t"``/``"1"`` positive, ``"f"``/``"0"`` negative).
    ZTF writes "no value" as ``-999.0`` for numbers and the string ``"null"`` for strings
    (see :func:`is_missing`).
    ``prv_candidates`` mixes earlier detections with upper limits; upper limits have no
    ``candid`` and are not counted as previous detections. Cutouts are records
    ``{"fileName", "stampData"}`` whose ``stampData`` is a gzipped FITS image.

LSST (``lsst.v<M>_<m>.alert``, lsst-alert-packet versions 3.0 to 11.1)
    The triggering detection is ``diaSource``; its ``diaSourceId`` is the alert ID (schemas
    from 8.0 repeat it as the top-level ``diaSourceId``, schemas before 8.0 have a separate
    top-level ``alertId``). The object is ``diaObject.diaObjectId`` (or
    ``diaSource.diaObjectId``); Rubin writes ``0`` for "no object", e.g. for detections
    attributed to a solar-system object only. Field renames handled here: ``decl`` -> ``dec``
    and ``midPointTai`` -> ``midpointMjdTai``, ``filterName`` -> ``band``, ``psFlux`` ->
    ``psfFlux`` (all at 5.0), ``ccdVisitId`` -> ``visit`` (7.0). Fluxes are difference-image
    PSF fluxes in nJy; the AB magnitude is ``-2.5 log10(flux / nJy) + 31.4`` for positive
    fluxes, with error ``2.5 / ln(10) * fluxErr / flux``. A solar-system association is
    ``diaSource.ssObjectId`` (``0`` = none), or the ``ssObject`` (before 8.0), ``ssSource``
    and ``MPCORB`` / ``mpc_orbits`` records (8.0 on). Cutouts are bare ``bytes``.

An alert is a solar-system detection (:attr:`AlertView.is_solar_system`) exactly when its
survey names a known solar-system object for it (:attr:`AlertView.ss_name` is not None).

Reads: what a branch needs, and the fields that gives
    Branches and processors say what they read in survey-agnostic *read names*
    (:data:`READS`): every :class:`AlertView` attribute, plus ``"detection"`` (what
    :func:`brokerapp.domain.candidates.detection` reads of the alert's own detection: ID,
    time, position, band, photometry, visit), ``"previous_detections"`` (the same of every
    previous detection, :meth:`SurveyProfile.previous_detections`), ``"solar_system_names"``
    (:meth:`SurveyProfile.solar_system_names`) and ``"difference_sign"``
    (:meth:`SurveyProfile.difference_sign`). :meth:`SurveyProfile.field_paths` turns them
    into the field paths of this survey's records (every name any schema version uses; a
    decoder keeps those its writer schema has), so a decoder can read just those fields
    (:mod:`brokerapp.wire.fields`) and the accessors work on the partial record it gives, a
    nested dict holding only those fields. A path crosses records, unions holding records, and
    arrays of records (it then applies to every item). :data:`VIEW_ACCESSORS` computes one
    :class:`AlertView` attribute at a time, from such a partial record.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "AB_NJY_ZERO_POINT",
    "LSST_PROFILE",
    "MISSING_NUMBER",
    "MISSING_STRING",
    "MJD_OFFSET",
    "PROFILES",
    "ZTF_BANDS",
    "ZTF_PROFILE",
    "ZTF_SOLAR_SYSTEM_FIELDS",
    "EXTRA_READS",
    "READS",
    "VIEW_ACCESSORS",
    "VIEW_READS",
    "AlertView",
    "FieldPath",
    "KeyPaths",
    "LsstProfile",
    "SurveyProfile",
    "UnknownReadError",
    "UnknownSurveyError",
    "ZtfProfile",
    "is_missing",
    "profile_for",
    "profile_for_fields",
    "view",
]

MISSING_NUMBER = -999.0
"""ZTF's marker for "no value" in numeric fields."""
MISSING_STRING = "null"
"""ZTF's marker for "no value" in string fields (e.g. ``ssnamenr``)."""
MJD_OFFSET = 2400000.5
"""Julian date of MJD 0: ``mjd = jd - MJD_OFFSET``."""
_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)
"""MJD 0 (midnight UTC)."""
AB_NJY_ZERO_POINT = 31.4
"""AB magnitude of a 1 nJy source: ``mag = -2.5 log10(flux / nJy) + AB_NJY_ZERO_POINT``."""
MAG_PER_RELATIVE_FLUX_ERROR = 2.5 / math.log(10.0)
"""d(mag) / d(ln flux), about 1.0857: ``mag_err = this * flux_err / flux``."""
ZTF_BANDS: Mapping[int, str] = {1: "g", 2: "r", 3: "i"}
"""ZTF filter ID (``fid``) to band name."""
ZTF_SOLAR_SYSTEM_FIELDS = ("ssdistnr", "ssmagnr", "ssnamenr")
"""ZTF ``candidate`` fields that must all be set for a solar-system detection."""
_ZTF_POSITIVE = frozenset({"t", "1"})
_ZTF_NEGATIVE = frozenset({"f", "0"})
NO_LSST_ID = 0
"""Rubin's ID value for "no such object" (``diaObjectId``, ``ssObjectId``)."""
CUTOUT_KINDS = ("science", "template", "difference")
"""Keys of the dict returned by :meth:`SurveyProfile.cutouts`."""


FieldPath = tuple[str, ...]
"""Field names from the top-level record down, e.g. ``("candidate", "ra")``."""


class UnknownSurveyError(ValueError):
    """The record is neither a ZTF nor an LSST alert."""


class UnknownReadError(ValueError):
    """A read name is not one of :data:`READS`."""


def is_missing(value: Any) -> bool:
    """Tell whether a field value means "no value".

    Parameters
    ----------
    value : Any
        A field of a decoded alert.

    Returns
    -------
    bool
        True for None, NaN, ZTF's numeric marker ``-999.0`` (or ``-999``) and ZTF's string
        marker ``"null"``; False otherwise (booleans are never missing).
    """
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isnan(value) or value == MISSING_NUMBER
    if isinstance(value, int):
        return value == MISSING_NUMBER
    if isinstance(value, str):
        return value == MISSING_STRING
    return False


def _value(value: Any) -> Any:
    return None if is_missing(value) else value


def _float(value: Any) -> float | None:
    return None if is_missing(value) else float(value)


def _first(record: Mapping[str, Any] | None, *names: str) -> Any:
    """Value of the first of ``names`` present in ``record`` (None if none is, or no record)."""
    if record is None:
        return None
    for name in names:
        if name in record:
            return record[name]
    return None


def _no_lsst_object(value: Any) -> bool:
    """Rubin's "no such object": null, ``0``, or a missing marker as :func:`is_missing` says."""
    if value.__class__ is int:  # the usual case (the key reader's hot path), as is_missing says
        return value == NO_LSST_ID or value == MISSING_NUMBER
    return value == NO_LSST_ID or is_missing(value)


@dataclass(frozen=True, slots=True)
class KeyPaths:
    """Where a survey's alert records keep the IDs an alert's Kafka message key is made of.

    :func:`brokerapp.wire.avrokey.object_key_reader` reads these fields from the bare Avro
    body without decoding it. The key is the UTF-8 of the first ID set (decimal for numbers),
    tried in the order ``objects``, ``others``, ``alerts``; it equals
    ``str(profile.object_id(record))`` whenever the profile finds an object.

    Attributes
    ----------
    survey_fields : tuple of str
        Top-level fields every alert schema of the survey has, the ones
        :meth:`SurveyProfile.matches` looks for in a record.
    objects : tuple of tuple of str
        Field paths of the object ID, in the order :meth:`SurveyProfile.object_id` tries
        them. When several are set they name the same object, so a reader may read first the
        one that comes first in the body.
    others : tuple of tuple of str
        IDs tried next, in order, when no object ID is set (e.g. a solar-system object's).
    alerts : tuple of tuple of str
        Alert IDs, the last resort, in order.
    no_object : callable
        ``no_object(value) -> bool``: whether an ID of ``objects`` or ``others`` means "no
        object". An alert ID counts as absent only when null.
    """

    survey_fields: tuple[str, ...]
    objects: tuple[tuple[str, ...], ...]
    others: tuple[tuple[str, ...], ...]
    alerts: tuple[tuple[str, ...], ...]
    no_object: Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class AlertView:
    """Survey-agnostic summary of one alert.

    Attributes
    ----------
    survey : str
        ``"ztf"`` or ``"lsst"``.
    alert_id : int
        ZTF ``candid``; LSST ``diaSource.diaSourceId``.
    object_id : str or int or None
        ZTF ``objectId`` (str); LSST ``diaObjectId`` (int), None when there is no diaObject
        (e.g. solar-system-only detections).
    ra : float or None
        Right ascension [deg].
    dec : float or None
        Declination [deg].
    mjd : float or None
        Time of the detection, MJD (ZTF: start of exposure, UTC; LSST: mid-exposure, TAI).
    band : str or None
        Filter name (``"g"``, ``"r"``, ``"i"`` ...).
    magnitude : float or None
        ZTF ``magpsf``; LSST AB magnitude from a positive ``psfFlux``.
    magnitude_error : float or None
        ZTF ``sigmapsf``; LSST ``1.0857 * psfFluxErr / psfFlux``.
    flux : float or None
        LSST difference-image PSF flux [nJy]; None for ZTF.
    flux_error : float or None
        Its error [nJy].
    ss_name : str or None
        Known solar-system object the detection is attributed to (ZTF ``ssnamenr`` when
        ``ssdistnr`` and ``ssmagnr`` are set too; LSST ``ssObjectId`` as a string, else the
        MPC designation).
    ss_distance_arcsec : float or None
        ZTF ``ssdistnr``: distance to that object [arcsec]; None for LSST, or without one.
    is_solar_system : bool
        ``ss_name is not None``.
    visit_id : int or None
        ZTF ``candidate.pid`` (processing ID of the science image); LSST ``diaSource.visit``
        (``ccdVisitId`` before 7.0).
    n_previous : int
        Number of previous detections carried by the alert (upper limits excluded).
    has_cutouts : bool
        Whether at least one image cutout is attached.
    """

    survey: str
    alert_id: int
    object_id: str | int | None
    ra: float | None
    dec: float | None
    mjd: float | None
    band: str | None
    magnitude: float | None
    magnitude_error: float | None
    flux: float | None
    flux_error: float | None
    ss_name: str | None
    ss_distance_arcsec: float | None
    is_solar_system: bool
    visit_id: int | None
    n_previous: int
    has_cutouts: bool


VIEW_READS = frozenset(f.name for f in dataclasses.fields(AlertView))
"""Read names of the :class:`AlertView` attributes (each its own read)."""
EXTRA_READS = frozenset(
    {"detection", "previous_detections", "solar_system_names", "difference_sign"}
)
"""Read names of the accessors that are not view attributes (module docstring)."""
READS = VIEW_READS | EXTRA_READS
"""Every read name a branch or processor may declare."""


def _cutout_present(profile: SurveyProfile, record: Mapping[str, Any]) -> bool:
    return any(image is not None for image in profile.cutouts(record).values())


VIEW_ACCESSORS: Mapping[str, Callable[[SurveyProfile, Mapping[str, Any]], Any]] = {
    "survey": lambda profile, record: profile.survey,
    "alert_id": lambda profile, record: profile.alert_id(record),
    "object_id": lambda profile, record: profile.object_id(record),
    "ra": lambda profile, record: profile.ra_dec(record)[0],
    "dec": lambda profile, record: profile.ra_dec(record)[1],
    "mjd": lambda profile, record: profile.mjd(record),
    "band": lambda profile, record: profile.band(record),
    "magnitude": lambda profile, record: profile.magnitude(record)[0],
    "magnitude_error": lambda profile, record: profile.magnitude(record)[1],
    "flux": lambda profile, record: profile.flux(record)[0],
    "flux_error": lambda profile, record: profile.flux(record)[1],
    "ss_name": lambda profile, record: profile.solar_system(record)[0],
    "ss_distance_arcsec": lambda profile, record: profile.solar_system(record)[1],
    "is_solar_system": lambda profile, record: profile.solar_system(record)[0] is not None,
    "visit_id": lambda profile, record: profile.visit_id(record),
    "n_previous": lambda profile, record: len(profile.previous_detections(record)),
    "has_cutouts": _cutout_present,
}
"""AlertView attribute -> ``accessor(profile, record)``, the value :meth:`SurveyProfile.view`
gives it; the record needs only the fields of that attribute's read
(:meth:`SurveyProfile.field_paths`)."""


class SurveyProfile:
    """How one survey's alert records name what branches need (base class).

    Subclasses implement the field accessors; :meth:`view` assembles them.

    Attributes
    ----------
    survey : str
        Short survey name, the :attr:`AlertView.survey` value.
    key_paths : KeyPaths
        Where the alert records keep the IDs of the message key.
    cutout_fields : Mapping of str to str
        Top-level field of each image cutout, by kind (the keys of :data:`CUTOUT_KINDS`): what
        :meth:`cutouts` reads and what :mod:`brokerapp.wire.lean` strips from a body.
    """

    survey = ""
    key_paths: KeyPaths
    cutout_fields: Mapping[str, str] = {}
    detection_field = ""
    """Top-level field holding the alert's own detection record (for the archivers)."""
    previous_field = ""
    """Top-level field holding the array of previous detections (for the archivers)."""
    night_utc_offset_hours = 0.0
    """Hours added to UTC before taking the date of an observing night (:meth:`night`)."""

    def detection_record(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """Return the alert's own detection, the record :attr:`detection_field` holds.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        Mapping
            The detection's fields by their survey names (empty when absent).
        """
        return record.get(self.detection_field) or {}

    def night(self, mjd: float | None) -> str | None:
        """Return the observing night of a detection time, as ``YYYYMMDD``.

        The date of ``mjd`` (taken as UTC; LSST's TAI is 37 s off, which moves no night
        boundary in practice since it falls at local noon) shifted by
        :attr:`night_utc_offset_hours`, so that one night never straddles two dates.

        Parameters
        ----------
        mjd : float or None
            Detection time (:attr:`AlertView.mjd`).

        Returns
        -------
        str or None
            E.g. ``"20260701"``; None without a time.
        """
        if mjd is None or not math.isfinite(mjd):
            return None
        shifted = _MJD_EPOCH + timedelta(days=mjd, hours=self.night_utc_offset_hours)
        return shifted.strftime("%Y%m%d")

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Tell whether ``record`` looks like an alert of this survey.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        bool
            True when the survey's identifying fields are present.
        """
        raise NotImplementedError

    def alert_id(self, record: Mapping[str, Any]) -> int:
        """Return the alert's unique ID.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        int
            The ID.
        """
        raise NotImplementedError

    def object_id(self, record: Mapping[str, Any]) -> str | int | None:
        """Return the ID of the astronomical object the alert belongs to, if any.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        str or int or None
            The survey's object ID.
        """
        raise NotImplementedError

    def ra_dec(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Return the detection's position.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        tuple of (float or None, float or None)
            Right ascension and declination [deg].
        """
        raise NotImplementedError

    def mjd(self, record: Mapping[str, Any]) -> float | None:
        """Return the detection's time as MJD.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        float or None
            Modified Julian date.
        """
        raise NotImplementedError

    def band(self, record: Mapping[str, Any]) -> str | None:
        """Return the filter the detection was made in.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        str or None
            Band name.
        """
        raise NotImplementedError

    def magnitude(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Return the detection's magnitude and its error.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        tuple of (float or None, float or None)
            Magnitude and error [mag].
        """
        raise NotImplementedError

    def flux(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Return the detection's flux and its error, where the survey gives one.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        tuple of (float or None, float or None)
            Flux and error [nJy].
        """
        raise NotImplementedError

    def solar_system(self, record: Mapping[str, Any]) -> tuple[str | None, float | None]:
        """Return the known solar-system object the detection is attributed to.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        tuple of (str or None, float or None)
            Its name and its distance from the detection [arcsec], each None when unknown;
            the name is None exactly when the alert is not a solar-system detection
            (:attr:`AlertView.is_solar_system`).
        """
        raise NotImplementedError

    def is_solar_system(self, record: Mapping[str, Any]) -> bool:
        """Tell whether the alert is a detection of a known solar-system object.

        The one definition of solar-system membership: the survey names a known object for
        the detection (:meth:`solar_system` gives a name).

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        bool
            The value of :attr:`AlertView.is_solar_system`.
        """
        return self.solar_system(record)[0] is not None

    def difference_sign(self, record: Mapping[str, Any]) -> int | None:
        """Return the sign of the difference-image detection.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        int or None
            ``1`` when the source is brighter than in the template, ``-1`` when fainter, None
            when the alert does not say.
        """
        raise NotImplementedError

    def detection_id(self, record: Mapping[str, Any]) -> Any:
        """Return the ID of the detection a record holds, as the record has it.

        Parameters
        ----------
        record : Mapping
            A decoded alert, or a previous detection wrapped by :meth:`previous_as_record`.

        Returns
        -------
        int or None
            The detection's own ID field; None when absent.
        """
        raise NotImplementedError

    def previous_as_record(self, previous: Mapping[str, Any]) -> dict:
        """Wrap a previous detection so that the accessors read it as an alert's own.

        Parameters
        ----------
        previous : Mapping
            One of :meth:`previous_detections`.

        Returns
        -------
        dict
            A record holding ``previous`` where the survey keeps the alert's detection.
        """
        raise NotImplementedError

    def solar_system_names(self, record: Mapping[str, Any]) -> list[Any]:
        """Return every name the survey gives the detection's solar-system object.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        list
            The name of :meth:`solar_system` first, then any other designation (raw values,
            None where absent; a watchlist normalises them).
        """
        return [self.solar_system(record)[0]]

    def visit_id(self, record: Mapping[str, Any]) -> int | None:
        """Return the ID of the exposure the detection comes from.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        int or None
            Visit (or processing) ID.
        """
        raise NotImplementedError

    def previous_detections(self, record: Mapping[str, Any]) -> list[dict]:
        """Return the earlier detections of the object carried by the alert.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        list of dict
            Previous detections in the survey's own record layout (upper limits excluded);
            empty when there are none.
        """
        raise NotImplementedError

    def cutouts(self, record: Mapping[str, Any]) -> dict[str, bytes | None]:
        """Return the image cutouts.

        Parameters
        ----------
        record : Mapping
            A decoded alert.

        Returns
        -------
        dict of str to bytes or None
            Keys ``"science"``, ``"template"``, ``"difference"``; values are the image bytes
            (FITS; gzipped for ZTF) or None when absent.
        """
        raise NotImplementedError

    def with_alert_id(self, record: Mapping[str, Any], new_id: int) -> dict:
        """Return a copy of ``record`` carrying a new alert ID.

        Only the containers on the path to the ID are copied (shallow copies); the input is not
        modified. Used by the test producer to replay sample files with fresh IDs.

        Parameters
        ----------
        record : Mapping
            A decoded alert.
        new_id : int
            The new ID.

        Returns
        -------
        dict
            The copy, with ``new_id`` everywhere the survey keeps the alert ID.
        """
        raise NotImplementedError

    read_paths: Mapping[str, tuple[FieldPath, ...]] = {}
    """Read name (:data:`READS`) -> the field paths its accessors read (subclasses fill it)."""

    def field_paths(self, reads: Iterable[str]) -> tuple[FieldPath, ...]:
        """Return the field paths the accessors behind ``reads`` read, for every schema version.

        Parameters
        ----------
        reads : iterable of str
            Read names (:data:`READS`).

        Returns
        -------
        tuple of FieldPath
            Without repeats, in the order of :attr:`read_paths` (so equal sets of reads give
            equal tuples); paths a schema version lacks are included (a decoder drops them).

        Raises
        ------
        UnknownReadError
            If a name is not one of :data:`READS`.
        """
        wanted = set(reads)
        unknown = sorted(wanted - READS)
        if unknown:
            raise UnknownReadError(
                f"unknown read name(s) {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(READS))})"
            )
        paths: dict[FieldPath, None] = {}
        for name, held in self.read_paths.items():
            if name in wanted:
                paths.update(dict.fromkeys(held))
        return tuple(paths)

    def view(self, record: Mapping[str, Any]) -> AlertView:
        """Summarise ``record`` as an :class:`AlertView`.

        Parameters
        ----------
        record : Mapping
            A decoded alert of this survey.

        Returns
        -------
        AlertView
            The summary.
        """
        ra, dec = self.ra_dec(record)
        magnitude, magnitude_error = self.magnitude(record)
        flux, flux_error = self.flux(record)
        ss_name, ss_distance = self.solar_system(record)
        cutouts = self.cutouts(record)
        return AlertView(
            survey=self.survey,
            alert_id=self.alert_id(record),
            object_id=self.object_id(record),
            ra=ra,
            dec=dec,
            mjd=self.mjd(record),
            band=self.band(record),
            magnitude=magnitude,
            magnitude_error=magnitude_error,
            flux=flux,
            flux_error=flux_error,
            ss_name=ss_name,
            ss_distance_arcsec=ss_distance,
            is_solar_system=ss_name is not None,
            visit_id=self.visit_id(record),
            n_previous=len(self.previous_detections(record)),
            has_cutouts=any(image is not None for image in cutouts.values()),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _under(holder: str | None, names: Iterable[str]) -> tuple[FieldPath, ...]:
    return tuple((name,) if holder is None else (holder, name) for name in names)


_ZTF_DETECTION = ("candid", "jd", "ra", "dec", "magpsf", "sigmapsf", "fid", "pid")
"""``candidate`` (and ``prv_candidates`` entry) fields that
:func:`~brokerapp.domain.candidates.detection` reads through the ZTF accessors."""


def _ztf_read_paths() -> dict[str, tuple[FieldPath, ...]]:
    solar = _under("candidate", ZTF_SOLAR_SYSTEM_FIELDS)
    cutouts = tuple(("cutout" + kind.capitalize(), "stampData") for kind in CUTOUT_KINDS)
    return {
        "survey": (),
        "alert_id": (("candid",), ("candidate", "candid")),
        "object_id": (("objectId",),),
        "ra": (("candidate", "ra"),),
        "dec": (("candidate", "dec"),),
        "mjd": (("candidate", "jd"),),
        "band": (("candidate", "fid"),),
        "magnitude": (("candidate", "magpsf"), ("candidate", "sigmapsf")),
        "magnitude_error": (("candidate", "magpsf"), ("candidate", "sigmapsf")),
        "flux": (),
        "flux_error": (),
        "ss_name": solar,
        "ss_distance_arcsec": solar,
        "is_solar_system": solar,
        "solar_system_names": solar,
        "visit_id": (("candidate", "pid"),),
        "n_previous": (("prv_candidates", "candid"),),
        "has_cutouts": cutouts,
        "difference_sign": (("candidate", "isdiffpos"),),
        "detection": _under("candidate", _ZTF_DETECTION),
        "previous_detections": _under("prv_candidates", _ZTF_DETECTION),
    }


_LSST_SOLAR_HOLDERS = ("diaSource", "ssSource", "ssObject", "MPCORB", "mpc_orbits")
"""Records of an LSST alert that may carry ``ssObjectId`` (:meth:`LsstProfile.solar_system`)."""
_LSST_DESIGNATION_HOLDERS = ("ssSource", "MPCORB", "mpc_orbits")
"""Records of an LSST alert that may carry a designation."""
_LSST_DESIGNATIONS = ("designation", "mpcDesignation")
_LSST_FLUX = ("psfFlux", "psfFluxErr", "psFlux", "psFluxErr")
_LSST_DETECTION = (
    "diaSourceId",
    "midpointMjdTai",
    "midPointTai",
    "ra",
    "dec",
    "decl",
    *_LSST_FLUX,
    "band",
    "filterName",
    "visit",
    "ccdVisitId",
)
"""``diaSource`` (and ``prvDiaSources`` entry) fields of a detection, in every version."""


def _lsst_read_paths() -> dict[str, tuple[FieldPath, ...]]:
    solar = tuple((holder, "ssObjectId") for holder in _LSST_SOLAR_HOLDERS) + tuple(
        (holder, name) for holder in _LSST_DESIGNATION_HOLDERS for name in _LSST_DESIGNATIONS
    )
    flux = _under("diaSource", _LSST_FLUX)
    return {
        "survey": (),
        "alert_id": (("diaSource", "diaSourceId"),),
        "object_id": (("diaObject", "diaObjectId"), ("diaSource", "diaObjectId")),
        "ra": (("diaSource", "ra"),),
        "dec": (("diaSource", "dec"), ("diaSource", "decl")),
        "mjd": (("diaSource", "midpointMjdTai"), ("diaSource", "midPointTai")),
        "band": (("diaSource", "band"), ("diaSource", "filterName")),
        "magnitude": flux,
        "magnitude_error": flux,
        "flux": flux,
        "flux_error": flux,
        "ss_name": solar,
        "ss_distance_arcsec": solar,
        "is_solar_system": solar,
        "solar_system_names": solar,
        "visit_id": (("diaSource", "visit"), ("diaSource", "ccdVisitId")),
        "n_previous": (("prvDiaSources", "diaSourceId"),),
        "has_cutouts": tuple(("cutout" + kind.capitalize(),) for kind in CUTOUT_KINDS),
        "difference_sign": flux,
        "detection": _under("diaSource", _LSST_DETECTION),
        "previous_detections": _under("prvDiaSources", _LSST_DETECTION),
    }


class ZtfProfile(SurveyProfile):
    """Field layout of ZTF alerts (``ztf.alert`` schemas 3.x and 4.x)."""

    survey = "ztf"
    detection_field = "candidate"
    previous_field = "prv_candidates"
    night_utc_offset_hours = 0.0
    """ZTF's nights (Palomar, UTC-8) fall within one UTC date, the date of ZTF's night topics."""

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Tell whether the record has ``candidate`` and ``objectId``."""
        return "candidate" in record and "objectId" in record

    def alert_id(self, record: Mapping[str, Any]) -> int:
        """Return the top-level ``candid`` (else ``candidate.candid``)."""
        candid = record.get("candid")
        return int(candid if candid is not None else record["candidate"]["candid"])

    def object_id(self, record: Mapping[str, Any]) -> str | None:
        """Return ``objectId``, e.g. ``"ZTF18abcdefg"``."""
        return _value(record.get("objectId"))

    def ra_dec(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Return ``candidate.ra`` and ``candidate.dec`` [deg]."""
        candidate = record["candidate"]
        return _float(candidate.get("ra")), _float(candidate.get("dec"))

    def mjd(self, record: Mapping[str, Any]) -> float | None:
        """Return ``candidate.jd - 2400000.5`` (start of exposure)."""
        jd = _float(record["candidate"].get("jd"))
        return None if jd is None else jd - MJD_OFFSET

    def band(self, record: Mapping[str, Any]) -> str | None:
        """Return ``candidate.fid`` as a band name (1 = g, 2 = r, 3 = i)."""
        return ZTF_BANDS.get(record["candidate"].get("fid"))

    def magnitude(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Return ``candidate.magpsf`` and ``candidate.sigmapsf``."""
        candidate = record["candidate"]
        return _float(candidate.get("magpsf")), _float(candidate.get("sigmapsf"))

    def flux(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Return ``(None, None)``: ZTF alerts give magnitudes, not fluxes."""
        return None, None

    def solar_system(self, record: Mapping[str, Any]) -> tuple[str | None, float | None]:
        """Return ``candidate.ssnamenr`` and ``ssdistnr``, or ``(None, None)``.

        Both are None unless ``ssdistnr``, ``ssmagnr`` and ``ssnamenr`` are all set (none is
        absent, None, NaN, ``-999.0`` or ``"null"``).
        """
        candidate = record["candidate"]
        if any(is_missing(candidate.get(name)) for name in ZTF_SOLAR_SYSTEM_FIELDS):
            return None, None
        return str(candidate["ssnamenr"]), float(candidate["ssdistnr"])

    def difference_sign(self, record: Mapping[str, Any]) -> int | None:
        """Return the sign given by ``candidate.isdiffpos`` (``"t"``/``"1"``, ``"f"``/``"0"``).

        A boolean is read as such, strings in any case and with spaces around; anything else
        (or no ``candidate``) gives None.
        """
        flag = (record.get("candidate") or {}).get("isdiffpos")
        if isinstance(flag, bool):
            return 1 if flag else -1
        if isinstance(flag, str):
            flag = flag.strip().lower()
            if flag in _ZTF_POSITIVE:
                return 1
            if flag in _ZTF_NEGATIVE:
                return -1
        return None

    def detection_id(self, record: Mapping[str, Any]) -> Any:
        """Return ``candidate.candid`` (None without one)."""
        return (record.get("candidate") or {}).get("candid")

    def previous_as_record(self, previous: Mapping[str, Any]) -> dict:
        """Return ``{"candidate": previous}`` (a ``prv_candidates`` entry has its fields)."""
        return {"candidate": previous}

    def visit_id(self, record: Mapping[str, Any]) -> int | None:
        """Return ``candidate.pid``, the processing ID of the science image."""
        return _value(record["candidate"].get("pid"))

    def previous_detections(self, record: Mapping[str, Any]) -> list[dict]:
        """Return the ``prv_candidates`` entries with a ``candid`` (not upper limits)."""
        return [
            previous
            for previous in record.get("prv_candidates") or ()
            if previous.get("candid") is not None
        ]

    def cutouts(self, record: Mapping[str, Any]) -> dict[str, bytes | None]:
        """Return the ``stampData`` (gzipped FITS) of the three ``cutout*`` records."""
        images: dict[str, bytes | None] = {}
        for kind, name in self.cutout_fields.items():
            cutout = record.get(name)
            images[kind] = None if cutout is None else cutout.get("stampData")
        return images

    def with_alert_id(self, record: Mapping[str, Any], new_id: int) -> dict:
        """Return a copy with ``candid`` and ``candidate.candid`` set to ``new_id``.

        Parameters
        ----------
        record : Mapping
            A decoded ZTF alert.
        new_id : int
            The new candidate ID.

        Returns
        -------
        dict
            The shallow copy (``candidate`` copied too).
        """
        copy = dict(record)
        copy["candid"] = new_id
        copy["candidate"] = {**record["candidate"], "candid": new_id}
        return copy

    cutout_fields: Mapping[str, str] = {
        "science": "cutoutScience",
        "template": "cutoutTemplate",
        "difference": "cutoutDifference",
    }
    """``cutoutScience``, ``cutoutTemplate``, ``cutoutDifference``: each a union of null and a
    ``ztf.alert.cutout`` record (null first in 4.x, last in 3.x), the last top-level fields."""

    key_paths = KeyPaths(
        survey_fields=("objectId", "candidate"),
        objects=(("objectId",),),
        others=(),
        alerts=(("candid",), ("candidate", "candid")),
        no_object=is_missing,
    )
    """Key: ``objectId`` (the third field); when it is ZTF's ``"null"`` (never seen in
    practice), the alert ID ``candid`` (top level, else ``candidate.candid``)."""

    read_paths = _ztf_read_paths()
    """Read name -> ``candidate`` (and ``prv_candidates``, cutout) fields its accessors read."""


class LsstProfile(SurveyProfile):
    """Field layout of Rubin alerts, every lsst-alert-packet schema version (3.0 to 11.1)."""

    survey = "lsst"
    detection_field = "diaSource"
    previous_field = "prvDiaSources"
    night_utc_offset_hours = -12.0
    """Rubin's ``dayObs``: the date at UTC-12h, so a Cerro Pachon night keeps one date."""

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Tell whether the record has a ``diaSource``."""
        return "diaSource" in record

    def alert_id(self, record: Mapping[str, Any]) -> int:
        """Return ``diaSource.diaSourceId``."""
        return int(record["diaSource"]["diaSourceId"])

    def object_id(self, record: Mapping[str, Any]) -> int | None:
        """Return ``diaObject.diaObjectId``, else ``diaSource.diaObjectId``; ``0`` -> None."""
        for holder in (record.get("diaObject"), record["diaSource"]):
            object_id = _value(_first(holder, "diaObjectId"))
            if object_id is not None and object_id != NO_LSST_ID:
                return int(object_id)
        return None

    def ra_dec(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Return ``diaSource.ra`` and ``diaSource.dec`` (``decl`` before 5.0) [deg]."""
        source = record["diaSource"]
        return _float(source.get("ra")), _float(_first(source, "dec", "decl"))

    def mjd(self, record: Mapping[str, Any]) -> float | None:
        """Return ``diaSource.midpointMjdTai`` (``midPointTai`` before 5.0)."""
        return _float(_first(record["diaSource"], "midpointMjdTai", "midPointTai"))

    def band(self, record: Mapping[str, Any]) -> str | None:
        """Return ``diaSource.band`` (``filterName`` before 5.0)."""
        return _value(_first(record["diaSource"], "band", "filterName"))

    def flux(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Return ``diaSource.psfFlux``/``psfFluxErr`` (``psFlux``/``psFluxErr`` < 5.0) [nJy]."""
        source = record["diaSource"]
        return (
            _float(_first(source, "psfFlux", "psFlux")),
            _float(_first(source, "psfFluxErr", "psFluxErr")),
        )

    def magnitude(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """Return the AB magnitude of a positive PSF flux, None for zero or negative flux."""
        flux, flux_error = self.flux(record)
        if flux is None or flux <= 0.0:
            return None, None
        magnitude = -2.5 * math.log10(flux) + AB_NJY_ZERO_POINT
        error = None if flux_error is None else MAG_PER_RELATIVE_FLUX_ERROR * flux_error / flux
        return magnitude, error

    def solar_system(self, record: Mapping[str, Any]) -> tuple[str | None, float | None]:
        """Return the first non-zero ``ssObjectId`` (as str), else the MPC designation."""
        for holder in ("diaSource", "ssSource", "ssObject", "MPCORB", "mpc_orbits"):
            ss_object_id = _value(_first(record.get(holder), "ssObjectId"))
            if ss_object_id is not None and ss_object_id != NO_LSST_ID:
                return str(ss_object_id), None
        for holder in ("ssSource", "MPCORB", "mpc_orbits"):
            designation = _value(_first(record.get(holder), "designation", "mpcDesignation"))
            if designation:
                return str(designation), None
        return None, None

    def solar_system_names(self, record: Mapping[str, Any]) -> list[Any]:
        """Return the :meth:`solar_system` name, then ``MPCORB``/``mpc_orbits.mpcDesignation``."""
        orbits = ("MPCORB", "mpc_orbits")
        designations = [(record.get(orbit) or {}).get("mpcDesignation") for orbit in orbits]
        return [self.solar_system(record)[0], *designations]

    def difference_sign(self, record: Mapping[str, Any]) -> int | None:
        """Return the sign of ``diaSource.psfFlux`` (None for a zero or missing flux)."""
        flux = self.flux(record)[0]
        if flux is None or flux == 0.0:
            return None
        return 1 if flux > 0.0 else -1

    def detection_id(self, record: Mapping[str, Any]) -> Any:
        """Return ``diaSource.diaSourceId`` (None without one)."""
        return (record.get("diaSource") or {}).get("diaSourceId")

    def previous_as_record(self, previous: Mapping[str, Any]) -> dict:
        """Return ``{"diaSource": previous}`` (a ``prvDiaSources`` entry has its fields)."""
        return {"diaSource": previous}

    def visit_id(self, record: Mapping[str, Any]) -> int | None:
        """Return ``diaSource.visit`` (``ccdVisitId`` before 7.0)."""
        return _value(_first(record["diaSource"], "visit", "ccdVisitId"))

    def previous_detections(self, record: Mapping[str, Any]) -> list[dict]:
        """Return ``prvDiaSources`` (empty list when null)."""
        return list(record.get("prvDiaSources") or ())

    def cutouts(self, record: Mapping[str, Any]) -> dict[str, bytes | None]:
        """Return the ``cutoutScience``/``cutoutTemplate``/``cutoutDifference`` bytes."""
        return {kind: record.get(name) for kind, name in self.cutout_fields.items()}

    def with_alert_id(self, record: Mapping[str, Any], new_id: int) -> dict:
        """Return a copy with ``diaSource.diaSourceId`` (and top-level copies) set to ``new_id``.

        The top-level ``diaSourceId`` (schemas 8.0 on) and ``alertId`` (before 8.0) are
        rewritten too when present, so every ID in the record agrees.

        Parameters
        ----------
        record : Mapping
            A decoded LSST alert.
        new_id : int
            The new diaSource ID.

        Returns
        -------
        dict
            The shallow copy (``diaSource`` copied too).
        """
        copy = dict(record)
        for name in ("diaSourceId", "alertId"):
            if name in copy:
                copy[name] = new_id
        copy["diaSource"] = {**record["diaSource"], "diaSourceId": new_id}
        return copy

    cutout_fields: Mapping[str, str] = {
        "science": "cutoutScience",
        "template": "cutoutTemplate",
        "difference": "cutoutDifference",
    }
    """``cutoutScience`` (from 6.1), ``cutoutTemplate``, ``cutoutDifference``: each
    ``["null", "bytes"]``, the last top-level fields of every lsst-alert-packet schema (the
    re-serialised samples of ``tests/data/lsst`` put two fields after them)."""

    key_paths = KeyPaths(
        survey_fields=("diaSource",),
        objects=(("diaObject", "diaObjectId"), ("diaSource", "diaObjectId")),
        others=(("diaSource", "ssObjectId"),),
        alerts=(("diaSource", "diaSourceId"), ("diaSourceId",), ("alertId",)),
        no_object=_no_lsst_object,
    )
    """Key: the ``diaObjectId`` of ``diaObject`` or ``diaSource`` (null, 0 or -999: none);
    else ``diaSource.ssObjectId`` (a detection of a solar-system object only); else the alert
    ID ``diaSource.diaSourceId``, the top-level ``diaSourceId`` (8.0 on) or ``alertId``
    (before 8.0). Both object IDs are the same object in Rubin alerts (the diaObject sent is
    the diaSource's; the lsst-alert-packet samples leave ``diaSource.diaObjectId`` null but
    carry a ``diaObject``). ``diaSource.diaObjectId`` is among the first bytes of the body
    (the fourth field of ``diaSource``, itself the fourth top-level field from 8.0 and the
    second before; its third field before 7.0) while ``diaObject`` comes after the previous
    detections, so the key reader reads ``diaSource``'s first."""

    read_paths = _lsst_read_paths()
    """Read name -> ``diaSource`` (and solar-system, cutout) fields, old and new names."""


ZTF_PROFILE = ZtfProfile()
"""The ZTF profile."""
LSST_PROFILE = LsstProfile()
"""The LSST profile."""
PROFILES: tuple[SurveyProfile, ...] = (ZTF_PROFILE, LSST_PROFILE)
"""Every survey profile, in the order :func:`profile_for` tries them."""


def profile_for(record: Mapping[str, Any]) -> SurveyProfile:
    """Pick the profile of the survey that produced ``record``.

    Parameters
    ----------
    record : Mapping
        A decoded alert. ZTF alerts have ``candidate`` and ``objectId``; LSST alerts have
        ``diaSource``.

    Returns
    -------
    SurveyProfile
        :data:`ZTF_PROFILE` or :data:`LSST_PROFILE`.

    Raises
    ------
    UnknownSurveyError
        If the record matches neither survey.
    """
    for profile in PROFILES:
        if profile.matches(record):
            return profile
    fields = ", ".join(sorted(record)[:8])
    raise UnknownSurveyError(f"record is neither a ZTF nor an LSST alert (fields: {fields})")


def profile_for_fields(names: Iterable[str]) -> SurveyProfile:
    """Pick the profile of a survey from the top-level field names of its alert schema.

    Parameters
    ----------
    names : iterable of str
        Names of the top-level fields of a writer schema's record.

    Returns
    -------
    SurveyProfile
        The profile whose alerts have those fields, as :func:`profile_for` picks it.

    Raises
    ------
    UnknownSurveyError
        If no survey's alerts have those fields.
    """
    return profile_for(dict.fromkeys(names))


def view(record: Mapping[str, Any]) -> AlertView:
    """Summarise an alert of any supported survey.

    Parameters
    ----------
    record : Mapping
        A decoded alert.

    Returns
    -------
    AlertView
        The survey-agnostic summary.

    Raises
    ------
    UnknownSurveyError
        If the record matches neither survey.
    """
    return profile_for(record).view(record)
