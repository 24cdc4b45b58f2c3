"""One page over every worker: status, throughput, lag, latency, dead letters; Prometheus.

``brokerapp overview`` serves, on ``overview_port`` (bound to ``web_bind``):

``/``
    An HTML table with one row per known worker (the gateway, the branches, the candidates
    and objects workers and the two database sinks, at the web ports the settings name),
    built from each worker's own ``status.json``: up or down, alerts in and out, rate over
    the last minute, lag (messages not yet read), p50/p99 latency, dead letters, for a sink
    whether its store is available, and a link to the worker's own page. It reloads itself
    every 5 s. Two more columns draw each worker's lag and p99 latency over the last
    ``overview_history_seconds`` as small inline SVG lines (hover for the last and largest
    value), from a ring buffer of the polls the overview makes every
    ``overview_poll_seconds`` while it runs (:class:`History`, :func:`sparkline`).
``/status.json``
    The same rows as JSON.
``/streams/``
    The stream description of every output topic, a JSON list (format and JSON Schema:
    :mod:`brokerapp.model.streams`; built by :mod:`brokerapp.runtime.streams`, each validated
    before it is served). ``/streams/<name>`` is one of them (by stream or topic name);
    ``/streams/schemas/cutouts_v1.avsc`` the Avro schema file the ``cutouts`` stream names.
``/metrics``
    Prometheus text format (``broker_up``, ``broker_received_total``, ``broker_sent_total``,
    ``broker_deadlettered_total``, ``broker_lag``, ``broker_latency_ms{quantile=...}``,
    ``broker_store_available``; for the notifiers ``broker_failures_total``,
    ``broker_written_bytes_total``, ``broker_oldest_unwritten_seconds``), one series per worker.

What the numbers are, by kind of worker:

- gateway: alerts mirrored (in and out), lag summed over its upstream partitions, latency
  from upstream to local append time;
- branches, candidates and objects: alerts read and messages sent (all outputs), lag from
  the branch's ``lag``, end-to-end latency (append time in the input to append time in the
  output);
- sinks: messages read, rows written (as "sent"), their rate of messages stored, the
  latency of the worst table (highest p99: input append time to write confirmed), and
  ``store_available`` (false is shown as a warning, with the last error);
- notifiers and archivers (voevent, email, webhooks, avro-archive, parquet-archive: slow
  branches): alerts read, packets, emails, POSTs or file writes (as "sent"), the backlog
  (as "lag": not yet read for voevent and the archivers, queued and unsent for email and
  webhooks), failed deliveries or writes, bytes written, and the age of the oldest
  notification or alert not yet written.

Workers are asked concurrently with a short timeout, so a stopped worker shows as down
without delaying the page. :func:`~brokerapp.runtime.metrics.summarise` turns one worker's
status into a row and is pure (tested on plain dicts); the metric names are documented in
:mod:`brokerapp.runtime.metrics`, which also gives every worker its own ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from aiohttp import web

from brokerapp.model.settings import Settings
from brokerapp.runtime.metrics import metrics_text, summarise
from brokerapp.runtime.streams import CUTOUTS_SCHEMA_FILE, describe_streams
from brokerapp.wire.lean import CUTOUTS_SCHEMA

__all__ = [
    "History",
    "metrics_text",
    "render_overview",
    "serve",
    "sparkline",
    "summarise",
    "workers",
]

#: Seconds a worker may take to answer before it is shown as down.
ASK_TIMEOUT = 1.0


def workers(settings: Settings) -> dict[str, tuple[int, str]]:
    """Return worker name -> (web port, page path) for every branch the settings name."""
    return {
        "gateway": (settings.gateway_web_port, "gateway"),
        "ssfilter": (settings.ssfilter_web_port, "ssfilter"),
        "filters": (settings.filters_web_port, settings.filters_branch),
        "watchlist": (settings.watchlist_web_port, "watchlist"),
        "crossmatch": (settings.crossmatch_web_port, "crossmatch"),
        settings.node_name: (settings.node_web_port, settings.node_name),
        "candidates": (settings.candidates_web_port, "candidates"),
        "objects": (settings.objects_web_port, "objects"),
        "mariadb-sink": (settings.mariadb_sink_web_port, "mariadb-sink"),
        "cassandra-sink": (settings.cassandra_sink_web_port, "cassandra-sink"),
        "voevent": (settings.voevent_web_port, "voevent"),
        "email": (settings.email_web_port, "email"),
        "webhooks": (settings.webhooks_web_port, "webhooks"),
        "avro-archive": (settings.avro_archive_web_port, "avro-archive"),
        "parquet-archive": (settings.parquet_archive_web_port, "parquet-archive"),
    }


class History:
    """Lag and p99 latency of every worker over the last ``seconds``, from the overview's polls.

    A ring buffer per worker: :meth:`record` appends one point per worker and poll, and drops
    the points older than ``seconds``. Nothing is kept across restarts of the overview.

    Parameters
    ----------
    seconds : float
        How far back points are kept.
    """

    #: The row fields kept, in the order of the stored tuples after the time.
    FIELDS = ("lag", "p99_ms")

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._points: dict[str, deque[tuple[float, float | None, float | None]]] = {}

    def record(self, rows: list[dict[str, Any]], now: float) -> None:
        """Add one poll: each row's ``lag`` and ``p99_ms`` (None when unknown) at ``now``."""
        for row in rows:
            points = self._points.setdefault(row["worker"], deque())
            points.append((now, row["lag"], row["p99_ms"]))
            while points and points[0][0] < now - self.seconds:
                points.popleft()

    def series(self, worker: str, field: str) -> list[tuple[float, float]]:
        """Return ``(time, value)`` of one worker's ``lag`` or ``p99_ms``, known values only."""
        index = 1 + self.FIELDS.index(field)
        return [
            (point[0], float(value))
            for point in self._points.get(worker, ())
            if (value := point[index]) is not None
        ]


def sparkline(
    points: list[tuple[float, float]],
    start: float,
    end: float,
    unit: str = "",
    width: int = 120,
    height: int = 24,
) -> str:
    """Return an inline SVG line of ``(time, value)`` points between ``start`` and ``end``.

    The vertical scale runs from 0 to the largest value (so a flat line at the bottom is 0);
    the ``<title>`` (shown on hover) gives the last and the largest value. No points: ``-``.

    Parameters
    ----------
    points : list of (float, float)
        Times (s) and values, in time order.
    start, end : float
        The times at the left and right edges.
    unit : str, optional
        Appended to the numbers of the title.
    width, height : int, optional
        Size in pixels.
    """
    if not points:
        return "-"
    span = max(end - start, 1e-9)
    top = max(value for _t, value in points) or 1.0

    def xy(t: float, value: float) -> str:
        x = min(max((t - start) / span, 0.0), 1.0) * (width - 2) + 1
        y = height - 1 - value / top * (height - 2)
        return f"{x:.1f},{y:.1f}"

    coords = " ".join(xy(t, v) for t, v in points)
    last = points[-1][1]
    title = html.escape(f"now {last:g}{unit}, max {max(v for _t, v in points):g}{unit}")
    if len(points) == 1:
        x, y = xy(*points[0]).split(",")
        shape = f'<circle cx="{x}" cy="{y}" r="1.5" fill="#36c"/>'
    else:
        shape = f'<polyline fill="none" stroke="#36c" stroke-width="1.5" points="{coords}"/>'
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img"><title>{title}</title>{shape}</svg>'
    )


def _store_cell(row: Mapping[str, Any]) -> str:
    """Return the store cell: the store's name, with a warning when it is not available."""
    if row["store"] is None:
        return '<td class="store">-</td>'
    store = html.escape(str(row["store"]))
    if row["store_available"] is False:
        error = html.escape(str(row["store_error"] or "no connection"), quote=True)
        return f'<td class="store warning" title="{error}">{store} unavailable</td>'
    return f'<td class="store">{store}</td>'


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return html.escape(str(value))


def render_overview(
    rows: list[dict[str, Any]],
    refresh: int = 5,
    history: History | None = None,
    now: float | None = None,
) -> str:
    """Return the overview page for the rows of :func:`summarise`.

    With a ``history``, two more columns draw each worker's lag and p99 latency over the
    history's window up to ``now`` (default: the current time) as inline SVG lines.
    """
    columns = ["worker", "up", "received", "sent", "rate", "lag", "p50_ms", "p99_ms"]
    columns += ["deadlettered", "failures", "bytes", "oldest_s", "store"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    if history is not None:
        minutes = f"{history.seconds / 60:g} min"
        head += f"<th>lag, last {minutes}</th><th>p99 ms, last {minutes}</th>"
    body = []
    for row in rows:
        cells = [
            f'<td class="worker"><a href="{html.escape(row["url"])}">'
            f"{html.escape(row['worker'])}</a></td>",
            f'<td class="up">{"up" if row["up"] else "down"}</td>',
            *(f'<td class="{c}">{_cell(row[c])}</td>' for c in columns[2:-1]),
            _store_cell(row),
        ]
        if history is not None:
            end = time.time() if now is None else now
            start = end - history.seconds
            for field, unit in (("lag", ""), ("p99_ms", " ms")):
                line = sparkline(history.series(row["worker"], field), start, end, unit)
                cells.append(f'<td class="{field}_trend">{line}</td>')
        body.append(f'<tr id="{html.escape(row["worker"])}">{"".join(cells)}</tr>')
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f'<meta http-equiv="refresh" content="{refresh}"><title>broker overview</title>'
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:.2em .6em}"
        "table{border-collapse:collapse}.warning{background:#fdd;color:#900}</style></head>"
        "<body><h1>Broker overview</h1>"
        f"<table><tr>{head}</tr>{''.join(body)}</table>"
        "<p>rate: messages per second over the last minute; lag: messages not yet read; "
        "p50/p99: latency in ms (gateway: upstream to local; branches: input to output; "
        "sinks: input to the write confirmed, worst table). For the sinks, sent is rows "
        "written; for the notifiers (voevent, email, webhooks) sent is packets, emails or "
        "POSTs written, lag their backlog, oldest_s the age of the oldest unwritten one.</p>"
        '<p><a href="/metrics">Prometheus metrics</a></p></body></html>'
    )


async def collect(settings: Settings) -> list[dict[str, Any]]:
    """Ask every known worker for its status, concurrently, and summarise."""
    host = settings.web_bind

    async def ask(client: httpx.AsyncClient, name: str, port: int, path: str) -> dict[str, Any]:
        url = f"http://{host}:{port}/{path}/"
        try:
            response = await client.get(f"{url}status.json", timeout=ASK_TIMEOUT)
            status = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            status = None
        return summarise(name, url, status)

    async with httpx.AsyncClient() as client:
        return list(
            await asyncio.gather(
                *(ask(client, name, port, path) for name, (port, path) in workers(settings).items())
            )
        )


def serve(settings: Settings, port: int) -> web.Application:
    """Return the overview web application (run it with ``aiohttp.web.run_app``)."""
    history = History(settings.overview_history_seconds)

    async def page(_request: web.Request) -> web.Response:
        rows = await collect(settings)
        return web.Response(text=render_overview(rows, history=history), content_type="text/html")

    async def poll(_application: web.Application) -> AsyncIterator[None]:
        async def forever() -> None:
            while True:
                history.record(await collect(settings), time.time())
                await asyncio.sleep(settings.overview_poll_seconds)

        task = asyncio.create_task(forever())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def status(_request: web.Request) -> web.Response:
        return web.json_response(await collect(settings))

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            text=metrics_text(await collect(settings)), content_type="text/plain", charset="utf-8"
        )

    async def streams(_request: web.Request) -> web.Response:
        return web.json_response(describe_streams(settings))

    async def stream(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            (description,) = describe_streams(settings, name)
        except KeyError:
            return web.json_response({"error": f"no output stream {name!r}"}, status=404)
        return web.json_response(description)

    async def schema_file(_request: web.Request) -> web.Response:
        return web.json_response(CUTOUTS_SCHEMA)

    application = web.Application()
    application.cleanup_ctx.append(poll)
    application.add_routes(
        [
            web.get("/", page),
            web.get("/status.json", status),
            web.get("/metrics", metrics),
            web.get("/streams/", streams),
            web.get(f"/streams/schemas/{CUTOUTS_SCHEMA_FILE}", schema_file),
            web.get("/streams/{name}", stream),
        ]
    )
    return application
