"""An in-memory harness for the branch agents: real stream code, no servers.

A branch test builds its app from settings with the ``memory://`` table store, runs one agent
in Faust's ``agent.test_context()`` on a list of messages and checks what the agent sent, per
topic: the pattern of bytewax's ``TestingSource`` / ``TestingSink``, with Faust's own agent
and table code in between. Nothing here talks to Kafka, a registry or a database:

- :class:`CapturingProducer` is the app's producer. Every message an agent sends (outputs,
  dead letters, table changelogs) is recorded as a :class:`Sent` under its topic, and every
  topic the worker would create is recorded with its configuration; its delivery reports
  succeed at once. Without it a send reaches for a broker.
- :class:`SchemaRegistryStandIn` is a dict-backed schema fetcher (``get_schema(id)``, the
  one call the branches make), installed in place of the registry client by the
  ``registry`` fixture of ``conftest.py``. A registry is a server: the integration tests
  cover the real one (``tests/integration/test_registry.py``, ``test_branches.py``).
- :class:`MemoryStore` has the methods a database sink calls (``upsert``, ``close``): the
  sink tests install it in place of MariaDB and Cassandra, which are servers too.
- :class:`AgentFeed` puts messages into a running test context and :meth:`AgentFeed.drain`
  waits until the agent has finished with all of them (it is back waiting for input).

Input messages are real alerts: :func:`samples` reads ``tests/data`` with plain fastavro
(``Sample``: the container's writer schema text and the decoded record) and
:meth:`SchemaRegistryStandIn.frame` writes one in the Confluent wire format the gateway
writes to ``alerts`` (magic byte 0, big-endian 4-byte schema ID, bare Avro body).

Expected values in the tests come from these raw records or are written by hand; the helpers
at the end (:func:`ztf_solar`, :func:`raw_detection` ...) read raw fields only and import
nothing from the code under test.

A branch's test, whole (``settings`` and ``registry`` are fixtures of ``conftest.py``)::

    async def test_split(settings, registry):
        app = build(settings)                 # agents.<branch>.build, tables in memory
        sent = prepare(app)                   # finalize, resume, capture sends
        async with run_agent(app, "process") as feed:
            for sample in samples("ztf"):
                await feed.put(registry.frame_sample(sample), key=object_key(sample))
        assert len(sent.on("alerts-solar")) == 11   # leaving the block drained the agent

Two agents joined by a topic run one after the other: feed the second what the first sent
(:meth:`AgentFeed.put_sent`). ``pytest tests/agents`` runs the whole tier in seconds.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import struct
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import fastavro
import faust
from aiokafka import TopicPartition
from faust.transport.producer import Producer
from faust.types import TP, RecordMetadata

__all__ = [
    "DATA",
    "AgentFeed",
    "BatchFeed",
    "CapturingProducer",
    "MemoryStore",
    "Sample",
    "SchemaRegistryStandIn",
    "Sent",
    "close_to",
    "ROW_KEYS",
    "header",
    "is_solar",
    "lsst_solar",
    "object_key",
    "prepare",
    "raw_candidate_update",
    "raw_detection",
    "run_agent",
    "samples",
    "ztf_solar",
]

DATA = Path(__file__).parents[1] / "data"
"""The sample alerts (``tests/data``, provenance in ``PROVENANCE.md``)."""
DRAIN_TIMEOUT_S = 10.0
"""Longest wait for an agent to finish its input (seconds): a hang fails the test instead."""
MJD_OFFSET = 2400000.5
"""JD minus MJD."""
AB_ZERO_POINT_NJY = 31.4
"""AB magnitude of a 1 nJy source."""
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}
"""ZTF ``fid`` to band."""


# ------------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class Sample:
    """One sample alert file, read with plain fastavro.

    Attributes
    ----------
    path : Path
        The Avro container file.
    schema : str
        The writer schema's JSON text, as embedded in the container (what the gateway
        registers in the local registry).
    record : dict
        The decoded alert.
    """

    path: Path
    schema: str
    record: dict = field(repr=False)

    @property
    def survey(self) -> str:
        """``"ztf"`` or ``"lsst"``, from the folder the file is in."""
        return self.path.parent.name


@cache
def _read(survey: str) -> tuple[Sample, ...]:
    out = []
    for path in sorted((DATA / survey).glob("*.avro")):
        reader = fastavro.reader(io.BytesIO(path.read_bytes()))
        record = next(reader)
        schema = reader.metadata["avro.schema"]
        out.append(Sample(path, schema if isinstance(schema, str) else schema.decode(), record))
    return tuple(out)


def samples(survey: str) -> list[Sample]:
    """Return the sample alerts of ``survey`` (``ztf`` or ``lsst``), sorted by file name.

    Each record is a fresh deep copy, so a test may edit it.
    """
    return [Sample(s.path, s.schema, _deep_copy(s.record)) for s in _read(survey)]


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


# ----------------------------------------------------------------------- registry stand-in


class SchemaRegistryStandIn:
    """A dict-backed schema fetcher standing in for the local registry in memory tests.

    IDs are given out from ``first_id`` on, one per distinct schema text, as a registry
    does. ``get_schema`` of an unknown ID raises ``KeyError`` (a registry's 404).

    Parameters
    ----------
    first_id : int
        First ID given out.
    """

    def __init__(self, first_id: int = 101):
        self.schemas: dict[int, str] = {}
        self._ids: dict[str, int] = {}
        self._next = first_id
        self.fetches: list[int] = []

    def register(self, schema: str) -> int:
        """Return the ID of ``schema`` (JSON text), giving it the next one if it is new."""
        if schema not in self._ids:
            self._ids[schema] = self._next
            self.schemas[self._next] = schema
            self._next += 1
        return self._ids[schema]

    async def get_schema(self, schema_id: int) -> str:
        """Return the JSON text of schema ``schema_id`` (the registry client's one call)."""
        self.fetches.append(schema_id)
        return self.schemas[schema_id]

    async def close(self) -> None:
        """Nothing to close."""

    def frame(self, schema: str, record: Mapping[str, Any]) -> bytes:
        """Encode ``record`` in the Confluent wire format under the ID of ``schema``."""
        body = io.BytesIO()
        fastavro.schemaless_writer(body, fastavro.parse_schema(json.loads(schema)), record)
        return struct.pack(">bI", 0, self.register(schema)) + body.getvalue()

    def frame_sample(self, sample: Sample) -> bytes:
        """Encode one sample alert in the Confluent wire format."""
        return self.frame(sample.schema, sample.record)


# -------------------------------------------------------------------------- capturing sends


class Sent(NamedTuple):
    """One message an agent sent."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None
    timestamp: float
    """Seconds: the time it was sent, as a broker's ``CreateTime`` (or the one given)."""

    def json(self) -> Any:
        """The value decoded as JSON."""
        return json.loads(self.value or b"")


class CapturingProducer(Producer):
    """A Faust producer that records what is sent instead of sending it to Kafka.

    Install it with :func:`prepare`. ``sent`` maps topic name to the :class:`Sent` messages
    in send order; ``created`` maps the name of each topic the worker declared to the
    configuration it would create it with.
    """

    def __init__(self, transport: Any, **kwargs: Any):
        super().__init__(transport, **kwargs)
        self.sent: dict[str, list[Sent]] = defaultdict(list)
        self.created: dict[str, dict[str, Any]] = {}
        self._offsets: dict[str, int] = defaultdict(int)

    def on(self, topic: str) -> list[Sent]:
        """Return the messages sent to ``topic`` (an empty list if none)."""
        return list(self.sent.get(topic, ()))

    def topics(self) -> set[str]:
        """Return the names of the topics anything was sent to."""
        return {name for name, messages in self.sent.items() if messages}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> asyncio.Future:
        """Record one message; return its delivery report, already successful."""
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
        now = time.time() if timestamp is None else timestamp
        self.sent[topic].append(Sent(topic, key, value, pairs, partition, now))
        offset = self._offsets[topic]
        self._offsets[topic] += 1
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        part = partition or 0
        done.set_result(RecordMetadata(topic, part, TP(topic, part), offset, now * 1000.0, 0))
        return done

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> RecordMetadata:
        """Record one message and return its delivery report."""
        return await (await self.send(*args, **kwargs))

    async def create_topic(self, topic: str, partitions: int, replication: int, **kwargs: Any):
        """Record the topic the worker would create, with its partitions and configuration."""
        self.created[topic] = {
            "partitions": partitions,
            "config": dict(kwargs.get("config") or {}),
        }

    async def flush(self) -> None:
        """Flush the buffer Faust's ``send_soon`` (table changelogs) writes to."""
        await self.buffer.flush()

    def key_partition(self, topic: str, key: bytes) -> TP:
        """Partition 0 (there is no cluster to ask for the partition count)."""
        return TP(topic, 0)

    def supports_headers(self) -> bool:
        """Headers are recorded."""
        return True


def prepare(app: faust.App) -> CapturingProducer:
    """Make ``app`` runnable in memory: finalize it, resume flow control, capture sends.

    Parameters
    ----------
    app : faust.App
        An app built with ``store="memory://"``.

    Returns
    -------
    CapturingProducer
        The app's producer now.
    """
    assert str(app.conf.store) == "memory:", f"not an in-memory app: {app.conf.store}"
    app.finalize()
    app.flow_control.resume()
    producer = CapturingProducer(app.transport)
    app.producer = producer
    return producer


# ---------------------------------------------------------------------------- store stand-in


ROW_KEYS = {
    "candidates": ("candidate_id",),
    "ss_candidates": ("candidate_id",),
    "annotations": ("alert_id", "source", "entry"),
    "objects": ("object_id",),
}
"""What identifies a row of each table the sinks fill (written by hand from the schema docs)."""


class MemoryStore:
    """An in-memory store with the methods a database sink calls (``upsert``, ``close``).

    MariaDB and Cassandra are servers: the real stores are covered by the integration tests
    (``tests/integration/test_stores.py``, ``test_objects_sinks.py``). Here an upsert replaces
    the row with the same key (:data:`ROW_KEYS`), as theirs do.

    Parameters
    ----------
    refuse : callable, optional
        ``refuse(table, row)`` true for a row the store refuses (``rejected`` is raised, the
        sink's :class:`StoreRejected`); the batch holding it is then refused whole, as a
        database refuses a transaction.
    rejected : type of Exception
        The exception a refused batch raises.
    """

    def __init__(self, refuse: Any = None, rejected: type[Exception] = ValueError):
        self.tables: dict[str, dict[tuple, dict]] = defaultdict(dict)
        self.batches: list[tuple[str, int]] = []
        self.closed = False
        self._refuse = refuse
        self._rejected = rejected

    async def upsert(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Store one batch of rows of ``table``, or refuse it whole."""
        rows = [dict(row) for row in rows]
        if self._refuse is not None and any(self._refuse(table, row) for row in rows):
            raise self._rejected(f"{table}: a row is refused")
        self.batches.append((table, len(rows)))
        for row in rows:
            self.tables[table][tuple(row[c] for c in ROW_KEYS[table])] = row

    async def close(self) -> None:
        """Mark the store closed."""
        self.closed = True

    def rows(self, table: str) -> list[dict]:
        """Return the stored rows of ``table``, in key order."""
        return [self.tables[table][key] for key in sorted(self.tables[table])]


# ----------------------------------------------------------------------------- feeding


class _FeedState:
    """What the clones of one feed channel share: whether the agent waits, on which queue."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.reader: _FeedChannel | None = None


class _FeedChannel(faust.Channel):
    """An in-memory channel that says when its reader is waiting for the next message.

    The agent's stream reads a clone of it (Faust subscribes an iterator clone per reader
    and puts each message on the clones' queues); the clones share one :class:`_FeedState`.
    """

    def __init__(self, *args: Any, state: _FeedState | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.state = state if state is not None else _FeedState()

    def _clone_args(self) -> Mapping:
        return {**super()._clone_args(), "state": self.state}

    async def __anext__(self) -> Any:
        # The stream asks here only when its queue is empty: the agent is done with all it
        # was given.
        self.state.reader = self
        self.state.waiting.set()
        try:
            return await super().__anext__()
        finally:
            self.state.waiting.clear()

    def drained(self) -> bool:
        """Whether the reader waits for a message and none is queued for it."""
        reader = self.state.reader
        return reader is not None and self.state.waiting.is_set() and reader.queue.empty()


class AgentFeed:
    """Messages into one agent's test context, and a wait until it has processed them."""

    def __init__(self, context: Any, channel: _FeedChannel, topic: str):
        self.context = context
        self.channel = channel
        self.topic = topic
        self.offsets: dict[int, int] = defaultdict(int)

    async def put(
        self,
        value: bytes | None,
        key: bytes | None = None,
        headers: Iterable[tuple[str, bytes]] | None = None,
        timestamp: float | None = None,
        partition: int = 0,
    ) -> None:
        """Hand the agent one message of its input topic (offsets count up per partition)."""
        message = self.context.to_message(
            key,
            value,
            partition=partition,
            offset=self.offsets[partition],
            timestamp=timestamp,
            headers=list(headers or ()),
        )
        self.offsets[partition] += 1
        await self.channel.put(await self.channel.decode(message))

    async def put_sent(self, sent: Sent) -> None:
        """Hand the agent a message another agent sent (Kafka between two agents)."""
        await self.put(sent.value, sent.key, sent.headers, sent.timestamp, sent.partition or 0)

    async def drain(self) -> None:
        """Wait until the agent has processed every message put so far.

        Raises
        ------
        AssertionError
            If the agent crashed, or is still busy after :data:`DRAIN_TIMEOUT_S`.
        """
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while True:
            crash = getattr(self.context, "_crash_reason", None)
            if crash is not None:
                raise AssertionError(f"the agent crashed: {crash!r}") from crash
            if self.channel.drained():
                return
            assert time.monotonic() < deadline, "the agent did not finish its input in time"
            await asyncio.sleep(0.001)


class _Record(NamedTuple):
    """An input message of a batch loop, as aiokafka's consumer gives it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class _CapturingKafka:
    """The Kafka clients of a batch loop in memory: sends go to the app's capturing producer,
    commits are recorded (``committed``: partition to next offset)."""

    def __init__(self, producer: CapturingProducer):
        self.captured = producer
        self.committed: dict[Any, int] = {}
        self.ends: dict[Any, int] = {}

    async def send(self, topic: str, value: bytes, key: bytes | None = None, headers=None):
        return await self.captured.send(topic, key, value, None, None, headers or [])

    async def commit(self, offsets: Mapping[Any, int]) -> None:
        self.committed.update(offsets)

    def assignment(self) -> set[Any]:
        """Every partition a message was put to."""
        return set(self.ends)

    def highwater(self, tp: Any) -> int:
        """The offset after the last message put to the partition."""
        return self.ends[tp]

    last_stable_offset = highwater

    async def position(self, tp: Any) -> int:
        """Everything put has been read."""
        return self.ends[tp]


class BatchFeed:
    """Messages into one batch loop; :meth:`drain` runs them through it as one batch.

    The loop's own batch handling runs (the branch's handler, then its send-then-commit
    path) with the app's :class:`CapturingProducer` in place of the Kafka producer and a
    recorder of commits in place of the consumer: what a test sees is what the worker would
    send. Transactions need a broker; the integration tests cover them.
    """

    def __init__(self, loop: Any, topic: str, producer: CapturingProducer):
        self.loop = loop
        self.topic = topic
        self.kafka = _CapturingKafka(producer)
        loop.producer = self.kafka
        loop.consumer = self.kafka
        loop.transactional = False
        self.pending: list[_Record] = []
        self.offsets: dict[tuple[str, int], int] = defaultdict(int)

    async def put(
        self,
        value: bytes | None,
        key: bytes | None = None,
        headers: Iterable[tuple[str, bytes]] | None = None,
        timestamp: float | None = None,
        partition: int = 0,
        topic: str | None = None,
    ) -> None:
        """Queue one message of the loop's input topic (offsets count up per partition)."""
        topic = topic or self.topic
        offset = self.offsets[(topic, partition)]
        self.offsets[(topic, partition)] += 1
        millis = int((time.time() if timestamp is None else timestamp) * 1000)
        self.pending.append(
            _Record(topic, partition, offset, millis, key, value, tuple(headers or ()))
        )
        self.kafka.ends[TopicPartition(topic, partition)] = offset + 1

    async def put_sent(self, sent: Sent) -> None:
        """Queue a message another agent sent (Kafka between two agents)."""
        await self.put(sent.value, sent.key, sent.headers, sent.timestamp, sent.partition or 0)

    async def drain(self) -> None:
        """Run every queued message through the loop, as one batch."""
        records, self.pending = self.pending, []
        if records:
            await self.loop.handle(records)


@asynccontextmanager
async def run_agent(
    app: faust.App, name: str, topic: str | None = None
) -> AsyncIterator[AgentFeed | BatchFeed]:
    """Run agent (or batch loop) ``name`` of ``app`` in memory; drain it before leaving.

    Parameters
    ----------
    app : faust.App
        Prepared with :func:`prepare`.
    name : str
        The agent's name, or the name of the branch's batch loop (``app.batch_loops``).
    topic : str, optional
        For a batch loop: the input topic messages are put to (default its first).

    Yields
    ------
    AgentFeed or BatchFeed
        To put messages of the agent's input topic.
    """
    loops = getattr(app, "batch_loops", {})
    if name in loops:
        loop = loops[name]
        feed = BatchFeed(loop, topic or loop.topics[0], app.producer)
        yield feed
        await feed.drain()
        return
    agent = app.agents[name]
    topic = agent.channel.get_topic_name()
    channel = _FeedChannel(app)
    async with agent.test_context(channel=channel) as context:
        feed = AgentFeed(context, channel, topic)
        yield feed
        await feed.drain()


# ---------------------------------------------------------------- expected, from raw fields


def header(message: Sent, name: str) -> bytes | None:
    """Return the last header ``name`` of a sent message (None without one)."""
    values = [value for key, value in message.headers if key == name]
    return values[-1] if values else None


def ztf_solar(record: Mapping[str, Any]) -> bool:
    """Whether a raw ZTF alert names a solar-system object (ZTF writes "null" for none)."""
    name = record["candidate"].get("ssnamenr")
    return name is not None and name != "null"


def lsst_solar(record: Mapping[str, Any]) -> bool:
    """Whether a raw LSST alert names a solar-system object (``ssObjectId`` 0 is none)."""
    return bool(record["diaSource"].get("ssObjectId")) or record.get("ssSource") is not None


def is_solar(sample: Sample) -> bool:
    """Whether a sample alert is a solar-system detection, from its raw fields."""
    return ztf_solar(sample.record) if sample.survey == "ztf" else lsst_solar(sample.record)


def object_key(sample: Sample) -> bytes:
    """The key the gateway gives an alert: its object (LSST: else its solar-system object)."""
    record = sample.record
    if sample.survey == "ztf":
        return record["objectId"].encode()
    source = record["diaSource"]
    return str(source["diaObjectId"] or source["ssObjectId"] or source["diaSourceId"]).encode()


def _number(value: Any) -> float | None:
    if value is None or value == -999.0:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def raw_detection(survey: str, source: Mapping[str, Any], owner: str) -> dict:
    """A detection straight from a ZTF ``candidate`` / LSST ``diaSource`` record."""
    if survey == "ztf":
        return {
            "candidate_id": source["candid"],
            "object_id": owner,
            "survey": "ztf",
            "mjd": source["jd"] - MJD_OFFSET,
            "band": ZTF_BANDS[source["fid"]],
            "ra": source["ra"],
            "dec": source["dec"],
            "mag": _number(source["magpsf"]),
            "mag_err": _number(source["sigmapsf"]),
            "flux": None,
            "flux_err": None,
            "visit_id": source["pid"],
        }
    flux, flux_err = source["psfFlux"], source["psfFluxErr"]
    positive = flux is not None and flux > 0
    return {
        "candidate_id": source["diaSourceId"],
        "object_id": owner,
        "survey": "lsst",
        "mjd": source["midpointMjdTai"],
        "band": source["band"],
        "ra": source["ra"],
        "dec": source["dec"],
        "mag": -2.5 * math.log10(flux) + AB_ZERO_POINT_NJY if positive else None,
        "mag_err": 2.5 / math.log(10) * flux_err / flux if positive else None,
        "flux": _number(flux),
        "flux_err": _number(flux_err),
        "visit_id": source["visit"],
    }


def raw_candidate_update(sample: Sample, appended_ms: float) -> dict:
    """The CandidateUpdate of a sample alert, written from its raw fields."""
    record = sample.record
    if sample.survey == "ztf":
        own = record["candidate"]
        object_id = record["objectId"]
        previous = [p for p in record.get("prv_candidates") or () if p.get("candid") is not None]
        ss_name = own["ssnamenr"] if ztf_solar(record) else None
        ss_distance = _number(own["ssdistnr"])
        alert_id = own["candid"]
    else:
        own = record["diaSource"]
        dia_object = (record.get("diaObject") or {}).get("diaObjectId") or own["diaObjectId"]
        object_id = str(dia_object) if dia_object else None
        previous = list(record.get("prvDiaSources") or ())
        ss_name = str(own["ssObjectId"]) if own.get("ssObjectId") else None
        ss_distance = None
        alert_id = own["diaSourceId"]
    owner = object_id if object_id is not None else ss_name
    return {
        "alert_id": alert_id,
        "object_id": object_id,
        "survey": sample.survey,
        "candidate": raw_detection(sample.survey, own, owner),
        "previous": [raw_detection(sample.survey, p, owner) for p in previous],
        "ss_name": ss_name,
        "ss_distance_arcsec": ss_distance,
        "appended_ms": appended_ms,
    }


def close_to(
    got: Any, expected: Any, rel: float = 1e-9, where: str = "", abs_tol: float = 1e-12
) -> None:
    """Assert that two JSON-like values are equal, floats to a relative (or absolute) tolerance.

    Raises
    ------
    AssertionError
        Naming the path of the first difference.
    """
    if isinstance(expected, float) and isinstance(got, int | float):
        same = math.isclose(got, expected, rel_tol=rel, abs_tol=abs_tol)
        assert same, f"{where}: {got} != {expected}"
    elif isinstance(expected, Mapping):
        assert isinstance(got, Mapping), f"{where}: {got!r} is not a mapping"
        assert set(got) == set(expected), f"{where}: keys {sorted(got)} != {sorted(expected)}"
        for key in expected:
            close_to(got[key], expected[key], rel, f"{where}.{key}", abs_tol)
    elif isinstance(expected, list | tuple):
        assert isinstance(got, list | tuple), f"{where}: {got!r} is not a list"
        assert len(got) == len(expected), f"{where}: {len(got)} items != {len(expected)}"
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            close_to(a, b, rel, f"{where}[{i}]", abs_tol)
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"
