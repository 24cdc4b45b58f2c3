"""Alerts through the real Kafka and the real registry, in every schema mode.

Expected records always come from plain ``fastavro.reader`` on the sample files, never from
the code under test.
"""

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import fastavro
import fastavro.schema
import pytest
from aiokafka import AIOKafkaConsumer
from lsst.alert.packet.schema import get_schema_path

from brokerapp.adapters.kafka_admin import ensure_topics
from brokerapp.adapters.registry import RegistryClient
from brokerapp.tools import produce as prod
from brokerapp.wire.codecs import (
    ConfluentCodec,
    DecodeError,
    InlineCodec,
    SchemaFileCodec,
    frame,
    parse_schema,
)

DATA = Path(__file__).parents[1] / "data"
SAMPLES = sorted(DATA.glob("ztf/*.avro")) + sorted(DATA.glob("lsst/*.avro"))


def fastavro_record(path):
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        return reader.writer_schema, next(reader)


def send(settings, topic, messages):
    prod.produce(
        {"bootstrap.servers": settings.kafka_bootstrap, "message.max.bytes": 10485760},
        iter([(topic, key, value) for key, value in messages]),
    )


async def consume(settings, topic, count):
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=10485760,
    )
    await consumer.start()
    out = []
    try:
        while len(out) < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 60)
            for messages in batch.values():
                out += messages
    finally:
        await consumer.stop()
    return out


@pytest.mark.parametrize("mode", ["confluent", "inline", "schemafile"])
async def test_every_sample_through_kafka_in_every_mode(services, settings, unique_topic, mode):
    ensure_topics(settings.kafka_bootstrap, [unique_topic], 1)
    expected = [fastavro_record(path) for path in SAMPLES]
    async with RegistryClient(settings.registry_url) as registry:
        messages = []
        for writer_schema, record in expected:
            schema = parse_schema(writer_schema)
            body = SchemaFileCodec(schema).encode(record)
            if mode == "confluent":
                schema_id = await registry.register(f"{unique_topic}-value", writer_schema)
                value = frame(schema_id, body)
            elif mode == "inline":
                value = InlineCodec().encode([record], schema)
            else:
                value = body
            messages.append((b"k", value))
        send(settings, unique_topic, messages)
        received = await consume(settings, unique_topic, len(messages))

        # A fresh client and codec: schemas come from the registry by ID, not from the test.
        async with RegistryClient(settings.registry_url) as fresh:
            codec = ConfluentCodec(fresh)
            for message, (writer_schema, record) in zip(received, expected, strict=True):
                if mode == "confluent":
                    _sid, decoded = await codec.decode(message.value)
                elif mode == "inline":
                    decoded = InlineCodec().decode_one(message.value)
                else:
                    decoded = SchemaFileCodec(parse_schema(writer_schema)).decode(message.value)
                assert decoded == record


async def test_decode_errors_against_the_real_registry(services, settings, unique_topic):
    writer_schema, record = fastavro_record(SAMPLES[0])
    async with RegistryClient(settings.registry_url) as registry:
        schema_id = await registry.register(f"{unique_topic}-value", writer_schema)
        codec = ConfluentCodec(registry)
        good = frame(schema_id, SchemaFileCodec(parse_schema(writer_schema)).encode(record))

        with pytest.raises(DecodeError) as unknown:
            await codec.decode(frame(2_000_000_000, good[5:]))
        assert unknown.value.schema_id == 2_000_000_000
        assert "unknown schema ID" in unknown.value.reason

        with pytest.raises(DecodeError) as truncated:
            await codec.decode(good[: len(good) // 2])
        assert truncated.value.schema_id == schema_id
        assert "truncated" in truncated.value.reason

        with pytest.raises(DecodeError) as magic:
            await codec.decode(b"\x07" + good[1:])
        assert "magic byte" in magic.value.reason


def cli(*args):
    done = subprocess.run(
        [sys.executable, "-m", "brokerapp", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("mode", ["confluent", "inline"])
def test_produce_then_tail_sees_the_same_count_and_bytes(services, unique_topic, mode):
    out = cli(
        "produce",
        "-f",
        str(DATA / "lsst"),
        "-t",
        unique_topic,
        "--mode",
        mode,
        "--count",
        "120",
        "--partitions",
        "3",
        "--no-progress",
    )
    produced = re.search(r"produced (\d+) alerts, (\d+) bytes", out)
    assert produced, out
    out = cli("tail", "-t", unique_topic, "--count", "120", "--idle", "30", "--quiet")
    received = re.search(r"received (\d+) alerts .*?, (\d+) bytes.*; (\d+) undecodable", out)
    assert received, out
    assert produced.group(1) == received.group(1) == "120"
    assert produced.group(2) == received.group(2)
    assert received.group(3) == "0"


def test_looped_alerts_get_fresh_ids(services, settings, unique_topic):
    cli("produce", "-f", str(DATA / "ztf"), "-t", unique_topic, "--count", "54", "--no-progress")
    received = asyncio.run(consume(settings, unique_topic, 54))

    async def alert_ids():
        async with RegistryClient(settings.registry_url) as registry:
            codec = ConfluentCodec(registry)
            return [(await codec.decode(m.value))[1]["candid"] for m in received]

    candids = asyncio.run(alert_ids())
    originals = {fastavro_record(p)[1]["candid"] for p in DATA.glob("ztf/*.avro")}
    assert len(set(candids)) == 54
    assert originals <= set(candids)


def test_simulated_lsst_alerts_are_valid_official_schema_alerts(services, settings, unique_topic):
    out = cli("produce", "--simulate", "10", "-t", unique_topic, "--count", "30", "--no-progress")
    assert "produced 30 alerts" in out
    received = asyncio.run(consume(settings, unique_topic, 30))
    official = fastavro.schema.load_schema(Path(get_schema_path(9, 0)) / "lsst.v9_0.alert.avsc")

    async def records():
        async with RegistryClient(settings.registry_url) as registry:
            codec = ConfluentCodec(registry)
            return [(await codec.decode(m.value))[1] for m in received]

    decoded = asyncio.run(records())
    assert all(fastavro.validate(r, official, raise_errors=False) for r in decoded)
    assert len({r["diaSource"]["diaSourceId"] for r in decoded}) == 30
