"""One Notice per annotated alert, from either branch that annotates.

Two inputs (see :mod:`brokerapp.domain.watchlists.annotated` and the ``emit_annotations``
processor):

``annotated_alerts_topic`` (watchlist)
    An AnnotatedAlert, ``{"alert": <whole alert record>, "annotations": [Annotation]}``;
    each Annotation names its watchlist (``watchlist_id``), entry and separation.
``annotations_topic`` (crossmatch)
    ``{"survey", "alert_id", "object_id", "ra", "dec", "mjd", "annotations":
    {processor: {"catalogue", "matches": [{"id", "separation_arcsec", ...}]}}}`` (the
    processor's ``position = true`` adds the position). The watchlist's own Annotations on
    that topic (``watchlist_id`` at the top) are skipped: the AnnotatedAlert carries them.

A :class:`Notice` (JSON-ready with :meth:`Notice.to_json`)::

    {"kind": "watchlist" | "crossmatch", "survey": "ztf", "alert_id": 123,
     "object_id": "ZTF18abc" | null, "ra": 10.1, "dec": -5.2, "mjd": 60000.5 | null,
     "matches": [{"source": "watchlist:w1" | "catalogue:bright", "watchlist_id": "w1" | null,
                  "entry": "M31", "separation_arcsec": 1.5, "detail": {...}}],
     "light_curve": [{"candidate_id", "mjd", "band", "mag", "mag_err"}, ...]}

``light_curve`` holds the alert's own detection and its previous ones (from the whole
record; empty for a crossmatch notice, whose record stays in the alert topics).
A notice's ``key`` (``"<kind>-<alert_id>"``) names it in every ledger and IVORN, so a
replayed alert is the same notice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brokerapp.domain.candidates import CandidateError, candidate_update
from brokerapp.model.alert import Alert

__all__ = ["Match", "Notice", "NoticeError", "from_annotated", "from_crossmatch"]

LIGHT_CURVE_FIELDS = ("candidate_id", "mjd", "band", "mag", "mag_err")
"""What a notice keeps of each detection."""


class NoticeError(ValueError):
    """A record that is neither kind of annotated alert, or lacks what a notice needs."""


@dataclass(frozen=True)
class Match:
    """One annotation of the alert: a watchlist entry or a catalogue source."""

    source: str
    """``watchlist:<ID>`` or ``catalogue:<name>``."""
    watchlist_id: str | None
    entry: str
    separation_arcsec: float
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """An annotated alert, as every notifier sees it (see the module docstring)."""

    kind: str
    survey: str
    alert_id: int
    object_id: str | None
    ra: float
    dec: float
    mjd: float | None
    matches: tuple[Match, ...]
    light_curve: tuple[dict, ...] = ()

    @property
    def key(self) -> str:
        """``<kind>-<alert_id>``: the notice's stable name."""
        return f"{self.kind}-{self.alert_id}"

    @property
    def sources(self) -> set[str]:
        """Every match's source and watchlist ID (what a subscription names)."""
        names = {m.source for m in self.matches}
        names.update(m.watchlist_id for m in self.matches if m.watchlist_id)
        return names

    def for_subscription(self, names: set[str]) -> Notice:
        """Return the notice with only the matches of ``names`` (sources or watchlist IDs)."""
        kept = tuple(m for m in self.matches if m.source in names or m.watchlist_id in names)
        return Notice(
            self.kind,
            self.survey,
            self.alert_id,
            self.object_id,
            self.ra,
            self.dec,
            self.mjd,
            kept,
            self.light_curve,
        )

    def to_json(self) -> dict:
        """Return the notice as a JSON-ready dict."""
        return {
            "kind": self.kind,
            "survey": self.survey,
            "alert_id": self.alert_id,
            "object_id": self.object_id,
            "ra": self.ra,
            "dec": self.dec,
            "mjd": self.mjd,
            "matches": [
                {
                    "source": m.source,
                    "watchlist_id": m.watchlist_id,
                    "entry": m.entry,
                    "separation_arcsec": m.separation_arcsec,
                    "detail": m.detail,
                }
                for m in self.matches
            ],
            "light_curve": [dict(p) for p in self.light_curve],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notice:
        """Rebuild a notice from :meth:`to_json` (e.g. read back from a ledger)."""
        return cls(
            data["kind"],
            data["survey"],
            int(data["alert_id"]),
            data.get("object_id"),
            float(data["ra"]),
            float(data["dec"]),
            data.get("mjd"),
            tuple(
                Match(
                    m["source"],
                    m.get("watchlist_id"),
                    m["entry"],
                    float(m["separation_arcsec"]),
                    dict(m.get("detail") or {}),
                )
                for m in data["matches"]
            ),
            tuple(dict(p) for p in data.get("light_curve") or ()),
        )


def _position(ra: Any, dec: Any) -> tuple[float, float]:
    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError) as exc:
        raise NoticeError(f"no position (ra={ra!r}, dec={dec!r})") from exc
    if not (math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise NoticeError(f"invalid position (ra={ra!r}, dec={dec!r})")
    return ra % 360.0, dec


def from_annotated(decoded: Mapping[str, Any]) -> Notice:
    """Return the notice of one decoded AnnotatedAlert (the watchlist's).

    Parameters
    ----------
    decoded : mapping
        ``{"alert": <record>, "annotations": [Annotation, ...]}``.

    Returns
    -------
    Notice
        Kind ``watchlist``, with the alert's light curve.

    Raises
    ------
    NoticeError
        No alert, no annotation, or no valid position.
    """
    record, annotations = decoded.get("alert"), decoded.get("annotations")
    if not isinstance(record, Mapping) or not annotations:
        raise NoticeError("not an AnnotatedAlert with annotations")
    try:
        alert = Alert.of(record)
        update = candidate_update(alert, 0.0)
    except (CandidateError, ValueError, KeyError) as exc:
        raise NoticeError(f"alert unreadable: {exc}") from exc
    view = alert.view
    ra, dec = _position(view.ra, view.dec)
    detections = [update["candidate"], *update["previous"]]
    return Notice(
        "watchlist",
        view.survey,
        int(view.alert_id),
        None if view.object_id is None else str(view.object_id),
        ra,
        dec,
        view.mjd,
        tuple(
            Match(
                f"watchlist:{a['watchlist_id']}",
                a["watchlist_id"],
                str(a["entry"]),
                float(a["separation_arcsec"]),
            )
            for a in annotations
        ),
        tuple(
            {k: d.get(k) for k in LIGHT_CURVE_FIELDS}
            for d in sorted(detections, key=lambda d: (d["mjd"], d["candidate_id"]))
        ),
    )


def from_crossmatch(record: Mapping[str, Any]) -> Notice | None:
    """Return the notice of one record of ``annotations_topic``, or None to skip it.

    Parameters
    ----------
    record : mapping
        The decoded JSON record.

    Returns
    -------
    Notice or None
        Kind ``crossmatch``, one match per catalogue source; None for a watchlist Annotation
        (its AnnotatedAlert is notified) or a record without catalogue matches.

    Raises
    ------
    NoticeError
        Neither kind of record, or no valid position.
    """
    if "watchlist_id" in record:
        return None
    annotations = record.get("annotations")
    if not isinstance(annotations, Mapping) or "alert_id" not in record:
        raise NoticeError("neither a watchlist Annotation nor an emit_annotations record")
    matches = []
    for processor, annotation in sorted(annotations.items()):
        if not isinstance(annotation, Mapping) or not isinstance(annotation.get("matches"), list):
            continue
        source = f"catalogue:{annotation.get('catalogue', processor)}"
        for m in annotation["matches"]:
            detail = {k: v for k, v in m.items() if k not in ("id", "separation_arcsec")}
            matches.append(
                Match(source, None, str(m.get("id")), float(m["separation_arcsec"]), detail)
            )
    if not matches:
        return None
    ra, dec = _position(record.get("ra"), record.get("dec"))
    object_id = record.get("object_id")
    return Notice(
        "crossmatch",
        str(record.get("survey")),
        int(record["alert_id"]),
        None if object_id is None else str(object_id),
        ra,
        dec,
        record.get("mjd"),
        tuple(matches),
    )
