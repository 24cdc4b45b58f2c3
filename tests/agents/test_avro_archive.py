"""The Avro backup archiver in memory: sample alerts in, container files under a tmp root.

Expected values come from the raw sample records (read with plain fastavro by the harness)
and from the file layout written down in the README, not from the code under test.
"""

import hashlib
import io
import json
import uuid
from pathlib import Path

import fastavro
import fsspec
from fastavro.schema import to_parsing_canonical_form

from agents.avro_archive import build
from brokerapp.tools.overview import summarise, workers

from .harness import header, prepare, run_agent, samples


def read_back(root: Path) -> dict[str, tuple[dict, list[dict]]]:
    """Every .avro file under root -> (metadata, records), read with plain fastavro."""
    found = {}
    for path in sorted(root.rglob("*.avro")):
        reader = fastavro.reader(io.BytesIO(path.read_bytes()))
        found[str(path.relative_to(root))] = (reader.metadata, list(reader))
    return found


def canonical(text: str) -> str:
    return to_parsing_canonical_form(json.loads(text))


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def configured(settings, tmp_path, **more):
    return settings.model_copy(
        update={"archive_root": str(tmp_path / "arch"), "archive_linger_seconds": 0.0, **more}
    )


APPENDED = 1767225600.0
"""Append time of every input (a replay reads the same times back from Kafka)."""


async def feed(app, registry, alerts, partition=0, first=0):
    async with run_agent(app, "process") as put:
        put.offsets[(put.topic, partition)] = first
        for sample in alerts:
            await put.put(registry.frame_sample(sample), partition=partition, timestamp=APPENDED)


async def test_alerts_are_backed_up_with_their_schema_offsets_and_bytes(
    settings, registry, tmp_path
):
    settings = configured(settings, tmp_path)
    ztf, lsst = samples("ztf"), samples("lsst")[:5]
    app = build(settings)
    prepare(app)
    await feed(app, registry, ztf + lsst)

    files = read_back(tmp_path / "arch")
    assert all(name.startswith("avro/survey=") for name in files)
    by_id = {}
    for name, (meta, records) in files.items():
        offsets = json.loads(meta["broker.offsets"])
        assert len(offsets) == len(records) and offsets == sorted(offsets)
        assert meta["broker.topic"] == settings.alerts_topic
        assert meta["avro.codec"] == settings.archive_avro_codec
        for offset, record in zip(offsets, records, strict=True):
            alert_id = (
                record["candid"] if "candid" in record else record["diaSource"]["diaSourceId"]
            )
            by_id[alert_id] = (name, offset, record)
    expected = {s.record["candid"]: s for s in ztf} | {
        s.record["diaSource"]["diaSourceId"]: s for s in lsst
    }
    assert set(by_id) == set(expected)
    for alert_id, (name, _offset, record) in by_id.items():
        sample = expected[alert_id]
        assert record == sample.record  # whole, cutouts included
        assert f"survey={sample.survey}/" in name
    # ZTF sample 0: offset 0, jd 2458493.7601968 -> UTC 2019-01-10 06:14 -> night and hour.
    first = ztf[0].record
    name, offset, _ = by_id[first["candid"]]
    assert offset == 0
    assert name.startswith("avro/survey=ztf/night=20190110/ztf-20190110-06h-p00-000000000000-")
    # The writer schema in each file is the alert's own (same canonical form).
    meta, _ = files[name]
    assert canonical(meta["avro.schema"]) == canonical(ztf[0].schema)
    assert app.status()["archived"] == len(ztf) + len(lsst)
    assert app.status()["failures"] == 0


async def test_a_replay_leaves_every_file_byte_identical(settings, registry, tmp_path):
    settings = configured(settings, tmp_path, archive_block_records=4)
    alerts = samples("ztf")[:10]
    app = build(settings)
    prepare(app)
    await feed(app, registry, alerts)
    before = digests(tmp_path / "arch")
    # A fresh worker (nothing in memory) replays the same offsets, in other batch sizes.
    again = build(settings)
    prepare(again)
    await feed(again, registry, alerts[:3])
    await feed(again, registry, alerts[3:], first=3)
    assert digests(tmp_path / "arch") == before
    assert again.status()["reread"] >= 1


async def test_a_restarted_worker_extends_a_half_filled_block(settings, registry, tmp_path):
    settings = configured(settings, tmp_path, archive_block_records=1000)
    alerts = samples("ztf")[:6]
    app = build(settings)
    prepare(app)
    await feed(app, registry, alerts[:3])
    restarted = build(settings)
    prepare(restarted)
    await feed(restarted, registry, alerts[3:], first=3)
    ids = sorted(
        r["candid"] for _m, records in read_back(tmp_path / "arch").values() for r in records
    )
    assert ids == sorted(s.record["candid"] for s in alerts)


async def test_an_undecodable_alert_is_dead_lettered_and_the_rest_archived(
    settings, registry, tmp_path
):
    settings = configured(settings, tmp_path)
    good = samples("ztf")[:2]
    app = build(settings)
    sent = prepare(app)
    async with run_agent(app, "process") as put:
        await put.put(registry.frame_sample(good[0]))
        await put.put(registry.frame_sample(good[1])[:200])  # truncated body
        await put.put(b"\x00\x00\x00\x27\x0fnope")  # unknown schema ID
    dead = sent.on(f"{settings.topic_prefix}avro-archive-deadletter")
    assert len(dead) == 2
    assert all(header(m, "error-reason") for m in dead)
    ids = [r["candid"] for _m, records in read_back(tmp_path / "arch").values() for r in records]
    assert ids == [good[0].record["candid"]]
    assert app.status()["deadlettered"] == 2


async def test_a_failing_write_is_retried_before_the_commit(
    settings, registry, tmp_path, monkeypatch
):
    settings = configured(
        settings, tmp_path, gateway_retry_backoff=0.01, gateway_retry_backoff_max=0.01
    )
    from brokerapp.adapters.archive import files

    real = files.write_atomic
    calls = []

    def flaky(root, relpath, data):
        calls.append(relpath)
        if len(calls) <= 2:
            raise OSError("disk full")
        real(root, relpath, data)

    monkeypatch.setattr(files, "write_atomic", flaky)
    app = build(settings)
    prepare(app)
    alert = samples("ztf")[0]
    await feed(app, registry, [alert])
    assert app.status()["failures"] == 2
    assert [r["candid"] for _m, rs in read_back(tmp_path / "arch").values() for r in rs] == [
        alert.record["candid"]
    ]


async def test_the_overview_shows_files_written_bytes_failures_and_backlog(
    settings, registry, tmp_path
):
    settings = configured(settings, tmp_path, archive_block_records=2)
    app = build(settings)
    prepare(app)
    await feed(app, registry, samples("ztf")[:4])
    row = summarise("avro-archive", "u", app.status())
    on_disk = sorted((tmp_path / "arch").rglob("*.avro"))
    assert row["sent"] >= len(on_disk) and app.status()["files"] == len(on_disk)
    assert row["bytes"] >= sum(p.stat().st_size for p in on_disk)
    assert (row["failures"], row["received"], row["oldest_s"]) == (0, 4, None)
    assert workers(settings)["avro-archive"] == (settings.avro_archive_web_port, "avro-archive")
    assert workers(settings)["parquet-archive"][1] == "parquet-archive"


async def test_an_fsspec_root_gets_the_same_files_and_a_restart_extends_them(
    settings, registry, tmp_path
):
    root = f"memory://avro-archive-{uuid.uuid4().hex}"
    settings = configured(settings, tmp_path, archive_root=root, archive_block_records=1000)
    alerts = samples("ztf")[:6]
    app = build(settings)
    prepare(app)
    await feed(app, registry, alerts[:3])
    restarted = build(settings)  # nothing in memory: reads the files back from the root
    prepare(restarted)
    await feed(restarted, registry, alerts[3:], first=3)
    fs = fsspec.filesystem("memory")
    names = [p for p in fs.find(root.removeprefix("memory://")) if p.endswith(".avro")]
    assert names and all("/avro/survey=ztf/night=" in p for p in names)
    assert not [p for p in fs.find(root.removeprefix("memory://")) if p.endswith(".tmp")]
    ids = sorted(r["candid"] for p in names for r in fastavro.reader(io.BytesIO(fs.cat_file(p))))
    assert ids == sorted(s.record["candid"] for s in alerts)
    assert restarted.status()["reread"] >= 1
