"""The voevent worker: one VOEvent 2.0 packet per annotated alert, to Kafka and over VTP.

Launch with ``faust -A agents.voevent worker`` (app id ``<app_prefix>-voevent``). A batch
loop reads ``annotated_alerts_topic`` (watchlist) and ``annotations_topic`` (crossmatch);
each annotated alert becomes a packet (:func:`brokerapp.domain.notify.voevent.packet`,
IVORN ``ivo://<voevent_authority>/<voevent_stream>#<kind>-<alert ID>``), checked against
the VOEvent 2.0 schema, sent to ``voevents_topic`` (keyed as its input) and broadcast to the
VTP subscribers connected to ``vtp_host:vtp_port``
(:class:`brokerapp.adapters.notify.vtp.VTPBroadcaster`). A record that is not an annotated
alert, or a packet the schema refuses, is dead-lettered. The broadcast happens before the
batch's offsets are committed: a crash repeats at most a batch, with the same IVORNs, which
a subscriber such as Comet drops as already seen.

Status: ``/voevent/`` and ``/voevent/status.json`` on ``voevent_web_port``: packets, bytes,
failures, backlog (lag), and the VTP subscribers, sent, acknowledged and dropped.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import faust

from brokerapp.adapters.notify.vtp import VTPBroadcaster
from brokerapp.domain.notify.notices import NoticeError
from brokerapp.domain.notify.voevent import PacketSettings, VOEventError, ivorn, packet, validate
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.batch import Outbox, Record
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from brokerapp.runtime.notify import Lifecycle, input_topics, notices_of

__all__ = ["build", "packet_settings"]


def packet_settings(settings: Settings) -> PacketSettings:
    """Return the packets' authority, stream, author and alert link from the settings."""
    return PacketSettings(
        settings.voevent_authority,
        settings.voevent_stream,
        settings.voevent_author,
        settings.voevent_contact_email,
        settings.alert_url_template,
    )


def build(settings: Settings) -> faust.App:
    """Build the voevent app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With its batch loop ``app.batch_loops["process"]`` and ``app.vtp`` (the broadcaster,
        started and stopped with the worker).
    """
    branch = "voevent"
    app = create_app(settings, branch, web_port=settings.voevent_web_port)
    runtime = BranchRuntime(app, settings, branch, settings.annotated_alerts_topic)
    params = packet_settings(settings)
    vtp = VTPBroadcaster(
        settings.vtp_host,
        settings.vtp_port,
        f"ivo://{settings.voevent_authority}/vtp",
        settings.vtp_iamalive_seconds,
        settings.vtp_ack_timeout_seconds,
    )
    counts: Counter[str] = Counter()

    async def process(records: list[Record], out: Outbox) -> None:
        """Build, check, send and broadcast the packet of each annotated alert."""
        broadcasts = []
        for record in records:
            started = time.perf_counter()
            runtime.received += 1
            try:
                notice = await notices_of(runtime, record)
                if notice is None:
                    continue
                data = packet(params, notice)
                validate(data)
            except (NoticeError, VOEventError) as exc:
                counts["failures"] += 1
                runtime.dead_letter_to(out, record, exc)
                continue
            out.add(
                settings.voevents_topic,
                record.key,
                data,
                [("ivorn", ivorn(params, notice).encode())],
                float(record.timestamp),
            )
            broadcasts.append((data, ivorn(params, notice)))
            counts["packets"] += 1
            counts["bytes"] += len(data)
            runtime.processed(started)
        for data, name in broadcasts:
            await vtp.broadcast(data, name)

    runtime.run_batches(process, topics=input_topics(settings))

    @app.task
    async def declare_outputs() -> None:
        """Create the voevents topic when the worker starts."""
        await runtime.declare([settings.voevents_topic])

    app.service(Lifecycle(vtp.start, vtp.stop))

    def status() -> dict[str, Any]:
        base = runtime.status()
        return {
            **base,
            "notifier": "voevent",
            "written": counts["packets"],
            "bytes": counts["bytes"],
            "failures": counts["failures"],
            "backlog": base.get("lag"),
            "oldest_unsent_age_s": None,  # nothing waits: a packet goes with its batch
            "vtp": vtp.status(),
        }

    add_status_pages(app, branch, status)
    app.status = status
    app.vtp = vtp
    return app


__getattr__ = lazy_app(__name__, build)
