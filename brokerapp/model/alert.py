"""The decoded alert that every branch and processor sees.

A branch decodes each alert once and wraps it in an :class:`Alert`: the decoded Avro record
(shared, never modified), the :class:`~brokerapp.model.profiles.SurveyProfile` that reads it,
its survey-agnostic :class:`~brokerapp.model.profiles.AlertView`, the writer schema's local
registry ID when the alert came Confluent-framed, and the annotations the processors of a
chain add as it runs (a dict keyed by processor name, see :mod:`brokerapp.domain.processors`).

Two ways to build one:

:meth:`Alert.of`
    From the fully decoded record: the view is computed at once, :attr:`Alert.record` is
    that record.
:meth:`Alert.projected`
    From a partial record holding only the fields of some reads (the read names of
    :data:`~brokerapp.model.profiles.READS`, e.g. ``{"alert_id", "is_solar_system"}``, whose
    fields :meth:`~brokerapp.model.profiles.SurveyProfile.field_paths` gives) and a function
    that decodes the whole record. The view is then a :class:`LazyView`: each attribute is
    computed when first read, from the partial record when the attribute is among the reads,
    else from the whole record. The whole record is decoded the first time anything outside
    the reads is asked for (:attr:`Alert.record`, a view attribute not read,
    :meth:`Alert.record_for` of other reads), once, and kept; :attr:`Alert.full_decodes`
    counts it (0 or 1). A decode error of the whole body then comes out of that access
    (a :class:`~brokerapp.wire.codecs.DecodeError` raised inside a processor, which the
    chain reports as a processor failure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from brokerapp.model.profiles import (
    READS,
    VIEW_ACCESSORS,
    AlertView,
    SurveyProfile,
    UnknownReadError,
    profile_for,
)

__all__ = ["Alert", "LazyView"]

Loader = Callable[[], Mapping[str, Any]]
"""Decodes the whole record of a projected alert (called at most once)."""


class LazyView(AlertView):
    """An :class:`AlertView` whose attributes are computed when first read, then kept.

    Behaves as an ``AlertView`` for every reader of its attributes (it is one, by type);
    ``==`` with a plain ``AlertView`` is False, compare :meth:`resolved` instead.

    Parameters
    ----------
    alert : Alert
        The projected alert it summarises.
    """

    __slots__ = ("_alert",)

    def __init__(self, alert: Alert) -> None:  # no super().__init__: attributes come lazily
        object.__setattr__(self, "_alert", alert)

    def __getattr__(self, name: str) -> Any:
        # Called only for a slot not yet set (a computed one is found before this).
        accessor = VIEW_ACCESSORS.get(name)
        if accessor is None:
            raise AttributeError(name)
        alert = object.__getattribute__(self, "_alert")
        value = accessor(alert.profile, alert.record_for(name))
        object.__setattr__(self, name, value)
        return value

    def resolved(self) -> AlertView:
        """Return a plain :class:`AlertView` with every attribute computed (reads them all)."""
        return AlertView(**{name: getattr(self, name) for name in VIEW_ACCESSORS})

    def __repr__(self) -> str:
        known = [name for name in VIEW_ACCESSORS if _slot_set(self, name)]
        shown = ", ".join(f"{name}={object.__getattribute__(self, name)!r}" for name in known)
        return f"LazyView({shown})"


def _slot_set(view: AlertView, name: str) -> bool:
    try:
        object.__getattribute__(view, name)
    except AttributeError:
        return False
    return True


class Alert:
    """One decoded alert, as every processor of a chain sees it.

    Parameters
    ----------
    record : mapping
        The decoded Avro record.
    profile : SurveyProfile
        The survey profile that reads it.
    view : AlertView
        Its summary.
    schema_id : int or None, optional
        Local registry ID of the writer schema, when the alert came framed.
    annotations : dict or None, optional
        Annotations so far (a new empty dict when omitted).

    Attributes
    ----------
    profile : SurveyProfile
        The survey profile that reads the record.
    schema_id : int or None
        Local registry ID of the writer schema, when the alert came framed.
    annotations : dict
        Annotations added by the processors that ran before, by processor name.
    reads : frozenset of str or None
        The reads a projected alert's partial record holds; None for a whole record.
    full_decodes : int
        How many times the whole record was decoded (a projected alert: 0 until asked, then
        1; an alert from a whole record: 0).
    """

    __slots__ = (
        "_fields",
        "_load",
        "_record",
        "_view",
        "annotations",
        "full_decodes",
        "profile",
        "reads",
        "schema_id",
    )

    def __init__(
        self,
        record: Mapping[str, Any],
        profile: SurveyProfile,
        view: AlertView,
        schema_id: int | None = None,
        annotations: dict[str, Any] | None = None,
    ) -> None:
        self._record: Mapping[str, Any] | None = record
        self._fields: Mapping[str, Any] = record
        self._load: Loader | None = None
        self._view = view
        self.profile = profile
        self.schema_id = schema_id
        self.annotations: dict[str, Any] = {} if annotations is None else annotations
        self.reads: frozenset[str] | None = None
        self.full_decodes = 0

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
        profile = profile_for(record)
        return cls(record, profile, profile.view(record), schema_id)

    @classmethod
    def projected(
        cls,
        fields: Mapping[str, Any],
        profile: SurveyProfile,
        reads: Iterable[str],
        load: Loader,
        schema_id: int | None = None,
    ) -> Alert:
        """Wrap the partial record of some reads; the whole record is decoded when needed.

        Parameters
        ----------
        fields : mapping
            Partial record: nested dicts (lists of them for arrays) holding the fields that
            ``profile.field_paths(reads)`` names and the writer schema has.
        profile : SurveyProfile
            The survey profile of the writer schema.
        reads : iterable of str
            Read names (:data:`~brokerapp.model.profiles.READS`) whose fields ``fields`` holds.
        load : callable
            ``load()`` returns the whole decoded record (called at most once).
        schema_id : int, optional
            The writer schema's registry ID.

        Returns
        -------
        Alert
            With a :class:`LazyView` and no annotations yet.

        Raises
        ------
        brokerapp.model.profiles.UnknownReadError
            If a read name is not one of :data:`~brokerapp.model.profiles.READS`.
        """
        held = frozenset(reads)
        unknown = sorted(held - READS)
        if unknown:
            raise UnknownReadError(f"unknown read name(s) {', '.join(map(repr, unknown))}")
        alert = cls.__new__(cls)
        alert._record = None
        alert._fields = fields
        alert._load = load
        alert.profile = profile
        alert.schema_id = schema_id
        alert.annotations = {}
        alert.reads = held
        alert.full_decodes = 0
        alert._view = LazyView(alert)
        return alert

    @property
    def record(self) -> Mapping[str, Any]:
        """The whole decoded record (shared by the chain: do not modify it).

        For a projected alert, decoded on first access (then kept).

        Raises
        ------
        brokerapp.wire.codecs.DecodeError
            When a projected alert's body turns out to be corrupt.
        """
        record = self._record
        if record is None:
            load = self._load
            if load is None:  # never: a projected alert always has its loader
                raise RuntimeError("projected alert without a loader")
            record = self._record = load()
            self.full_decodes += 1
        return record

    @property
    def view(self) -> AlertView:
        """The survey-agnostic summary (a :class:`LazyView` for a projected alert)."""
        return self._view

    @property
    def decoded(self) -> bool:
        """Whether the whole record is at hand (always for :meth:`of`; once asked, projected)."""
        return self._record is not None

    def record_for(self, *reads: str) -> Mapping[str, Any]:
        """Return a record holding at least the fields of ``reads``, decoding only if needed.

        Parameters
        ----------
        *reads : str
            Read names (:data:`~brokerapp.model.profiles.READS`).

        Returns
        -------
        mapping
            The partial record when this is a projected alert holding every one of
            ``reads``; else (or once it has been decoded) the whole record.
        """
        if self._record is not None:
            return self._record
        held = self.reads
        if held is not None and held.issuperset(reads):
            return self._fields
        return self.record

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Alert):
            return NotImplemented
        return (
            self.record == other.record
            and self.profile is other.profile
            and self.schema_id == other.schema_id
            and self.annotations == other.annotations
        )

    __hash__ = None  # type: ignore[assignment]  # mutable (annotations), as the dataclass was

    def __repr__(self) -> str:
        kind = "whole" if self.reads is None else f"projected {sorted(self.reads)}"
        return (
            f"Alert({self.profile.survey} {kind}, schema_id={self.schema_id}, "
            f"view={self._view!r}, annotations={self.annotations!r})"
        )
