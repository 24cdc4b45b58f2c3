"""The built-in processors, available to every chain file under their registry names.

``solar_system`` (:class:`SolarSystem`)
    Emits every alert to exactly one of two streams, ``solar_stream`` (``"solar"``) when its
    survey profile names a known solar-system object for it
    (:attr:`~brokerapp.model.profiles.AlertView.is_solar_system`), else ``nonsolar_stream``
    (``"nonsolar"``).
``magnitude_cut`` (:class:`MagnitudeCut`)
    Drops alerts fainter than ``max_mag`` (``AlertView.magnitude``), outside ``bands`` (when
    given), or without a magnitude (unless ``keep_missing``).
``annotate_view`` (:class:`AnnotateView`)
    Annotates alerts with a few :class:`~brokerapp.model.profiles.AlertView` fields
    (``survey``, ``band``, ``magnitude``, ``n_previous`` unless ``fields`` says otherwise).
``emit_annotations`` (:class:`EmitAnnotations`)
    Emits ``{"survey", "alert_id", "object_id", "annotations"}``, the annotations so far, to
    a stream (``annotations``).
``catalogue_match`` (:class:`CatalogueMatch`)
    Annotates alerts with ``{"catalogue", "matches": [{"id", "separation_arcsec",
    <columns>}]}``, their nearest sources in a static catalogue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from brokerapp.domain.processors.base import (
    AlertProcessor,
    ChainConfigError,
    flag_option,
    number_option,
    string_option,
    strings_option,
)
from brokerapp.domain.processors.outcomes import Drop, Emit, Pass
from brokerapp.model.alert import Alert
from brokerapp.model.profiles import AlertView

__all__ = [
    "BUILTIN_PROCESSORS",
    "DEFAULT_VIEW_FIELDS",
    "AnnotateView",
    "CatalogueMatch",
    "EmitAnnotations",
    "MagnitudeCut",
    "SolarSystem",
]


class SolarSystem(AlertProcessor):
    """Route every alert to one of two streams: solar-system detections or the others.

    Parameters
    ----------
    solar_stream : str
        Stream of the alerts whose survey profile names a known solar-system object
        (:attr:`~brokerapp.model.profiles.AlertView.is_solar_system`).
    nonsolar_stream : str
        Stream of all other alerts; must differ from ``solar_stream``.
    **options
        Anything else is a :class:`ChainConfigError`.
    """

    name = "solar_system"
    reads = frozenset({"is_solar_system"})

    def __init__(
        self, *, solar_stream: str = "solar", nonsolar_stream: str = "nonsolar", **options: Any
    ) -> None:
        super().__init__(**options)
        self.solar_stream = string_option(self.name, "solar_stream", solar_stream)
        self.nonsolar_stream = string_option(self.name, "nonsolar_stream", nonsolar_stream)
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
        return self._solar if alert.view.is_solar_system else self._nonsolar


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
    reads = frozenset({"band", "magnitude"})

    def __init__(
        self,
        *,
        max_mag: float,
        bands: Sequence[str] | None = None,
        keep_missing: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.max_mag = number_option(self.name, "max_mag", max_mag)
        self.bands = None if bands is None else frozenset(strings_option(self.name, "bands", bands))
        self.keep_missing = flag_option(self.name, "keep_missing", keep_missing)

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
        self.fields = strings_option(self.name, "fields", fields)
        self.reads = frozenset(self.fields)
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
    position : bool
        Add the alert's ``ra``, ``dec`` [deg] and ``mjd`` to the record (default False), for
        the notifiers (a VOEvent needs the position).
    **options
        Anything else is a :class:`ChainConfigError`.
    """

    name = "emit_annotations"
    reads = frozenset({"survey", "alert_id", "object_id"})

    def __init__(
        self,
        *,
        stream: str = "annotations",
        always: bool = False,
        position: bool = False,
        **options: Any,
    ):
        super().__init__(**options)
        self.stream = string_option(self.name, "stream", stream)
        self.always = flag_option(self.name, "always", always)
        self.position = flag_option(self.name, "position", position)
        if self.position:
            self.reads = self.reads | {"ra", "dec", "mjd"}

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
        if self.position:
            record.update(ra=view.ra, dec=view.dec, mjd=view.mjd)
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
    reads = frozenset({"ra", "dec"})

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
        from brokerapp.domain.zones import CatalogueIndex, check_position

        self._check_position = check_position

        self.radius = number_option(self.name, "radius_arcsec", radius_arcsec)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ChainConfigError(f"{self.name}: option 'k' must be an integer >= 1")
        self.k = k
        self.columns = strings_option(self.name, "columns", columns) if columns else ()
        try:
            catalogue = load_catalogue(
                string_option(self.name, "path", path),
                string_option(self.name, "id_column", id_column),
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

        Raises
        ------
        ValueError
            When the alert has no valid position (``ra`` or ``dec`` named).
        """
        view = alert.view
        # Both surveys' schemas require a position: none (a NaN reads as none), an infinite or
        # out-of-range one is a ValueError naming ra or dec, and the node dead-letters the
        # alert, as the watchlist branch does.
        ra, dec = self._check_position(view.ra, view.dec)
        matches = self.index.nearest(ra, dec, self.radius, self.k)
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
"""The processors of this module (:func:`~.registry.processor_classes` lists them first)."""
