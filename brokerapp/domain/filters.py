"""DMTN-028 style alert filters and the per-visit limit on what they send (pure code).

A filter is a subclass of :class:`AlertFilter` whose :meth:`AlertFilter.filter` says whether
one decoded :class:`~brokerapp.model.alert.Alert` passes. Passing alerts go to a Kafka topic
named after the filter class (:attr:`AlertFilter.name`, e.g. ``Filter007``), at most
:attr:`AlertFilter.max_per_visit` (20) of them per visit. ``brokerapp filter BOOTSTRAP TOPIC
N`` runs the Nth filter of :data:`FILTERS` (1-based, :func:`filter_class`), like DMTN-028's
``filterStream.py kafka:9092 full-stream 7``.

The registered filters
    ``Filter001`` to ``Filter100`` are generated from the small table :data:`FILTER_SPECS`:
    each row names a purpose and a set of criteria, a tuple value being an axis that the row
    is expanded over (``{"band": ("g", "r"), "min_snr": (5, 10)}`` gives four filters). Each
    generated class is a real subclass of :class:`CriteriaFilter` with a docstring built from
    its criteria, a JSON-friendly :attr:`CriteriaFilter.criteria` dict and the frozen
    :class:`FilterCriteria` it evaluates (:attr:`CriteriaFilter.spec`).

Criteria semantics (:meth:`FilterCriteria.matches`)
    Criteria read only the survey-agnostic :class:`~brokerapp.model.profiles.AlertView`
    (plus, for ZTF, the sign of the difference,
    :meth:`~brokerapp.model.profiles.SurveyProfile.difference_sign`). Every bound is inclusive. A
    value the alert does not have (None) never satisfies a bound on it. All criteria of a
    filter must hold.

    - ``survey``: ``"ztf"`` or ``"lsst"``; absent = either.
    - ``band``: the band name (ZTF ``g``, ``r``, ``i``; LSST ``u``, ``g``, ``r``, ``i``,
      ``z``, ``y``); absent = any band.
    - ``min_snr`` / ``max_snr``: bounds on the signed signal-to-noise ratio of the difference
      detection, :func:`signal_to_noise`. LSST: ``psfFlux / psfFluxErr``. ZTF gives no flux,
      only a PSF magnitude and its error; since ``sigma_mag = 2.5 / ln 10 * sigma_flux /
      flux``, S/N is ``1.0857 / magnitude_error``, with the sign the alert gives for the
      difference (``isdiffpos``, read by the ZTF profile's ``difference_sign``). A negative
      difference (the source got fainter than in the template) has a negative S/N, so
      ``min_snr`` keeps brightenings and ``max_snr = -5`` selects fadings.
    - ``min_magnitude`` / ``max_magnitude``: ``magnitude >= min_magnitude`` (at least that
      faint) and ``magnitude <= max_magnitude`` (at least that bright), on the magnitude of a
      positive difference, :func:`detection_magnitude` (LSST has none for a non-positive
      flux; a ZTF negative difference is excluded likewise, so both surveys agree).
    - ``min_flux``: ``flux >= min_flux`` [nJy], the LSST difference-image PSF flux. ZTF alerts
      carry no flux, so they never pass a flux bound.
    - ``min_previous`` / ``max_previous``: bounds on the number of previous detections
      carried by the alert (``max_previous = 0``: first detections).
    - ``solar_system``: True = only detections of known solar-system objects, False = none
      of them; absent = either.

The per-visit limit, and the difference from DMTN-028
    DMTN-028's filter process counted passing alerts per visit assuming visits arrive one
    after another: a new visit ID reset the count. Here alerts come from a partitioned topic
    read by several workers, so the alerts of two visits interleave. The count is kept
    instead in a table keyed by filter and visit (:func:`limit_key`), read and written only by
    the worker that owns the key: the agent re-keys passing alerts by visit
    (:func:`visit_key`) into a repartition topic so one visit's alerts meet on one partition,
    then counts there. Interleaved visits then still give at most ``max_per_visit`` alerts
    per visit and filter in total, whatever partition they came from.

    Expiry is by time windows of length ``W`` (``filters_window_seconds``, 1 hour): counts
    are kept per (key, window index), the window of the alert's timestamp
    (``floor(timestamp / W)``). A visit's count is that of the alert's window plus the
    previous one, plus the next one if already counted (:func:`admit`; alerts near a boundary
    can come out of time order), so a visit whose alerts straddle a window boundary is still
    capped at the limit in total, since a visit's alerts arrive within minutes, far less than
    ``W``. Windows older than the previous one can no longer affect any decision and expire.
    This maps onto a Faust tumbling windowed table (``expires=2 * W``; ``current()``,
    ``delta(W)`` and ``delta(-W)`` are the current, previous and next windows' counts).
    Timestamps should be the alerts' Kafka timestamps (append time in ``alerts``) and "now"
    for expiry the stream time (the largest timestamp processed), not the wall clock, so that
    a replay makes the same decisions.

    Alerts without a visit ID are capped too, together under the visit ``none`` of their
    survey: the cap exists to bound what one burst sends downstream, and alerts lacking a
    visit are malformed or synthetic, exactly those that should not bypass it. Letting them
    through uncapped is the unsafe choice; counting them together may drop some, which is
    safe.

    ZTF has no visit ID; :attr:`~brokerapp.model.profiles.AlertView.visit_id` is ``candidate.pid``,
    the processing ID of one science image, which in the samples differs with the readout
    channel (``rcid``): for ZTF the cap applies per processed image, not per exposure.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, NamedTuple

from brokerapp.model.alert import Alert
from brokerapp.model.profiles import MAG_PER_RELATIVE_FLUX_ERROR, AlertView

__all__ = [
    "FILTERS",
    "FILTER_SPECS",
    "MAX_PER_VISIT",
    "NO_VISIT",
    "SURVEY_BANDS",
    "AlertFilter",
    "CriteriaFilter",
    "FilterCriteria",
    "FilterSpec",
    "admit",
    "catalogue",
    "detection_magnitude",
    "filter_class",
    "filter_classes",
    "limit_key",
    "passing",
    "signal_to_noise",
    "visit_key",
]

MAX_PER_VISIT = 20
"""Default maximum number of alerts a filter sends per visit."""
NO_VISIT = "none"
"""Visit part of the key of alerts that have no visit ID (they are capped together)."""
SURVEY_BANDS: Mapping[str, tuple[str, ...]] = {
    "ztf": ("g", "r", "i"),
    "lsst": ("u", "g", "r", "i", "z", "y"),
}
"""Bands of each survey, for validating :data:`FILTER_SPECS`."""


# ------------------------------------------------------------------------------ measurements


def signal_to_noise(alert: Alert) -> float | None:
    """Return the signed signal-to-noise ratio of the alert's difference detection.

    Parameters
    ----------
    alert : Alert
        A decoded alert.

    Returns
    -------
    float or None
        LSST: ``flux / flux_error`` (negative for a negative difference flux). ZTF:
        ``1.0857 / magnitude_error`` (as ``sigma_mag = 1.0857 * sigma_flux / flux``),
        negative when the profile's ``difference_sign`` is -1.
        None when a needed value is missing, the error is not positive, or (ZTF) the sign
        is unknown.
    """
    view = alert.view
    if view.survey == "lsst":
        flux, error = view.flux, view.flux_error
        if flux is None or error is None or not error > 0.0:
            return None
        return flux / error
    if view.survey == "ztf":
        error = view.magnitude_error
        sign = alert.profile.difference_sign(alert.record)
        if error is None or not error > 0.0 or sign is None:
            return None
        return sign * MAG_PER_RELATIVE_FLUX_ERROR / error
    return None


def detection_magnitude(alert: Alert) -> float | None:
    """Return the magnitude of a positive difference detection.

    Parameters
    ----------
    alert : Alert
        A decoded alert.

    Returns
    -------
    float or None
        :attr:`AlertView.magnitude` (LSST: None already for a non-positive flux); None for a
        ZTF negative difference (``difference_sign`` -1) or one of unknown sign, whose
        magnitude is that of the flux lost, not of a brightening.
    """
    view = alert.view
    if view.survey == "ztf" and alert.profile.difference_sign(alert.record) != 1:
        return None
    return view.magnitude


# ------------------------------------------------------------------------------ criteria


def _fmt(value: float) -> str:
    return f"{value:g}"


def _detections(n: int) -> str:
    return f"{n} previous detection" + ("" if n == 1 else "s")


@dataclass(frozen=True, slots=True)
class FilterCriteria:
    """The criteria of one generated filter; all must hold (see the module docstring).

    Attributes
    ----------
    survey : str or None
        ``"ztf"`` or ``"lsst"``; None = either.
    band : str or None
        Band name; None = any.
    min_snr, max_snr : float or None
        Inclusive bounds on :func:`signal_to_noise`.
    min_magnitude, max_magnitude : float or None
        Inclusive bounds on :func:`detection_magnitude` (``max_magnitude``: at least this
        bright).
    min_flux : float or None
        Inclusive lower bound on the difference flux [nJy] (LSST only).
    min_previous, max_previous : int or None
        Inclusive bounds on the number of previous detections.
    solar_system : bool or None
        True = known solar-system detections only; False = none of them; None = either.
    """

    survey: str | None = None
    band: str | None = None
    min_snr: float | None = None
    max_snr: float | None = None
    min_magnitude: float | None = None
    max_magnitude: float | None = None
    min_flux: float | None = None
    min_previous: int | None = None
    max_previous: int | None = None
    solar_system: bool | None = None

    def __post_init__(self) -> None:
        if self.survey is not None and self.survey not in SURVEY_BANDS:
            raise ValueError(f"unknown survey {self.survey!r}")
        if self.band is not None:
            allowed = (
                SURVEY_BANDS[self.survey]
                if self.survey
                else tuple(dict.fromkeys(itertools.chain(*SURVEY_BANDS.values())))
            )
            if self.band not in allowed:
                raise ValueError(f"band {self.band!r} is not one of {allowed}")
        for low, high in (
            ("min_snr", "max_snr"),
            ("min_magnitude", "max_magnitude"),
            ("min_previous", "max_previous"),
        ):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} {lo} > {high} {hi}")
        if self.min_flux is not None and self.survey == "ztf":
            raise ValueError("ZTF alerts carry no flux: a ZTF flux bound passes nothing")

    @classmethod
    def from_dict(cls, criteria: Mapping[str, Any]) -> FilterCriteria:
        """Build criteria from a mapping of field names (the :meth:`to_dict` form).

        Parameters
        ----------
        criteria : Mapping
            Field name to value; absent fields are unconstrained.

        Returns
        -------
        FilterCriteria
            The validated criteria.

        Raises
        ------
        ValueError
            On an unknown field name, survey or band, or crossed bounds.
        """
        unknown = set(criteria) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown criteria {sorted(unknown)}")
        return cls(**criteria)

    def to_dict(self) -> dict[str, Any]:
        """Return the constrained fields only, JSON-friendly.

        Returns
        -------
        dict
            Field name to value, without the None (unconstrained) fields.
        """
        return {name: value for name, value in asdict(self).items() if value is not None}

    def matches(self, alert: Alert) -> bool:
        """Tell whether ``alert`` meets every criterion.

        Parameters
        ----------
        alert : Alert
            A decoded alert.

        Returns
        -------
        bool
            True when all criteria hold; a missing value never meets a bound on it.
        """
        view: AlertView = alert.view
        if self.survey is not None and view.survey != self.survey:
            return False
        if self.band is not None and view.band != self.band:
            return False
        if self.solar_system is not None and view.is_solar_system != self.solar_system:
            return False
        if self.min_previous is not None and not view.n_previous >= self.min_previous:
            return False
        if self.max_previous is not None and not view.n_previous <= self.max_previous:
            return False
        if self.min_snr is not None or self.max_snr is not None:
            snr = signal_to_noise(alert)
            if not _within(snr, self.min_snr, self.max_snr):
                return False
        if self.min_magnitude is not None or self.max_magnitude is not None:
            magnitude = detection_magnitude(alert)
            if not _within(magnitude, self.min_magnitude, self.max_magnitude):
                return False
        if self.min_flux is not None and not _within(view.flux, self.min_flux, None):
            return False
        return True

    def describe(self) -> str:
        """Return the criteria as an English phrase, for docstrings and status pages.

        Returns
        -------
        str
            E.g. ``"LSST alerts in band r with S/N >= 5, not solar-system"``.
        """
        survey = {None: "alerts of either survey", "ztf": "ZTF alerts", "lsst": "LSST alerts"}
        parts = [survey[self.survey] + ("" if self.band is None else f" in band {self.band}")]
        conditions = []
        if self.min_snr is not None:
            conditions.append(f"S/N >= {_fmt(self.min_snr)}")
        if self.max_snr is not None:
            conditions.append(f"S/N <= {_fmt(self.max_snr)}")
        if self.max_magnitude is not None:
            conditions.append(f"magnitude <= {_fmt(self.max_magnitude)}")
        if self.min_magnitude is not None:
            conditions.append(f"magnitude >= {_fmt(self.min_magnitude)}")
        if self.min_flux is not None:
            conditions.append(f"flux >= {_fmt(self.min_flux)} nJy")
        if self.min_previous is not None:
            conditions.append(f"at least {_detections(self.min_previous)}")
        if self.max_previous is not None:
            conditions.append(
                "no previous detection"
                if self.max_previous == 0
                else f"at most {_detections(self.max_previous)}"
            )
        if conditions:
            parts[0] += " with " + " and ".join(conditions)
        if self.solar_system is True:
            parts.append("known solar-system objects only")
        elif self.solar_system is False:
            parts.append("not solar-system")
        return ", ".join(parts)


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    """Tell whether ``low <= value <= high`` (open ends when None); None/NaN never is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


# ------------------------------------------------------------------------------ filters


class AlertFilter(ABC):
    """Base class of alert filters.

    A subclass implements :meth:`filter`. Its :attr:`name` is its class name, which is also
    the name of the topic its passing alerts go to. Filters hold no per-alert state: one
    instance may evaluate any number of alerts.

    Attributes
    ----------
    name : str
        The class name (set for every subclass), e.g. ``"Filter007"``.
    max_per_visit : int
        At most this many passing alerts per visit are sent on (default 20).
    """

    name: ClassVar[str] = "AlertFilter"
    max_per_visit: ClassVar[int] = MAX_PER_VISIT

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__name__

    @abstractmethod
    def filter(self, alert: Alert) -> bool:
        """Tell whether ``alert`` passes this filter.

        Parameters
        ----------
        alert : Alert
            A decoded alert (do not modify it).

        Returns
        -------
        bool
            True when it passes.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CriteriaFilter(AlertFilter):
    """A filter defined by a :class:`FilterCriteria`: the base of the generated filters.

    Attributes
    ----------
    spec : FilterCriteria
        The criteria evaluated.
    criteria : dict
        ``spec.to_dict()``: the constrained criteria, JSON-friendly, for status pages and docs.
    purpose : str
        What the filter is for, from its :data:`FILTER_SPECS` row.
    number : int
        Its 1-based position in :data:`FILTERS` (0 when not registered).
    """

    spec: ClassVar[FilterCriteria] = FilterCriteria()
    criteria: ClassVar[dict[str, Any]] = {}
    purpose: ClassVar[str] = ""
    number: ClassVar[int] = 0

    def filter(self, alert: Alert) -> bool:
        """Tell whether ``alert`` meets :attr:`spec` (:meth:`FilterCriteria.matches`).

        Parameters
        ----------
        alert : Alert
            A decoded alert.

        Returns
        -------
        bool
            True when every criterion holds.
        """
        return self.spec.matches(alert)


class FilterSpec(NamedTuple):
    """One row of :data:`FILTER_SPECS`: a family of filters.

    Attributes
    ----------
    purpose : str
        What the filters of the row are for.
    criteria : Mapping
        :class:`FilterCriteria` field names to values; a tuple value is an axis, and the row
        gives one filter per combination of its axes' values (first axis slowest).
    """

    purpose: str
    criteria: Mapping[str, Any]


_LSST_BANDS = SURVEY_BANDS["lsst"]
_ZTF_BANDS = SURVEY_BANDS["ztf"]

FILTER_SPECS: tuple[FilterSpec, ...] = (
    # Either survey.
    FilterSpec("Detections", {"min_snr": (3, 5, 10, 20)}),
    FilterSpec(
        "Detections off the solar system", {"min_snr": (3, 5, 10, 20), "solar_system": False}
    ),
    FilterSpec("Solar-system detections", {"min_snr": (3, 5, 10, 20), "solar_system": True}),
    FilterSpec(
        "Bright detections",
        {"min_snr": 5, "max_magnitude": (16, 17, 18, 19, 20, 21, 22, 23)},
    ),
    FilterSpec("Faint detections", {"min_snr": 5, "min_magnitude": (20, 21, 22)}),
    FilterSpec(
        "Objects with a history, any sign",
        {"min_previous": (1, 2, 3, 5, 10, 20), "solar_system": False},
    ),
    FilterSpec(
        "First detections of new objects",
        {"min_snr": (5, 10), "max_previous": 0, "solar_system": False},
    ),
    FilterSpec("Fading sources (negative difference)", {"max_snr": (-3, -5, -10)}),
    # ZTF.
    FilterSpec(
        "ZTF detections by band",
        {"survey": "ztf", "band": (None, *_ZTF_BANDS), "min_snr": (3, 5, 10)},
    ),
    FilterSpec(
        "ZTF transients with history",
        {
            "survey": "ztf",
            "band": _ZTF_BANDS,
            "min_snr": 5,
            "min_previous": 2,
            "solar_system": False,
        },
    ),
    FilterSpec(
        "ZTF bright detections",
        {"survey": "ztf", "band": _ZTF_BANDS, "min_snr": 5, "max_magnitude": 18.5},
    ),
    FilterSpec(
        "ZTF solar-system detections",
        {"survey": "ztf", "band": _ZTF_BANDS, "min_snr": 5, "solar_system": True},
    ),
    # LSST.
    FilterSpec(
        "LSST detections by band",
        {"survey": "lsst", "band": (None, *_LSST_BANDS), "min_snr": (3, 5, 10)},
    ),
    FilterSpec(
        "LSST bright difference flux",
        {"survey": "lsst", "band": _LSST_BANDS, "min_flux": (5000, 20000)},
    ),
    FilterSpec(
        "LSST recurring sources",
        {
            "survey": "lsst",
            "band": _LSST_BANDS,
            "min_snr": 5,
            "min_previous": 1,
            "solar_system": False,
        },
    ),
    FilterSpec("LSST fading sources", {"survey": "lsst", "band": _LSST_BANDS, "max_snr": -5}),
)
"""The table :data:`FILTERS` is generated from, in order (see :class:`FilterSpec`).

Magnitudes are AB; 5000 nJy is magnitude 21.65 and 20000 nJy 20.15.
"""


def _expand(spec: FilterSpec) -> list[FilterCriteria]:
    """Return the criteria of every filter of one :data:`FILTER_SPECS` row."""
    names = list(spec.criteria)
    axes = [v if isinstance(v, tuple) else (v,) for v in spec.criteria.values()]
    return [
        FilterCriteria.from_dict(
            {n: v for n, v in zip(names, values, strict=True) if v is not None}
        )
        for values in itertools.product(*axes)
    ]


def _generate(specs: Iterable[FilterSpec]) -> tuple[type[CriteriaFilter], ...]:
    """Create one :class:`CriteriaFilter` subclass per expanded row, named ``FilterNNN``."""
    classes: list[type[CriteriaFilter]] = []
    seen: dict[FilterCriteria, str] = {}
    for row, spec in enumerate(specs):
        for criteria in _expand(spec):
            number = len(classes) + 1
            name = f"Filter{number:03d}"
            if criteria in seen:
                raise ValueError(f"{name} repeats the criteria of {seen[criteria]}")
            seen[criteria] = name
            doc = (
                f"{spec.purpose}: {criteria.describe()}.\n\n"
                f"Generated from row {row} of ``FILTER_SPECS``; criteria "
                f"``{json.dumps(criteria.to_dict(), sort_keys=True)}``.\n"
            )
            cls = type(
                name,
                (CriteriaFilter,),
                {
                    "__doc__": doc,
                    "__module__": __name__,
                    "__qualname__": name,
                    "spec": criteria,
                    "criteria": criteria.to_dict(),
                    "purpose": spec.purpose,
                    "number": number,
                },
            )
            classes.append(cls)
    return tuple(classes)


FILTERS: tuple[type[AlertFilter], ...] = _generate(FILTER_SPECS)
"""The registered filters, in order: ``FILTERS[n - 1]`` is filter number ``n``."""
globals().update({cls.__name__: cls for cls in FILTERS})  # importable: filters.Filter007


def filter_class(n: int) -> type[AlertFilter]:
    """Return the Nth registered filter (1-based: 7 gives ``Filter007``).

    Parameters
    ----------
    n : int
        Filter number, 1 to ``len(FILTERS)``.

    Returns
    -------
    type of AlertFilter
        ``FILTERS[n - 1]``.

    Raises
    ------
    TypeError
        If ``n`` is not an integer.
    IndexError
        If ``n`` is out of range.
    """
    if isinstance(n, bool):
        raise TypeError("a filter number is an int, not a bool")
    n = operator.index(n)
    if not 1 <= n <= len(FILTERS):
        raise IndexError(f"no filter number {n}: filters are numbered 1 to {len(FILTERS)}")
    return FILTERS[n - 1]


def filter_classes(indices: Iterable[int]) -> tuple[type[AlertFilter], ...]:
    """Return the registered filters of the given numbers, in the order given.

    Parameters
    ----------
    indices : iterable of int
        1-based filter numbers.

    Returns
    -------
    tuple of type of AlertFilter
        One class per number.

    Raises
    ------
    TypeError
        If a number is not an integer.
    IndexError
        If a number is out of range.
    ValueError
        If a number is repeated (its alerts would be sent twice).
    """
    numbers = list(indices)
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if repeated:
        raise ValueError(f"filter numbers repeated: {repeated}")
    return tuple(filter_class(n) for n in numbers)


def passing(alert: Alert, filters: Iterable[AlertFilter | type[AlertFilter]]) -> list[str]:
    """Return the names of the filters ``alert`` passes, evaluating each filter once.

    Parameters
    ----------
    alert : Alert
        A decoded alert.
    filters : iterable of AlertFilter or AlertFilter subclasses
        Filter instances (a class is instantiated first).

    Returns
    -------
    list of str
        Names of the passing filters, in the order given. An exception raised by a filter
        propagates.
    """
    names = []
    for f in filters:
        instance = f() if isinstance(f, type) else f
        if instance.filter(alert):
            names.append(instance.name)
    return names


def catalogue() -> list[dict[str, Any]]:
    """Describe every registered filter, for a status page or the docs.

    Returns
    -------
    list of dict
        Per filter: ``number``, ``name``, ``purpose``, ``description`` (English) and
        ``criteria`` (the JSON-friendly dict), all JSON-serialisable.
    """
    return [
        {
            "number": n,
            "name": cls.name,
            "purpose": getattr(cls, "purpose", ""),
            "description": cls.spec.describe() if hasattr(cls, "spec") else (cls.__doc__ or ""),
            "criteria": dict(getattr(cls, "criteria", {})),
        }
        for n, cls in enumerate(FILTERS, start=1)
    ]


# ------------------------------------------------------------------------------ visit limit


def visit_key(view: AlertView) -> str:
    """Return the visit part of the counting key of an alert.

    Parameters
    ----------
    view : AlertView
        The alert's summary.

    Returns
    -------
    str
        ``"<survey>:<visit id>"``, e.g. ``"lsst:2025090500225"``; ``"<survey>:none"`` without
        a visit ID (such alerts are capped together, see the module docstring). The survey
        keeps a ZTF ``pid`` and an LSST visit of equal value apart.
    """
    visit = NO_VISIT if view.visit_id is None else str(view.visit_id)
    return f"{view.survey}:{visit}"


def limit_key(filter_name: str, visit: str | AlertView) -> str:
    """Return the key a visit's count for one filter is kept under.

    Parameters
    ----------
    filter_name : str
        :attr:`AlertFilter.name`.
    visit : str or AlertView
        A :func:`visit_key` (or any visit string), or the alert's view.

    Returns
    -------
    str
        ``"<filter name>:<visit>"``, e.g. ``"Filter007:lsst:2025090500225"``.
    """
    if isinstance(visit, AlertView):
        visit = visit_key(visit)
    return f"{filter_name}:{visit}"


def admit(
    count_current: int,
    count_previous: int,
    limit: int = MAX_PER_VISIT,
    *,
    count_next: int = 0,
) -> bool:
    """Tell whether one more passing alert of a visit may be sent.

    Parameters
    ----------
    count_current : int
        Alerts of the visit already sent by this filter in the alert's window.
    count_previous : int
        Those sent in the window before.
    limit : int, optional
        The filter's :attr:`AlertFilter.max_per_visit`.
    count_next : int, optional
        Those sent in the window after. Alerts of one visit reach the counter out of time
        order when partitions interleave; near a boundary, an alert of window ``w`` may come
        after some of window ``w + 1`` were counted, and without this count the visit could
        get up to twice the limit.

    Returns
    -------
    bool
        ``count_previous + count_current + count_next < limit``. When True, the caller sends
        the alert and adds one to the count of the alert's window; when False it counts
        nothing.
    """
    return count_previous + count_current + count_next < limit
