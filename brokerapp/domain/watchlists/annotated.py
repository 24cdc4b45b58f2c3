"""Watchlist matches as Annotations, and the AnnotatedAlert Avro encoding.

Annotation (JSON in ``annotations_topic``, and an Avro record inside an AnnotatedAlert)::

    {"alert_id": 123, "object_id": "ZTF18abc" | null, "watchlist_id": "w1",
     "entry": "M31", "separation_arcsec": 1.5, "mjd": 60000.5 | null}

For a positional watchlist the entry is the watchlist entry's name and the separation the
exact angular distance; for a solar-system watchlist the entry and the object ID are the
object's normalised name and the separation the survey's distance to the object (ZTF
``ssdistnr``; 0 when the survey gives none).

AnnotatedAlert (Avro, schema :func:`annotated_schema`, record ``uk.lsst.broker.AnnotatedAlert``)
    ``{"alert": <the alert's own record, under its own writer schema>, "annotations":
    [Annotation, ...]}``, framed Confluent-style with the local registry ID of that
    schema (:func:`encode_annotated`). One AnnotatedAlert per matched alert, with all of its
    annotations; with ``watchlist_topics`` also sent to ``<topic_prefix>watchlist-<ID>`` for
    each watchlist it matched (:func:`watchlist_topics`).

What the watchlist worker's agents read of an alert, as read names
(:data:`brokerapp.model.profiles.READS`), so that they decode only those fields:
:data:`WATCHLIST_MATCH_READS` (position, and what :func:`annotation` reads) and
:data:`SS_WATCHLIST_READS` (the names of :func:`solar_system_names`, given
``alert.record_for("solar_system_names")``, and what :func:`solar_system_annotations` reads).
An AnnotatedAlert carries the whole record: encoding one decodes the alert whole.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import fastavro

from brokerapp.domain.watchlists.names import object_key
from brokerapp.domain.zones import Match
from brokerapp.model.profiles import AlertView, SurveyProfile
from brokerapp.wire.codecs import frame

WATCHLIST_MATCH_READS = frozenset({"alert_id", "ra", "dec", "object_id", "mjd"})
"""What the positional match reads: the position, and the fields of :func:`annotation`."""
SS_WATCHLIST_READS = frozenset(
    {"alert_id", "solar_system_names", "object_id", "ss_distance_arcsec", "mjd"}
)
"""What the solar-system match reads: the object's names and :func:`solar_system_annotations`'
fields."""

__all__ = [
    "ANNOTATION_SCHEMA",
    "SS_WATCHLIST_READS",
    "WATCHLIST_MATCH_READS",
    "annotated_schema",
    "annotation",
    "encode_annotated",
    "solar_system_annotations",
    "solar_system_names",
    "watchlist_topics",
]

ANNOTATION_SCHEMA = {
    "type": "record",
    "name": "Annotation",
    "namespace": "uk.lsst.broker",
    "fields": [
        {"name": "alert_id", "type": "long"},
        {"name": "object_id", "type": ["null", "string"]},
        {"name": "watchlist_id", "type": "string"},
        {"name": "entry", "type": "string"},
        {"name": "separation_arcsec", "type": "double"},
        {"name": "mjd", "type": ["null", "double"]},
    ],
}
"""Avro schema of one annotation inside an AnnotatedAlert."""


def annotated_schema(alert_schema: dict) -> dict:
    """Return the AnnotatedAlert schema wrapping one alert schema.

    Parameters
    ----------
    alert_schema : dict
        The alert's writer schema (parsed JSON).

    Returns
    -------
    dict
        ``{"alert": <alert>, "annotations": [Annotation]}`` as an Avro record schema.
    """
    return {
        "type": "record",
        "name": "AnnotatedAlert",
        "namespace": "uk.lsst.broker",
        "fields": [
            {"name": "alert", "type": alert_schema},
            {"name": "annotations", "type": {"type": "array", "items": ANNOTATION_SCHEMA}},
        ],
    }


def annotation(view: AlertView, match: Match) -> dict:
    """Return the Annotation of one zone match (payload ``watchlist`` and ``entry``).

    Parameters
    ----------
    view : AlertView
        The alert.
    match : Match
        From :func:`brokerapp.domain.zones.lookup_in`; its row's payload names the
        watchlist and the entry.

    Returns
    -------
    dict
        The Annotation.
    """
    payload = match.entry.payload
    return {
        "alert_id": view.alert_id,
        "object_id": None if view.object_id is None else str(view.object_id),
        "watchlist_id": payload["watchlist"],
        "entry": payload["entry"],
        "separation_arcsec": match.separation_arcsec,
        "mjd": view.mjd,
    }


def solar_system_names(profile: SurveyProfile, record: Mapping[str, Any]) -> list[str]:
    """Return the normalised names an alert's solar-system object goes by, without repeats.

    Parameters
    ----------
    profile : SurveyProfile
        The alert's survey profile.
    record : Mapping
        The decoded alert.

    Returns
    -------
    list of str
        :func:`~brokerapp.domain.watchlists.names.object_key` of each of
        :meth:`SurveyProfile.solar_system_names`, in that order (ID, then designations).
    """
    names = (object_key(name) for name in profile.solar_system_names(record))
    return list(dict.fromkeys(name for name in names if name is not None))


def solar_system_annotations(
    view: AlertView, names: Iterable[str], followers: Callable[[str], Iterable[str] | None]
) -> list[dict]:
    """Return the Annotations of an alert's object for every watchlist following it.

    Parameters
    ----------
    view : AlertView
        The alert.
    names : iterable of str
        Its object's normalised names (:func:`solar_system_names`).
    followers : callable
        ``followers(name)``: IDs of the watchlists following ``name``, or None (e.g. the
        ``get`` of the ``ss_watchlist_objects`` table).

    Returns
    -------
    list of dict
        One per (name, watchlist), names in the order given.
    """
    return [
        {
            "alert_id": view.alert_id,
            "object_id": name,
            "watchlist_id": watchlist_id,
            "entry": name,
            "separation_arcsec": view.ss_distance_arcsec or 0.0,
            "mjd": view.mjd,
        }
        for name in names
        for watchlist_id in followers(name) or []
    ]


def encode_annotated(
    schema_id: int, parsed: Any, record: Mapping[str, Any], annotations: list[dict]
) -> bytes:
    """Return an AnnotatedAlert in the Confluent wire format.

    Parameters
    ----------
    schema_id : int
        Local registry ID of the AnnotatedAlert schema.
    parsed : Any
        That schema, parsed by ``fastavro.parse_schema``.
    record : Mapping
        The alert's record.
    annotations : list of dict
        Its Annotations.

    Returns
    -------
    bytes
        ``frame(schema_id, body)``.
    """
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed, {"alert": dict(record), "annotations": annotations})
    return frame(schema_id, body.getvalue())


def watchlist_topics(topic_prefix: str, annotations: Iterable[Mapping[str, Any]]) -> list[str]:
    """Return ``<topic_prefix>watchlist-<ID>`` of each watchlist annotated, sorted by ID."""
    ids = sorted({a["watchlist_id"] for a in annotations})
    return [f"{topic_prefix}watchlist-{i}" for i in ids]
