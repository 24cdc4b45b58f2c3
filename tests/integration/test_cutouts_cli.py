"""`brokerapp cutouts ALERT_ID` against the real local Kafka.

A compacted cutouts topic of this test's own is filled with the cutouts records of sample
alerts (ZTF and LSST), keyed by alert ID, as aiokafka's default partitioner places them (the
way the runtime's producers write it), plus a stale record for one ID that a later record
replaces. The command, run as a subprocess with ``BROKER_CUTOUTS_TOPIC`` pointing there,
must print and write the stamps fastavro decodes from the original alert files.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import fastavro
import pytest
from aiokafka import AIOKafkaProducer

from brokerapp.adapters.cutouts import cutouts_key, cutouts_topic_config
from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics
from brokerapp.wire.codecs import InlineCodec, SchemaCache
from brokerapp.wire.lean import Cutouts, CutoutStripper, encode_cutouts

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
ZTF_FILE = sorted((DATA / "ztf").glob("*.avro"))[0]
LSST_FILES = sorted((DATA / "lsst").glob("*.avro"))[:3]


def _alert(path: Path) -> tuple[dict, bytes, CutoutStripper]:
    schema, (body,) = InlineCodec(SchemaCache()).record_bodies(path.read_bytes())
    record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed)
    return record, body, CutoutStripper(schema)


async def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=10 * 1024 * 1024)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def _brokerapp(topic: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BROKER_CUTOUTS_TOPIC": topic, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "brokerapp", "cutouts", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture
def cutouts_topic(services, settings, unique_topic):
    config = cutouts_topic_config(settings.alerts_retention_ms, settings.max_message_bytes)
    ensure_topics(settings.kafka_bootstrap, [unique_topic], 3, config)
    yield unique_topic
    delete_topics(settings.kafka_bootstrap, [unique_topic])


def test_cutouts_of_an_alert_are_printed_and_written(settings, cutouts_topic, tmp_path):
    ztf, ztf_body, ztf_stripper = _alert(ZTF_FILE)
    lsst = [_alert(path) for path in LSST_FILES]
    messages = []
    ztf_id = ztf["candid"]
    stale = Cutouts("ztf", ztf_id, {"science": b"old"}, {})
    messages.append((cutouts_key(ztf_id), encode_cutouts(stale)))
    _lean, values = ztf_stripper.strip(ztf_body)
    messages.append((cutouts_key(ztf_id), encode_cutouts(ztf_stripper.cutouts(values, ztf_id))))
    for record, body, stripper in lsst:
        alert_id = record["diaSource"]["diaSourceId"]
        _lean, values = stripper.strip(body)
        messages.append((cutouts_key(alert_id), encode_cutouts(stripper.cutouts(values, alert_id))))
    asyncio.run(_produce(settings.kafka_bootstrap, cutouts_topic, messages))

    done = _brokerapp(cutouts_topic, str(ztf_id), "--out", str(tmp_path / "ztf"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"ztf alert {ztf_id}"
    for field, kind in (
        ("cutoutScience", "science"),
        ("cutoutTemplate", "template"),
        ("cutoutDifference", "difference"),
    ):
        stamp = ztf[field]["stampData"]
        name = ztf[field]["fileName"]
        assert f"{kind}: {len(stamp)} bytes {name}" in done.stdout
        assert (tmp_path / "ztf" / name).read_bytes() == stamp

    record = lsst[1][0]
    alert_id = record["diaSource"]["diaSourceId"]
    done = _brokerapp(cutouts_topic, str(alert_id), "--out", str(tmp_path / "lsst"))
    assert done.returncode == 0, done.stderr
    for field, kind in (("cutoutScience", "science"), ("cutoutDifference", "difference")):
        assert (tmp_path / "lsst" / f"{alert_id}_{kind}.fits").read_bytes() == record[field]


def test_unknown_alert_id_fails_with_one_line(cutouts_topic):
    done = _brokerapp(cutouts_topic, "12345")
    assert done.returncode == 1
    assert f"no cutouts for alert 12345 in topic '{cutouts_topic}'" in done.stderr


def test_missing_topic_fails_with_one_line(services, unique_topic):
    done = _brokerapp(unique_topic, "12345")
    assert done.returncode == 1
    assert f"no topic '{unique_topic}'" in done.stderr
