"""The Avro backup and Parquet archivers on real Kafka and the real local registry.

Real ZTF and Rubin sample alerts are registered and framed as the gateway frames them, and
sent to a fresh ``alerts`` topic of 4 partitions. Both archiver workers run as a user runs
them (``faust -A agents.<archiver> worker``). The test then reads every file back with its
own readers (fastavro; pyarrow and DuckDB for Parquet) and checks them against the alerts
sent: every alert exactly once, a few field values from the input records, and each Avro
record's ``(partition, offset)`` pointing at the Kafka message that holds that alert. Then
fresh workers in new consumer groups replay the whole topic from the earliest offset: every
file must stay byte-identical and no file may appear or go.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import duckdb
import fastavro
import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka.admin import AdminClient, NewTopic

from brokerapp.adapters.registry import RegistryClient
from brokerapp.tools.services import ServiceError, Services
from tests.agents.harness import samples

from .workers import WorkerRun

pytestmark = pytest.mark.timeout(600)

BLOCK = 3
"""Offsets per file (small, so that one partition fills several files)."""


@pytest.fixture
def local_services(settings):
    """The two servers this test uses (local Kafka and registry) answering; not upstream's."""
    svc = Services(settings)
    needed = [s for s in svc.planned() if s.name in ("kafka-local-1", "registry-local")]
    if len(needed) != 2:
        pytest.fail("no services set up: run `brokerapp services up` (make test does)")
    try:
        svc.wait_ready(needed)
    except ServiceError as exc:
        pytest.fail(f"services not answering: {exc}")
    return svc


def alert_id(record: dict) -> int:
    return record["candid"] if "candid" in record else record["diaSource"]["diaSourceId"]


def tree(root: Path) -> dict[str, str]:
    """Every file under root (temporary ones too) -> SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def archiver(tmp_path: Path, module: str, path: str, port: str, alerts: str):
    run = WorkerRun(tmp_path / path, module=module, path=path, port_setting=port)
    run.workdir.mkdir(parents=True, exist_ok=True)
    run.env_overrides.update(
        {
            "BROKER_ALERTS_TOPIC": alerts,
            "BROKER_ARCHIVE_ROOT": str(tmp_path / "archive"),
            "BROKER_ARCHIVE_BLOCK_RECORDS": str(BLOCK),
            "BROKER_ARCHIVE_PARQUET_BLOCK_RECORDS": str(BLOCK),
            "BROKER_ARCHIVE_LINGER_SECONDS": "0.2",
            "BROKER_ARCHIVE_PARQUET_ROW_GROUP_ROWS": "2",
        }
    )
    return run


def runs(tmp_path: Path, alerts: str) -> list[WorkerRun]:
    """The two archivers, each with its own new app prefix (so a new consumer group)."""
    return [
        archiver(
            tmp_path, "agents.avro_archive", "avro-archive", "BROKER_AVRO_ARCHIVE_WEB_PORT", alerts
        ),
        archiver(
            tmp_path,
            "agents.parquet_archive",
            "parquet-archive",
            "BROKER_PARQUET_ARCHIVE_WEB_PORT",
            alerts,
        ),
    ]


def run_until_archived(workers: list[WorkerRun], count: int) -> list[dict]:
    try:
        for run in workers:
            run.start()
        return [
            run.wait_status(
                lambda st: st["archived"] >= count and st["backlog"] == 0,
                timeout=240,
                what="the archive, committed",
            )
            for run in workers
        ]
    finally:
        for run in workers:
            run.stop()


async def send(settings, topic: str, inputs) -> None:
    registry = RegistryClient(settings.registry_url)
    ids = {}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, max_request_size=2**23)
    await producer.start()
    try:
        for sample in inputs:
            if sample.schema not in ids:
                ids[sample.schema] = await registry.register(f"{topic}-value", sample.schema)
            body = io.BytesIO()
            fastavro.schemaless_writer(
                body, fastavro.parse_schema(json.loads(sample.schema)), sample.record
            )
            value = struct.pack(">bI", 0, ids[sample.schema]) + body.getvalue()
            key = str(alert_id(sample.record)).encode()
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
        await registry.close()


async def kafka_ids(settings, topic: str) -> dict[tuple[int, int], int]:
    """(partition, offset) -> alert ID of every message of the topic, from its own bytes."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=2**23,
    )
    await consumer.start()
    found: dict[tuple[int, int], int] = {}
    schemas: dict[int, object] = {}
    registry = RegistryClient(settings.registry_url)
    try:
        for _ in range(20):
            got = await consumer.getmany(timeout_ms=2000)
            for tp, records in got.items():
                for r in records:
                    schema_id = struct.unpack(">I", r.value[1:5])[0]
                    if schema_id not in schemas:
                        text = await registry.get_schema(schema_id)
                        schemas[schema_id] = fastavro.parse_schema(json.loads(text))
                    record = fastavro.schemaless_reader(io.BytesIO(r.value[5:]), schemas[schema_id])
                    found[(tp.partition, r.offset)] = alert_id(record)
            if not got and found:
                break
    finally:
        await consumer.stop()
        await registry.close()
    return found


async def test_files_read_back_equal_to_the_alerts_and_a_replay_changes_none(
    tmp_path, settings, local_services
):
    ztf, lsst = samples("ztf"), samples("lsst")[:20]
    inputs = {alert_id(s.record): s for s in ztf + lsst}
    first = runs(tmp_path, "")
    alerts = first[0].alerts  # the first worker's unique buffer name
    for run in first:
        run.env_overrides["BROKER_ALERTS_TOPIC"] = alerts
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    config = {"max.message.bytes": str(settings.max_message_bytes)}
    admin.create_topics([NewTopic(alerts, 4, config=config)])[alerts].result()
    await send(settings, alerts, list(inputs.values()))

    statuses = run_until_archived(first, len(inputs))
    assert all(st["failures"] == 0 and st["deadlettered"] == 0 for st in statuses)
    root = tmp_path / "archive"
    before = tree(root)
    assert not [name for name in before if Path(name).name.startswith(".")]  # no temporaries

    # Avro: every alert once, whole, and traced to its Kafka message.
    where = await kafka_ids(settings, alerts)
    assert sorted(where.values()) == sorted(inputs)
    seen: dict[int, dict] = {}
    avro_files = sorted(root.glob("avro/survey=*/night=*/*.avro"))
    parquet_files = sorted(root.glob("parquet/survey=*/night=*/*.parquet"))
    for status, written in zip(statuses, (avro_files, parquet_files), strict=True):
        assert status["files"] == len(written) and status["archived"] == len(inputs)
        assert status["bytes"] >= sum(p.stat().st_size for p in written)
        assert status["backlog"] == 0 and status["oldest_unwritten_age_s"] is None
    for path in avro_files:
        reader = fastavro.reader(io.BytesIO(path.read_bytes()))
        meta = reader.metadata
        partition = int(meta["broker.partition"])
        offsets = json.loads(meta["broker.offsets"])
        records = list(reader)
        assert meta["broker.topic"] == alerts and len(offsets) == len(records)
        assert max(offsets) // BLOCK == min(offsets) // BLOCK  # one offset block per file
        for offset, record in zip(offsets, records, strict=True):
            assert where[(partition, offset)] == alert_id(record)
            assert alert_id(record) not in seen
            seen[alert_id(record)] = record
    assert set(seen) == set(inputs)
    for key, sample in inputs.items():
        assert seen[key] == sample.record  # cutouts included
    ztf0 = ztf[0].record
    assert seen[ztf0["candid"]]["objectId"] == ztf0["objectId"]
    assert seen[ztf0["candid"]]["candidate"]["magpsf"] == ztf0["candidate"]["magpsf"]

    # Parquet: pyarrow per file, then DuckDB over the hive-partitioned tree.
    rows = {}
    for path in parquet_files:
        for row in pq.read_table(path).to_pylist():
            assert row["alert_id"] not in rows
            rows[row["alert_id"]] = row
    assert set(rows) == set(inputs)
    for sample in ztf:
        row = rows[sample.record["candid"]]
        assert (row["object_id"], row["magpsf"], row["ra"]) == (
            sample.record["objectId"],
            sample.record["candidate"]["magpsf"],
            sample.record["candidate"]["ra"],
        )
    for sample in lsst:
        row = rows[sample.record["diaSource"]["diaSourceId"]]
        assert (row["psfFlux"], row["band"]) == (
            sample.record["diaSource"]["psfFlux"],
            sample.record["diaSource"]["band"],
        )
        assert len(row["previous_detections"]) == len(sample.record["prvDiaSources"] or [])
    pattern = str(root / "parquet" / "**" / "*.parquet")
    con = duckdb.connect()
    counted = dict(
        con.execute(
            "SELECT survey, count(*) FROM read_parquet(?, hive_partitioning = true, "
            "union_by_name = true) GROUP BY survey",
            [pattern],
        ).fetchall()
    )
    assert counted == {"ztf": len(ztf), "lsst": len(lsst)}
    brightest = con.execute(
        "SELECT alert_id, magpsf FROM read_parquet(?, hive_partitioning = true, "
        "union_by_name = true) WHERE survey = 'ztf' ORDER BY magpsf LIMIT 1",
        [pattern],
    ).fetchone()
    expected = min(ztf, key=lambda s: s.record["candidate"]["magpsf"]).record
    assert brightest == (expected["candid"], expected["candidate"]["magpsf"])

    # Replay: new consumer groups read the whole buffer again from the earliest offset.
    again = runs(tmp_path / "replay", alerts)
    for run in again:
        run.env_overrides["BROKER_ARCHIVE_ROOT"] = str(root)
    replayed = run_until_archived(again, len(inputs))
    assert all(st["failures"] == 0 and st["reread"] >= 1 for st in replayed)
    assert tree(root) == before


def renumbered(sample, copy: int):
    """A sample alert under a new alert ID (``copy`` * 10**6 added), as a new alert."""
    if "candid" in sample.record:
        new = sample.record["candid"] + copy * 10**6
        record = dict(sample.record, candid=new)
        record["candidate"] = dict(sample.record["candidate"], candid=new)
    else:
        new = sample.record["diaSource"]["diaSourceId"] + copy * 10**6
        record = dict(sample.record, diaSource=dict(sample.record["diaSource"], diaSourceId=new))
        if "diaSourceId" in record:
            record["diaSourceId"] = new
    return type(sample)(sample.path, sample.schema, record)


async def test_a_worker_killed_mid_stream_leaves_every_alert_archived_once(
    tmp_path, settings, local_services
):
    lsst = samples("lsst")
    inputs = {}
    for copy in range(4):
        for sample in lsst:
            alert = renumbered(sample, copy)
            inputs[alert_id(alert.record)] = alert
    run = archiver(
        tmp_path, "agents.avro_archive", "avro-archive", "BROKER_AVRO_ARCHIVE_WEB_PORT", ""
    )
    run.env_overrides.update(
        {"BROKER_ALERTS_TOPIC": run.alerts, "BROKER_BRANCH_BATCH": "10"}  # many commits
    )
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    config = {"max.message.bytes": str(settings.max_message_bytes)}
    admin.create_topics([NewTopic(run.alerts, 4, config=config)])[run.alerts].result()
    await send(settings, run.alerts, list(inputs.values()))
    try:
        run.start()
        run.wait_status(lambda st: st["archived"] >= 40, timeout=240, what="some archived")
        run.kill()  # kill -9, mid-stream
        run.start()
        run.wait_status(
            lambda st: st["backlog"] == 0 and st["archived"] > 0, timeout=240, what="the rest"
        )
    finally:
        run.stop()
    seen: dict[int, int] = {}
    for path in sorted((tmp_path / "archive").glob("avro/survey=*/night=*/*.avro")):
        for record in fastavro.reader(io.BytesIO(path.read_bytes())):
            seen[alert_id(record)] = seen.get(alert_id(record), 0) + 1
    assert seen == {key: 1 for key in inputs}
