"""The watchlist worker's agents in memory: control messages into tables, alerts into outputs.

The real agent code runs in ``agent.test_context()`` with memory tables. Two things are
stood in for, because they are servers: the app's producer records every message instead
of sending it (outputs, dead letters, tombstones, table changelogs), and a dict stands in
for the schema registry (``get_schema`` and ``register``). The integration tests run the
same worker against Kafka and the registry (``tests/integration/test_branches.py``).
Expected positions and names come from the raw sample records or are written by hand.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections import defaultdict
from pathlib import Path

import fastavro
import pytest
from faust.transport.producer import Producer
from faust.types import TP, RecordMetadata

from brokerapp.model.settings import load_settings

DATA = Path(__file__).parents[1] / "data"


class Registry:
    """Dict-backed stand-in for the local schema registry (a server)."""

    def __init__(self):
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = defaultdict(list)

    def add(self, schema: str) -> int:
        for known, text in self.schemas.items():
            if text == schema:
                return known
        schema_id = 101 + len(self.schemas)
        self.schemas[schema_id] = schema
        return schema_id

    async def get_schema(self, schema_id: int) -> str:
        return self.schemas[schema_id]

    async def register(self, subject, schema, schema_id=None) -> int:
        text = schema if isinstance(schema, str) else json.dumps(schema)
        new = self.add(text)
        self.subjects[subject].append(new)
        return new

    async def close(self) -> None:
        pass


class Capture(Producer):
    """The app's producer, recording what would be sent (Kafka is a server)."""

    def __init__(self, transport):
        super().__init__(transport)
        self.sent: dict[str, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)

    async def send(self, topic, key, value, partition, timestamp, headers, **kwargs):
        self.sent[topic].append((key, value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(RecordMetadata(topic, 0, TP(topic, 0), len(self.sent[topic]), 0.0, 0))
        return done

    async def send_and_wait(self, *args, **kwargs):
        return await (await self.send(*args, **kwargs))

    async def create_topic(self, *args, **kwargs):
        pass

    def key_partition(self, topic, key):
        return TP(topic, 0)

    def supports_headers(self):
        return True


@pytest.fixture
def registry(monkeypatch):
    stand_in = Registry()
    monkeypatch.setattr("brokerapp.runtime.branch.registry_client", lambda settings: stand_in)
    return stand_in


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        home=tmp_path, store="memory://", app_prefix="unit", watchlist_chunk_entries=2
    )


@pytest.fixture
def app(settings, registry):
    from agents.watchlist import build

    app = build(settings)
    app.finalize()
    app.flow_control.resume()
    app.producer = Capture(app.transport)
    return app


def sample(name):
    reader = fastavro.reader(io.BytesIO((DATA / name).read_bytes()))
    record = next(reader)
    schema = reader.metadata["avro.schema"]
    return (schema if isinstance(schema, str) else schema.decode()), record


def framed(registry, schema, record):
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(json.loads(schema)), record)
    return struct.pack(">bI", 0, registry.add(schema)) + body.getvalue()


def chunk(seq, chunks, items, version="v1", watchlist_id="w1", kind="watchlist"):
    return json.dumps(
        {
            "op": "chunk",
            "watchlist_id": watchlist_id,
            "version": version,
            "seq": seq,
            "chunks": chunks,
            "kind": kind,
            "items": items,
        }
    ).encode()


def commit(chunks, count, version="v1", watchlist_id="w1", kind="watchlist"):
    return json.dumps(
        {
            "op": "commit",
            "watchlist_id": watchlist_id,
            "version": version,
            "chunks": chunks,
            "count": count,
            "kind": kind,
            "name": "test",
            "owner": "me",
        }
    ).encode()


def entry(name, ra, dec, radius=2.0):
    return {"name": name, "ra": ra, "dec": dec, "radius_arcsec": radius}


async def feed(agent, messages, done=None):
    """Put messages into the agent; return once it has processed them all.

    ``put`` returns when the agent takes a message, not when it is done with it: a control
    agent is given a trailing tombstone (which it skips), so the last real message is done
    when the tombstone is taken; for the other agents ``done()`` says when.
    """
    async with agent.test_context() as ctx:
        for key, value in messages:
            await ctx.put(key=key, value=value)
        if done is None:
            await ctx.put(key=b"end", value=None)
            return
        for _ in range(200):
            if done():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the agent did not finish")


async def test_chunks_then_a_commit_put_a_version_in_force_and_supersede_the_last(app, settings):
    control = app.agents["control"]
    await feed(
        control,
        [
            (b"w1@v1#2", chunk(2, 3, [entry("c", 30.0, 10.0)])),  # out of order
            (b"w1@v1#0", chunk(0, 3, [entry("a", 10.0, 10.0), entry("b", 20.0, 10.0)])),
            (b"w1@v1#1", chunk(1, 3, [entry("d", 40.0, 10.0)])),
            (b"w1@v1#1", chunk(1, 3, [entry("d", 40.0, 10.0)])),  # a duplicate
        ],
    )
    assert app.status()["watchlists"] == 0  # staged only
    await feed(control, [(b"w1", commit(3, 4))])
    status = app.status()
    assert status["watchlists"] == 1 and status["commands"] == {"chunk": 4, "commit": 1}
    watchlists = app.tables["watchlists"]
    assert watchlists["w1"]["count"] == 4 and watchlists["w1"]["version"] == "v1"
    assert app.tables["watchlist_zones"]["@w1"] == "v1"

    # A second upload replaces it; the first upload's chunks get tombstones.
    await feed(
        control,
        [(b"w1@v2#0", chunk(0, 1, [entry("a", 10.0, 10.0)], "v2")), (b"w1", commit(1, 1, "v2"))],
    )
    tombstones = app.producer.sent[settings.watchlist_control_topic]
    assert sorted(tombstones) == [(b"w1@v1#0", None), (b"w1@v1#1", None), (b"w1@v1#2", None)]
    assert app.tables["watchlists"]["w1"]["count"] == 1


async def test_a_commit_with_a_missing_chunk_is_dead_lettered_and_changes_nothing(app, settings):
    control = app.agents["control"]
    await feed(
        control,
        [
            (b"w1@v1#0", chunk(0, 1, [entry("a", 10.0, 10.0)])),
            (b"w1", commit(1, 1)),
            (b"w1@v2#0", chunk(0, 2, [entry("a", 50.0, 10.0)], "v2")),
            (b"w1", commit(2, 2, "v2")),  # chunk 1 of v2 never came
            (b"w1", b"not json"),
        ],
    )
    dead = app.producer.sent[f"{settings.topic_prefix}watchlist-deadletter"]
    assert [value for _, value in dead] == [commit(2, 2, "v2"), b"not json"]
    assert app.status()["refused"] == 2
    assert app.tables["watchlists"]["w1"]["version"] == "v1"
    assert app.tables["watchlist_zones"]["@w1"] == "v1"


async def test_an_alert_in_an_entry_is_annotated_and_sent_as_an_annotated_alert(
    app, settings, registry
):
    schema, record = sample("ztf/2019_01_10_739260766315010006.avro")
    ra, dec = record["candidate"]["ra"], record["candidate"]["dec"]  # raw fields
    await feed(
        app.agents["control"],
        [
            (
                b"w1@v1#0",
                chunk(0, 1, [entry("near", ra, dec + 1.0 / 3600.0), entry("far", ra, 0.0)]),
            ),
            (b"w1", commit(1, 2)),
        ],
    )
    value = framed(registry, schema, record)
    annotated_topic = settings.annotated_alerts_topic
    await feed(
        app.agents["match"],
        [(record["objectId"].encode(), value)],
        done=lambda: app.producer.sent[annotated_topic],
    )

    annotations = [json.loads(v) for _, v in app.producer.sent[settings.annotations_topic]]
    assert len(annotations) == 1
    got = annotations[0]
    assert (got["alert_id"], got["object_id"], got["watchlist_id"], got["entry"]) == (
        record["candid"],
        record["objectId"],
        "w1",
        "near",
    )
    assert got["separation_arcsec"] == pytest.approx(1.0, abs=1e-6)
    [(key, annotated)] = app.producer.sent[settings.annotated_alerts_topic]
    assert key == record["objectId"].encode()
    local_id = struct.unpack(">bI", annotated[:5])[1]
    assert registry.subjects[f"{settings.annotated_alerts_topic}-value"] == [local_id]
    parsed = fastavro.parse_schema(json.loads(registry.schemas[local_id]))
    decoded = fastavro.schemaless_reader(io.BytesIO(annotated[5:]), parsed)
    assert decoded["alert"]["candid"] == record["candid"]
    assert [a["entry"] for a in decoded["annotations"]] == ["near"]


async def test_a_solar_system_watchlist_annotates_alerts_of_its_objects(app, settings, registry):
    schema, record = sample("ztf/2019_01_10_739260766315010006.avro")
    record["candidate"]["ssnamenr"] = "2830"
    record["candidate"]["ssdistnr"] = 0.5  # a float32 in the schema: exact
    record["candidate"]["ssmagnr"] = 18.5
    await feed(
        app.agents["control"],
        [
            (b"ss1@v1#0", chunk(0, 1, ["002830"], watchlist_id="ss1", kind="solar_system")),
            (b"ss1", commit(1, 1, watchlist_id="ss1", kind="solar_system")),
        ],
    )
    await feed(
        app.agents["ss_match"],
        [(b"k", framed(registry, schema, record))],
        done=lambda: app.producer.sent[settings.annotated_alerts_topic],
    )
    [(_, value)] = app.producer.sent[settings.annotations_topic]
    got = json.loads(value)
    assert (got["watchlist_id"], got["entry"], got["separation_arcsec"]) == ("ss1", "2830", 0.5)
