"""Alert processors and the chains that run them (Stage 1 processing nodes).

A processing node decodes each alert once and hands the same :class:`Alert` to every
processor of its chain. This module is pure: no Kafka, no asyncio. The node (a Faust agent)
builds ``Alert.of(record, schema_id)``, calls :meth:`Chain.run` and sends what the
:class:`ChainResult` says.

Processors
    An :class:`AlertProcessor` subclass has a registry name (:attr:`AlertProcessor.name`, the
    ``use`` value of chain files and the key of its annotations), takes its options from the
    chain file as keyword arguments (an unknown option is a :class:`ChainConfigError`) and
    returns from :meth:`AlertProcessor.process` one outcome, or a list of outcomes:

    - :class:`Drop` ``(reason)``: the alert is not passed on. The chain stops, and emits made
      earlier in the chain (by this or any earlier processor) are discarded: a dropped alert
      goes nowhere, so a filter has the same effect wherever it stands in the chain (placed
      first, it also saves the later processors' work).
    - :class:`Pass` ``(annotations, stop)``: the alert goes on; ``annotations`` are merged into
      ``alert.annotations[processor.name]``; ``stop=True`` ends the chain after this
      processor, the alert still passing.
    - :class:`Emit` ``(stream, records, stop)``: send to the named output stream, either the
      alert itself (``records=None``: the node forwards its original bytes unchanged) or the
      given new records; the chain goes on unless ``stop=True``.

    The outcomes of a list are applied in order (a Drop ends the list and the chain there); an
    empty list is a plain pass. Returning anything else (None included) is an error.

Chains
    :class:`Chain` runs its processors in order on one alert and returns a
    :class:`ChainResult`: whether the alert passed (no Drop), who dropped or stopped it, the
    annotations, the emits in order, and the time each processor took. A processor that
    raises, or returns something that is not an outcome, makes :meth:`Chain.run` raise
    :class:`ProcessorError` (processor name, alert ID, original exception): the node
    dead-letters the alert. Exceptions are never swallowed.

Chain files (TOML)
    ::

        name = "ssfilter"            # optional: defaults to the file name without suffix

        [[processor]]
        use = "magnitude_cut"        # registry name
        max_mag = 20.5               # every other key is an option of the processor

        [[processor]]
        use = "solar_system"
        solar_stream = "solar"

    :func:`load_chain` reads one; :func:`chain_from_config` builds a chain from the parsed
    table. Every problem (file unreadable, TOML syntax, unknown key, unknown processor,
    unknown, missing or bad option, broken plugin) is a :class:`ChainConfigError` naming the
    file and the entry (``#<n> (<use>)``). :class:`ChainFile` holds the current chain of one
    file and reloads it when the file changes (checked at most every ``poll_seconds``); a
    failed reload keeps the previous chain and records the error. Only the configuration is
    reloaded: changed processor code needs a worker restart. Write chain files atomically
    (write a temporary file, then rename it over the old one) so that no half-written file is
    ever read.

Registry and plugins
    :func:`processor_classes` maps registry names to classes: the built-ins below and every
    entry point of the group ``brokerapp.domain.processors`` (:data:`ENTRY_POINT_GROUP`) of the
    installed distributions, e.g. in a plugin's ``pyproject.toml``::

        [project.entry-points."brokerapp.processors"]
        tag_bright = "my_plugin:TagBright"

    The entry point's name must be the class's :attr:`~AlertProcessor.name`. An entry point
    that cannot be loaded, is not an :class:`AlertProcessor` subclass or clashes with another
    name is a :class:`ChainConfigError`; none is skipped silently.

Built-in processors
    ``solar_system`` (:class:`SolarSystem`)
        Emits every alert to exactly one of two streams, ``solar_stream`` (``"solar"``) when
        :func:`is_solar_system` says so, else ``nonsolar_stream`` (``"nonsolar"``).
    ``magnitude_cut`` (:class:`MagnitudeCut`)
        Drops alerts fainter than ``max_mag`` (``AlertView.magnitude``), outside ``bands``
        (when given), or without a magnitude (unless ``keep_missing``).
    ``annotate_view`` (:class:`AnnotateView`)
        Annotates alerts with a few :class:`~brokerapp.model.profiles.AlertView` fields (``survey``,
        ``band``, ``magnitude``, ``n_previous`` unless ``fields`` says otherwise).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import os
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

from brokerapp.model.profiles import AlertView, SurveyProfile, is_missing, profile_for

__all__ = [
    "CatalogueMatch",
    "EmitAnnotations",
    "BUILTIN_PROCESSORS",
    "DEFAULT_VIEW_FIELDS",
    "ENTRY_POINT_GROUP",
    "ZTF_SOLAR_SYSTEM_FIELDS",
    "Alert",
    "AlertProcessor",
    "AnnotateView",
    "Chain",
    "ChainConfigError",
    "ChainFile",
    "ChainResult",
    "Drop",
    "Emit",
    "MagnitudeCut",
    "Outcome",
    "Pass",
    "ProcessorError",
    "SolarSystem",
    "chain_from_config",
    "is_solar_system",
    "load_chain",
    "option_names",
    "processor_classes",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "brokerapp.processors"
"""Entry-point group through which other distributions add processors."""
ZTF_SOLAR_SYSTEM_FIELDS = ("ssdistnr", "ssmagnr", "ssnamenr")
"""ZTF ``candidate`` fields that must all be set for a solar-system detection."""


@dataclass
class Alert:
    """One decoded alert, as every processor of a chain sees it.

    Attributes
    ----------
    record : mapping
        The decoded Avro record (decoded once per node, shared by the chain: do not modify).
    profile : SurveyProfile
        The survey profile that reads ``record``.
    view : AlertView
        The survey-agnostic summary of ``record``.
    schema_id : int or None
        Local registry ID of the writer schema, when the alert came framed.
    annotations : dict
        Annotations added by the processors that ran before, by processor name.
    """

    record: Mapping[str, Any]
    profile: SurveyProfile
    view: AlertView
    schema_id: int | None = None
    annotations: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, record: Mapping[str, Any], schema_id: int | None = None) -> Alert:
        """Wrap a decoded record, choosing its survey profile from its fields.

        Parameters
        ----------
        record : mapping
            Decoded ZTF or LSST alert.
        schema_id : int, optional
            Its writer schema's registry ID.

        Returns
        -------
        Alert
            With no annotations yet.

        Raises
        ------
        brokerapp.model.profiles.UnknownSurveyError
            If the record is neither a ZTF nor an LSST alert.
        """
        from brokerapp.model.profiles import profile_for

        profile = profile_for(record)
        return cls(record, profile, profile.view(record), schema_id)


# ------------------------------------------------------------------------------- errors


class ChainConfigError(ValueError):
    """A chain file, chain configuration, processor option or plugin is not usable."""


class ProcessorError(RuntimeError):
    """A processor raised, or returned something that is not an outcome.

    The node dead-letters the alert with this error as the reason.

    Parameters
    ----------
    processor : str
        Name of the processor.
    alert_id : int or None
        ID of the alert it was processing.
    original : BaseException
        What it raised (or the ``TypeError`` describing a bad return value).

    Attributes
    ----------
    processor : str
        Name of the processor.
    alert_id : int or None
        ID of the alert.
    original : BaseException
        The original exception (also the ``__cause__`` when raised by :meth:`Chain.run`).
    """

    def __init__(self, processor: str, alert_id: int | None, original: BaseException):
        super().__init__(processor, alert_id, original)
        self.processor = processor
        self.alert_id = alert_id
        self.original = original

    def __str__(self) -> str:
        return (
            f"processor {self.processor!r} failed on alert {self.alert_id}: "
            f"{type(self.original).__name__}: {self.original}"
        )


# ----------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class Drop:
    """Outcome: the alert is not passed on; the chain stops and discards its emits.

    Attributes
    ----------
    reason : str
        Why, for counters and logs.
    """

    reason: str = ""

    def __post_init__(self) -> None:
        """Check the reason is a string."""
        if not isinstance(self.reason, str):
            raise TypeError(f"Drop reason must be a str, not {type(self.reason).__name__}")


@dataclass(frozen=True, slots=True)
class Pass:
    """Outcome: the alert goes on, optionally annotated.

    Attributes
    ----------
    annotations : mapping or None
        Merged into ``alert.annotations[processor.name]`` (a dict created on first use).
    stop : bool
        End the chain after this processor; the alert still passes.
    """

    annotations: Mapping[str, Any] | None = None
    stop: bool = False

    def __post_init__(self) -> None:
        """Check the annotations are a mapping."""
        if self.annotations is not None and not isinstance(self.annotations, Mapping):
            raise TypeError(
                f"Pass annotations must be a mapping, not {type(self.annotations).__name__}"
            )


@dataclass(frozen=True, slots=True)
class Emit:
    """Outcome: send to a named output stream.

    Attributes
    ----------
    stream : str
        Name of the output stream (the node maps it to a topic).
    records : tuple of mapping, or None
        None to send the alert itself (the node forwards its original bytes unchanged), else
        the new records to send (a sequence given here is stored as a tuple).
    stop : bool
        End the chain after this processor; the alert still passes.
    """

    stream: str
    records: Sequence[Mapping[str, Any]] | None = None
    stop: bool = False

    def __post_init__(self) -> None:
        """Check the stream name and freeze the records into a tuple of mappings."""
        if not isinstance(self.stream, str) or not self.stream:
            raise ValueError(f"Emit stream must be a non-empty str, not {self.stream!r}")
        if self.records is None:
            return
        if isinstance(self.records, Mapping | str | bytes) or not isinstance(
            self.records, Iterable
        ):
            raise TypeError(
                "Emit records must be a sequence of mappings (wrap a single record in a list), "
                f"not {type(self.records).__name__}"
            )
        records = tuple(self.records)
        for record in records:
            if not isinstance(record, Mapping):
                raise TypeError(f"Emit records must be mappings, not {type(record).__name__}")
        object.__setattr__(self, "records", records)


Outcome: TypeAlias = Drop | Pass | Emit
"""What :meth:`AlertProcessor.process` returns (or a list of these)."""
_OUTCOME_TYPES = (Drop, Pass, Emit)


# --------------------------------------------------------------------------- processors


class AlertProcessor:
    """Base class of alert processors.

    A subclass sets :attr:`name`, declares its options as keyword-only parameters of
    ``__init__`` (passing any others on to ``super().__init__(**options)``, which rejects
    them) and implements :meth:`process`. A processor instance belongs to one chain and is
    called for one alert at a time; keep per-alert state out of it.

    Parameters
    ----------
    **options
        Options this class does not take: any is a :class:`ChainConfigError`.

    Attributes
    ----------
    name : str
        Registry name (the ``use`` value in chain files, the entry-point name of plugins) and
        key of the processor's annotations. Defaults to the class name.

    Raises
    ------
    ChainConfigError
        If ``options`` is not empty.
    """

    name: ClassVar[str] = "AlertProcessor"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give a subclass without its own :attr:`name` its class name."""
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def __init__(self, **options: Any) -> None:
        if options:
            unknown = ", ".join(repr(key) for key in sorted(options))
            takes = ", ".join(option_names(type(self))) or "no options"
            raise ChainConfigError(f"{self.name}: unknown option(s) {unknown} (it takes: {takes})")

    def process(self, alert: Alert) -> Outcome | Sequence[Outcome]:
        """Decide what happens to one alert.

        Parameters
        ----------
        alert : Alert
            The decoded alert; ``alert.record`` is shared by the chain: do not modify it.

        Returns
        -------
        Outcome or sequence of Outcome
            :class:`Drop`, :class:`Pass` or :class:`Emit`, or a list of them.
        """
        raise NotImplementedError(f"{type(self).__name__}.process")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def option_names(cls: type[AlertProcessor]) -> list[str]:
    """List the options a processor class takes (its named ``__init__`` keyword parameters).

    Parameters
    ----------
    cls : type
        An :class:`AlertProcessor` subclass.

    Returns
    -------
    list of str
        Sorted parameter names (``**options`` excluded).
    """
    parameters = inspect.signature(cls).parameters.values()
    return sorted(
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )


def _number(processor: str, option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ChainConfigError(f"{processor}: option {option!r} must be a number, not {value!r}")
    return float(value)


def _string(processor: str, option: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ChainConfigError(
            f"{processor}: option {option!r} must be a non-empty string, not {value!r}"
        )
    return value


def _strings(processor: str, option: str, value: Any) -> tuple[str, ...]:
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or not value
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise ChainConfigError(
            f"{processor}: option {option!r} must be a non-empty list of strings, not {value!r}"
        )
    return tuple(value)


def _flag(processor: str, option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ChainConfigError(f"{processor}: option {option!r} must be true or false")
    return value


def _lsst_id(value: Any) -> bool:
    """Tell whether an LSST ID field names an object (Rubin writes 0 or null for none)."""
    return not is_missing(value) and value != 0


def is_solar_system(record: Mapping[str, Any]) -> bool:
    """Tell whether an alert is a detection of a known solar-system object.

    Parameters
    ----------
    record : mapping
        A decoded ZTF or LSST alert.

    Returns
    -------
    bool
        ZTF: ``candidate.ssdistnr``, ``ssmagnr`` and ``ssnamenr`` are all set (none is None,
        ``-999.0`` or ``"null"``, see :func:`brokerapp.model.profiles.is_missing`). LSST: a
        ``diaSource.ssObjectId`` that is neither null nor 0, or a non-null ``ssSource``
        record (schemas 8.0 on), or a non-null ``ssObject`` record with a ``ssObjectId``
        neither null nor 0 (schemas before 8.0).

    Raises
    ------
    brokerapp.model.profiles.UnknownSurveyError
        If the record is neither a ZTF nor an LSST alert.
    """
    survey = profile_for(record).survey
    if survey == "ztf":
        candidate = record["candidate"]
        return not any(is_missing(candidate.get(name)) for name in ZTF_SOLAR_SYSTEM_FIELDS)
    if _lsst_id(record["diaSource"].get("ssObjectId")):
        return True
    if record.get("ssSource") is not None:
        return True
    ss_object = record.get("ssObject")
    return ss_object is not None and _lsst_id(ss_object.get("ssObjectId"))


class SolarSystem(AlertProcessor):
    """Route every alert to one of two streams: solar-system detections or the others.

    Parameters
    ----------
    solar_stream : str
        Stream of the alerts :func:`is_solar_system` accepts.
    nonsolar_stream : str
        Stream of all other alerts; must differ from ``solar_stream``.
    **options
        Anything else is a :class:`ChainConfigError`.
    """

    name = "solar_system"

    def __init__(
        self, *, solar_stream: str = "solar", nonsolar_stream: str = "nonsolar", **options: Any
    ) -> None:
        super().__init__(**options)
        self.solar_stream = _string(self.name, "solar_stream", solar_stream)
        self.nonsolar_stream = _string(self.name, "nonsolar_stream", nonsolar_stream)
        if self.solar_stream == self.nonsolar_stream:
            raise ChainConfigError(
                f"{self.name}: solar_stream and nonsolar_stream are both {solar_stream!r}"
            )
        self._solar = Emit(self.solar_stream)
        self._nonsolar = Emit(self.nonsolar_stream)

    def process(self, alert: Alert) -> Emit:
        """Emit the alert itself to the solar or the non-solar stream.

        Parameters
        ----------
        alert : Alert
            The alert.

        Returns
        -------
        Emit
            To ``solar_stream`` or ``nonsolar_stream``.
        """
        return self._solar if is_solar_system(alert.record) else self._nonsolar


class MagnitudeCut(AlertProcessor):
    """Drop faint alerts, alerts outside some bands, and alerts without a magnitude.

    Parameters
    ----------
    max_mag : float
        Alerts with ``AlertView.magnitude > max_mag`` are dropped.
    bands : list of str, optional
        When given, alerts whose ``AlertView.band`` is not one of them are dropped.
    keep_missing : bool
        Let alerts without a magnitude through (LSST alerts with a non-positive difference
        flux have none); by default they are dropped.
    **options
        Anything else is a :class:`ChainConfigError`.
    """

    name = "magnitude_cut"

    def __init__(
        self,
        *,
        max_mag: float,
        bands: Sequence[str] | None = None,
        keep_missing: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.max_mag = _number(self.name, "max_mag", max_mag)
        self.bands = None if bands is None else frozenset(_strings(self.name, "bands", bands))
        self.keep_missing = _flag(self.name, "keep_missing", keep_missing)

    def process(self, alert: Alert) -> Drop | Pass:
        """Drop the alert if it is too faint, in another band or has no magnitude.

        Parameters
        ----------
        alert : Alert
            The alert.

        Returns
        -------
        Drop or Pass
            With the reason of a drop.
        """
        band = alert.view.band
        if self.bands is not None and band not in self.bands:
            return Drop(f"band {band!r} not in {sorted(self.bands)}")
        magnitude = alert.view.magnitude
        if magnitude is None:
            return Pass() if self.keep_missing else Drop("no magnitude")
        if magnitude > self.max_mag:
            return Drop(f"magnitude {magnitude:.3f} fainter than {self.max_mag:g}")
        return Pass()


DEFAULT_VIEW_FIELDS = ("survey", "band", "magnitude", "n_previous")
"""The :class:`~brokerapp.model.profiles.AlertView` fields that :class:`AnnotateView` copies."""
_VIEW_FIELDS = tuple(f.name for f in dataclasses.fields(AlertView))


class AnnotateView(AlertProcessor):
    """Annotate alerts with some fields of their :class:`~brokerapp.model.profiles.AlertView`.

    Parameters
    ----------
    fields : list of str
        Names of ``AlertView`` attributes to copy (default :data:`DEFAULT_VIEW_FIELDS`).
    **options
        Anything else is a :class:`ChainConfigError`.
    """

    name = "annotate_view"

    def __init__(self, *, fields: Sequence[str] = DEFAULT_VIEW_FIELDS, **options: Any) -> None:
        super().__init__(**options)
        self.fields = _strings(self.name, "fields", fields)
        unknown = [name for name in self.fields if name not in _VIEW_FIELDS]
        if unknown:
            raise ChainConfigError(
                f"{self.name}: option 'fields': {unknown} are not AlertView fields "
                f"({', '.join(_VIEW_FIELDS)})"
            )

    def process(self, alert: Alert) -> Pass:
        """Pass the alert, annotated with the chosen view fields.

        Parameters
        ----------
        alert : Alert
            The alert.

        Returns
        -------
        Pass
            ``{field: value}`` as annotations.
        """
        view = alert.view
        return Pass({name: getattr(view, name) for name in self.fields})


class EmitAnnotations(AlertProcessor):
    """Emit one JSON-ready record of the alert's annotations so far to a stream.

    The record is ``{"survey", "alert_id", "object_id", "annotations"}``; put this processor
    after the ones whose annotations should leave the node (the ``annotations`` topic of the
    topology). Alerts without annotations emit nothing unless ``always`` is set.

    Parameters
    ----------
    stream : str
        Output stream (default ``annotations``).
    always : bool
        Emit even when no processor annotated the alert (default False).
    **options
        Anything else is a :class:`ChainConfigError`.
    """

    name = "emit_annotations"

    def __init__(self, *, stream: str = "annotations", always: bool = False, **options: Any):
        super().__init__(**options)
        self.stream = _string(self.name, "stream", stream)
        self.always = _flag(self.name, "always", always)

    def process(self, alert: Alert) -> Pass | Emit:
        """Emit the annotations record, or pass when there is nothing to emit.

        Parameters
        ----------
        alert : Alert
            The alert.

        Returns
        -------
        Pass or Emit
            ``Emit(stream, [record])`` when there are annotations (or ``always``).
        """
        annotations = {k: v for k, v in alert.annotations.items() if v}
        if not annotations and not self.always:
            return Pass()
        view = alert.view
        record = {
            "survey": view.survey,
            "alert_id": view.alert_id,
            "object_id": view.object_id,
            "annotations": annotations,
        }
        return Emit(self.stream, [record])


class CatalogueMatch(AlertProcessor):
    """Annotate alerts with their nearest sources in a static catalogue.

    The catalogue (CSV, FITS, VOTable or Parquet,
    :func:`brokerapp.domain.watchlists.load_catalogue`)
    is read once, when the chain is loaded, into a declination-zone index of numpy arrays
    (:class:`brokerapp.domain.zones.CatalogueIndex`, in memory, about 40 bytes a source: it never
    changes while the chain runs).
    Each alert gets ``{"catalogue", "matches": [{"id", "separation_arcsec", <columns>}]}``
    with the ``k`` nearest sources within ``radius_arcsec`` (nearest first), or no
    annotation when none is that close. Follow it with ``emit_annotations`` to send them on.

    Parameters
    ----------
    path : str
        Catalogue file.
    id_column : str
        Column of source IDs.
    radius_arcsec : float
        Search radius [arcsec].
    k : int
        Most sources per alert (default 1).
    columns : list of str
        Extra catalogue columns copied into each match.
    ra_column, dec_column : str
        Coordinate columns [deg] (default ``ra``, ``dec``).
    **options
        Anything else is a :class:`ChainConfigError`.
    """

    name = "catalogue_match"

    def __init__(
        self,
        *,
        path: str,
        id_column: str,
        radius_arcsec: float,
        k: int = 1,
        columns: Sequence[str] = (),
        ra_column: str = "ra",
        dec_column: str = "dec",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        import numpy as np

        from brokerapp.domain.watchlists import WatchlistError, load_catalogue
        from brokerapp.domain.zones import CatalogueIndex

        self.radius = _number(self.name, "radius_arcsec", radius_arcsec)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ChainConfigError(f"{self.name}: option 'k' must be an integer >= 1")
        self.k = k
        self.columns = _strings(self.name, "columns", columns) if columns else ()
        try:
            catalogue = load_catalogue(
                _string(self.name, "path", path),
                _string(self.name, "id_column", id_column),
                ra_column,
                dec_column,
                self.columns,
            )
        except (WatchlistError, OSError) as exc:
            raise ChainConfigError(f"{self.name}: {exc}") from exc
        self.catalogue = catalogue.name
        # Rows are named by their position in the catalogue, which indexes the columns.
        self.index = CatalogueIndex(np.arange(len(catalogue.ids)), catalogue.ra, catalogue.dec)
        self._ids = catalogue.ids
        self._extra = {name: catalogue.columns[name] for name in self.columns}

    def _source(self, row: int, separation: float) -> dict[str, Any]:
        source: dict[str, Any] = {"id": self._ids[row].item(), "separation_arcsec": separation}
        for name, values in self._extra.items():
            value = values[row]
            source[name] = value.item() if hasattr(value, "item") else value
        return source

    def process(self, alert: Alert) -> Pass:
        """Pass the alert, annotated with its nearest catalogue sources when any is close.

        Parameters
        ----------
        alert : Alert
            The alert.

        Returns
        -------
        Pass
            With ``{"catalogue", "matches"}`` when a source lies within the radius.
        """
        view = alert.view
        if view.ra is None or view.dec is None:
            return Pass()
        matches = self.index.nearest(view.ra, view.dec, self.radius, self.k)
        if not matches:
            return Pass()
        return Pass(
            {
                "catalogue": self.catalogue,
                "matches": [self._source(int(m.entry.name), m.separation_arcsec) for m in matches],
            }
        )


BUILTIN_PROCESSORS: tuple[type[AlertProcessor], ...] = (
    SolarSystem,
    MagnitudeCut,
    AnnotateView,
    EmitAnnotations,
    CatalogueMatch,
)
"""The processors of this module."""


def processor_classes() -> dict[str, type[AlertProcessor]]:
    """Map every available processor name to its class.

    Entry points are looked up (and their modules imported) on every call, so a chain
    (re)load sees plugins installed since the worker started.

    Returns
    -------
    dict of str to type
        The built-ins (:data:`BUILTIN_PROCESSORS`) and the entry points of group
        :data:`ENTRY_POINT_GROUP`.

    Raises
    ------
    ChainConfigError
        If an entry point cannot be loaded, is not an :class:`AlertProcessor` subclass, is not
        named after its class's :attr:`~AlertProcessor.name`, or has the name of another
        processor.
    """
    classes: dict[str, type[AlertProcessor]] = {}
    sources: dict[str, str] = {}
    for cls in BUILTIN_PROCESSORS:
        classes[cls.name] = cls
        sources[cls.name] = f"built-in {cls.__module__}.{cls.__qualname__}"
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        dist = entry.dist.name if entry.dist is not None else "unknown distribution"
        where = f"entry point {entry.name} = {entry.value} (group {ENTRY_POINT_GROUP}, {dist})"
        try:
            loaded = entry.load()
        except Exception as exc:
            raise ChainConfigError(
                f"{where} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        if not (isinstance(loaded, type) and issubclass(loaded, AlertProcessor)):
            raise ChainConfigError(f"{where} is not an AlertProcessor subclass: {loaded!r}")
        if loaded.name != entry.name:
            raise ChainConfigError(
                f"{where}: the class is named {loaded.name!r}; set its `name` to {entry.name!r}"
            )
        if entry.name in classes and classes[entry.name] is not loaded:
            raise ChainConfigError(
                f"processor name {entry.name!r} is taken twice: by {sources[entry.name]} "
                f"and by {where}"
            )
        classes[entry.name] = loaded
        sources[entry.name] = where
    return classes


# ------------------------------------------------------------------------------ chains


@dataclass(slots=True)
class ChainResult:
    """What a chain decided for one alert.

    Attributes
    ----------
    passed : bool
        False when a processor dropped the alert.
    dropped_by : str or None
        Name of that processor.
    reason : str
        The reason it gave ("" when the alert passed).
    annotations : dict
        ``alert.annotations`` after the run (the same dict), by processor name.
    emits : list of (str, list of mapping or None)
        ``(stream, records)`` in the order emitted; ``records`` None means the alert itself.
        Empty when the alert was dropped.
    stopped_by : str or None
        Name of the processor that ended the chain early with ``stop=True`` (None if it ran to
        the end, or the alert was dropped).
    timings : dict of str to float
        Seconds spent in each processor that ran, by name (summed over same-named ones).
    """

    passed: bool
    dropped_by: str | None = None
    reason: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)
    emits: list[tuple[str, list[Mapping[str, Any]] | None]] = field(default_factory=list)
    stopped_by: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _outcomes(returned: Any, processor: str, alert_id: int | None) -> Sequence[Outcome]:
    """Check what a processor returned and make it a sequence of outcomes."""
    if isinstance(returned, _OUTCOME_TYPES):
        return (returned,)
    if isinstance(returned, list | tuple):
        bad = [item for item in returned if not isinstance(item, _OUTCOME_TYPES)]
        if not bad:
            return returned
        problem = f"process() returned a list holding {type(bad[0]).__name__} {bad[0]!r}"
    elif returned is None:
        problem = "process() returned None; return Pass() to let the alert through"
    else:
        problem = f"process() returned {type(returned).__name__} {returned!r}"
    raise ProcessorError(
        processor, alert_id, TypeError(f"{problem}: expected Drop, Pass, Emit or a list of them")
    )


class Chain:
    """An ordered list of processors, run on one alert at a time.

    Parameters
    ----------
    processors : iterable of AlertProcessor
        The processors, in order.
    name : str
        Name of the chain (for status pages and logs).

    Attributes
    ----------
    processors : tuple of AlertProcessor
        The processors, in order.
    name : str
        Name of the chain.
    """

    def __init__(self, processors: Iterable[AlertProcessor], name: str = "chain"):
        self.processors: tuple[AlertProcessor, ...] = tuple(processors)
        for processor in self.processors:
            if not isinstance(processor, AlertProcessor):
                raise TypeError(f"not an AlertProcessor: {processor!r}")
        self.name = name

    def run(self, alert: Alert) -> ChainResult:
        """Run the processors on ``alert`` until one drops or stops it, or all have run.

        Parameters
        ----------
        alert : Alert
            The decoded alert; its ``annotations`` are updated in place.

        Returns
        -------
        ChainResult
            The decision.

        Raises
        ------
        ProcessorError
            If a processor raises (the original exception is the cause) or returns something
            that is not an outcome.
        """
        annotations = alert.annotations
        emits: list[tuple[str, list[Mapping[str, Any]] | None]] = []
        timings: dict[str, float] = {}
        for processor in self.processors:
            name = processor.name
            started = time.perf_counter()
            try:
                returned = processor.process(alert)
            except Exception as exc:
                raise ProcessorError(name, alert.view.alert_id, exc) from exc
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
            stop = False
            for outcome in _outcomes(returned, name, alert.view.alert_id):
                if isinstance(outcome, Drop):
                    return ChainResult(
                        passed=False,
                        dropped_by=name,
                        reason=outcome.reason,
                        annotations=annotations,
                        timings=timings,
                    )
                if isinstance(outcome, Pass):
                    if outcome.annotations:
                        annotations.setdefault(name, {}).update(outcome.annotations)
                else:
                    records = None if outcome.records is None else list(outcome.records)
                    emits.append((outcome.stream, records))
                stop = stop or outcome.stop
            if stop:
                return ChainResult(
                    passed=True,
                    annotations=annotations,
                    emits=emits,
                    stopped_by=name,
                    timings=timings,
                )
        return ChainResult(passed=True, annotations=annotations, emits=emits, timings=timings)

    def __len__(self) -> int:
        return len(self.processors)

    def __repr__(self) -> str:
        return f"Chain({self.name!r}, {[p.name for p in self.processors]})"


_CHAIN_KEYS = ("name", "processor")


def chain_from_config(
    config: Mapping[str, Any],
    *,
    source: str = "<config>",
    default_name: str = "chain",
    registry: Mapping[str, type[AlertProcessor]] | None = None,
) -> Chain:
    """Build a chain from a parsed chain file.

    Parameters
    ----------
    config : mapping
        ``{"name": str (optional), "processor": [{"use": str, **options}, ...]}``.
    source : str
        Where the configuration comes from, for error messages (the file name).
    default_name : str
        Chain name when ``config`` has none.
    registry : mapping of str to type, optional
        Processor classes by name (default: :func:`processor_classes`).

    Returns
    -------
    Chain
        With one new processor instance per entry.

    Raises
    ------
    ChainConfigError
        Naming ``source`` and the entry, if the configuration is not a valid chain, names an
        unknown processor, gives an unknown, missing or bad option, or a plugin is broken.
    """
    if not isinstance(config, Mapping):
        raise ChainConfigError(f"{source}: a chain is a table, not {type(config).__name__}")
    unknown = sorted(set(config) - set(_CHAIN_KEYS))
    if unknown:
        raise ChainConfigError(
            f"{source}: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(a chain has 'name' and [[processor]] entries)"
        )
    name = config.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ChainConfigError(f"{source}: 'name' must be a non-empty string, not {name!r}")
    entries = config.get("processor")
    if not entries:
        raise ChainConfigError(f"{source}: no [[processor]] entries")
    if not isinstance(entries, list):
        raise ChainConfigError(f"{source}: 'processor' must be an array of tables ([[processor]])")
    if registry is None:
        try:
            registry = processor_classes()
        except ChainConfigError as exc:
            raise ChainConfigError(f"{source}: {exc}") from exc
    processors = [
        _make_processor(entry, f"{source}: processor #{index}", registry)
        for index, entry in enumerate(entries, start=1)
    ]
    return Chain(processors, name)


def _make_processor(
    entry: Any, where: str, registry: Mapping[str, type[AlertProcessor]]
) -> AlertProcessor:
    """Instantiate one ``[[processor]]`` entry, every error a ChainConfigError naming it."""
    if not isinstance(entry, Mapping):
        raise ChainConfigError(f"{where}: must be a table, not {entry!r}")
    use = entry.get("use")
    if not isinstance(use, str) or not use:
        raise ChainConfigError(f'{where}: needs `use = "<processor name>"`, got {use!r}')
    where = f"{where} ({use!r})"
    cls = registry.get(use)
    if cls is None:
        raise ChainConfigError(
            f"{where}: unknown processor (known: {', '.join(sorted(registry))}; plugins add "
            f"more through the entry-point group {ENTRY_POINT_GROUP!r})"
        )
    options = {key: value for key, value in entry.items() if key != "use"}
    parameters = inspect.signature(cls).parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    names = option_names(cls)
    unknown = sorted(set(options) - set(names))
    if unknown and not takes_any:
        raise ChainConfigError(
            f"{where}: unknown option(s) {', '.join(map(repr, unknown))} "
            f"(it takes: {', '.join(names) or 'no options'})"
        )
    missing = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.name not in options
    ]
    if missing:
        raise ChainConfigError(f"{where}: missing option(s) {', '.join(map(repr, missing))}")
    try:
        return cls(**options)
    except ChainConfigError as exc:
        raise ChainConfigError(f"{where}: {exc}") from exc
    except Exception as exc:
        raise ChainConfigError(f"{where}: cannot be created: {type(exc).__name__}: {exc}") from exc


def _parse_chain_file(path: Path, registry: Mapping[str, type[AlertProcessor]] | None) -> Chain:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ChainConfigError(f"{path}: cannot read chain file: {exc}") from exc
    try:
        config = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ChainConfigError(f"{path}: not UTF-8 text: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ChainConfigError(f"{path}: invalid TOML: {exc}") from exc
    return chain_from_config(config, source=str(path), default_name=path.stem, registry=registry)


def load_chain(
    path: str | os.PathLike[str], registry: Mapping[str, type[AlertProcessor]] | None = None
) -> Chain:
    """Read a chain file (TOML) and build its chain.

    Parameters
    ----------
    path : path-like
        The chain file; its name without suffix is the chain's name unless it sets ``name``.
    registry : mapping of str to type, optional
        Processor classes by name (default: :func:`processor_classes`).

    Returns
    -------
    Chain
        The chain.

    Raises
    ------
    ChainConfigError
        Naming the file (and the entry), if it cannot be read, is not valid TOML or not a
        valid chain (see :func:`chain_from_config`).
    """
    return _parse_chain_file(Path(path), registry)


class ChainFile:
    """The current chain of one chain file, reloaded when the file changes.

    The file is loaded at construction. :meth:`current`, called by the node once per batch,
    looks at the file's modification time, size and inode at most every ``poll_seconds``
    and reloads it when they changed. A reload that fails keeps the previous chain: the
    error goes to :attr:`last_error` (and the log), and the same file state is not retried
    until it changes again.

    Parameters
    ----------
    path : path-like
        The chain file.
    poll_seconds : float
        Least time between two checks of the file.

    Attributes
    ----------
    path : Path
        The chain file.
    poll_seconds : float
        Least time between two checks.
    chain : Chain
        The current chain.
    version : int
        Number of successful loads (1 after construction).
    reloads : int
        Successful reloads after the first load (``version - 1``).
    reload_failures : int
        Failed reload attempts (each changed file state counts once).
    last_error : str or None
        Error of the last reload attempt, None when the current file state is loaded.
    loaded_at : float
        Wall-clock time (``time.time()``) of the last successful load.

    Raises
    ------
    ChainConfigError
        If the file cannot be loaded at construction.
    """

    def __init__(self, path: str | os.PathLike[str], poll_seconds: float = 1.0):
        self.path = Path(path)
        self.poll_seconds = float(poll_seconds)
        self.version = 0
        self.reloads = 0
        self.reload_failures = 0
        self.last_error: str | None = None
        self._checked_at: float | None = None
        try:
            self._state = self._file_state()
        except OSError as exc:
            raise ChainConfigError(f"{self.path}: cannot read chain file: {exc}") from exc
        self.chain: Chain = _parse_chain_file(self.path, None)
        self.version = 1
        self.loaded_at = time.time()

    def _file_state(self) -> tuple[int, int, int]:
        stat = os.stat(self.path)
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def current(self, now: float | None = None) -> Chain:
        """Return the current chain, first reloading it if the file changed.

        Parameters
        ----------
        now : float, optional
            The caller's clock (default ``time.monotonic()``); the file is looked at when
            ``poll_seconds`` have passed on it since the last look (or it went backwards).

        Returns
        -------
        Chain
            The newest chain that loaded.
        """
        if now is None:
            now = time.monotonic()
        checked_at = self._checked_at
        if checked_at is None or not 0.0 <= now - checked_at < self.poll_seconds:
            self.check(now)
        return self.chain

    def check(self, now: float | None = None) -> bool:
        """Look at the file now and reload it if it changed.

        Parameters
        ----------
        now : float, optional
            The caller's clock (default ``time.monotonic()``), remembered as the last look.

        Returns
        -------
        bool
            Whether a new chain was loaded.
        """
        self._checked_at = time.monotonic() if now is None else now
        try:
            state: tuple[int, int, int] | None = self._file_state()
            error = None
        except OSError as exc:
            state = None
            error = ChainConfigError(f"{self.path}: cannot read chain file: {exc}")
        if state == self._state:
            return False
        self._state = state
        if error is None:
            try:
                chain = _parse_chain_file(self.path, None)
            except ChainConfigError as exc:
                error = exc
        if error is not None:
            self.reload_failures += 1
            self.last_error = str(error)
            logger.warning(
                "chain file %s: reload failed, keeping chain %r version %d: %s",
                self.path,
                self.chain.name,
                self.version,
                error,
            )
            return False
        self.chain = chain
        self.version += 1
        self.reloads += 1
        self.last_error = None
        self.loaded_at = time.time()
        logger.info(
            "chain file %s: loaded chain %r version %d: %s",
            self.path,
            chain.name,
            self.version,
            [p.name for p in chain.processors],
        )
        return True

    def __repr__(self) -> str:
        return f"ChainFile({str(self.path)!r}, version={self.version})"
