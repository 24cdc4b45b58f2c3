"""The gateway worker (Stage 0): mirror the upstream daily topics into ``alerts``.

Launch with ``faust -A agents.gateway worker`` (settings from ``BROKER_`` variables). The app
id is ``<app_prefix>-gateway``. The work is done by :class:`brokerapp.runtime.mirror.Mirror`, which
this worker runs as a service: it reads the upstream cluster with its own consumer (a Faust
stream reads only the app's own, local cluster) and writes ``alerts`` and the dead-letter
topic. The one Faust agent, ``record_schema_ids``, stores every upstream-to-local schema pair
the mirror learns in the ``schema_ids`` table, which the mirror reads back when the worker
restarts.

Web view (``gateway_web_port``, bound to ``web_bind``): ``/gateway/`` is the status page in
HTML, ``/gateway/status.json`` the same as JSON (see
:meth:`brokerapp.runtime.mirror.Mirror.status`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from brokerapp.adapters.idtable import schema_ids_topic
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app, lazy_app
from brokerapp.runtime.branch import add_status_pages
from brokerapp.runtime.mirror import Mirror
from tables.gateway import schema_ids_table

__all__ = ["build"]

LEARN_TIMEOUT = 10.0
"""Seconds the mirror waits for a new schema pair to reach the table."""
LEARN_POLL = 0.01
"""Seconds between two looks at the table while waiting."""

logger = logging.getLogger(__name__)


def loop_time() -> float:
    """Return the running event loop's clock (seconds)."""
    return asyncio.get_running_loop().time()


def build(settings: Settings) -> faust.App:
    """Build the gateway app: its table, its agent, its mirror service and its web view.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        The app ``faust -A agents.gateway worker`` runs.
    """
    app = create_app(settings, "gateway", web_port=settings.gateway_web_port)
    schema_ids = schema_ids_table(app)
    learned = app.topic(
        schema_ids_topic(settings.app_prefix),
        key_type=str,
        value_serializer="json",
        partitions=1,
        internal=True,  # declared (created) by the worker before it subscribes
        compacting=True,
    )

    @app.agent(learned, name="record_schema_ids", concurrency=1)
    async def record_schema_ids(stream: faust.StreamT) -> Any:
        """Store each learned schema pair in the table."""
        async for key, value in stream.items():
            schema_ids[key] = value
            yield key

    async def learn(key: str, value: dict) -> None:
        # Wait until the table holds the pair, so that a stop (or a crash) from now on
        # cannot make the restarted worker ask the registries again for it.
        started = loop_time()
        await record_schema_ids.send(key=key, value=value)
        while schema_ids.get(key) != value and loop_time() < started + LEARN_TIMEOUT:
            await asyncio.sleep(LEARN_POLL)
        took = loop_time() - started
        if schema_ids.get(key) != value:
            logger.warning("gateway: %s not yet in the table after %.1f s", key, took)
        else:
            logger.info("gateway: %s -> local ID %s recorded in %.3f s", key, value["local"], took)

    mirror = Mirror(settings, schema_ids, learn)
    app.service(mirror)
    app.mirror = mirror

    add_status_pages(app, "gateway", mirror.status)

    return app


__getattr__ = lazy_app(__name__, build)
