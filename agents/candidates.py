"""The candidates worker (Stage 1's CandidateUpdate): every alert becomes a small JSON record.

Launch with ``faust -A agents.candidates worker``. App id ``<app_prefix>-candidates``, one
batch loop (:mod:`brokerapp.runtime.batch`), ``convert``, reading both split streams:

from ``nonsolar``
    Reads ``nonsolar_topic`` (``alerts-nonsolar``), decodes each alert once and sends its
    CandidateUpdate (:func:`brokerapp.domain.candidates.candidate_update`: the alert's detection and
    its previous detections, survey-agnostic) to ``candidates_topic``, keyed by object ID. The
    key is what partitions that topic: all of one object's candidates land in one partition,
    which is how the objects worker's table is partitioned (this is its ``group_by``).
from ``solar``
    Reads ``solar_topic`` (``alerts-solar``) and sends each CandidateUpdate to
    ``ss_candidates_topic``, keyed by the solar-system object's name.

An alert that cannot become a CandidateUpdate (no object, a detection without ID or time) is
dead-lettered to ``<topic_prefix>candidates-deadletter`` with the reason. Downstream workers
(objects, the database sinks) read only these records, so no alert is decoded twice.
Status: ``/candidates/`` and ``/candidates/status.json`` on ``candidates_web_port``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import faust

from brokerapp.domain.candidates import CANDIDATE_READS, CandidateError, candidate_update
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.batch import Outbox, Record
from brokerapp.runtime.branch import BranchRuntime, add_status_pages

__all__ = ["build"]


def build(settings: Settings) -> faust.App:
    """Build the candidates app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With its batch loop ``convert``.
    """
    branch = "candidates"
    app = create_app(settings, branch, web_port=settings.candidates_web_port)
    runtime = BranchRuntime(app, settings, branch, settings.nonsolar_topic)
    BranchRuntime.topic_of(app, settings, settings.solar_topic)  # created if missing
    counts: Counter[str] = Counter()

    @app.task
    async def declare_outputs() -> None:
        """Create the output topics when the worker starts."""
        await runtime.declare([settings.candidates_topic, settings.ss_candidates_topic])

    async def convert(records: list[Record], out: Outbox) -> None:
        """Send a CandidateUpdate per alert of one batch, keyed by its (solar-system) object."""
        async for record, alert in runtime.batch_alerts(records, out, CANDIDATE_READS):
            solar = record.topic == settings.solar_topic
            try:
                update = candidate_update(alert, float(record.timestamp))
            except CandidateError as exc:
                runtime.dead_letter_to(out, record, exc)
                continue
            owner = update["ss_name"] if solar else update["object_id"]
            if owner is None:
                kind = "solar-system object" if solar else "object"
                error = CandidateError(f"alert {update['alert_id']} names no {kind}")
                runtime.dead_letter_to(out, record, error)
                continue
            topic = settings.ss_candidates_topic if solar else settings.candidates_topic
            runtime.json_to(out, topic, record, str(owner).encode(), update)
            counts["solar" if solar else "nonsolar"] += 1
            counts["previous"] += len(update["previous"])

    runtime.run_batches(convert, [settings.nonsolar_topic, settings.solar_topic], name="convert")

    def status() -> dict[str, Any]:
        return {
            **runtime.status(),
            "solar_source": settings.solar_topic,
            "updates": dict(counts),
            "outputs": {
                "nonsolar": settings.candidates_topic,
                "solar": settings.ss_candidates_topic,
            },
        }

    add_status_pages(app, branch, status)
    app.status = status
    return app


__getattr__ = lazy_app(__name__, build)
