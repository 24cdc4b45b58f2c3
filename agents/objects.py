"""The objects worker (Stage 1's CandidateObjectUpdate): per-object history and statistics.

Launch with ``faust -A agents.objects worker``. App id ``<app_prefix>-objects``, one agent,
``update``, reading ``candidates_topic`` (CandidateUpdate JSON keyed by object ID,
:mod:`brokerapp.domain.candidates`) and one table, ``object_history`` (:mod:`tables.objects`:
object ID -> its recent detections).

For each CandidateUpdate the agent merges the alert's detection and its previous detections
into the object's history (:func:`brokerapp.domain.history.merge_history`: keyed by candidate ID,
sorted by time, the latest ``history_length`` kept; so the first alert of an object seeds
its history from ``prv_candidates`` / ``prvDiaSources``, a candidate older than the newest
lands in its place, and a replayed alert changes nothing), stores it, computes the object's
statistics (:func:`brokerapp.domain.history.object_statistics`) and sends, keyed by object ID:

- to ``candidate_object_updates_topic``: ``{"candidate": <CandidateUpdate>, "object":
  <ObjectUpdate>}``;
- to ``objects_topic`` (compacted): the ObjectUpdate, the statistics plus ``alert_id``.

The table is partitioned like ``candidates_topic``. A record whose message key is not its
object ID (written by another producer) is sent back to ``candidates_topic`` keyed by its
object, and processed when it arrives in the right partition: a group-by. A record that is
not a CandidateUpdate is dead-lettered to ``<topic_prefix>objects-deadletter``.
Status: ``/objects/`` and ``/objects/status.json`` on ``objects_web_port``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import faust

from brokerapp.domain.candidates import CandidateError, object_update
from brokerapp.domain.history import merge_history, object_statistics
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.wire import records
from tables.objects import object_history_table

__all__ = ["build", "parse_update"]


def parse_update(value: bytes | None) -> tuple[str, list[dict], dict]:
    """Read one CandidateUpdate message value.

    Parameters
    ----------
    value : bytes or None
        The message value.

    Returns
    -------
    tuple of (str, list of dict, dict)
        Object ID, the detections (the alert's own first) and the whole update.

    Raises
    ------
    CandidateError
        If the value is not a CandidateUpdate of an object.
    """
    try:
        update = records.loads(value or b"")
        object_id = update["object_id"]
        detections = [update["candidate"], *update.get("previous", ())]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CandidateError(f"not a CandidateUpdate: {exc!r}") from exc
    if object_id is None:
        raise CandidateError(f"CandidateUpdate of alert {update.get('alert_id')} has no object")
    return str(object_id), detections, update


def build(settings: Settings) -> faust.App:
    """Build the objects app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With agent ``update`` and table ``object_history``.
    """
    branch = "objects"
    app = create_app(settings, branch, web_port=settings.objects_web_port)
    runtime = BranchRuntime(app, settings, branch, settings.candidates_topic)
    history_table = object_history_table(app, settings.alerts_partitions)
    counts: Counter[str] = Counter()

    @app.agent(runtime.source, name="update", concurrency=1)
    async def update(stream: faust.StreamT) -> None:
        """Merge each candidate into its object's history and send the new statistics."""
        await runtime.declare([settings.candidate_object_updates_topic, settings.objects_topic])
        async for event in stream.events():
            started = time.perf_counter()
            runtime.received += 1
            runtime.track(event)
            try:
                object_id, detections, candidate = parse_update(event.value)
                key = object_id.encode()
                if event.key != key:
                    # Partitioned by something else: re-key it onto its object's partition.
                    await runtime.forward(settings.candidates_topic, event, key=key)
                    counts["rekeyed"] += 1
                    continue
                history = merge_history(
                    history_table.get(object_id) or [], detections, settings.history_length
                )
                history_table[object_id] = history
                statistics = object_statistics(
                    history,
                    rate_window_days=settings.rate_window_days,
                    colour_window_days=settings.colour_window_days,
                )
            except (CandidateError, ValueError, TypeError, KeyError) as exc:
                await runtime.dead_letter(event, exc)
                continue
            obj = object_update(statistics, candidate["alert_id"])
            await runtime.send_json(
                settings.candidate_object_updates_topic,
                event,
                key,
                {"candidate": candidate, "object": obj},
            )
            await runtime.send_json(settings.objects_topic, event, key, obj)
            counts["updates"] += 1
            runtime.processed(started)

    def status() -> dict[str, Any]:
        return {
            **runtime.status(),
            "updates": counts["updates"],
            "rekeyed": counts["rekeyed"],
            "history_length": settings.history_length,
            "outputs": [settings.candidate_object_updates_topic, settings.objects_topic],
        }

    add_status_pages(app, branch, status)
    app.status = status
    return app


__getattr__ = lazy_app(__name__, build)
