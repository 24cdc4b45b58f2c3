"""The watchlist worker: sky watchlists matched on the non-solar stream.

Launch with ``faust -A agents.watchlist worker``. Two agents and two global tables:

``control``
    Reads ``watchlist_control_topic`` (one partition, compacted, keyed by watchlist ID;
    values are :class:`brokerapp.domain.watchlists.WatchlistCommand` JSON) and applies each command
    to the tables: ``watchlists`` (ID -> watchlist JSON) and ``watchlist_zones`` (declination
    zone -> rows of :mod:`brokerapp.domain.zones`, one row per entry per zone its circle overlaps,
    named ``<watchlist ID>/<entry name>``). Both are global tables: alerts are partitioned by
    object, so every worker needs every zone; each worker reads their changelogs, so a
    change reaches all workers within seconds and none restarts.
``match``
    Reads ``watchlist_source_topic``, decodes each alert once, reads the one zone of its
    declination and keeps the entries within their radius by exact angular distance. Each
    match becomes an Annotation (JSON: alert and object ID, watchlist ID, entry name,
    separation in arcsec, time) in ``annotations_topic``, and the alert with all its
    annotations an AnnotatedAlert (Avro, schema ``AnnotatedAlert`` wrapping the alert's own
    schema, registered in the local registry under ``<topic>-value``) in
    ``annotated_alerts_topic`` and, with ``watchlist_topics``, in
    ``<topic_prefix>watchlist-<watchlist ID>``. An alert without a valid position is dead-lettered.
``ss_match``
    Reads ``ss_watchlist_source_topic`` (the solar stream) and follows named solar-system
    objects: the alert's object (ZTF ``ssnamenr``; LSST ``ssObjectId`` and the MPC
    designation of its orbit record, normalised by :func:`brokerapp.domain.watchlists.object_key`)
    is looked up in the global table
    ``ss_watchlist_objects`` (object -> IDs of the solar-system watchlists following it). Same
    outputs; the separation is the survey's distance to the object (ZTF ``ssdistnr``, else 0).

REST, on the worker's web view (``watchlist_web_port``): ``GET /watchlist/watchlists/``
lists the watchlists; ``PUT /watchlist/watchlists/<id>?name=..&owner=..[&radius=..]`` with a
CSV, VOTable or FITS body adds or replaces one (a bad file is refused with the row and
column, nothing applied); ``DELETE /watchlist/watchlists/<id>`` deletes it. Status:
``/watchlist/`` and ``/watchlist/status.json``.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import fastavro
import faust
from faust.web import Request, Response, View

from brokerapp.domain.processors import Alert
from brokerapp.domain.watchlists import (
    SolarSystemWatchlist,
    WatchlistCommand,
    WatchlistError,
    load_watchlist,
    object_key,
    watchlist_to_json,
)
from brokerapp.domain.zones import (
    DEFAULT_HEIGHT_DEG,
    Entry,
    entry_zones,
    lookup_in,
    zone_insert,
    zone_remove,
)
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.wire.codecs import frame

__all__ = ["annotated_schema", "build"]

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


def _annotation(alert: Alert, match: Any) -> dict:
    watchlist_id, entry = match.entry.payload["watchlist"], match.entry.payload["entry"]
    view = alert.view
    return {
        "alert_id": view.alert_id,
        "object_id": None if view.object_id is None else str(view.object_id),
        "watchlist_id": watchlist_id,
        "entry": entry,
        "separation_arcsec": match.separation_arcsec,
        "mjd": view.mjd,
    }


def _ss_names(alert: Alert) -> list[str]:
    """Normalised names an alert's solar-system object goes by (ID, then MPC designation)."""
    names = [object_key(alert.view.ss_name)]
    for orbit in ("MPCORB", "mpc_orbits"):
        designation = (alert.record.get(orbit) or {}).get("mpcDesignation")
        names.append(object_key(designation))
    return list(dict.fromkeys(n for n in names if n is not None))


def build(settings: Settings) -> faust.App:
    """Build the watchlist app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With agents ``control`` and ``match`` and global tables ``watchlists`` and
        ``watchlist_zones``.
    """
    branch = "watchlist"
    app = create_app(settings, branch, web_port=settings.watchlist_web_port)
    runtime = BranchRuntime(app, settings, branch, settings.watchlist_source_topic)
    control_topic = app.topic(
        settings.watchlist_control_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=1,
        internal=True,
        compacting=True,
    )
    watchlists = app.GlobalTable("watchlists", partitions=1, key_type=str)
    zones = app.GlobalTable("watchlist_zones", partitions=1, key_type=str)
    ss_objects = app.GlobalTable("ss_watchlist_objects", partitions=1, key_type=str)
    solar = BranchRuntime.topic_of(app, settings, settings.ss_watchlist_source_topic)
    counts: Counter[str] = Counter()
    avro: dict[int, tuple[int, Any]] = {}

    def unapply(watchlist_id: str, old: dict) -> None:
        if old.get("kind") == "solar_system":
            for name in old["objects"]:
                ss_objects[name] = [w for w in ss_objects.get(name) or [] if w != watchlist_id]
            return
        changed: dict[str, list] = {}
        for entry in old["entries"]:
            name = f"{watchlist_id}/{entry['name']}"
            for zone in entry_zones(entry["dec"], entry["radius_arcsec"], DEFAULT_HEIGHT_DEG):
                key = str(zone)
                changed[key] = zone_remove(changed.get(key, zones.get(key)), name)
        for key, rows in changed.items():
            zones[key] = rows

    def apply(command: WatchlistCommand) -> None:
        old = watchlists.get(command.watchlist_id)
        if old is not None:
            unapply(command.watchlist_id, old)
            del watchlists[command.watchlist_id]
        if command.op == "put" and isinstance(command.payload, SolarSystemWatchlist):
            watchlist = command.payload
            for name in watchlist.objects:
                ss_objects[name] = sorted({*(ss_objects.get(name) or []), watchlist.id})
            watchlists[watchlist.id] = watchlist_to_json(watchlist)
        elif command.op == "put":
            watchlist = command.payload
            changed: dict[str, list] = {}  # each zone written once, however many entries
            for entry in watchlist.entries:
                row = Entry(
                    f"{watchlist.id}/{entry.name}",
                    entry.ra,
                    entry.dec,
                    entry.radius_arcsec,
                    {"watchlist": watchlist.id, "entry": entry.name},
                )
                for zone in entry_zones(entry.dec, entry.radius_arcsec, DEFAULT_HEIGHT_DEG):
                    key = str(zone)
                    changed[key] = zone_insert(changed.get(key, zones.get(key)), row)
            for key, rows in changed.items():
                zones[key] = rows
            watchlists[watchlist.id] = watchlist_to_json(watchlist)
        counts[f"commands:{command.op}"] += 1

    @app.agent(control_topic, name="control", concurrency=1)
    async def control(stream: faust.StreamT) -> Any:
        """Apply watchlist commands to the global tables."""
        async for event in stream.events():
            try:
                command = WatchlistCommand.from_bytes(event.value)
            except WatchlistError as exc:
                await runtime.dead_letter(event, exc)
                continue
            apply(command)

    async def annotated_bytes(schema_id: int, record: dict, annotations: list[dict]) -> bytes:
        known = avro.get(schema_id)
        if known is None:
            alert_schema = runtime.codec.cache.by_id(schema_id)
            schema = annotated_schema(alert_schema.raw)
            local_id = await runtime.registry.register(
                f"{settings.annotated_alerts_topic}-value", schema
            )
            known = avro[schema_id] = (local_id, fastavro.parse_schema(schema))
        local_id, parsed = known
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed, {"alert": record, "annotations": annotations})
        return frame(local_id, body.getvalue())

    @app.agent(runtime.source, name="match", concurrency=1)
    async def match(stream: faust.StreamT) -> Any:
        """Annotate alerts that fall in a watchlist entry's circle."""
        await runtime.declare([settings.annotations_topic, settings.annotated_alerts_topic])
        async for event, alert in runtime.alerts(stream):
            try:
                matches = lookup_in(zones, alert.view.ra, alert.view.dec, key=str)
            except ValueError as exc:  # no or a NaN position
                await runtime.dead_letter(event, exc)
                continue
            if matches:
                await annotate(event, alert, [_annotation(alert, m) for m in matches])

    async def annotate(event: Any, alert: Alert, annotations: list[dict]) -> None:
        key = event.message.key
        for annotation in annotations:
            await runtime.send_json(settings.annotations_topic, event, key, annotation)
        value = await annotated_bytes(alert.schema_id, dict(alert.record), annotations)
        message = event.message
        targets = [settings.annotated_alerts_topic]
        if settings.watchlist_topics:
            ids = sorted({a["watchlist_id"] for a in annotations})
            targets += [f"{settings.topic_prefix}watchlist-{i}" for i in ids]
        for target in targets:
            await runtime.send(
                target, key, value, list(message.headers or []), message.timestamp * 1000.0
            )
        counts["matched_alerts"] += 1
        counts["annotations"] += len(annotations)

    @app.agent(solar, name="ss_match", concurrency=1)
    async def ss_match(stream: faust.StreamT) -> Any:
        """Annotate solar-system alerts of objects on a solar-system watchlist."""
        await runtime.declare([settings.annotations_topic, settings.annotated_alerts_topic])
        async for event, alert in runtime.alerts(stream):
            view = alert.view
            annotations = [
                {
                    "alert_id": view.alert_id,
                    "object_id": name,
                    "watchlist_id": watchlist_id,
                    "entry": name,
                    "separation_arcsec": view.ss_distance_arcsec or 0.0,
                    "mjd": view.mjd,
                }
                for name in _ss_names(alert)
                for watchlist_id in ss_objects.get(name) or []
            ]
            if annotations:
                await annotate(event, alert, annotations)

    class WatchlistsView(View):
        """List, add or replace, and delete watchlists (commands go to the control topic)."""

        async def get(self, request: Request, watchlist_id: str = "") -> Response:
            if watchlist_id:
                found = watchlists.get(watchlist_id)
                if found is None:
                    return self.json({"error": f"no watchlist {watchlist_id!r}"}, status=404)
                return self.json(found)
            return self.json(
                {
                    key: {"name": w["name"], "owner": w["owner"], "entries": len(w["entries"])}
                    for key, w in watchlists.items()
                }
            )

        async def put(self, request: Request, watchlist_id: str = "") -> Response:
            query = request.query
            radius = query.get("radius")
            try:
                watchlist = load_watchlist(
                    await request.read(),
                    watchlist_id,
                    query.get("name", watchlist_id),
                    query.get("owner", "unknown"),
                    format=query.get("format"),
                    default_radius=float(radius) if radius else None,
                    source=f"watchlist {watchlist_id}",
                )
            except (WatchlistError, ValueError) as exc:
                return self.json({"error": str(exc)}, status=400)
            command = WatchlistCommand.put(watchlist)
            await control_topic.send(key=command.key, value=command.to_bytes())
            return self.json({"accepted": watchlist_id, "entries": len(watchlist.entries)})

        async def delete(self, request: Request, watchlist_id: str = "") -> Response:
            command = WatchlistCommand.delete(watchlist_id)
            await control_topic.send(key=command.key, value=command.to_bytes())
            return self.json({"accepted": watchlist_id, "op": "delete"})

    app.page("/watchlist/watchlists/")(WatchlistsView)
    app.page("/watchlist/watchlists/{watchlist_id}")(WatchlistsView)

    def status() -> dict[str, Any]:
        return {
            **runtime.status(),
            "solar_source": settings.ss_watchlist_source_topic,
            "watchlists": len(list(watchlists.keys())),
            "zones": len(list(zones.keys())),
            "matched_alerts": counts["matched_alerts"],
            "annotations": counts["annotations"],
            "commands": {
                k.split(":")[1]: v for k, v in counts.items() if k.startswith("commands:")
            },
        }

    add_status_pages(app, branch, status)
    app.status = status
    return app


__getattr__ = lazy_app(__name__, build)
