"""What a user would write instead of the broker, run beside it by ``bench.bench_e2e``.

``python -m bench.baselines split BOOTSTRAP REGISTRY_URL SOURCE SOLAR NONSOLAR GROUP``
    The solar-system split hand-written with confluent-kafka and fastavro: poll the local
    buffer, look the schema up in the registry once per ID, decode every alert, send its
    bytes, key and headers to one of two topics by its raw fields (ZTF ``ssnamenr``; LSST
    ``diaSource.ssObjectId`` or an ``ssSource``), commit after the producer has flushed.
``python -m bench.baselines consume BOOTSTRAP SOURCE GROUP``
    The floor: poll the buffer and do nothing with the alerts.

Both run until SIGTERM, then print one JSON line: messages handled and, per message, the
latency from its ``origin-timestamp`` header (upstream append time) to the moment it was
handled (consume) or to the output's append time (split: read back by the bench).
"""

from __future__ import annotations

import io
import json
import signal
import sys
import time

import fastavro
import httpx
from confluent_kafka import Consumer, Producer

POLL_BATCH = 500


def origin(headers) -> float | None:
    for name, value in headers or ():
        if name == "origin-timestamp":
            return float(value)
    return None


def consumer(bootstrap: str, source: str, group: str) -> Consumer:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52428800,
            "max.partition.fetch.bytes": 10485760,
        }
    )
    c.subscribe([source])
    return c


def is_solar(record: dict) -> bool:
    if "candidate" in record:
        name = record["candidate"].get("ssnamenr")
        return name not in (None, "null")
    return bool(record["diaSource"].get("ssObjectId")) or record.get("ssSource") is not None


def split(bootstrap: str, registry: str, source: str, solar: str, nonsolar: str, group: str):
    schemas: dict[int, object] = {}
    http = httpx.Client(timeout=10)
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 10485760})
    c = consumer(bootstrap, source, group)
    handled = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        messages = c.consume(POLL_BATCH, 0.5)
        for msg in messages:
            if msg.error():
                continue
            value = msg.value()
            schema_id = int.from_bytes(value[1:5], "big")
            parsed = schemas.get(schema_id)
            if parsed is None:
                text = http.get(f"{registry}/schemas/ids/{schema_id}").json()["schema"]
                parsed = schemas[schema_id] = fastavro.parse_schema(json.loads(text))
            record = fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed)
            topic = solar if is_solar(record) else nonsolar
            while True:
                try:
                    producer.produce(topic, value, key=msg.key(), headers=msg.headers())
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            handled += 1
        if messages:
            producer.flush(60)
            c.commit(asynchronous=False)
    c.close()
    print(json.dumps({"handled": handled}))


def consume(bootstrap: str, source: str, group: str):
    c = consumer(bootstrap, source, group)
    latencies, origins = [], []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        for msg in c.consume(POLL_BATCH, 0.5):
            if msg.error():
                continue
            t = origin(msg.headers())
            if t is not None:
                latencies.append(time.time() * 1000.0 - t)
                origins.append(t)
    c.close()
    print(json.dumps({"handled": len(latencies), "latencies_ms": latencies, "origins_ms": origins}))


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    {"split": split, "consume": consume}[mode](*rest)
