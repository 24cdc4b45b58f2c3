"""Lean streams: alert bytes with and without cutouts, the cost of stripping, Kafka settings.

Prints, for the ZTF and LSST samples of ``tests/data`` (asserts nothing; services must be
up: `make services`):

1. bytes per alert: whole body, lean body (:mod:`brokerapp.wire.lean`), cutouts record,
   and zlib-compressed (one message alone, and a batch of the distinct samples);
2. CPU per alert: ``CutoutStripper.strip`` against a fastavro decode, cutouts set to None,
   and re-encode; and a full fastavro decode of a whole body against one of a lean body
   (what every branch pays per alert);
3. producing into the local Kafka (own topics, deleted after): alerts/s, MB/s (of message
   values), process CPU per alert and stored bytes per alert (the topic's log segment
   files), with the aiokafka producer the project uses (each compression it supports with
   the installed packages, a few ``linger_ms`` / ``max_batch_size``) and with
   confluent-kafka (librdkafka has lz4 and zstd built in) for the codecs aiokafka lacks;
4. consuming those topics back: aiokafka with two fetch sizes (and confluent-kafka for the
   lz4 / zstd topics): alerts/s, MB/s, CPU per alert (decompression included).

Samples are looped to ``--count`` messages each with a different key, so batches hold
repeats of the same 18 (ZTF) or 50 (LSST) alerts: compression of a looped lean stream is
better than on a real stream; the "distinct" stored figure (each sample once, in one batch)
is the honest one. Figures on a shared 2-core machine: compare rows, not absolute values.

    python bench/bench_lean.py [--count N]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiokafka.codec
import fastavro
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics
from brokerapp.model.settings import load_settings
from brokerapp.wire.codecs import InlineCodec, SchemaCache, frame
from brokerapp.wire.lean import CutoutStripper, encode_cutouts

DATA = Path(__file__).parents[1] / "tests" / "data"
PARTITIONS = 4
SCHEMA_ID = 1
_IDLE_POLLS = 10
SETTINGS_GRID = ((2, 16384), (5, 262144), (5, 1048576), (20, 1048576))
"""(linger_ms, max_batch_size) of the aiokafka runs: the mirror's and faust's defaults first."""
"""Empty half-second polls after which a consumer gives up."""
"""Confluent framing of the bench messages (no registry needed: nothing decodes them)."""
KAFKA_DATA = Path(load_settings().home) / "kafka-local" / "node-1" / "data"


def samples(survey: str) -> tuple[list[bytes], list[bytes], list[bytes], list[tuple]]:
    """Whole and lean Confluent messages, cutouts records, (schema, stripper, body) each."""
    inline = InlineCodec(SchemaCache())
    full, lean, cutouts = [], [], []
    schemas = []
    for path in sorted((DATA / survey).glob("*.avro")):
        schema, (body,) = inline.record_bodies(path.read_bytes())
        stripper = CutoutStripper(schema)
        thin, values = stripper.strip(body)
        full.append(frame(SCHEMA_ID, body))
        lean.append(frame(SCHEMA_ID, thin))
        cutouts.append(encode_cutouts(stripper.cutouts(values, len(cutouts))))
        schemas.append((schema, stripper, body))
    return full, lean, cutouts, schemas


def per_alert_us(function: Callable[[], Any], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        function()
    return (time.process_time() - start) / count * 1e6


def cpu_costs(schemas: list) -> dict[str, float]:
    """Mean CPU (us) per alert of each operation, over every sample."""
    strip = fastavro_lean = decode_full = decode_lean = 0.0
    repeat = 20
    for schema, stripper, body in schemas:
        parsed = schema.parsed
        thin, _values = stripper.strip(body)

        def by_fastavro(parsed=parsed, body=body, fields=stripper.fields):
            record = fastavro.schemaless_reader(io.BytesIO(body), parsed)
            record.update(dict.fromkeys(fields))
            out = io.BytesIO()
            fastavro.schemaless_writer(out, parsed, record)
            return out.getvalue()

        strip += per_alert_us(lambda s=stripper, b=body: s.strip(b), repeat)
        fastavro_lean += per_alert_us(by_fastavro, repeat)
        decode_full += per_alert_us(
            lambda p=parsed, b=body: fastavro.schemaless_reader(io.BytesIO(b), p), repeat
        )
        decode_lean += per_alert_us(
            lambda p=parsed, b=thin: fastavro.schemaless_reader(io.BytesIO(b), p), repeat
        )
    n = len(schemas)
    return {
        "strip": strip / n,
        "fastavro_lean": fastavro_lean / n,
        "decode_full": decode_full / n,
        "decode_lean": decode_lean / n,
    }


def stored_bytes(topic: str) -> int | None:
    """Bytes of the topic's log segment files on the local broker (None if not found)."""
    total = 0
    found = False
    for partition in range(PARTITIONS):
        folder = KAFKA_DATA / f"{topic}-{partition}"
        if folder.is_dir():
            found = True
            total += sum(f.stat().st_size for f in folder.glob("*.log"))
    return total if found else None


def looped(values: list[bytes], count: int) -> list[bytes]:
    return [values[i % len(values)] for i in range(count)]


async def aio_produce(
    bootstrap: str,
    topic: str,
    values: list[bytes],
    compression: str | None,
    linger: int,
    batch: int,
) -> tuple[float, float, int]:
    """Send with aiokafka as the project's producers do; (wall s, CPU s, stored bytes)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type=compression,
        linger_ms=linger,
        max_batch_size=batch,
        max_request_size=load_settings().max_message_bytes,
    )
    await producer.start()
    try:
        await warm_up(producer, topic)
        before = stored_bytes(topic) or 0
        wall, cpu = time.perf_counter(), time.process_time()
        futures = [await producer.send(topic, v, key=b"%d" % i) for i, v in enumerate(values)]
        await asyncio.gather(*futures)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await producer.stop()
    return wall, cpu, (stored_bytes(topic) or 0) - before


async def warm_up(producer: AIOKafkaProducer, topic: str) -> None:
    """One tiny message per partition, so that connections and leaders are there."""
    for partition in range(PARTITIONS):
        while True:
            try:
                await (await producer.send(topic, b"", partition=partition))
                break
            except KafkaError:
                await asyncio.sleep(0.2)


def rd_produce(
    bootstrap: str, topic: str, values: list[bytes], compression: str, linger: int, batch: int
) -> tuple[float, float, int]:
    """Send with confluent-kafka (librdkafka); (wall s, CPU s, stored bytes)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": compression,
            "linger.ms": linger,
            "batch.size": batch,
            "message.max.bytes": load_settings().max_message_bytes,
        }
    )
    for partition in range(PARTITIONS):
        producer.produce(topic, b"", partition=partition)
    producer.flush(60)
    before = stored_bytes(topic) or 0
    wall, cpu = time.perf_counter(), time.process_time()
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, value, key=b"%d" % i)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, (stored_bytes(topic) or 0) - before


async def aio_consume(
    bootstrap: str, topic: str, count: int, fetch: int
) -> tuple[int, float, float]:
    """Read ``count`` messages from the start with aiokafka; (read, wall s, CPU s)."""
    wall, cpu = time.perf_counter(), time.process_time()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=fetch,
        fetch_max_bytes=max(fetch, 50 * 1024 * 1024),
    )
    await consumer.start()
    try:
        seen = 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=5000, max_records=10_000)
            if not batches:
                break
            seen += sum(len(messages) for messages in batches.values())
        return seen, time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await consumer.stop()


def rd_consume(bootstrap: str, topic: str, count: int, fetch: int) -> tuple[int, float, float]:
    """Read ``count`` messages from the start with confluent-kafka; (read, wall s, CPU s)."""
    wall, cpu = time.perf_counter(), time.process_time()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "enable.auto.commit": False,
            "max.partition.fetch.bytes": fetch,
            "fetch.max.bytes": max(fetch, 50 * 1024 * 1024),
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    seen = 0
    last = wall
    idle = 0
    while seen < count and idle < _IDLE_POLLS:
        messages = consumer.consume(min(1000, count - seen), 0.5)
        idle = 0 if messages else idle + 1
        if messages:  # librdkafka waits the whole timeout for a batch it cannot fill
            seen += sum(1 for m in messages if m.error() is None)
            last = time.perf_counter()
    used = time.process_time() - cpu
    consumer.close()
    return seen, last - wall, used


def run_count(values: list[bytes], budget_mb: float, cap: int, slow: bool) -> int:
    """Messages of one run: ``budget_mb`` of values (a tenth for aiokafka's slow gzip)."""
    mean = sum(map(len, values)) / len(values)
    return max(len(values), min(cap, int(budget_mb * 1e6 / mean / (10 if slow else 1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=30.0, help="MB of values per producer run")
    parser.add_argument("--count", type=int, default=5000, help="most messages per run")
    args = parser.parse_args()
    settings = load_settings()
    bootstrap = settings.kafka_bootstrap
    prefix = f"lean-bench-{uuid.uuid4().hex[:6]}"
    topic_config = {"max.message.bytes": str(settings.max_message_bytes)}
    aio_codecs: list[str | None] = [None, "gzip"]
    if aiokafka.codec.has_lz4():
        aio_codecs.append("lz4")
    if aiokafka.codec.has_zstd():
        aio_codecs.append("zstd")
    print(
        f"aiokafka {aiokafka.__version__}: lz4 {aiokafka.codec.has_lz4()}, "
        f"zstd {aiokafka.codec.has_zstd()} (both need the cramjam package), gzip True "
        "(Python's gzip module, level 9)"
    )
    created: list[str] = []

    def new_topic(name: str) -> str:
        topic = f"{prefix}-{name}-{len(created)}"
        ensure_topics(bootstrap, [topic], PARTITIONS, topic_config)
        created.append(topic)
        return topic

    try:
        for survey in ("ztf", "lsst"):
            full, lean, cutouts, schemas = samples(survey)
            print(f"\n== {survey}: {len(full)} samples")
            mean = lambda xs: sum(map(len, xs)) / len(xs)  # noqa: E731
            print(
                f"bytes/alert: whole {mean(full):,.0f}  lean {mean(lean):,.0f}  "
                f"cutouts record {mean(cutouts):,.0f}"
            )
            for name, xs in (("whole", full), ("lean", lean), ("cutouts", cutouts)):
                alone = sum(len(zlib.compress(x, 6)) for x in xs) / len(xs)
                batch = len(zlib.compress(b"".join(xs), 6)) / len(xs)
                print(f"  zlib-6 {name}: alone {alone:,.0f}  distinct batch {batch:,.0f}")
            costs = cpu_costs(schemas)
            print(
                f"CPU us/alert: strip {costs['strip']:.1f}  fastavro decode+null+encode "
                f"{costs['fastavro_lean']:.0f}  |  fastavro decode whole "
                f"{costs['decode_full']:.0f}  lean {costs['decode_lean']:.0f}"
            )
            runs = []
            for body, values in (("whole", full), ("lean", lean)):
                for codec in aio_codecs:
                    for linger, batch in SETTINGS_GRID:
                        runs.append(("aiokafka", body, values, codec, linger, batch))
                for rd_codec in ("none", "lz4", "zstd", "gzip"):
                    runs.append(("librdkafka", body, values, rd_codec, 5, 1048576))
            print(
                f"{'client':<10} {'body':<5} {'codec':<5} {'linger':>6} {'batch':>8} "
                f"{'alerts':>6} {'alerts/s':>9} {'MB/s':>6} {'cpu us':>7} {'stored':>8} "
                f"{'distinct':>8}"
            )
            consumed = []
            distinct: dict[tuple, float] = {}
            for client, body, values, codec, linger, batch in runs:
                slow = client == "aiokafka" and codec == "gzip" and body == "whole"
                messages = looped(values, run_count(values, args.mb, args.count, slow))
                topic = new_topic(survey)
                key = (client, body, codec)
                if client == "aiokafka":
                    wall, cpu, stored = asyncio.run(
                        aio_produce(bootstrap, topic, messages, codec, linger, batch)
                    )
                    if key not in distinct:
                        once = asyncio.run(
                            aio_produce(bootstrap, new_topic(survey), values, codec, 50, 2**23)
                        )[2]
                        distinct[key] = once / len(values)
                else:
                    wall, cpu, stored = rd_produce(bootstrap, topic, messages, codec, linger, batch)
                    if key not in distinct:
                        once = rd_produce(bootstrap, new_topic(survey), values, codec, 50, 2**23)[2]
                        distinct[key] = once / len(values)
                size = sum(map(len, messages))
                print(
                    f"{client:<10} {body:<5} {codec or 'none':<5} {linger:>6} {batch:>8} "
                    f"{len(messages):>6} {len(messages) / wall:>9,.0f} {size / 1e6 / wall:>6.1f} "
                    f"{cpu / len(messages) * 1e6:>7.0f} {stored / len(messages):>8,.0f} "
                    f"{distinct[key]:>8,.0f}"
                )
                if (linger, batch) == (5, 1048576):
                    consumed.append(
                        (client, body, codec, topic, size / len(messages), len(messages))
                    )
            print(
                "(stored, distinct: bytes per alert in the topic's log files, looped / each once)"
            )
            print(
                f"{'consumer':<10} {'body':<5} {'codec':<5} {'fetch':>8} {'alerts':>6} "
                f"{'alerts/s':>9} {'MB/s':>6} {'cpu us':>7}"
            )
            for client, body, codec, topic, mean_size, count in consumed:
                for fetch in (1024 * 1024, 8 * 1024 * 1024):
                    total = count + PARTITIONS  # and the warm-up messages
                    if client == "aiokafka":
                        seen, wall, cpu = asyncio.run(aio_consume(bootstrap, topic, total, fetch))
                    else:
                        seen, wall, cpu = rd_consume(bootstrap, topic, total, fetch)
                    label = f"{client:<10} {body:<5} {codec or 'none':<5} {fetch:>8}"
                    print(
                        f"{label} {seen:>6} "
                        f"{seen / wall:>9,.0f} {seen * mean_size / 1e6 / wall:>6.1f} "
                        f"{cpu / seen * 1e6:>7.0f}"
                    )
            print("(consumer timing includes connecting: compare rows of one survey and body)")
    finally:
        delete_topics(bootstrap, created)
        print(f"\ndeleted {len(created)} bench topics")


if __name__ == "__main__":
    main()
