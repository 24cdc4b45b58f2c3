"""Archive files are the same bytes for the same alerts, whatever process writes them.

A replay must leave every file byte-identical, and a replay runs in another worker process:
each file is encoded here in two interpreters with different hash seeds (which reorder any
set or dict built from one), and the bytes compared. Then each file is read back with plain
fastavro / pyarrow and checked against the sample alerts it was made of.
"""

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import fastavro
import pyarrow.parquet as pq

REPO = Path(__file__).parents[2]
DATA = REPO / "tests" / "data"

ENCODE = """
import io, json, sys, fastavro
from pathlib import Path
from brokerapp.adapters.archive.avro import AvroEntry, encode_file
from brokerapp.adapters.archive.parquet import arrow_schema, encode_file as parquet_file
from brokerapp.domain.archive import parquet_row
from brokerapp.model.profiles import profile_for

kind, *paths = sys.argv[1:]
raws, records = [], []
for path in paths:
    reader = fastavro.reader(open(path, "rb"))
    raws.append(json.loads(reader.metadata["avro.schema"]))
    records.append(next(reader))
if kind == "avro":
    parsed = fastavro.parse_schema(raws[0])
    entries = []
    for offset, record in enumerate(records):
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed, record)
        entries.append(AvroEntry(offset, 1000 + offset, body.getvalue()))
    data = encode_file("avro/x.avro", raws[0], "alerts", 2, entries, "zstandard")
else:
    profile = profile_for(records[0])
    rows = [parquet_row(profile, r, "alerts", 2, o, 1000 + o) for o, r in enumerate(records)]
    data = parquet_file(arrow_schema(profile, raws[0]), rows, 2, "zstd")
sys.stdout.buffer.write(data)
"""


def encoded(kind: str, paths: list[Path], seed: str) -> bytes:
    env = {"PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", ENCODE, kind, *map(str, paths)],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def lsst_paths() -> list[Path]:
    return sorted((DATA / "lsst").glob("*.avro"))[:5]


def ztf_paths() -> list[Path]:
    """Five ZTF samples of one schema version (their schema has docs and defaults)."""
    by_schema: dict[str, list[Path]] = {}
    for path in sorted((DATA / "ztf").glob("*.avro")):
        text = fastavro.reader(open(path, "rb")).metadata["avro.schema"]
        by_schema.setdefault(text, []).append(path)
    return max(by_schema.values(), key=len)[:5]


def test_an_avro_backup_file_is_the_same_bytes_in_any_process_and_reads_back():
    paths = ztf_paths()
    first, second = encoded("avro", paths, "1"), encoded("avro", paths, "2")
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    reader = fastavro.reader(io.BytesIO(first))
    records = list(reader)
    expected = [next(fastavro.reader(open(p, "rb"))) for p in paths]
    assert records == expected
    assert json.loads(reader.metadata["broker.offsets"]) == [0, 1, 2, 3, 4]
    assert json.loads(reader.metadata["broker.timestamps"]) == [1000, 1001, 1002, 1003, 1004]
    assert reader.metadata["broker.partition"] == "2"
    assert reader.metadata["avro.codec"] == "zstandard"


def test_a_parquet_file_is_the_same_bytes_in_any_process_and_reads_back():
    paths = lsst_paths()
    first, second = encoded("parquet", paths, "1"), encoded("parquet", paths, "3")
    assert first == second
    table = pq.read_table(io.BytesIO(first))
    expected = [next(fastavro.reader(open(p, "rb"))) for p in paths]
    assert table.column("alert_id").to_pylist() == [r["diaSource"]["diaSourceId"] for r in expected]
    assert table.column("midpointMjdTai").to_pylist() == [
        r["diaSource"]["midpointMjdTai"] for r in expected
    ]
    assert pq.ParquetFile(io.BytesIO(first)).metadata.num_row_groups == 3  # 5 rows, 2 per group
