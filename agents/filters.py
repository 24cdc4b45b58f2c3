"""The filters worker: DMTN-028 style filters, at most 20 alerts per visit per filter.

Launch with ``faust -A agents.filters worker`` (all filters of ``filters``), or
``brokerapp filter BOOTSTRAP TOPIC N`` for the Nth filter alone. Two agents:

``select``
    Reads ``alerts``, decodes each alert once, evaluates every configured filter
    (:mod:`brokerapp.domain.filters`) and, when any passes, re-keys the alert by its visit ID into
    ``<topic_prefix><branch>-by-visit`` (bytes unchanged, a ``filters`` header listing the
    passing filters, an ``alerts-timestamp`` header with its append time in ``alerts``).
``limit``
    Reads that topic, so all alerts of one visit meet on one partition whatever partition of
    ``alerts`` they came from, and counts per ``<filter>:<visit>`` in the windowed table
    ``visit_counts``. An alert is sent to the topic named after the filter class
    (``<topic_prefix>Filter007``) while the visit's count over the current and previous
    window is below the filter's ``max_per_visit`` (20). DMTN-028 counted per consecutive
    visit in one process; counting in a partitioned table keyed by visit keeps the limit
    when visits interleave across partitions and workers.

Status: ``/<branch>/`` and ``/<branch>/status.json`` on ``filters_web_port``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import faust

from brokerapp.domain.filters import admit, filter_classes, limit_key, passing, visit_key
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.branch import BranchRuntime, add_status_pages
from tables.filters import visit_counts_table

__all__ = ["build"]

FILTERS_HEADER = "filters"
"""Header of a by-visit message: comma-separated names of the filters it passed."""
APPENDED_HEADER = "alerts-timestamp"
"""Header of a by-visit message: its append time in ``alerts`` (ms), for end-to-end latency."""


def build(settings: Settings) -> faust.App:
    """Build the filters app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        With agents ``select`` and ``limit`` and table ``visit_counts``.
    """
    branch = settings.filters_branch
    app = create_app(settings, branch, web_port=settings.filters_web_port)
    runtime = BranchRuntime(app, settings, branch)
    filters = [cls() for cls in filter_classes(settings.filters)]
    limits = {f.name: f.max_per_visit for f in filters}
    outputs = {f.name: f"{settings.topic_prefix}{f.name}" for f in filters}
    partitions = settings.alerts_partitions
    by_visit_name = f"{settings.topic_prefix}{branch}-by-visit"
    by_visit = app.topic(
        by_visit_name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=True,
    )
    window = settings.filters_window_seconds
    visit_counts = visit_counts_table(app, partitions, window)
    counts: Counter[str] = Counter()

    @app.agent(runtime.source, name="select", concurrency=1)
    async def select(stream: faust.StreamT) -> Any:
        """Evaluate the filters once per alert; re-key passing alerts by visit."""
        await runtime.declare([])
        async for event, alert in runtime.alerts(stream):
            names = passing(alert, filters)
            if names:
                message = event.message
                headers = [
                    *_pairs(message.headers),
                    (FILTERS_HEADER, ",".join(names).encode()),
                    (APPENDED_HEADER, str(int(message.timestamp * 1000)).encode()),
                ]
                await runtime.send(
                    by_visit_name, visit_key(alert.view).encode(), message.value, headers
                )
                counts["selected"] += 1
                counts.update(f"passed:{n}" for n in names)

    @app.agent(by_visit, name="limit", concurrency=1)
    async def limit(stream: faust.StreamT) -> Any:
        """Send each selected alert on to its filters' topics, 20 per visit at most."""
        await runtime.declare(list(outputs.values()))
        async for event in stream.events():
            headers = dict(_pairs(event.message.headers))
            appended = int(headers.get(APPENDED_HEADER, b"0"))
            visit = event.message.key.decode()
            for name in headers.get(FILTERS_HEADER, b"").decode().split(","):
                if name not in limits:
                    continue
                key = limit_key(name, visit)
                counts_of = visit_counts[key]
                # This window, the one before and the one after: alerts of one visit from
                # several partitions interleave, so they need not arrive in time order.
                if not admit(
                    counts_of.current(),
                    counts_of.delta(window),
                    limits[name],
                    count_next=counts_of.delta(-window),
                ):
                    counts[f"capped:{name}"] += 1
                    continue
                visit_counts[key] += 1
                await runtime.forward(outputs[name], event, appended_ms=appended)

    def status() -> dict[str, Any]:
        return {
            **runtime.status(),
            "filters": {
                f.name: {
                    "topic": outputs[f.name],
                    "passed": counts[f"passed:{f.name}"],
                    "sent": runtime.sent[outputs[f.name]],
                    "capped": counts[f"capped:{f.name}"],
                    "criteria": getattr(f, "criteria", None),
                }
                for f in filters
            },
            "selected": counts["selected"],
        }

    add_status_pages(app, branch, status)

    app.status = status
    return app


def _pairs(headers: Any) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


__getattr__ = lazy_app(__name__, build)
