"""The Parquet archiver in memory: sample alerts in, hive-partitioned Parquet files out.

Expected values come from the raw sample records (ZTF ``candidate``, Rubin ``diaSource``),
not from the code under test.
"""

import hashlib
import json
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from agents.parquet_archive import build

from .harness import header, prepare, run_agent, samples

APPENDED = 1767225600.0


def configured(settings, tmp_path, **more):
    return settings.model_copy(
        update={"archive_root": str(tmp_path / "arch"), "archive_linger_seconds": 0.0, **more}
    )


async def feed(app, registry, alerts, first=0):
    async with run_agent(app, "process") as put:
        put.offsets[(put.topic, 0)] = first
        for sample in alerts:
            await put.put(registry.frame_sample(sample), timestamp=APPENDED)


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def test_rows_hold_the_detection_as_columns_and_previous_detections_nested(
    settings, registry, tmp_path
):
    settings = configured(settings, tmp_path, archive_parquet_row_group_rows=4)
    ztf, lsst = samples("ztf"), samples("lsst")[:10]
    app = build(settings)
    prepare(app)
    await feed(app, registry, ztf + lsst)

    root = tmp_path / "arch" / "parquet"
    paths = sorted(root.rglob("*.parquet"))
    assert {p.parent.parent.name for p in paths} == {"survey=ztf", "survey=lsst"}
    assert all(p.parent.name.startswith("night=") for p in paths)

    rows = {}
    for path in paths:
        for row in pq.read_table(path).to_pylist():
            rows[(path.parent.parent.name, row["alert_id"])] = row
    for sample in ztf:
        candidate = sample.record["candidate"]
        row = rows[("survey=ztf", sample.record["candid"])]
        assert row["object_id"] == sample.record["objectId"]
        assert (row["jd"], row["ra"], row["dec"], row["magpsf"]) == (
            candidate["jd"],
            candidate["ra"],
            candidate["dec"],
            candidate["magpsf"],
        )
        previous = [p for p in sample.record["prv_candidates"] or [] if p["candid"] is not None]
        assert [p["candid"] for p in row["previous_detections"]] == [p["candid"] for p in previous]
    for sample in lsst:
        source = sample.record["diaSource"]
        row = rows[("survey=lsst", source["diaSourceId"])]
        assert (row["ra"], row["dec"], row["psfFlux"], row["band"]) == (
            source["ra"],
            source["dec"],
            source["psfFlux"],
            source["band"],
        )
        assert [p["diaSourceId"] for p in row["previous_detections"]] == [
            p["diaSourceId"] for p in sample.record["prvDiaSources"] or []
        ]
    assert len(rows) == len(ztf) + len(lsst)
    # Hive partitioning: survey and night come back as columns of a dataset scan.
    table = ds.dataset(str(root), format="parquet", partitioning="hive").to_table(
        columns=["alert_id", "survey", "night"], filter=ds.field("survey") == "lsst"
    )
    assert sorted(table.column("alert_id").to_pylist()) == sorted(
        s.record["diaSource"]["diaSourceId"] for s in lsst
    )
    # Row groups of the configured size (16 ZTF alerts of one schema share files).
    biggest = max(paths, key=lambda p: pq.ParquetFile(p).metadata.num_rows)
    meta = pq.ParquetFile(biggest).metadata
    assert meta.num_rows > 4 and all(
        meta.row_group(i).num_rows <= 4 for i in range(meta.num_row_groups)
    )


async def test_a_replay_leaves_every_file_byte_identical(settings, registry, tmp_path):
    settings = configured(settings, tmp_path, archive_parquet_block_records=5)
    alerts = samples("lsst")[:12]
    app = build(settings)
    prepare(app)
    await feed(app, registry, alerts)
    before = digests(tmp_path / "arch")
    again = build(settings)
    prepare(again)
    await feed(again, registry, alerts[:7])
    await feed(again, registry, alerts[7:], first=7)
    assert digests(tmp_path / "arch") == before
    assert len(before) == 3  # offsets 0-4, 5-9, 10-11 of one night and schema


async def test_alerts_of_a_schema_with_no_columns_are_dead_lettered_the_rest_archived(
    settings, registry, tmp_path
):
    settings = configured(settings, tmp_path)
    good, odd = samples("lsst")[:2]
    schema = json.loads(odd.schema)
    source = next(f for f in schema["fields"] if f["name"] == "diaSource")
    record_type = source["type"][0] if isinstance(source["type"], list) else source["type"]
    ra = next(f for f in record_type["fields"] if f["name"] == "ra")
    ra["type"] = ["double", "string"]  # a union Parquet has no column type for
    odd = type(odd)(odd.path, json.dumps(schema), odd.record)
    app = build(settings)
    sent = prepare(app)
    await feed(app, registry, [good, odd])
    dead = sent.on(f"{settings.topic_prefix}parquet-archive-deadletter")
    assert len(dead) == 1 and b"union" in header(dead[0], "error-reason")
    table = pq.read_table(next((tmp_path / "arch").rglob("*.parquet")))
    assert table.column("alert_id").to_pylist() == [good.record["diaSource"]["diaSourceId"]]
