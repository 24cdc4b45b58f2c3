"""The gateway against two real clusters and two real registries.

Upstream: the stand-in upstream Kafka (9192) and registry (8082), fed the way the surveys
publish (ZTF: one Avro container per message, no key; Rubin: Confluent wire format with the
upstream registry's schema ID, no key). Local: Kafka (9092) and registry (8081). The gateway
runs as ``faust -A agents.gateway worker`` in a subprocess. Expected alerts come from
``fastavro.reader`` on the sample files, never from the code under test.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Consumer, Producer

from brokerapp.adapters.kafka_admin import ensure_topics
from brokerapp.adapters.registry import registry_client
from brokerapp.wire.codecs import ConfluentCodec, SchemaCache, frame

from .workers import GatewayRun

DATA = Path(__file__).parents[1] / "data"
ZTF_FILES = sorted(DATA.glob("ztf/*.avro"))
LSST_FILES = sorted(DATA.glob("lsst/*.avro"))


def read_file(path):
    raw = path.read_bytes()
    reader = fastavro.reader(io.BytesIO(raw))
    return raw, reader.writer_schema, next(reader)


def object_id(record):
    """The key a user expects: the object, else the solar-system object, else the alert."""
    if "objectId" in record:
        return record["objectId"]
    source, obj = record["diaSource"], record.get("diaObject") or {}
    for candidate in (source["diaObjectId"], obj.get("diaObjectId"), source["ssObjectId"]):
        if candidate:
            return str(candidate)
    return str(source["diaSourceId"])


def upstream_producer(settings):
    return Producer(
        {
            "bootstrap.servers": settings.upstream_feed_bootstrap,
            "message.max.bytes": settings.max_message_bytes,
            "acks": "all",
        }
    )


def send_upstream(settings, topic, values, headers=None):
    """Publish values (no key) to an upstream topic, alternating two partitions.

    Returns the (topic, partition, offset) of each value, in the order of ``values``.
    """
    ensure_topics(settings.upstream_feed_bootstrap, [topic], 2)
    producer = upstream_producer(settings)
    offsets = [None] * len(values)

    def done(n):
        def record(err, msg):
            assert err is None, err
            offsets[n] = (msg.topic(), msg.partition(), msg.offset())

        return record

    for n, value in enumerate(values):
        producer.produce(topic, value, partition=n % 2, headers=headers, on_delivery=done(n))
        producer.poll(0)
    assert producer.flush(60) == 0
    return offsets


async def register_upstream(settings, topic, schema):
    async with registry_client(settings, "upstream") as registry:
        return await registry.register(f"{topic}-value", schema)


def lsst_values(upstream_id):
    """Rubin-style messages: Confluent frame around the bare Avro body of each sample."""
    values, records = [], []
    for path in LSST_FILES:
        _raw, schema, record = read_file(path)
        body = io.BytesIO()
        fastavro.schemaless_writer(body, fastavro.parse_schema(schema), record)
        values.append(frame(upstream_id, body.getvalue()))
        records.append(record)
    return values, records


def read_local(settings, topic, count, timeout=60):
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": settings.max_message_bytes * 2,
            "max.partition.fetch.bytes": settings.max_message_bytes,
        }
    )
    consumer.subscribe([topic])
    out = []
    idle = 0
    try:
        while len(out) < count and idle < timeout:
            msg = consumer.poll(1.0)
            if msg is None:
                idle += 1
                continue
            assert msg.error() is None, msg.error()
            out.append(msg)
    finally:
        consumer.close()
    return out


def origin(msg):
    headers = dict(msg.headers() or [])
    return (
        headers["origin-topic"].decode(),
        int(headers["origin-partition"]),
        int(headers["origin-offset"]),
    )


@pytest.fixture
def gateway(tmp_path, services):
    run = GatewayRun(tmp_path)
    yield run
    run.stop()


async def test_three_daily_topics_merge_into_one_keyed_locally_decodable_topic(settings, gateway):
    lsst_day1, lsst_day2 = gateway.lsst_topic("20260101"), gateway.lsst_topic("20260102")
    ztf_day1 = gateway.ztf_topic("20260101")
    upstream_id = await register_upstream(settings, lsst_day1, read_file(LSST_FILES[0])[1])
    lsst, lsst_records = lsst_values(upstream_id)
    ztf = [read_file(p)[0] for p in ZTF_FILES]
    ztf_records = [read_file(p)[2] for p in ZTF_FILES]

    sent = send_upstream(settings, ztf_day1, ztf) + send_upstream(settings, lsst_day1, lsst)
    gateway.start()
    # A daily topic created while the gateway runs is picked up without a restart.
    sent += send_upstream(settings, lsst_day2, lsst)
    total = len(ztf) + 2 * len(lsst)
    status = gateway.wait_status(
        lambda s: s["mirrored"] >= total and all(p["lag"] == 0 for p in s["partitions"]),
        what=f"{total} mirrored and committed",
    )

    messages = read_local(settings, gateway.alerts, total)
    assert len(messages) == total
    assert sorted(origin(m) for m in messages) == sorted(sent)

    # Every schema ID is the local registry's, and the local registry alone decodes them.
    async with registry_client(settings) as local:
        local_lsst_id = await local.lookup(f"{gateway.alerts}-value", read_file(LSST_FILES[0])[1])
        codec = ConfluentCodec(local, SchemaCache())
        decoded = [(m, (await codec.decode(m.value()))) for m in messages]
    ids = Counter(schema_id for _m, (schema_id, _r) in decoded)
    assert ids[local_lsst_id] == 2 * len(lsst)
    by_origin = {origin(m): record for m, (_i, record) in decoded}
    expected = {}
    for (topic, partition, offset), record in zip(
        sent, ztf_records + lsst_records + lsst_records, strict=True
    ):
        expected[(topic, partition, offset)] = record
    assert by_origin == expected

    # Keyed by object ID; within a partition, each object's alerts keep upstream order.
    for m, (_i, record) in decoded:
        assert m.key().decode() == object_id(record)
    seen = defaultdict(list)
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        topic, partition, offset = origin(m)
        seen[(m.key(), topic, partition)].append((m.partition(), offset))
    for positions in seen.values():
        assert len({p for p, _o in positions}) == 1
        assert [o for _p, o in positions] == sorted(o for _p, o in positions)

    # The status page tells the same story.
    assert status["deadlettered"] == 0
    assert f"confluent:{upstream_id}" in status["schema_ids"]
    assert status["schema_ids"][f"confluent:{upstream_id}"] == local_lsst_id
    assert {p["topic"] for p in status["partitions"]} == {ztf_day1, lsst_day1, lsst_day2}
    assert status["last_minute"]["p99_ms"] is not None
    page = gateway.page()
    assert "mirrored" in page and str(total) in page
    assert lsst_day2 in page


async def test_restart_maps_known_schemas_without_any_registry(settings, gateway):
    topic = gateway.lsst_topic("20260103")
    upstream_id = await register_upstream(settings, topic, read_file(LSST_FILES[0])[1])
    lsst, _records = lsst_values(upstream_id)
    send_upstream(settings, topic, lsst[:5])
    gateway.start()
    first = gateway.wait_status(lambda s: s["mirrored"] >= 5)
    assert first["registry_calls"].get("upstream-fetch") == 1
    gateway.stop()

    nowhere = "http://127.0.0.1:9/apis/ccompat/v7"
    gateway.start(BROKER_REGISTRY_URL=nowhere, BROKER_UPSTREAM_REGISTRY_URL=nowhere)
    send_upstream(settings, topic, lsst[5:])
    status = gateway.wait_status(lambda s: s["mirrored"] >= len(lsst) - 5)
    assert status["registry_calls"] == {}
    assert status["deadlettered"] == 0
    assert (
        status["schema_ids"][f"confluent:{upstream_id}"]
        == first["schema_ids"][f"confluent:{upstream_id}"]
    )
    assert len(read_local(settings, gateway.alerts, len(lsst))) == len(lsst)


async def test_bad_messages_go_to_the_deadletter_topic_with_reasons(settings, gateway):
    topic = gateway.lsst_topic("20260104")
    upstream_id = await register_upstream(settings, topic, read_file(LSST_FILES[0])[1])
    good, _records = lsst_values(upstream_id)
    bad = [
        b"not an alert at all",
        frame(987654321, b"\x02\x04"),  # schema ID the upstream registry does not know
        good[0][:40],  # truncated body: the object ID cannot be read
    ]
    gateway.env_overrides.update(
        BROKER_GATEWAY_RETRY_ATTEMPTS="2", BROKER_GATEWAY_RETRY_BACKOFF="0.2"
    )
    sent = send_upstream(settings, topic, [good[1], *bad, good[2]], headers=[("trace", b"x")])
    gateway.start()
    status = gateway.wait_status(lambda s: s["deadlettered"] >= 3 and s["mirrored"] >= 2)
    assert status["retries"] >= 2  # the unknown ID was retried before it was given up

    dead = read_local(settings, gateway.deadletter, 3)
    assert sorted(m.value() for m in dead) == sorted(bad)
    reasons = {m.value(): dict(m.headers()) for m in dead}
    assert b"inline" in reasons[bad[0]]["error-mode"] or b"unknown" in reasons[bad[0]]["error-mode"]
    assert b"unknown to the upstream registry" in reasons[bad[1]]["error-reason"]
    assert reasons[bad[2]]["error-mode"] == b"confluent"
    for headers in reasons.values():
        assert headers["trace"] == b"x"
        assert headers["origin-topic"].decode() == topic
    assert {origin(m) for m in dead} == set(sent[1:4])
    mirrored = read_local(settings, gateway.alerts, 2)
    assert {origin(m) for m in mirrored} == {sent[0], sent[4]}


async def test_killed_gateway_loses_nothing(settings, gateway):
    topic = gateway.lsst_topic("20260105")
    upstream_id = await register_upstream(settings, topic, read_file(LSST_FILES[0])[1])
    lsst, _records = lsst_values(upstream_id)
    values = lsst * 40  # 2000 alerts
    sent = send_upstream(settings, topic, values)
    gateway.env_overrides["BROKER_GATEWAY_BATCH"] = "50"
    gateway.start()
    at_kill = gateway.wait_status(lambda s: s["mirrored"] >= 200)
    gateway.kill()
    assert at_kill["mirrored"] < len(values)  # killed mid-stream
    gateway.start()
    gateway.wait_status(
        lambda s: s["partitions"] and all(p["lag"] == 0 for p in s["partitions"]),
        what="zero lag after the restart",
    )
    messages = read_local(settings, gateway.alerts, len(values) + 1000, timeout=10)
    origins = Counter(origin(m) for m in messages)
    assert set(origins) == set(sent)  # nothing lost
    duplicates = sum(n - 1 for n in origins.values())
    assert duplicates <= 50  # at most one batch is written twice
    print(json.dumps({"duplicates_after_kill": duplicates}))


async def test_registry_outage_pauses_then_mirrors_everything_without_dead_letters(
    settings, gateway
):
    from urllib.parse import urlparse

    from .faults import TcpProxy

    upstream = urlparse(settings.upstream_registry_url)
    proxy = TcpProxy(upstream.hostname, upstream.port)
    try:
        topic = gateway.lsst_topic("20260106")
        upstream_id = await register_upstream(settings, topic, read_file(LSST_FILES[0])[1])
        lsst, _records = lsst_values(upstream_id)
        gateway.env_overrides.update(
            BROKER_UPSTREAM_REGISTRY_URL=f"{upstream.scheme}://127.0.0.1:{proxy.port}{upstream.path}",
            BROKER_GATEWAY_RETRY_BACKOFF="0.2",
            BROKER_GATEWAY_RETRY_BACKOFF_MAX="1",
            BROKER_GATEWAY_RETRY_ATTEMPTS="1000",
        )
        sent = send_upstream(settings, topic, lsst)
        gateway.start()  # the upstream registry is unreachable
        during = gateway.wait_status(
            lambda s: s["retries"] >= 6 and any(p["paused"] for p in s["partitions"]),
            what="paused partitions retrying",
        )
        assert during["mirrored"] == 0 and during["deadlettered"] == 0
        assert "unreachable" in next(p["paused"] for p in during["partitions"] if p["paused"])
        proxy.up()  # the registry is back
        after = gateway.wait_status(lambda s: s["mirrored"] >= len(lsst))
        assert after["deadlettered"] == 0
        assert not any(p["paused"] for p in after["partitions"])
        messages = read_local(settings, gateway.alerts, len(lsst))
        assert sorted(origin(m) for m in messages) == sorted(sent)
    finally:
        proxy.close()
