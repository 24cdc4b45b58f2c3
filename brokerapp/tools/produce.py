"""Test-stream producer: publish sample or simulated alerts to Kafka, the way a survey does.

Sources are Avro container files (one alert per file, as ZTF publishes and as kept in
``tests/data``) or ``lsst-alert-packet``'s random-alert simulator. Each alert is sent in one of
the three framings of :mod:`brokerapp.wire.codecs`:

``confluent``
    The writer schema is registered under ``<topic>-value`` (TopicNameStrategy) and every
    message is ``0x00 | 4-byte schema ID | Avro body``. ``--schema-id`` asks the registry for
    a chosen ID (Rubin numbers its schemas major*100 + minor); registries without Confluent's
    IMPORT mode (Apicurio) assign their own, and the producer reports the ID it got.
``inline``
    One Avro container file per message, schema in its header (ZTF style).
``schemafile``
    Bare Avro bodies; the reader must know the schema from ``.avsc`` files.

Messages are keyed by object ID, so one object's alerts stay on one partition. ``--count``
larger than the number of sources loops over them; loop ``k`` adds ``k * LOOP_ID_STRIDE`` to
every alert ID so that nothing looks duplicated. Topics are either one ``--topic`` or daily
topics named by the survey's pattern (``ztf_{date}_programid1``, ``lsst-alerts-{date}``) for
the night of each alert (UTC date of its MJD), or of ``--date``.
"""

from __future__ import annotations

import copy
import glob
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from brokerapp.model.profiles import profile_for
from brokerapp.wire.codecs import (
    InlineCodec,
    ParsedSchema,
    SchemaCache,
    SchemaFileCodec,
    frame,
    read_container_file,
)

MODES = ("confluent", "inline", "schemafile")
#: Added to every alert ID once per pass over the sources (sample IDs of one survey differ by
#: far less, so looped IDs never meet the originals within 100,000 passes).
LOOP_ID_STRIDE = 10**12
MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)


@dataclass(frozen=True)
class SourceAlert:
    """One alert to publish: its record and the writer schema it came with."""

    record: dict
    schema: ParsedSchema
    origin: str


def load_files(pattern: str, cache: SchemaCache | None = None) -> list[SourceAlert]:
    """Load alerts from Avro container files.

    Parameters
    ----------
    pattern : str
        A folder (every ``*.avro`` in it), a file, or a glob.
    cache : SchemaCache, optional
        Shared schema cache, so identical writer schemas are parsed once.

    Returns
    -------
    list of SourceAlert
        Every record of every file, in file-name order.
    """
    path = Path(pattern)
    files = sorted(path.glob("*.avro")) if path.is_dir() else sorted(map(Path, glob.glob(pattern)))
    if not files:
        raise FileNotFoundError(f"no Avro files match {pattern!r}")
    cache = cache or SchemaCache()
    alerts = []
    for file in files:
        schema, records = read_container_file(file, cache=cache)
        alerts += [SourceAlert(record, schema, file.name) for record in records]
    return alerts


def simulate(count: int, version: str = "9.0", seed: int = 0) -> list[SourceAlert]:
    """Generate random LSST alerts with ``lsst-alert-packet``'s simulator.

    Parameters
    ----------
    count : int
        Number of distinct alerts to make.
    version : str
        LSST alert schema version.
    seed : int
        Seed of the simulator's random generators.

    Returns
    -------
    list of SourceAlert
        Alerts valid against the official schema of that version.
    """
    import random

    import numpy
    from lsst.alert.packet.simulate import simulate_alert

    random.seed(seed)
    numpy.random.seed(seed)
    codec = SchemaFileCodec.lsst(version)
    # simulate_alert rewrites the schema it is given (unions it picked null for become "null"):
    # hand it a copy each time so the cached schema stays the official one.
    plain = _without_logical_types(codec.schema.raw)
    records = [simulate_alert(copy.deepcopy(plain), keepNull=[]) for _ in range(count)]
    for record in records:
        _fill_timestamps(codec.schema.raw, record)
    return [SourceAlert(r, codec.schema, f"simulated-{version}-{i}") for i, r in enumerate(records)]


#: Timestamps the simulator leaves as random longs are set within a day after this instant.
SIMULATED_TIMESTAMP_BASE = datetime(2026, 1, 1, tzinfo=UTC)
_SECONDS_PER_DAY = 86_400


def _fill_timestamps(schema: Any, record: dict) -> None:
    """Set each timestamp field of a simulated record (in place) to a time near 2026-01-01.

    The simulator draws a random long for them, which no ``datetime`` can hold.
    """
    import random

    for field in schema.get("fields", ()):
        name, kind = field["name"], field["type"]
        value = record.get(name)
        if value is None:
            continue
        branches = kind if isinstance(kind, list) else [kind]
        for branch in branches:
            if not isinstance(branch, dict):
                continue
            if str(branch.get("logicalType", "")).startswith(("timestamp", "local-timestamp")):
                offset = timedelta(seconds=random.uniform(0, _SECONDS_PER_DAY))
                record[name] = SIMULATED_TIMESTAMP_BASE + offset
            elif branch.get("type") == "record" and isinstance(value, dict):
                _fill_timestamps(branch, value)
            elif branch.get("type") == "array" and isinstance(value, list):
                items = branch["items"]
                if isinstance(items, dict) and items.get("type") == "record":
                    for item in value:
                        _fill_timestamps(items, item)


def _without_logical_types(schema: Any) -> Any:
    """Return a copy of a schema with each logical type replaced by its underlying type.

    The simulator draws values by the ``type`` name and fails on an annotated one such as
    ``{"type": "long", "logicalType": "timestamp-micros"}`` (schema 8.0's non-null
    ``diaSource.time_processed``); the value it draws for ``long`` is a valid timestamp for
    the official schema too.
    """
    if isinstance(schema, list):
        return [_without_logical_types(branch) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    if "logicalType" in schema and isinstance(schema.get("type"), str) and "fields" not in schema:
        return schema["type"] if schema["type"] not in ("fixed", "enum") else schema
    out = dict(schema)
    if "fields" in out:
        out["fields"] = [dict(f, type=_without_logical_types(f["type"])) for f in out["fields"]]
    for key in ("items", "values"):
        if key in out:
            out[key] = _without_logical_types(out[key])
    if isinstance(out.get("type"), (dict, list)):
        out["type"] = _without_logical_types(out["type"])
    return out


def night_of(mjd: float | None) -> str:
    """Return the UTC date (YYYYMMDD) of an MJD, or today's date when it is unknown."""
    if mjd is None:
        return datetime.now(UTC).strftime("%Y%m%d")
    return (MJD_EPOCH + timedelta(days=mjd)).strftime("%Y%m%d")


def stream(sources: list[SourceAlert], count: int) -> Iterator[tuple[int, SourceAlert, dict]]:
    """Yield ``count`` alerts, looping over the sources with fresh alert IDs per pass.

    Parameters
    ----------
    sources : list of SourceAlert
        What to send.
    count : int
        How many alerts in all.

    Yields
    ------
    tuple
        ``(pass number, source, record)``; the record of pass 0 is the source's own.
    """
    for n in range(count):
        loop, index = divmod(n, len(sources))
        source = sources[index]
        record = source.record
        if loop:
            profile = profile_for(record)
            record = profile.with_alert_id(record, profile.alert_id(record) + loop * LOOP_ID_STRIDE)
        yield loop, source, record


class Encoder:
    """Turn records into message values in one framing mode.

    Parameters
    ----------
    mode : str
        ``confluent``, ``inline`` or ``schemafile``.
    schema_ids : dict
        For ``confluent``: schema fingerprint -> registry ID (filled by the caller).
    """

    def __init__(self, mode: str, schema_ids: dict[str, int] | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.schema_ids = schema_ids or {}
        self._inline = InlineCodec()

    def encode(self, record: dict, schema: ParsedSchema) -> bytes:
        """Return the message value of one record."""
        if self.mode == "inline":
            return self._inline.encode([record], schema)
        body = SchemaFileCodec(schema).encode(record)
        if self.mode == "schemafile":
            return body
        return frame(self.schema_ids[schema.fingerprint], body)


def topic_for(record: dict, topic: str | None, patterns: dict[str, str], date: str | None) -> str:
    """Return the topic of one alert: the fixed topic, or the survey's daily topic.

    Parameters
    ----------
    record : dict
        The alert.
    topic : str or None
        A fixed topic; wins when given.
    patterns : dict
        Survey name -> daily topic pattern with ``{date}``.
    date : str or None
        YYYYMMDD to use instead of the alert's own night.

    Returns
    -------
    str
        Topic name.
    """
    if topic:
        return topic
    profile = profile_for(record)
    return patterns[profile.survey].format(date=date or night_of(profile.mjd(record)))


@dataclass
class ProduceReport:
    """What a produce run did."""

    count: int = 0
    bytes: int = 0
    seconds: float = 0.0
    topics: frozenset[str] = frozenset()

    def line(self) -> str:
        """Return the final summary line."""
        rate = self.count / self.seconds if self.seconds else 0.0
        return (
            f"produced {self.count} alerts, {self.bytes} bytes in {self.seconds:.2f} s "
            f"({rate:.0f} alerts/s, {self.bytes / 1e6 / max(self.seconds, 1e-9):.1f} MB/s) "
            f"to {', '.join(sorted(self.topics))}"
        )


def produce(
    producer_config: dict,
    messages: Iterator[tuple[str, bytes, bytes]],
    rate: float = 0.0,
    on_sent: Callable[[int], None] | None = None,
) -> ProduceReport:
    """Send ``(topic, key, value)`` messages with confluent-kafka, paced to ``rate`` Hz.

    Parameters
    ----------
    producer_config : dict
        librdkafka configuration (``bootstrap.servers`` at least).
    messages : iterator
        What to send.
    rate : float
        Messages per second; 0 sends as fast as possible.
    on_sent : callable, optional
        Called with the byte size of each message handed to the client (progress bars).

    Returns
    -------
    ProduceReport
        Counts once every message is acknowledged by the brokers.

    Raises
    ------
    RuntimeError
        If any message could not be delivered.
    """
    from confluent_kafka import Producer

    config = {"linger.ms": 5, "acks": "all", "enable.idempotence": True, **producer_config}
    producer = Producer(config)
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    report = ProduceReport()
    topics: set[str] = set()
    start = time.perf_counter()
    for topic, key, value in messages:
        if rate > 0:
            due = start + report.count / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        report.count += 1
        report.bytes += len(value)
        topics.add(topic)
        if on_sent:
            on_sent(len(value))
    remaining = producer.flush(60)
    report.seconds = time.perf_counter() - start
    report.topics = frozenset(topics)
    if remaining or failures:
        raise RuntimeError(
            f"{remaining} message(s) undelivered, {len(failures)} failed: {failures[:3]}"
        )
    return report


#: Column of each stored table whose value keys a republished row (``produce --from-db``).
STORED_KEYS = {
    "candidates": "object_id",
    "objects": "object_id",
    "ss_candidates": "ss_name",
    "annotations": "alert_id",
}


def stored_candidate_update(row: dict) -> dict:
    """Return the CandidateUpdate that republishes one stored ``candidates`` row.

    Parameters
    ----------
    row : dict
        A ``candidates`` row (:mod:`brokerapp.adapters.dbschema`).

    Returns
    -------
    dict
        A CandidateUpdate (:mod:`brokerapp.domain.candidates`) whose ``alert_id`` is the candidate
        ID, ``candidate`` the detection rebuilt from the row (column ``decl`` -> key
        ``dec``), with no previous detections, no solar-system object and
        ``appended_ms`` 0.0.
    """
    detection = {
        "candidate_id": row["candidate_id"],
        "object_id": row["object_id"],
        "survey": row["survey"],
        "mjd": row["mjd"],
        "band": row.get("band"),
        "ra": row.get("ra"),
        "dec": row.get("decl"),
        "mag": row.get("mag"),
        "mag_err": row.get("mag_err"),
        "flux": row.get("flux"),
        "flux_err": row.get("flux_err"),
        "visit_id": row.get("visit_id"),
    }
    return {
        "alert_id": row["candidate_id"],
        "object_id": row["object_id"],
        "survey": row["survey"],
        "candidate": detection,
        "previous": [],
        "ss_name": None,
        "ss_distance_arcsec": None,
        "appended_ms": 0.0,
    }


def stored_messages(table: str, rows: list[dict]) -> Iterator[tuple[bytes, bytes]]:
    """Yield the ``(key, value)`` JSON messages that republish a stored table's rows.

    ``candidates`` rows become CandidateUpdates (:func:`stored_candidate_update`), grouped
    by object and in time order within each object, so that the objects worker rebuilds
    its history from them; the rows of the other tables are sent as they are. Keys are
    :data:`STORED_KEYS`' column of each row.

    Parameters
    ----------
    table : str
        One of :data:`STORED_KEYS`.
    rows : list of dict
        The table's rows (``store.dump`` or ``store.fetch``).

    Yields
    ------
    tuple of bytes
        Message key and value.

    Raises
    ------
    ValueError
        If ``table`` is not one of :data:`STORED_KEYS`.
    """
    if table not in STORED_KEYS:
        raise ValueError(f"cannot republish table {table!r}; use one of {', '.join(STORED_KEYS)}")
    key_column = STORED_KEYS[table]
    if table == "candidates":
        ordered = sorted(rows, key=lambda r: (r["object_id"], r["mjd"], r["candidate_id"]))
        records = ((r[key_column], stored_candidate_update(r)) for r in ordered)
    else:
        records = ((r[key_column], r) for r in rows)
    for key, record in records:
        yield str(key).encode(), json.dumps(record, allow_nan=False).encode()
