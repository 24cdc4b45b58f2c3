"""Fast branches: ssfilter and a 10-filter node beside a bare fastavro decode loop.

Needs the services (`make services`). For each survey's samples (looped to ``--count``
alerts with the same bytes), in one run on the same cluster:

1. ``decode only``: ``fastavro.schemaless_reader`` over the same bodies, parsed schema
   cached, in this process: the ceiling of a Python branch that decodes every alert.
2. ``ssfilter x1``: one ``faust -A agents.ssfilter worker`` over a 4-partition buffer topic
   filled beforehand; the rate is alerts received over time, from its status page.
3. ``ssfilter x2``: two workers of the same branch (one consumer group) on the same topic.
4. ``filters x1``: one ``faust -A agents.filters worker`` running Filter001..Filter010.
5. ``watchlist x1``: one ``faust -A agents.watchlist worker`` matching the same topic (the
   zone lookup of every alert; no watchlist loaded, so no output).

Per-alert times come from the workers' status pages (last minute): ``decoding`` is the decode,
``processing`` decode plus the branch's work. Then end-to-end latency (append time in the
buffer to append time in the output topic) of ssfilter at ``--rate`` alerts/s offered.

Usage: ``python -m bench.bench_branches [--count N] [--rate HZ] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, Producer

from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics
from brokerapp.adapters.registry import RegistryClient
from brokerapp.model.settings import load_settings
from brokerapp.runtime.topic_config import alerts_topic_config
from brokerapp.tools.produce import simulate
from tests.integration.workers import WorkerRun, free_port

DATA = Path(__file__).parents[1] / "tests" / "data"


def _sources(survey: str) -> list[tuple[dict, dict]]:
    """(writer schema, record) of the samples, or of simulated LSST 9.0 alerts without cutouts
    (``small``: the per-message cost without the bytes)."""
    if survey == "small":
        out = []
        for source in simulate(50, "9.0", seed=2):
            record = dict(source.record)
            for cutout in ("cutoutDifference", "cutoutScience", "cutoutTemplate"):
                record[cutout] = None
            out.append((source.schema.raw, record))
        return out
    out = []
    for path in sorted(DATA.glob(f"{survey}/*.avro")):
        reader = fastavro.reader(io.BytesIO(path.read_bytes()))
        out.append((reader.writer_schema, next(reader)))
    return out


async def framed_samples(settings, topic: str, survey: str) -> tuple[list[bytes], list, dict]:
    """Confluent-framed sample values (local registry), their bodies and parsed schemas."""
    values, bodies, schemas = [], [], {}
    async with RegistryClient(settings.registry_url) as registry:
        for writer_schema, record in _sources(survey):
            schema_id = await registry.register(f"{topic}-value", writer_schema)
            parsed = schemas.setdefault(schema_id, fastavro.parse_schema(writer_schema))
            body = io.BytesIO()
            fastavro.schemaless_writer(body, parsed, record)
            values.append(b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue())
            bodies.append((schema_id, body.getvalue()))
    return values, bodies, schemas


def decode_rate(bodies, schemas, count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        schema_id, body = bodies[n % len(bodies)]
        fastavro.schemaless_reader(io.BytesIO(body), schemas[schema_id])
    return count / (time.perf_counter() - started)


def fill(settings, topic: str, values: list[bytes], count: int, rate: float = 0.0) -> None:
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "message.max.bytes": 10485760,
            "linger.ms": 0 if rate else 5,
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
                producer.produce(topic, values[n % len(values)], key=str(n).encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)


def worker(base: Path, prefix: str, module: str, path: str, port_setting: str, n: int, **env):
    run = WorkerRun(base / f"{prefix}-{n}", module=module, path=path, port_setting=port_setting)
    run.workdir.mkdir(parents=True)
    run.prefix = prefix
    run.port = free_port()
    run.env_overrides.update(env, BROKER_INSTANCE_ID=str(n))
    return run


def measure(runs: list[WorkerRun], count: int) -> tuple[float, dict]:
    """Start the workers, then the rate of alerts received from first to last."""
    for run in runs:
        run.start()
    first = None
    while True:
        got = sum(run.status()["received"] for run in runs)
        now = time.monotonic()
        if got and first is None:
            first = (now, got)
        if got >= count:
            break
        time.sleep(0.2)
    status = runs[0].status()
    for run in runs:
        run.stop()
    rate = (got - first[1]) / (now - first[0]) if now > first[0] else float("nan")
    return rate, status


def append_times(settings, topics: list[str], count: int) -> dict[bytes, int]:
    """Key -> broker append time of the messages of local topics."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "max.partition.fetch.bytes": 10485760,
        }
    )
    consumer.subscribe(topics)
    out: dict[bytes, int] = {}
    idle = 0
    while len(out) < count and idle < 5:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            idle += 1
            continue
        out[msg.key()] = msg.timestamp()[1]
    consumer.close()
    return out


def ms(summary: dict, name: str) -> str:
    value = summary.get(name)
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="alerts per survey")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered rate (latency)")
    parser.add_argument("--seconds", type=float, default=15.0, help="latency run length")
    parser.add_argument("--surveys", default="ztf,lsst", help="surveys to measure (or none)")
    parser.add_argument(
        "--latency-survey", default="small", help="ztf, lsst or small: samples of the latency run"
    )
    args = parser.parse_args()
    settings = load_settings()
    print(f"fast branches: {args.count} alerts per survey, 4 partitions")
    print(
        "survey  run            alerts/s  vs decode  decode p50 ms  processing p50 ms  "
        "(beyond decode)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for survey in [s for s in args.surveys.split(",") if s in ("ztf", "lsst", "small")]:
            probe = WorkerRun(base)
            topic = f"{probe.prefix}-alerts"
            ensure_topics(settings.kafka_bootstrap, [topic], 4, alerts_topic_config(-1, 10485760))
            values, bodies, schemas = asyncio.run(framed_samples(settings, topic, survey))
            fill(settings, topic, values, args.count)
            decode = decode_rate(bodies, schemas, args.count)
            print(f"{survey:6s}  decode only    {decode:9.0f}       100%")
            common = {"BROKER_ALERTS_TOPIC": topic, "BROKER_ALERTS_PARTITIONS": "4"}
            cases = [
                ("ssfilter x1", "agents.ssfilter", "ssfilter", "BROKER_SSFILTER_WEB_PORT", 1, {}),
                ("ssfilter x2", "agents.ssfilter", "ssfilter", "BROKER_SSFILTER_WEB_PORT", 2, {}),
                (
                    "filters x1",
                    "agents.filters",
                    "filters",
                    "BROKER_FILTERS_WEB_PORT",
                    1,
                    {"BROKER_FILTERS": str(list(range(1, 11)))},
                ),
                (
                    "watchlist x1",
                    "agents.watchlist",
                    "watchlist",
                    "BROKER_WATCHLIST_WEB_PORT",
                    1,
                    {"BROKER_WATCHLIST_SOURCE_TOPIC": topic},
                ),
            ]
            for label, module, path, port_setting, workers, extra in cases:
                prefix = f"{probe.prefix}{label.replace(' ', '')}"
                env = {
                    **common,
                    **extra,
                    "BROKER_SOLAR_TOPIC": f"{prefix}-solar",
                    "BROKER_NONSOLAR_TOPIC": f"{prefix}-nonsolar",
                }
                runs = [
                    worker(base, prefix, module, path, port_setting, n, **env)
                    for n in range(1, workers + 1)
                ]
                rate, status = measure(runs, args.count)
                decoding, processing = status["decoding"], status["processing"]
                beyond = (
                    processing["p50_ms"] - decoding["p50_ms"]
                    if processing["p50_ms"] is not None and decoding["p50_ms"] is not None
                    else None
                )
                print(
                    f"{survey:6s}  {label:13s}  {rate:9.0f}  {rate / decode:8.0%}  "
                    f"{ms(decoding, 'p50_ms'):>13s}  {ms(processing, 'p50_ms'):>17s}  "
                    f"({'-' if beyond is None else f'{beyond:.3f}'})"
                )
            delete_topics(settings.kafka_bootstrap, [topic])

        probe = WorkerRun(base / "latency")
        topic = f"{probe.prefix}-alerts"
        ensure_topics(settings.kafka_bootstrap, [topic], 4, alerts_topic_config(-1, 10485760))
        values, _bodies, _schemas = asyncio.run(
            framed_samples(settings, topic, args.latency_survey)
        )
        run = worker(
            base,
            probe.prefix,
            "agents.ssfilter",
            "ssfilter",
            "BROKER_SSFILTER_WEB_PORT",
            9,
            BROKER_ALERTS_TOPIC=topic,
            BROKER_ALERTS_PARTITIONS="4",
            BROKER_SOLAR_TOPIC=f"{probe.prefix}-solar",
            BROKER_NONSOLAR_TOPIC=f"{probe.prefix}-nonsolar",
        )
        run.start()
        count = int(args.rate * args.seconds)
        fill(settings, topic, values, count, rate=args.rate)
        status = run.wait_status(lambda s: sum(s["sent"].values()) >= count, timeout=120)
        run.stop()
        appended = append_times(settings, [topic], count)
        out = append_times(settings, [f"{probe.prefix}-solar", f"{probe.prefix}-nonsolar"], count)
        start = min(appended.values()) + 2000  # the first 2 s warm the worker up
        latencies = sorted(out[k] - t for k, t in appended.items() if t >= start and k in out)
        p = statistics.quantiles(latencies, n=100)
        e2e = status["end_to_end"]
        print(
            f"ssfilter end to end at {args.rate:.0f} alerts/s offered ({args.latency_survey}, "
            f"{len(latencies)} "
            f"alerts after a 2 s warm-up): p50 {p[49]:.0f} ms, p99 {p[98]:.0f} ms, "
            f"max {latencies[-1]:.0f} ms (status page, whole run: p99 {ms(e2e, 'p99_ms')} ms)"
        )
        delete_topics(settings.kafka_bootstrap, [topic])


if __name__ == "__main__":
    main()
