"""Prometheus metrics of a worker, derived from its JSON status; one row per worker.

Every worker's web view serves ``/metrics`` (added with its status pages by
:func:`brokerapp.runtime.branch.add_status_pages`) and the overview serves the same series for
every worker it reaches. Both are built here from the worker's ``status.json``:
:func:`summarise` turns a status into a row (pure, tested on plain dicts) and
:func:`metrics_text` renders rows in the Prometheus text exposition format (version 0.0.4).

Every series has one label, ``worker``: the worker's branch name (the first segment of its
status page path: ``gateway``, ``ssfilter``, ``filters`` or ``filterNNN``, ``watchlist``,
``crossmatch``, the node name, ``candidates``, ``objects``, ``mariadb-sink``,
``cassandra-sink``, ``voevent``, ``email``, ``webhooks``). The names are stable (the alerting
rules in ``deploy/prometheus/rules.yml`` and the dashboard in ``deploy/grafana/`` use them);
:data:`METRICS` lists them:

``broker_up`` (gauge)
    1 when the worker answered (a worker's own page always says 1; the overview says 0 for a
    worker it could not reach).
``broker_received_total`` (counter)
    Alerts (for sinks: messages; for notifiers: annotated alerts) read.
``broker_sent_total`` (counter)
    Messages written to every output (sinks: rows written; notifiers: packets, emails or
    POSTs written; the gateway: alerts mirrored).
``broker_deadlettered_total`` (counter)
    Messages sent to a dead-letter topic.
``broker_lag`` (gauge)
    Messages not yet read (gateway: summed over its upstream partitions; notifiers: their
    backlog).
``broker_latency_ms{quantile="0.5"|"0.99"}`` (gauge)
    Latency over the last minute in milliseconds (gateway: upstream to local append time;
    branches: input to output append time; sinks: input append time to the write confirmed,
    worst table; notifiers: to the notification written).
``broker_store_available`` (gauge, sinks only)
    1 while the sink's database answers.
``broker_failures_total``, ``broker_written_bytes_total`` (counters, notifiers only)
    Failed deliveries; bytes written.
``broker_oldest_unwritten_seconds`` (gauge, notifiers only)
    Age of the oldest notification not yet written.
``process_cpu_seconds_total`` (counter), ``process_resident_memory_bytes`` (gauge)
    The worker process's CPU time (user and system) and resident memory, on a worker's own
    page only (:func:`process_sample`; the usual names of Prometheus clients).

A series whose value is unknown (e.g. the lag before the first fetch) is left out rather than
written as 0.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["CONTENT_TYPE", "METRICS", "metrics_text", "process_sample", "summarise"]

#: Content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: (metric, type, help, row field) of every per-worker series but the latency.
_SERIES = (
    ("broker_up", "gauge", "1 if the worker answered", "up"),
    ("broker_received_total", "counter", "alerts read", "received"),
    ("broker_sent_total", "counter", "messages written", "sent"),
    ("broker_deadlettered_total", "counter", "messages dead-lettered", "deadlettered"),
    ("broker_lag", "gauge", "messages behind (gateway: not yet committed)", "lag"),
    ("broker_store_available", "gauge", "1 if the sink's store is up", "store_available"),
    ("broker_failures_total", "counter", "failed deliveries (notifiers)", "failures"),
    ("broker_written_bytes_total", "counter", "bytes written (notifiers)", "bytes"),
    ("broker_oldest_unwritten_seconds", "gauge", "age of the oldest unwritten", "oldest_s"),
    ("process_cpu_seconds_total", "counter", "CPU time of the process (s)", "cpu_seconds"),
    ("process_resident_memory_bytes", "gauge", "resident memory of the process", "rss_bytes"),
)
_LATENCY = "broker_latency_ms"

#: Name of every metric the workers and the overview export.
METRICS: tuple[str, ...] = (*(series[0] for series in _SERIES), _LATENCY)


def summarise(name: str, url: str, status: Mapping[str, Any] | None) -> dict[str, Any]:
    """Turn one worker's status (None when it did not answer) into an overview row.

    Parameters
    ----------
    name : str
        Worker name.
    url : str
        Its own page.
    status : mapping or None
        Its ``status.json``.

    Returns
    -------
    dict
        ``worker``, ``up``, ``received``, ``sent``, ``rate``, ``lag``, ``p50_ms``,
        ``p99_ms``, ``deadlettered``, ``store``, ``store_available``, ``store_error`` and
        ``url``; numbers are None when unknown, the ``store`` fields None but for sinks.
    """
    row: dict[str, Any] = {
        "worker": name,
        "up": status is not None,
        "received": None,
        "sent": None,
        "rate": None,
        "lag": None,
        "p50_ms": None,
        "p99_ms": None,
        "deadlettered": None,
        "store": None,
        "store_available": None,
        "store_error": None,
        "failures": None,
        "bytes": None,
        "oldest_s": None,
        "url": url,
    }
    if status is None:
        return row
    if "notifier" in status:  # a slow branch: notifications written, not alerts forwarded
        latency = status.get("end_to_end") or {}
        row.update(
            received=status.get("received"),
            sent=status.get("written"),
            lag=status.get("backlog"),
            failures=status.get("failures"),
            bytes=status.get("bytes"),
            oldest_s=status.get("oldest_unsent_age_s"),
            rate=latency.get("rate"),
            p50_ms=latency.get("p50_ms"),
            p99_ms=latency.get("p99_ms"),
            deadlettered=status.get("deadlettered"),
        )
        return row
    if "mirrored" in status:  # the gateway
        latency = status.get("last_minute") or {}
        partitions = status.get("partitions") or []
        lags = [p["lag"] for p in partitions if p.get("lag") is not None]
        row.update(
            received=status.get("mirrored"),
            sent=status.get("mirrored"),
            lag=sum(lags) if lags else None,
        )
    elif isinstance(status.get("tables"), Mapping):  # a database sink
        tables = [t for t in status["tables"].values() if isinstance(t, Mapping)]
        latencies = [t.get("stored_latency") or {} for t in tables]
        latency = _worst(latencies)
        rates = [lat["rate"] for lat in latencies if lat.get("rate") is not None]
        row.update(
            received=status.get("received"),
            sent=sum(t.get("rows_written") or 0 for t in tables),
            lag=status.get("lag"),
            store=status.get("store"),
            store_available=status.get("store_available"),
            store_error=status.get("last_error"),
        )
        latency = {**latency, "rate": sum(rates) if rates else None}
    else:
        latency = status.get("end_to_end") or {}
        sent = status.get("sent") or {}
        row.update(received=status.get("received"), sent=sum(sent.values()), lag=status.get("lag"))
    row.update(
        rate=latency.get("rate"),
        p50_ms=latency.get("p50_ms"),
        p99_ms=latency.get("p99_ms"),
        deadlettered=status.get("deadlettered"),
    )
    return row


def process_sample(statm: Path = Path("/proc/self/statm")) -> dict[str, float]:
    """Return this process's ``cpu_seconds`` (user + system) and ``rss_bytes``.

    ``rss_bytes`` comes from Linux's ``statm`` (resident pages times the page size) and is
    left out where that file cannot be read.

    Parameters
    ----------
    statm : Path, optional
        The ``statm`` file of the process.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sample = {"cpu_seconds": usage.ru_utime + usage.ru_stime}
    try:
        resident_pages = int(statm.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return sample
    sample["rss_bytes"] = float(resident_pages * os.sysconf("SC_PAGE_SIZE"))
    return sample


def _worst(latencies: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """Return the latency summary with the highest p99 (then p50); empty when none has one."""
    known = [lat for lat in latencies if lat.get("p99_ms") is not None]
    if not known:
        return {}
    return max(known, key=lambda lat: (lat["p99_ms"], lat.get("p50_ms") or 0.0))


def _label(value: str) -> str:
    """Return a label value escaped for the text format (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: Any) -> str:
    """Return a sample value: integers (and booleans) exactly, floats in full precision."""
    if isinstance(value, bool | int):
        return str(int(value))
    return repr(float(value))


def metrics_text(rows: list[dict[str, Any]]) -> str:
    """Return the rows of :func:`summarise` in Prometheus text exposition format."""
    lines = []
    for metric, kind, text, field in _SERIES:
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        for row in rows:
            value = row.get(field)
            if value is not None:
                lines.append(f'{metric}{{worker="{_label(row["worker"])}"}} {_number(value)}')
    lines += [f"# HELP {_LATENCY} latency over the last minute (ms)", f"# TYPE {_LATENCY} gauge"]
    for row in rows:
        for quantile, field in (("0.5", "p50_ms"), ("0.99", "p99_ms")):
            if row[field] is not None:
                lines.append(
                    f'{_LATENCY}{{worker="{_label(row["worker"])}",quantile="{quantile}"}} '
                    f"{_number(row[field])}"
                )
    return "\n".join(lines) + "\n"
