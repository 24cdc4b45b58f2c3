"""What every fault scenario shares: names, input alerts, feeding, reading back, verdicts.

Nothing here judges the broker by its own code: expected outputs come from the alerts' raw
fields (read with plain fastavro from ``tests/data``), outputs are read back with
confluent-kafka and decoded with fastavro against the schema the local registry serves,
and database rows are read with plain SQL (root, through MariaDB's unix socket) and CQL.
The broker's code is used only to make the input: survey profiles' ``with_alert_id`` (fresh
alert IDs), ``brokerapp.tools.produce.load_files`` (the samples) and the services manager.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import fastavro
import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics, unread_records
from brokerapp.model.profiles import profile_for
from brokerapp.model.settings import Settings
from brokerapp.tools.produce import SourceAlert, load_files
from brokerapp.tools.services import MARIADB_ACCOUNT_HOST, Services
from tests.integration.workers import REPO, WorkerRun

__all__ = [
    "DATA",
    "ID_BASE",
    "WORKERS",
    "AlertIds",
    "Feeder",
    "Injected",
    "Message",
    "Result",
    "Run",
    "Tally",
    "cassandra_keys",
    "committed_offsets",
    "confluent",
    "container",
    "end_offsets",
    "expected_rows",
    "group_lag",
    "make_alerts",
    "mariadb_keys",
    "say",
    "scan",
    "tally",
    "wait_until",
]

DATA = REPO / "tests" / "data"
#: First alert ID given to the injected alerts (sample IDs are below 10**18; Avro longs reach
#: 9.2 * 10**18), so a looped alert never meets a sample's own or previous detection ID.
ID_BASE = 8 * 10**18
#: Largest message the clusters take (the brokers' ``message.max.bytes``).
MAX_BYTES = 10 * 1024 * 1024
#: Worker name -> (module, status path, web port setting).
WORKERS = {
    "gateway": ("agents.gateway", "gateway", "BROKER_GATEWAY_WEB_PORT"),
    "ssfilter": ("agents.ssfilter", "ssfilter", "BROKER_SSFILTER_WEB_PORT"),
    "candidates": ("agents.candidates", "candidates", "BROKER_CANDIDATES_WEB_PORT"),
    "objects": ("agents.objects", "objects", "BROKER_OBJECTS_WEB_PORT"),
    "crossmatch": ("agents.crossmatch", "crossmatch", "BROKER_CROSSMATCH_WEB_PORT"),
    "watchlist": ("agents.watchlist", "watchlist", "BROKER_WATCHLIST_WEB_PORT"),
    "mariadb-sink": ("agents.mariadb_sink", "mariadb-sink", "BROKER_MARIADB_SINK_WEB_PORT"),
    "cassandra-sink": (
        "agents.cassandra_sink",
        "cassandra-sink",
        "BROKER_CASSANDRA_SINK_WEB_PORT",
    ),
}
#: Tables of the sinks and the column that identifies a row (what the scenarios compare).
TABLE_KEYS = {"candidates": "candidate_id", "ss_candidates": "candidate_id", "objects": "object_id"}

_STARTED = time.monotonic()


def say(message: str) -> None:
    """Print one progress line, with the seconds since the run started."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", flush=True)


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    poll: float = 1.0,
    check: Callable[[], None] | None = None,
) -> Any:
    """Call ``predicate`` until it returns something true; return that.

    Parameters
    ----------
    predicate : callable
        Returns a true value when done.
    timeout : float
        Seconds before giving up.
    what : str
        Said in the error.
    poll : float
        Seconds between calls.
    check : callable, optional
        Called before each try (e.g. to raise when a worker died).

    Raises
    ------
    TimeoutError
        When ``predicate`` stayed false for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


# ----------------------------------------------------------------------------- verdicts


@dataclass
class Result:
    """What one scenario did and found.

    Attributes
    ----------
    scenario : str
        Its letter.
    title : str
        What it injects, in a few words.
    injected : int
        Messages it wrote (good alerts, plus mutated ones in scenario d).
    processed : int
        Distinct injected alerts found at the end of the chain.
    deadlettered : int
        Messages found in the dead-letter topics.
    lost : int
        Injected alerts (or expected rows) missing at the end, plus bad messages found
        nowhere.
    duplicated : int
        Extra copies in the Kafka output topics (expected after kill -9: at least once).
    failures : list of str
        Checks that failed (any makes the verdict FAIL).
    notes : list of str
        Details printed under the table.
    """

    scenario: str
    title: str
    injected: int = 0
    processed: int = 0
    deadlettered: int = 0
    lost: int = 0
    duplicated: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, ok: bool, what: str) -> bool:
        """Record one check: a failure when ``ok`` is false. Returns ``ok``."""
        if ok:
            say(f"  ok: {what}")
        else:
            say(f"  FAILED: {what}")
            self.failures.append(what)
        return ok

    def note(self, text: str) -> None:
        """Record (and print) one detail."""
        say(f"  {text}")
        self.notes.append(text)

    @property
    def verdict(self) -> str:
        """``FAIL`` when anything was lost or a check failed, else ``PASS``."""
        return "FAIL" if self.lost or self.failures else "PASS"


# ----------------------------------------------------------------------------- the input


@dataclass(frozen=True)
class Injected:
    """One alert a scenario injects: a sample with a fresh alert ID, and what it should give.

    Attributes
    ----------
    seq : int
        Position in the scenario's input.
    alert_id : int
        ZTF ``candid`` / LSST ``diaSource.diaSourceId`` (``ID_BASE + seq``).
    survey : str
        ``ztf`` or ``lsst``.
    object_id : str or None
        ZTF ``objectId``, LSST ``diaObject.diaObjectId`` as a string.
    solar : bool
        Whether the survey names a known solar-system object (raw fields, as the tests).
    previous : tuple of int
        IDs of the previous detections it carries (ZTF upper limits excluded).
    record : dict
        The alert.
    schema : ParsedSchema
        Its writer schema.
    """

    seq: int
    alert_id: int
    survey: str
    object_id: str | None
    solar: bool
    previous: tuple[int, ...]
    record: dict
    schema: Any


def _ztf_solar(record: dict) -> bool:
    c = record["candidate"]
    return all(
        c[f] is not None and c[f] != -999.0 and c[f] != "null"
        for f in ("ssdistnr", "ssmagnr", "ssnamenr")
    )


def _lsst_solar(record: dict) -> bool:
    return bool(record["diaSource"].get("ssObjectId")) or record.get("ssSource") is not None


_SOURCES: list[SourceAlert] = []


def sources() -> list[SourceAlert]:
    """Return the ZTF and LSST samples of ``tests/data``, interleaved."""
    if not _SOURCES:
        ztf, lsst = load_files(str(DATA / "ztf")), load_files(str(DATA / "lsst"))
        for n in range(max(len(ztf), len(lsst))):
            _SOURCES.extend(s[n] for s in (ztf, lsst) if n < len(s))
    return _SOURCES


def injected(seq: int, record: dict, schema: Any) -> Injected:
    """Describe one alert from its raw fields (it already carries its alert ID)."""
    if "candidate" in record:
        previous = tuple(
            p["candid"] for p in record.get("prv_candidates") or () if p.get("candid") is not None
        )
        return Injected(
            seq,
            record["candid"],
            "ztf",
            record["objectId"],
            _ztf_solar(record),
            previous,
            record,
            schema,
        )
    obj = record.get("diaObject")
    previous = tuple(p["diaSourceId"] for p in record.get("prvDiaSources") or ())
    return Injected(
        seq,
        record["diaSource"]["diaSourceId"],
        "lsst",
        str(obj["diaObjectId"]) if obj else None,
        _lsst_solar(record),
        previous,
        record,
        schema,
    )


def make_alerts(count: int, first_seq: int = 0) -> list[Injected]:
    """Return ``count`` distinct alerts: the samples looped, alert ID ``ID_BASE + seq``.

    Parameters
    ----------
    count : int
        How many.
    first_seq : int
        Sequence number of the first (so two batches of one scenario never share an ID).
    """
    out = []
    samples = sources()
    for seq in range(first_seq, first_seq + count):
        source = samples[seq % len(samples)]
        record = profile_for(source.record).with_alert_id(source.record, ID_BASE + seq)
        out.append(injected(seq, record, source.schema))
    return out


def expected_rows(alerts: Iterable[Injected]) -> dict[str, set]:
    """Return the keys the sinks' tables must hold for these alerts, from raw fields.

    ``candidates``: each non-solar alert's own and previous detection IDs; ``ss_candidates``:
    each solar-system alert's ID; ``objects``: the objects of the non-solar alerts.
    """
    rows: dict[str, set] = {table: set() for table in TABLE_KEYS}
    for alert in alerts:
        if alert.solar:
            rows["ss_candidates"].add(alert.alert_id)
        else:
            rows["candidates"].add(alert.alert_id)
            rows["candidates"].update(alert.previous)
            rows["objects"].add(alert.object_id)
    return rows


def body(record: dict, schema: Any) -> bytes:
    """Return the bare Avro body of a record (fastavro)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


def confluent(schema_id: int, record: dict, schema: Any) -> bytes:
    """Return a record in Confluent framing: magic byte 0, 4-byte schema ID, Avro body."""
    return struct.pack(">bI", 0, schema_id) + body(record, schema)


def container(record: dict, schema: Any) -> bytes:
    """Return a record as an Avro container file of one record (ZTF's framing)."""
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema.parsed, [record])
    return buffer.getvalue()


def register(url: str, subject: str, schema: dict | str) -> int:
    """Register a schema through the Confluent REST API of a registry; return its ID."""
    text = schema if isinstance(schema, str) else json.dumps(schema)
    response = httpx.post(
        f"{url}/subjects/{subject}/versions",
        json={"schema": text, "schemaType": "AVRO"},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["id"])


# ----------------------------------------------------------------------------- Kafka


@dataclass
class Message:
    """One message to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


class Feeder(threading.Thread):
    """Produce a list of messages at a steady rate, in a thread, recording where each landed.

    Parameters
    ----------
    bootstrap : str
        Cluster to write to.
    messages : list of Message
        What to send, in order.
    rate : float
        Messages per second (0: as fast as possible).
    name : str
        For progress lines.
    """

    def __init__(self, bootstrap: str, messages: list[Message], rate: float = 0.0, name="feed"):
        super().__init__(daemon=True, name=name)
        self.bootstrap = bootstrap
        self.messages = messages
        self.rate = rate
        self.offsets: list[tuple[str, int, int] | None] = [None] * len(messages)
        self.failures: list[str] = []
        self.sent = 0
        self.stopping = threading.Event()

    @property
    def delivered(self) -> int:
        """Messages the brokers have acknowledged."""
        return sum(1 for o in self.offsets if o is not None)

    def run(self) -> None:
        """Send every message (paced), then wait for every acknowledgement."""
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.max.bytes": MAX_BYTES,
                "message.timeout.ms": 600_000,
                "queue.buffering.max.kbytes": 1_048_576,
                "log.connection.close": False,
            }
        )

        def record(n: int) -> Callable[[Any, Any], None]:
            def done(err: Any, msg: Any) -> None:
                if err is not None:
                    self.failures.append(f"message {n}: {err}")
                else:
                    self.offsets[n] = (msg.topic(), msg.partition(), msg.offset())

            return done

        started = time.monotonic()
        for n, message in enumerate(self.messages):
            if self.stopping.is_set():
                break
            if self.rate > 0:
                delay = started + n / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            while True:
                try:
                    producer.produce(
                        message.topic,
                        message.value,
                        key=message.key,
                        headers=message.headers,
                        on_delivery=record(n),
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
            self.sent += 1
        remaining = producer.flush(600)
        if remaining:
            self.failures.append(f"{remaining} message(s) never acknowledged")

    def finish(self, timeout: float = 900) -> None:
        """Wait for the thread; raise if any message was not delivered."""
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError(f"{self.name}: still sending after {timeout:.0f} s")
        if self.failures:
            raise RuntimeError(f"{self.name}: {len(self.failures)} failed: {self.failures[:3]}")


def _consumer(bootstrap: str, group: str | None = None) -> Consumer:
    """Return a reader of one cluster that sees committed messages only.

    ``isolation.level=read_committed``: messages of aborted transactions are skipped and a
    partition ends at its last stable offset, as a downstream consumer sees it (messages
    written outside transactions are all read either way).
    """
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"faults-reader-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 2 * MAX_BYTES,
            "max.partition.fetch.bytes": MAX_BYTES,
            "receive.message.max.bytes": 3 * MAX_BYTES,
            "log.connection.close": False,
        }
    )


def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """Return (low, high) watermarks of every partition of the topics that exist."""
    consumer = _consumer(bootstrap)
    try:
        out = {}
        metadata = consumer.list_topics(timeout=30).topics
        for topic in topics:
            if topic not in metadata:
                continue
            for partition in metadata[topic].partitions:
                tp = TopicPartition(topic, partition)
                out[(topic, partition)] = consumer.get_watermark_offsets(tp, timeout=30)
        return out
    finally:
        consumer.close()


def committed_offsets(
    bootstrap: str, group: str, topics: Iterable[str]
) -> dict[tuple[str, int], int]:
    """Return a consumer group's committed offsets (``Consumer.committed``; -1: none)."""
    ends = end_offsets(bootstrap, topics)
    consumer = _consumer(bootstrap, group)
    try:
        tps = [TopicPartition(t, p) for t, p in ends]
        done = consumer.committed(tps, timeout=30) if tps else []
        return {(tp.topic, tp.partition): tp.offset for tp in done}
    finally:
        consumer.close()


def group_lag(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    """Return the records of the topics the group has not committed yet (markers aside)."""
    topics = list(topics)
    ends = end_offsets(bootstrap, topics)
    done = committed_offsets(bootstrap, group, topics)
    gaps = {}
    for tp, (low, high) in ends.items():
        offset = done.get(tp, -1)
        gaps[tp] = (max(offset, low) if offset >= 0 else low, high)
    # Transaction markers take offsets no reader is given: count the records themselves.
    return sum(unread_records(bootstrap, gaps).values())


def scan(
    bootstrap: str,
    topic: str,
    handle: Callable[[Any], None],
    upto: dict[tuple[str, int], int] | None = None,
    idle_limit: float = 120.0,
) -> int:
    """Call ``handle(message)`` for every message of a topic, up to its current end.

    Parameters
    ----------
    bootstrap : str
        The cluster.
    topic : str
        The topic (a missing topic has no messages).
    handle : callable
        Called with each confluent-kafka message.
    upto : dict, optional
        ``(topic, partition) -> offset``: stop each partition before that offset instead of
        at its end.
    idle_limit : float
        Seconds without a message before giving up.

    Returns
    -------
    int
        Messages handled.
    """
    ends = end_offsets(bootstrap, [topic])
    stops = {p: (upto or {}).get((t, p), high) for (t, p), (_low, high) in ends.items()}
    todo = {p for (t, p), (low, _high) in ends.items() if stops[p] > low}
    if not todo:
        return 0
    consumer = _consumer(bootstrap)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(todo)])
    count, idle_since = 0, time.monotonic()
    try:
        while todo:
            msg = consumer.poll(1.0)
            if msg is None:
                if time.monotonic() - idle_since > idle_limit:
                    raise TimeoutError(f"{topic}: nothing read for {idle_limit:.0f} s")
                continue
            idle_since = time.monotonic()
            partition = msg.partition()
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    todo.discard(partition)
                    continue
                raise RuntimeError(f"{topic}: {msg.error()}")
            if partition not in todo:
                continue
            if msg.offset() >= stops[partition]:
                todo.discard(partition)
                continue
            handle(msg)
            count += 1
            if msg.offset() >= stops[partition] - 1:
                todo.discard(partition)
    finally:
        consumer.close()
    return count


class AlertIds:
    """Read the alert ID of a Confluent-framed alert, with the schema the registry serves.

    Parameters
    ----------
    registry_url : str
        Confluent REST API of the local registry.
    """

    def __init__(self, registry_url: str):
        self.url = registry_url
        self.schemas: dict[int, Any] = {}
        self.http = httpx.Client(timeout=30)

    def schema(self, schema_id: int) -> Any:
        """Return the parsed schema of an ID (None if the registry does not know it)."""
        if schema_id not in self.schemas:
            response = self.http.get(f"{self.url}/schemas/ids/{schema_id}")
            if response.status_code == 404:
                self.schemas[schema_id] = None
            else:
                response.raise_for_status()
                text = response.json()["schema"]
                self.schemas[schema_id] = fastavro.parse_schema(json.loads(text))
        return self.schemas[schema_id]

    def record(self, value: bytes | None) -> dict | None:
        """Decode one message value; None if it is not a decodable Confluent-framed alert."""
        if not value or len(value) < 5 or value[0] != 0:
            return None
        parsed = self.schema(int.from_bytes(value[1:5], "big"))
        if parsed is None:
            return None
        buffer = io.BytesIO(value)
        buffer.seek(5)
        try:
            record = fastavro.schemaless_reader(buffer, parsed, None)
        except (EOFError, ValueError, IndexError, TypeError, OverflowError):
            return None  # the caller counts it as undecodable
        return record if buffer.tell() == len(value) else None

    def alert_id(self, value: bytes | None) -> int | None:
        """Return the alert ID of one message value (None if it does not decode)."""
        record = self.record(value)
        if record is None:
            return None
        if "candid" in record:
            return record["candid"]
        return record["diaSource"]["diaSourceId"]


@dataclass
class Tally:
    """The copies of each ID in one topic, read in full (committed messages only).

    Attributes
    ----------
    topic : str
        The topic.
    copies : Counter
        ID -> messages carrying it.
    by_partition : dict of int to Counter
        Partition -> (ID -> messages carrying it in that partition).
    undecodable : int
        Messages whose ID could not be read.
    """

    topic: str
    copies: Counter = field(default_factory=Counter)
    by_partition: dict[int, Counter] = field(default_factory=dict)
    undecodable: int = 0

    @property
    def messages(self) -> int:
        """Messages read (the undecodable included)."""
        return sum(self.copies.values()) + self.undecodable

    @property
    def duplicates(self) -> int:
        """Extra copies: messages with an ID already counted once."""
        return sum(n - 1 for n in self.copies.values() if n > 1)

    def partition_duplicates(self) -> dict[int, int]:
        """Partition -> extra copies within that partition."""
        return {
            p: sum(n - 1 for n in ids.values() if n > 1) for p, ids in self.by_partition.items()
        }


def tally(bootstrap: str, topic: str, id_of: Callable[[Any], Any]) -> Tally:
    """Read a topic in full and count the copies of ``id_of(message)`` (None: undecodable)."""
    out = Tally(topic)

    def handle(msg: Any) -> None:
        key = id_of(msg)
        if key is None:
            out.undecodable += 1
            return
        out.copies[key] += 1
        out.by_partition.setdefault(msg.partition(), Counter())[key] += 1

    scan(bootstrap, topic, handle)
    return out


def tally_alerts(bootstrap: str, topic: str, ids: AlertIds) -> tuple[Counter, int]:
    """Count the copies of each alert ID in a topic of Confluent-framed alerts.

    Returns
    -------
    tuple of (Counter, int)
        Alert ID -> copies, and the number of messages that did not decode.
    """
    counted = tally(bootstrap, topic, lambda msg: ids.alert_id(msg.value()))
    return counted.copies, counted.undecodable


def tally_json(bootstrap: str, topic: str, key: Callable[[dict], Any]) -> Counter:
    """Count the copies of ``key(record)`` over a topic of JSON records."""
    return tally(bootstrap, topic, lambda msg: key(json.loads(msg.value()))).copies


def headers_of(msg: Any) -> dict[str, bytes]:
    """Return a message's headers as a dict (the last of repeated names)."""
    return dict(msg.headers() or [])


# ----------------------------------------------------------------------------- databases


def mariadb_root(svc: Services, database: str | None = None) -> Any:
    """Connect as MariaDB's root through the unix socket (no password)."""
    import pymysql

    return pymysql.connect(
        unix_socket=str(svc.mariadb_socket), user="root", password="", database=database
    )


def mariadb_keys(svc: Services, database: str) -> dict[str, set]:
    """Return the key column values of every sink table in a MariaDB database."""
    conn = mariadb_root(svc, database)
    try:
        out = {}
        with conn.cursor() as cur:
            for table, column in TABLE_KEYS.items():
                cur.execute(f"SELECT `{column}` FROM `{table}`")
                out[table] = {row[0] for row in cur.fetchall()}
        return out
    finally:
        conn.close()


def _cassandra_session(settings: Settings) -> tuple[Any, Any]:
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    from brokerapp.adapters.stores.cassandra import cassandra_cluster_options

    points = settings.cassandra_contact_points
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy(points), request_timeout=120
    )
    cluster = Cluster(
        **cassandra_cluster_options(settings),
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=30,
        control_connection_timeout=30,
    )
    return cluster, cluster.connect()


def cassandra_keys(settings: Settings, keyspace: str) -> dict[str, set]:
    """Return the key column values of every sink table in a Cassandra keyspace."""
    cluster, session = _cassandra_session(settings)
    try:
        out = {}
        for table, column in TABLE_KEYS.items():
            rows = session.execute(f"SELECT {column} FROM {keyspace}.{table}")
            out[table] = {getattr(row, column) for row in rows}
        return out
    finally:
        cluster.shutdown()


def object_rows(svc: Services, database: str, keyspace: str) -> dict[str, dict]:
    """Return ``object_id -> (n_detections, latest_candidate_id)`` from each store."""
    conn = mariadb_root(svc, database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT object_id, n_detections, latest_candidate_id FROM objects")
            mariadb = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
    finally:
        conn.close()
    cluster, session = _cassandra_session(svc.settings)
    try:
        rows = session.execute(
            f"SELECT object_id, n_detections, latest_candidate_id FROM {keyspace}.objects"
        )
        cassandra = {r.object_id: (r.n_detections, r.latest_candidate_id) for r in rows}
    finally:
        cluster.shutdown()
    return {"mariadb": mariadb, "cassandra": cassandra}


def expected_objects(alerts: Iterable[Injected], history_length: int) -> dict[str, tuple]:
    """Return ``object_id -> (n_detections, latest_candidate_id)`` the objects table must hold.

    From raw fields: an object's detections are its non-solar alerts' own and previous
    detections, distinct by ID; the history keeps the latest ``history_length`` by (MJD, ID),
    so the count is capped there and the latest is the largest (MJD, ID), whatever the order
    the alerts were processed in (or reprocessed, after a crash).
    """
    detections: dict[str, dict[int, float]] = {}
    for alert in alerts:
        if alert.solar:
            continue
        record = alert.record
        if alert.survey == "ztf":
            own = [(record["candid"], record["candidate"]["jd"])]
            prv = [(p["candid"], p["jd"]) for p in record.get("prv_candidates") or ()]
            points = [(i, jd - 2400000.5) for i, jd in own + prv if i is not None and jd]
        else:
            sources = [record["diaSource"], *(record.get("prvDiaSources") or ())]
            points = [
                (d["diaSourceId"], d.get("midpointMjdTai", d.get("midPointTai"))) for d in sources
            ]
        mine = detections.setdefault(alert.object_id, {})
        for candidate_id, mjd in points:
            if mjd is not None and math.isfinite(mjd):
                mine[candidate_id] = mjd
    return {
        obj: (
            min(len(points), history_length),
            max(points.items(), key=lambda item: (item[1], item[0]))[0],
        )
        for obj, points in detections.items()
    }


def compare_rows(store: str, got: dict[str, set], want: dict[str, set], result: Result) -> int:
    """Compare a store's keys with the expected ones; record and return the rows missing."""
    missing_total = 0
    for table, expected in want.items():
        have = got.get(table, set())
        missing, extra = expected - have, have - expected
        missing_total += len(missing)
        result.check(
            not missing and not extra,
            f"{store}.{table}: {len(have)} rows, expected {len(expected)}"
            + (f", {len(missing)} missing (e.g. {sorted(missing)[:3]})" if missing else "")
            + (f", {len(extra)} unexpected (e.g. {sorted(extra)[:3]})" if extra else ""),
        )
    return missing_total


# ----------------------------------------------------------------------------- one run


class Run:
    """One scenario's names, folder, workers, database and clean-up.

    Every name starts with a unique prefix (``f<letter><8 hex>``): app ids (so consumer
    groups and changelog topics), every topic the workers read or write, the upstream daily
    topics, the MariaDB database ``<prefix>_db`` and the Cassandra keyspace ``<prefix>``.

    Parameters
    ----------
    letter : str
        The scenario.
    settings : Settings
        The services' settings (addresses).
    keep : bool
        Keep topics, database, keyspace and logs afterwards.
    """

    def __init__(self, letter: str, settings: Settings, keep: bool = False):
        self.settings = settings
        self.svc = Services(settings)
        self.keep = keep
        self.prefix = p = f"f{letter}{uuid.uuid4().hex[:8]}"
        self.workdir = settings.data_dir / "faults" / p
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bootstrap = settings.kafka_bootstrap
        self.date = "20260101"
        self.topics = {
            "alerts": f"{p}-alerts",
            "gateway-deadletter": f"{p}-deadletter",
            "solar": f"{p}-solar",
            "nonsolar": f"{p}-nonsolar",
            "control": f"{p}-control",
            "annotations": f"{p}-annotations",
            "annotated": f"{p}-annotated",
            "candidates": f"{p}-candidates",
            "ss_candidates": f"{p}-ss-candidates",
            "cou": f"{p}-cou",
            "objects": f"{p}-objects",
        }
        self.upstream = {
            "ztf": f"ztf_{self.date}_programid1_{p}",
            "lsst": f"lsst-alerts-{p}-{self.date}",
        }
        self.database = f"{p}_db"
        self.keyspace = p
        t = self.topics
        self.env = {
            "BROKER_SOLAR_TOPIC": t["solar"],
            "BROKER_NONSOLAR_TOPIC": t["nonsolar"],
            "BROKER_WATCHLIST_SOURCE_TOPIC": t["nonsolar"],
            "BROKER_SS_WATCHLIST_SOURCE_TOPIC": t["solar"],
            "BROKER_WATCHLIST_CONTROL_TOPIC": t["control"],
            "BROKER_ANNOTATIONS_TOPIC": t["annotations"],
            "BROKER_ANNOTATED_ALERTS_TOPIC": t["annotated"],
            "BROKER_CANDIDATES_TOPIC": t["candidates"],
            "BROKER_SS_CANDIDATES_TOPIC": t["ss_candidates"],
            "BROKER_CANDIDATE_OBJECT_UPDATES_TOPIC": t["cou"],
            "BROKER_OBJECTS_TOPIC": t["objects"],
            "BROKER_MARIADB_DATABASE": self.database,
            "BROKER_CASSANDRA_KEYSPACE": self.keyspace,
            "BROKER_CROSSMATCH_CHAIN": str(self.workdir / "crossmatch.toml"),
            "BROKER_ALERTS_PARTITIONS": "4",
            # what the verdicts assume (faults.verify.judge_duplicates), the workers run with
            "BROKER_BRANCH_TRANSACTIONS": str(settings.branch_transactions).lower(),
            "BROKER_GATEWAY_BATCH": str(settings.gateway_batch),
        }
        self.workers: dict[str, WorkerRun] = {}
        self.upstream_used = False
        self.databases_made = False
        self.local_ids: dict[str, int] = {}

    # -- names
    def deadletter(self, branch: str) -> str:
        """Dead-letter topic of a branch worker (the gateway's is ``topics['gateway-...']``)."""
        return f"{self.prefix}-{branch}-deadletter"

    def group(self, name: str) -> str:
        """Consumer group of a worker (the gateway's is on the upstream cluster)."""
        if name == "gateway":  # prefixed as the upstream requires (tests/integration/workers)
            return f"brokerapp-{self.prefix}-gateway"
        return f"{self.prefix}-{name}"

    # -- workers
    def worker(self, name: str, **env: str) -> WorkerRun:
        """Declare one worker of this run (not started)."""
        module, path, port_setting = WORKERS[name]
        run = WorkerRun(self.workdir / path, module=module, path=path, port_setting=port_setting)
        run.prefix = self.prefix
        run.workdir.mkdir(parents=True, exist_ok=True)
        run.env_overrides.update(self.env)
        run.env_overrides["BROKER_KAFKA_BOOTSTRAP"] = self.bootstrap
        run.env_overrides.update(env)
        self.workers[name] = run
        return run

    def start(self, *names: str) -> None:
        """Start workers (each waits until its status page answers)."""
        for name in names:
            self.workers[name].start()
            say(f"  {name} started (pid {self.workers[name].process.pid})")

    def alive(self) -> None:
        """Raise if a started worker has exited."""
        for name, run in self.workers.items():
            if run.process is not None and run.process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited ({run.process.returncode}); log: {run.workdir}\n"
                    + run.log()[-3000:]
                )

    def statuses(self) -> dict[str, dict | None]:
        """Return each started worker's status (None when it does not answer)."""
        out: dict[str, dict | None] = {}
        for name, run in self.workers.items():
            try:
                out[name] = run.status() if run.process is not None else None
            except OSError:
                out[name] = None
        return out

    def stop_workers(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after 60 s)."""
        for run in self.workers.values():
            try:
                run.stop()
            except Exception as exc:  # noqa: BLE001 - a stop failure must not hide the result
                say(f"  stopping {run.path}: {exc!r}")

    # -- input
    def create_upstream(self, partitions: int = 4) -> None:
        """Create this run's upstream daily topics."""
        self.upstream_used = True
        ensure_topics(
            self.settings.upstream_feed_bootstrap,
            list(self.upstream.values()),
            partitions,
            {"message.timestamp.type": "LogAppendTime", "max.message.bytes": str(MAX_BYTES)},
        )

    def upstream_messages(self, alerts: list[Injected], lsst_id: int) -> list[Message]:
        """ZTF alerts as containers, LSST alerts framed with an upstream ID; no keys."""
        out = []
        for alert in alerts:
            if alert.survey == "ztf":
                value = container(alert.record, alert.schema)
            else:
                value = confluent(lsst_id, alert.record, alert.schema)
            out.append(Message(self.upstream[alert.survey], None, value))
        return out

    def register_upstream_lsst(self, schema: Any = None) -> int:
        """Register the LSST samples' schema upstream as Rubin does; return its ID."""
        schema = schema or next(s.schema.raw for s in sources() if "diaSource" in s.record)
        return register(
            self.settings.upstream_registry_url, f"{self.upstream['lsst']}-value", schema
        )

    def local_messages(self, alerts: list[Injected], topic: str | None = None) -> list[Message]:
        """Alerts as the gateway writes them: local schema IDs, keyed by object.

        Each carries a ``fault-seq`` header (its sequence number). ``topic`` defaults to the
        stream ssfilter would send it to (solar or non-solar, from its raw fields).
        """
        out = []
        for alert in alerts:
            fingerprint = alert.schema.fingerprint
            if fingerprint not in self.local_ids:
                self.local_ids[fingerprint] = register(
                    self.settings.registry_url,
                    f"{self.topics['alerts']}-value",
                    alert.schema.raw,
                )
            key = (alert.object_id or str(alert.alert_id)).encode()
            value = confluent(self.local_ids[fingerprint], alert.record, alert.schema)
            target = topic or self.topics["solar" if alert.solar else "nonsolar"]
            out.append(Message(target, key, value, [("fault-seq", str(alert.seq).encode())]))
        return out

    # -- databases
    def create_databases(self) -> None:
        """Create the MariaDB database (root, unix socket) and migrate both stores."""
        conn = mariadb_root(self.svc)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{self.database}`")
                cur.execute(
                    f"GRANT ALL PRIVILEGES ON `{self.database}`.* TO %s@%s",
                    (self.settings.mariadb_user, MARIADB_ACCOUNT_HOST),
                )
            conn.commit()
        finally:
            conn.close()
        self.databases_made = True
        env = {**os.environ, **self.env}
        done = subprocess.run(
            [sys.executable, "-m", "brokerapp", "db", "migrate"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"db migrate failed: {done.stdout}{done.stderr}")

    def write_crossmatch_chain(self, alerts: list[Injected]) -> None:
        """Write a catalogue (a source 0.5 arcsec north of each sample) and its chain file."""
        rows, seen = ["id,ra,dec"], set()
        for alert in alerts:
            ra, dec = profile_for(alert.record).ra_dec(alert.record)
            if alert.object_id in seen or ra is None:
                continue
            seen.add(alert.object_id)
            rows.append(f"{len(rows)},{ra!r},{dec + 0.5 / 3600!r}")
        catalogue = self.workdir / "catalogue.csv"
        catalogue.write_text("\n".join(rows) + "\n")
        (self.workdir / "crossmatch.toml").write_text(
            "[[processor]]\nuse = 'catalogue_match'\n"
            f"path = '{catalogue}'\nid_column = 'id'\nradius_arcsec = 2.0\nk = 1\n"
            "[[processor]]\nuse = 'emit_annotations'\nstream = 'annotations'\n"
        )

    # -- clean-up
    def cleanup(self, ok: bool) -> None:
        """Stop the workers; unless ``keep``, delete topics, database, keyspace (and logs if ok)."""
        self.stop_workers()
        if self.keep:
            say(f"  kept: topics and data under prefix {self.prefix}, logs in {self.workdir}")
            return
        try:
            self.delete_topics(self.bootstrap)
            if self.upstream_used:
                self.delete_topics(self.settings.upstream_feed_bootstrap)
        except Exception as exc:  # noqa: BLE001 - clean-up is best effort
            say(f"  deleting topics of {self.prefix}: {exc!r}")
        if self.databases_made:
            try:
                conn = mariadb_root(self.svc)
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
                conn.close()
                cluster, session = _cassandra_session(self.settings)
                try:
                    session.execute(f"DROP KEYSPACE IF EXISTS {self.keyspace}", timeout=120)
                finally:
                    cluster.shutdown()
            except Exception as exc:  # noqa: BLE001
                say(f"  dropping database/keyspace {self.prefix}: {exc!r}")
        if ok:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            say(f"  worker logs kept in {self.workdir}")

    def delete_topics(self, bootstrap: str) -> None:
        """Delete every topic of this run's prefix on a cluster."""
        admin = AdminClient({"bootstrap.servers": bootstrap, "log.connection.close": False})
        names = [t for t in admin.list_topics(timeout=30).topics if t.startswith(self.prefix)]
        if names:
            delete_topics(bootstrap, names)
