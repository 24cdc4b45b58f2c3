"""VOEvents over VTP to a real Comet subscriber (``twistd comet``), schema-checked.

The broadcaster (:class:`brokerapp.adapters.notify.vtp.VTPBroadcaster`, as the voevent
worker runs it) serves packets built from real sample alerts; Comet, a VTP client from PyPI,
connects, answers iamalives, acknowledges each event and saves it. The test reads Comet's
files back and validates each against the VOEvent 2.0 XSD with lxml, checks the
acknowledgements, and replays the packets: Comet's "previously seen" check stores none again
(same IVORNs). ``test_voevent_worker_end_to_end`` runs the worker on real Kafka and the
real registry too.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import time
from pathlib import Path

import comet
import fastavro
import pytest
from lxml import etree

from brokerapp.adapters.notify.vtp import VTPBroadcaster
from brokerapp.domain.notify.notices import from_annotated
from brokerapp.domain.notify.voevent import PacketSettings, ivorn, packet
from tests.agents.harness import is_solar, samples

from .notify_servers import CometSubscriber, free_port

XSD = etree.XMLSchema(etree.parse(str(Path(comet.__path__[0]) / "schema" / "VOEvent-v2.0.xsd")))
PARAMS = PacketSettings(
    "test.example.org", "alerts", "test broker", "t@example.org", "http://x/{survey}/{alert_id}"
)


def notices():
    out = []
    for sample in samples("ztf") + samples("lsst"):
        if is_solar(sample):
            continue
        record = sample.record
        alert_id = (
            record["candidate"]["candid"]
            if sample.survey == "ztf"
            else record["diaSource"]["diaSourceId"]
        )
        annotation = {
            "alert_id": alert_id,
            "object_id": None,
            "watchlist_id": "wl1",
            "entry": "e",
            "separation_arcsec": 1.0,
            "mjd": None,
        }
        out.append(from_annotated({"alert": record, "annotations": [annotation]}))
    return out


async def wait_until(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_comet_receives_acknowledges_and_validates_every_voevent(tmp_path):
    broadcaster = VTPBroadcaster("127.0.0.1", free_port(), "ivo://test.example.org/vtp", 1.0, 10.0)
    await broadcaster.start()
    subscriber = CometSubscriber(tmp_path, "127.0.0.1", broadcaster.port)
    subscriber.start()
    try:
        await wait_until(lambda: broadcaster.status()["subscribers"] == 1, what="Comet connecting")
        items = notices()
        packets = [(packet(PARAMS, n), ivorn(PARAMS, n)) for n in items]
        for data, name in packets:
            assert await broadcaster.broadcast(data, name) == 1
        await wait_until(lambda: broadcaster.status()["acked"] == len(packets), what="acks")
        await wait_until(lambda: len(subscriber.received()) == len(packets), what="files")
        await wait_until(lambda: broadcaster.counts["iamalive_replies"] >= 1, what="iamalive")
        for data, name in packets:  # a replay: the same IVORNs
            await broadcaster.broadcast(data, name)
        await asyncio.sleep(3)
        status = broadcaster.status()
    finally:
        subscriber.stop()
        await broadcaster.stop()

    files = subscriber.received()
    assert len(files) == len(packets)  # the replay stored nothing new
    received = {}
    for path in files:
        doc = etree.parse(str(path)).getroot()
        assert XSD.validate(doc), (path, XSD.error_log)
        received[doc.get("ivorn")] = doc
    assert set(received) == {name for _data, name in packets}
    for notice in items:
        doc = received[ivorn(PARAMS, notice)]
        c1 = float(doc.findtext(".//Position2D/Value2/C1"))
        assert c1 == notice.ra
    assert status["dropped"] == 0 and status["nak"] == 0
    assert status["unacked"] == 0  # the replayed events were acknowledged too
    log = (tmp_path / "comet.log").read_text()
    assert "VOEvent ivo://test.example.org/alerts#watchlist-" in log


def _frame_annotated(schema_id, schema, record, annotation):
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body, fastavro.parse_schema(schema), {"alert": record, "annotations": [annotation]}
    )
    return struct.pack(">bI", 0, schema_id) + body.getvalue()


@pytest.mark.usefixtures("services")
async def test_voevent_worker_end_to_end(tmp_path, settings):
    """AnnotatedAlerts in Kafka -> voevent worker -> voevents topic and Comet."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from brokerapp.adapters.registry import RegistryClient
    from brokerapp.domain.watchlists.annotated import annotated_schema

    from .workers import WorkerRun

    vtp_port = free_port()
    run = WorkerRun(
        tmp_path,
        module="agents.voevent",
        path="voevent",
        port_setting="BROKER_VOEVENT_WEB_PORT",
    )
    topic = f"{run.prefix}-annotated-alerts"
    run.env_overrides.update(
        {
            "BROKER_ANNOTATED_ALERTS_TOPIC": topic,
            "BROKER_ANNOTATIONS_TOPIC": f"{run.prefix}-annotations",
            "BROKER_VOEVENTS_TOPIC": f"{run.prefix}-voevents",
            "BROKER_VTP_PORT": str(vtp_port),
            "BROKER_VOEVENT_AUTHORITY": "test.example.org",
        }
    )
    ztf = [s for s in samples("ztf") if not is_solar(s)][:4]
    schema = annotated_schema(json.loads(ztf[0].schema))
    registry = RegistryClient(settings.registry_url)
    schema_id = await registry.register(f"{topic}-value", schema)
    subscriber = CometSubscriber(tmp_path / "comet", "127.0.0.1", vtp_port)
    try:
        run.start()
        subscriber.start()
        run.wait_status(lambda st: st["vtp"]["subscribers"] == 1, what="Comet connecting")
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, max_request_size=2**23
        )
        await producer.start()
        try:
            for s in ztf:
                annotation = {
                    "alert_id": s.record["candidate"]["candid"],
                    "object_id": s.record["objectId"],
                    "watchlist_id": "wl1",
                    "entry": "e",
                    "separation_arcsec": 1.0,
                    "mjd": None,
                }
                value = _frame_annotated(schema_id, schema, s.record, annotation)
                await producer.send_and_wait(topic, value, key=s.record["objectId"].encode())
        finally:
            await producer.stop()
        await wait_until(lambda: len(subscriber.received()) == len(ztf), what="Comet's files")
        status = run.wait_status(lambda st: st["vtp"]["acked"] == len(ztf), what="acks")
    finally:
        subscriber.stop()
        run.stop()
    assert status["written"] == len(ztf) and status["failures"] == 0
    consumer = AIOKafkaConsumer(
        f"{run.prefix}-voevents",
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got = await consumer.getmany(timeout_ms=10000)
    finally:
        await consumer.stop()
    values = [r.value for rs in got.values() for r in rs]
    assert len(values) == len(ztf)
    expected = {
        f"ivo://test.example.org/alerts#watchlist-{s.record['candidate']['candid']}" for s in ztf
    }
    assert {etree.fromstring(v).get("ivorn") for v in values} == expected
    files = subscriber.received()
    assert {etree.parse(str(p)).getroot().get("ivorn") for p in files} == expected
    for path in files:
        assert XSD.validate(etree.parse(str(path)))
