"""The watchlist worker: sky watchlists matched on the non-solar stream.

Launch with ``faust -A agents.watchlist worker``. Three agents and the three global tables of
:mod:`tables.watchlist` (layouts in :mod:`brokerapp.domain.watchlists.zonetable`):

``control``
    Reads ``watchlist_control_topic`` (one partition, compacted) and applies each message
    (:func:`brokerapp.domain.watchlists.chunks.parse_control`): a chunk of an upload is
    staged, a commit puts the staged upload in force in one swap (a reader sees the old
    version or the new one, never a mix; an upload without its commit changes nothing;
    a large commit is applied in steps, the other agents running between them), a
    whole-watchlist put is staged and committed at once, a delete removes it. Chunks of
    superseded uploads are removed and their tombstones sent to the control topic, so
    compaction drops them. An invalid message, or a commit whose chunks are missing, is
    dead-lettered and nothing changes.
``match``
    Reads ``watchlist_source_topic``, decodes each alert once, reads the one zone of its
    declination and keeps the entries of versions in force within their radius by exact
    angular distance. Each match becomes an Annotation (JSON) in ``annotations_topic``, and
    the alert with all its annotations an AnnotatedAlert (Avro, registered in the local
    registry under ``<annotated_alerts_topic>-value``) in ``annotated_alerts_topic`` and,
    with ``watchlist_topics``, in ``<topic_prefix>watchlist-<watchlist ID>``
    (:mod:`brokerapp.domain.watchlists.annotated`). An alert without a valid position is
    dead-lettered.
``ss_match``
    Reads ``ss_watchlist_source_topic`` (the solar stream) and follows named solar-system
    objects: every name the survey gives the alert's object (its profile's
    ``solar_system_names``, normalised) is looked up in ``ss_watchlist_objects``. Same
    outputs; the separation is the survey's distance to the object (else 0).

REST on the worker's web port (``watchlist_web_port``): :mod:`brokerapp.runtime.watchlist_view`
(list, read, upload in chunks, delete). Status: ``/watchlist/`` and
``/watchlist/status.json``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import fastavro
import faust

from brokerapp.domain.watchlists import zonetable
from brokerapp.domain.watchlists.annotated import (
    SS_WATCHLIST_READS,
    WATCHLIST_MATCH_READS,
    annotated_schema,
    annotation,
    encode_annotated,
    solar_system_annotations,
    solar_system_names,
    watchlist_topics,
)
from brokerapp.domain.watchlists.chunks import parse_control
from brokerapp.domain.watchlists.problems import WatchlistError
from brokerapp.domain.zones import lookup_in
from brokerapp.model.alert import Alert
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.runtime.watchlist_view import Message, add_watchlist_views
from brokerapp.runtime.webauth import WriteGuard
from tables.watchlist import ss_objects_table, watchlists_table, zones_table

__all__ = ["build"]


def build(settings: Settings) -> faust.App:
    """Build the watchlist app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With agents ``control``, ``match`` and ``ss_match`` and global tables
        ``watchlists``, ``watchlist_zones`` and ``ss_watchlist_objects``.
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
    watchlists = watchlists_table(app)
    zones = zones_table(app)
    ss_objects = ss_objects_table(app)
    solar = BranchRuntime.topic_of(app, settings, settings.ss_watchlist_source_topic)
    counts: Counter[str] = Counter()
    schemas: dict[int, tuple[int, Any]] = {}  # alert schema ID -> (local ID, parsed schema)

    async def send_control(messages: list[Message]) -> None:
        sent = [await control_topic.send(key=key, value=value) for key, value in messages]
        await asyncio.gather(*sent)

    async def run_steps(steps: zonetable.Steps) -> zonetable.Applied:
        # The other agents and the web view run between two steps (a 10^6-entry commit
        # takes tens of seconds); the tables are consistent for matching at each pause.
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value
            await asyncio.sleep(0)

    @app.agent(control_topic, name="control", concurrency=1)
    async def control(stream: faust.StreamT) -> Any:
        """Apply control messages to the tables."""
        async for event in stream.events():
            if event.value is None:  # a tombstone of a removed chunk
                continue
            try:
                steps = zonetable.apply_steps(
                    watchlists,
                    zones,
                    ss_objects,
                    parse_control(event.value),
                    f"o{event.message.offset}",
                    settings.watchlist_chunk_entries,
                )
                applied = await run_steps(steps)
            except WatchlistError as exc:
                counts["refused"] += 1
                await runtime.dead_letter(event, exc)
                continue
            counts[f"commands:{applied.op}"] += 1
            for key in applied.removed_chunks:
                await app.producer.send(
                    control_topic.get_topic_name(), key.encode(), None, None, None, []
                )

    async def annotated_bytes(alert: Alert, annotations: list[dict]) -> bytes:
        known = schemas.get(alert.schema_id)
        if known is None:
            schema = annotated_schema(runtime.codec.cache.by_id(alert.schema_id).raw)
            local_id = await runtime.registry.register(
                f"{settings.annotated_alerts_topic}-value", schema
            )
            known = schemas[alert.schema_id] = (local_id, fastavro.parse_schema(schema))
        return encode_annotated(known[0], known[1], alert.record, annotations)

    async def annotate(event: Any, alert: Alert, annotations: list[dict]) -> None:
        message = event.message
        for item in annotations:
            await runtime.send_json(settings.annotations_topic, event, message.key, item)
        value = await annotated_bytes(alert, annotations)
        targets = [settings.annotated_alerts_topic]
        if settings.watchlist_topics:
            targets += watchlist_topics(settings.topic_prefix, annotations)
        for target in targets:
            await runtime.send(
                target, message.key, value, list(message.headers or []), message.timestamp * 1000.0
            )
        counts["matched_alerts"] += 1
        counts["annotations"] += len(annotations)

    @app.agent(runtime.source, name="match", concurrency=1)
    async def match(stream: faust.StreamT) -> Any:
        """Annotate alerts that fall in a watchlist entry's circle."""
        await runtime.declare([settings.annotations_topic, settings.annotated_alerts_topic])
        async for event, alert in runtime.alerts(stream, WATCHLIST_MATCH_READS):
            try:
                found = lookup_in(zones, alert.view.ra, alert.view.dec, key=str)
            except ValueError as exc:  # no or a NaN position
                await runtime.dead_letter(event, exc)
                continue
            matches = zonetable.in_force(zones, found)
            if matches:
                await annotate(event, alert, [annotation(alert.view, m) for m in matches])

    @app.agent(solar, name="ss_match", concurrency=1)
    async def ss_match(stream: faust.StreamT) -> Any:
        """Annotate solar-system alerts of objects on a solar-system watchlist."""
        await runtime.declare([settings.annotations_topic, settings.annotated_alerts_topic])
        async for event, alert in runtime.alerts(stream, SS_WATCHLIST_READS):
            names = solar_system_names(alert.profile, alert.record_for("solar_system_names"))
            annotations = solar_system_annotations(alert.view, names, ss_objects.get)
            if annotations:
                await annotate(event, alert, annotations)

    add_watchlist_views(
        app,
        watchlists,
        send_control,
        settings.watchlist_chunk_entries,
        settings.watchlist_upload_max_bytes,
        WriteGuard.from_settings(settings),
    )

    def status() -> dict[str, Any]:
        return {
            **runtime.status(),
            "solar_source": settings.ss_watchlist_source_topic,
            "watchlists": len(zonetable.watchlist_ids(watchlists)),
            "zones": len(zonetable.zone_keys(zones)),
            "matched_alerts": counts["matched_alerts"],
            "annotations": counts["annotations"],
            "refused": counts["refused"],
            "commands": {
                k.split(":")[1]: v for k, v in counts.items() if k.startswith("commands:")
            },
        }

    add_status_pages(app, branch, status)
    app.status = status
    return app


__getattr__ = lazy_app(__name__, build)
