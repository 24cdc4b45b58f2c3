"""Gateway throughput and added latency, beside a bare aiokafka copy loop.

Needs the services (`make services`). Everything runs on this machine against the same two
clusters in one run:

1. ``N`` upstream messages per input kind are published first (not timed): LSST samples in
   Confluent framing, ZTF samples as one Avro container per message, and small simulated LSST
   alerts without cutouts (per-message cost rather than bytes).
2. ``bare copy``: an aiokafka consumer/producer pair that writes to a local topic the same
   bytes the gateway writes, with no work (``acks=all``, commit per batch) -- the ceiling on
   this machine. For Confluent-framed input that is the input itself (the gateway rewrites
   4 bytes of ID); for ZTF containers it is each container's bare body, Confluent-framed,
   made beforehand and looked up by the sample number the message carries in a header, so
   both loops write the same (smaller) messages.
3. ``gateway``: the real worker (``faust -A agents.gateway worker``) mirroring the same
   topic.

Rates come from the local topics' broker append times (first to last message), so start-up
does not count; MB/s are of the bytes written locally (each output message's size). Then the
gateway's added latency: alerts offered upstream at a fixed rate
while the gateway runs; latency = local append time - upstream timestamp, per alert.

Usage: ``python -m bench.bench_gateway [--count N] [--rate HZ] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import fastavro
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer

from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics
from brokerapp.adapters.registry import registry_client
from brokerapp.model.settings import Settings, load_settings
from brokerapp.runtime.topic_config import alerts_topic_config
from brokerapp.tools.produce import Encoder, simulate
from brokerapp.wire.codecs import frame
from tests.integration.workers import GatewayRun

DATA = Path(__file__).parents[1] / "tests" / "data"


def ztf_outputs() -> list[bytes]:
    """What the gateway writes for each ZTF sample container: its body, Confluent-framed.

    The ID is a placeholder of the same 4 bytes (the bare copy's output size is what counts).
    """
    out = []
    for path in sorted(DATA.glob("ztf/*.avro")):
        reader = fastavro.reader(io.BytesIO(path.read_bytes()))
        record = next(reader)
        body = io.BytesIO()
        fastavro.schemaless_writer(body, fastavro.parse_schema(reader.writer_schema), record)
        out.append(frame(1, body.getvalue()))
    return out


def sample_values(kind: str, upstream_id: int | None) -> list[bytes]:
    if kind == "ztf":
        return [p.read_bytes() for p in sorted(DATA.glob("ztf/*.avro"))]
    if kind == "lsst":
        values = []
        for path in sorted(DATA.glob("lsst/*.avro")):
            reader = fastavro.reader(io.BytesIO(path.read_bytes()))
            record = next(reader)
            body = io.BytesIO()
            fastavro.schemaless_writer(body, fastavro.parse_schema(reader.writer_schema), record)
            values.append(frame(upstream_id, body.getvalue()))
        return values
    sources = simulate(50, "9.0", seed=1)
    encoder = Encoder("schemafile")
    values = []
    for source in sources:
        record = dict(source.record)
        for cutout in ("cutoutDifference", "cutoutScience", "cutoutTemplate"):
            record[cutout] = None
        values.append(frame(upstream_id, encoder.encode(record, source.schema)))
    return values


def publish(settings, topic: str, values: list[bytes], count: int, rate: float = 0.0) -> None:
    ensure_topics(
        settings.upstream_feed_bootstrap, [topic], 4, {"message.timestamp.type": "LogAppendTime"}
    )
    producer = Producer(
        {
            "bootstrap.servers": settings.upstream_feed_bootstrap,
            "message.max.bytes": settings.max_message_bytes,
            "linger.ms": 5,
        }
    )
    start = time.monotonic()
    for n in range(count):
        if rate:
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        while True:
            try:
                producer.produce(
                    topic,
                    values[n % len(values)],
                    headers=[("bench-sample", str(n % len(values)).encode())],
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)


def append_times(settings, topic: str, count: int) -> list[tuple[int, int | None, int]]:
    """Broker append time, origin-timestamp header and size of each message of a local topic."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": settings.max_message_bytes * 5,
            "max.partition.fetch.bytes": settings.max_message_bytes,
        }
    )
    consumer.subscribe([topic])
    out = []
    idle = 0
    while len(out) < count and idle < 30:
        msg = consumer.poll(1.0)
        if msg is None:
            idle += 1
            continue
        headers = dict(msg.headers() or [])
        origin = headers.get("origin-timestamp")
        out.append((msg.timestamp()[1], int(origin) if origin else None, len(msg.value())))
    consumer.close()
    return out


def rate_of(times: list[tuple[int, int | None, int]]) -> tuple[float, float]:
    """Return (alerts/s, output MB/s) from the append times and sizes of the output."""
    stamps = sorted(t for t, _o, _n in times)
    span = (stamps[-1] - stamps[0]) / 1000.0
    rate = (len(stamps) - 1) / span if span > 0 else float("inf")
    return rate, rate * statistics.mean(n for _t, _o, n in times) / 1e6


async def bare_copy(
    settings, source: str, target: str, count: int, outputs: list[bytes] | None = None
) -> None:
    """Copy ``count`` messages; with ``outputs``, write the one the sample header names."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=settings.upstream_feed_bootstrap,
        group_id=f"bench-bare-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=settings.max_message_bytes,
        fetch_max_bytes=50 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=settings.max_message_bytes,
        linger_ms=2,
    )
    await consumer.start()
    await producer.start()
    copied = 0
    try:
        while copied < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=settings.gateway_batch)
            futures = []
            for records in batch.values():
                for record in records:
                    value = record.value
                    if outputs is not None:
                        value = outputs[int(dict(record.headers)["bench-sample"])]
                    futures.append(
                        await producer.send(
                            target, value, key=record.key, headers=list(record.headers)
                        )
                    )
            await asyncio.gather(*futures)
            if batch:
                await consumer.commit()
            copied += len(futures)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="messages per input kind")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered rate (latency)")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency run length")
    parser.add_argument("--kinds", default="small,lsst,ztf", help="input kinds to measure")
    args = parser.parse_args()
    settings = load_settings()

    async def upstream_id_for(topic: str) -> int:
        reader = fastavro.reader(io.BytesIO(next(DATA.glob("lsst/*.avro")).read_bytes()))
        async with registry_client(settings, "upstream") as registry:
            return await registry.register(f"{topic}-value", reader.writer_schema)

    print(f"gateway benchmark: {args.count} messages per kind, batch {settings.gateway_batch}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in filter(None, args.kinds.split(",")):
            run = GatewayRun(Path(tmp) / kind)
            run.workdir.mkdir(parents=True)
            source = run.lsst_topic("20260101") if kind != "ztf" else run.ztf_topic("20260101")
            upstream_id = asyncio.run(upstream_id_for(source))
            if kind == "small":
                sim = simulate(1, "9.0")[0]
                upstream_id = asyncio.run(_register(settings, source, sim.schema.raw))
            values = sample_values(kind, upstream_id)
            size = statistics.mean(len(v) for v in values)
            publish(settings, source, values, args.count)
            bare_topic = f"{run.prefix}-bare"
            ensure_topics(
                settings.kafka_bootstrap,
                [bare_topic],
                4,
                alerts_topic_config(-1, settings.max_message_bytes),
            )
            outputs = ztf_outputs() if kind == "ztf" else None
            asyncio.run(bare_copy(settings, source, bare_topic, args.count, outputs))
            bare, bare_mb = rate_of(append_times(settings, bare_topic, args.count))
            run.start()
            run.wait_status(lambda s: s["mirrored"] >= args.count, timeout=600)
            run.stop()
            gateway, gateway_mb = rate_of(append_times(settings, run.alerts, args.count))
            print(
                f"  {kind:5s} {size / 1000:6.1f} kB/alert in: bare copy {bare:8.0f} alerts/s "
                f"({bare_mb:5.0f} MB/s out), gateway {gateway:8.0f} alerts/s "
                f"({gateway_mb:5.0f} MB/s out) = {gateway / bare:.0%} of bare"
            )
            delete_topics(settings.kafka_bootstrap, [bare_topic, run.alerts])
            delete_topics(settings.upstream_feed_bootstrap, [source])

        run = GatewayRun(Path(tmp) / "latency")
        run.workdir.mkdir(parents=True)
        source = run.lsst_topic("20260102")
        sim = simulate(1, "9.0")[0]
        upstream_id = asyncio.run(_register(settings, source, sim.schema.raw))
        ensure_topics(
            settings.upstream_feed_bootstrap,
            [source],
            4,
            {"message.timestamp.type": "LogAppendTime"},
        )
        run.start()
        count = int(args.rate * args.seconds)
        publish(settings, source, sample_values("small", upstream_id), count, rate=args.rate)
        run.wait_status(lambda s: s["mirrored"] >= count, timeout=120)
        status = run.status()
        run.stop()
        latencies = sorted(t - o for t, o, _n in append_times(settings, run.alerts, count))
        p = statistics.quantiles(latencies, n=100)
        print(
            f"  added latency at {args.rate:.0f} alerts/s offered ({len(latencies)} alerts): "
            f"p50 {p[49]:.1f} ms, p99 {p[98]:.1f} ms, max {latencies[-1]:.1f} ms "
            f"(status page: p99 {status['last_minute']['p99_ms']} ms)"
        )
        delete_topics(settings.kafka_bootstrap, [run.alerts])
        delete_topics(settings.upstream_feed_bootstrap, [source])


async def _register(settings: Settings, topic: str, schema: dict) -> int:
    async with registry_client(settings, "upstream") as registry:
        return await registry.register(f"{topic}-value", schema)


if __name__ == "__main__":
    main()
