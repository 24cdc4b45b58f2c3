"""What the archivers cost: bytes per alert and time per alert per format and codec, no Kafka.

Usage: ``python -m bench.bench_archive [--repeat 20]``

Prints, and asserts nothing (figures depend on the machine and what else runs on it). The
inputs are the real sample alerts of ``tests/data``, each once per file (repeating one alert
in a file would let the codecs find whole repeated cutouts and flatter them): the 16 ZTF
alerts of the most common schema version and the 50 Rubin alerts.

1. Avro backup, per codec (``null``, ``deflate``, ``zstandard``): file bytes per alert and
   the time to encode the file (:func:`brokerapp.adapters.archive.avro.encode_file`, the
   bodies as the buffer holds them), per alert.
2. Parquet, per compression (``none``, ``snappy``, ``zstd``): file bytes per alert and the
   time to build the rows and encode the file, per alert.
3. The whole per-alert path of each archiver on one batch that fills one block file: decode
   the Confluent-framed alert whole (as the worker does), its entry, encode the file and
   write it atomically under a temporary local root (fsync, rename), per alert; and the
   alerts per second that makes on one core, before Kafka.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import fastavro

from brokerapp.adapters.archive import files
from brokerapp.adapters.archive.avro import AvroBackupFormat, AvroEntry, encode_file
from brokerapp.adapters.archive.parquet import ParquetFormat
from brokerapp.adapters.archive.parquet import encode_file as parquet_file
from brokerapp.domain.archive import file_key, parquet_row, relpath
from brokerapp.model.alert import Alert
from brokerapp.model.profiles import profile_for
from brokerapp.wire.codecs import ConfluentCodec, SchemaCache

DATA = Path(__file__).parents[1] / "tests" / "data"


class Input(NamedTuple):
    """One framed alert as the buffer holds it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes
    headers: tuple


def survey_inputs(survey: str) -> tuple[str, list[dict]]:
    """The samples of the survey's most common schema: (schema text, records)."""
    by_schema: dict[str, list[dict]] = {}
    for path in sorted((DATA / survey).glob("*.avro")):
        reader = fastavro.reader(io.BytesIO(path.read_bytes()))
        by_schema.setdefault(reader.metadata["avro.schema"], []).append(next(reader))
    text = max(by_schema, key=lambda t: len(by_schema[t]))
    return text, by_schema[text]


def framed(text: str, records: list[dict], schema_id: int) -> list[Input]:
    parsed = fastavro.parse_schema(json.loads(text))
    out = []
    for offset, record in enumerate(records):
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed, record)
        value = struct.pack(">bI", 0, schema_id) + body.getvalue()
        out.append(Input("alerts", 0, offset, 1_767_225_600_000 + offset, None, value, ()))
    return out


def per_alert_ms(work: Callable[[], Any], alerts: int, repeat: int) -> float:
    work()  # warm
    started = time.perf_counter()
    for _ in range(repeat):
        work()
    return (time.perf_counter() - started) * 1000.0 / (repeat * alerts)


def bench_avro(inputs: list[Input], raw: Any, repeat: int) -> None:
    entries = [AvroEntry(i.offset, i.timestamp, i.value[5:]) for i in inputs]
    raw_bytes = sum(len(e.body) for e in entries) / len(entries)
    print(f"  avro body as in the buffer: {raw_bytes / 1024:8.1f} KiB/alert")
    for codec in ("null", "deflate", "zstandard"):
        data = encode_file("avro/x.avro", raw, "alerts", 0, entries, codec)
        ms = per_alert_ms(
            lambda c=codec: encode_file("avro/x.avro", raw, "alerts", 0, entries, c),
            len(entries),
            repeat,
        )
        ratio = len(data) / (raw_bytes * len(entries))
        print(
            f"  avro {codec:10s} {len(data) / len(entries) / 1024:8.1f} KiB/alert "
            f"({ratio:5.1%} of the bodies)  encode {ms:6.3f} ms/alert"
        )


def bench_parquet(records: list[dict], raw: Any, repeat: int) -> None:
    profile = profile_for(records[0])
    fmt = ParquetFormat(1000, "zstd")
    schema = fmt.schema(profile, type("S", (), {"fingerprint": "x", "raw": raw})())

    def rows() -> list[dict]:
        return [parquet_row(profile, r, "alerts", 0, o, o) for o, r in enumerate(records)]

    for compression in ("none", "snappy", "zstd"):
        data = parquet_file(schema, rows(), 1000, compression)
        ms = per_alert_ms(
            lambda c=compression: parquet_file(schema, rows(), 1000, c), len(records), repeat
        )
        print(
            f"  parquet {compression:7s} {len(data) / len(records) / 1024:8.2f} KiB/alert "
            f"({len(schema)} columns)  rows+encode {ms:6.3f} ms/alert"
        )


def bench_path(inputs: list[Input], text: str, repeat: int, root: str) -> None:
    cache = SchemaCache()
    schema = cache.put_id(7, text, mode="confluent")
    codec = ConfluentCodec(None, cache)
    formats = {
        "avro-archive": AvroBackupFormat("zstandard"),
        "parquet-archive": ParquetFormat(1000, "zstd"),
    }
    for name, fmt in formats.items():

        def batch(fmt: Any = fmt) -> None:
            entries = []
            key = path = profile = None
            for record in inputs:
                _id, decoded = codec.decode_known(record.value)
                alert = Alert.of(decoded, 7)
                profile = alert.profile
                entries.append(fmt.entry(record, alert, schema))
                if key is None:
                    key = file_key(
                        fmt.kind, profile, alert.view.mjd, 0, 0, 1000, schema.fingerprint, True
                    )
                    path = relpath(key, fmt.hourly)
            data = fmt.encode(key, path, schema, profile, "alerts", entries)
            files.write_atomic(root, path or "x", data)

        ms = per_alert_ms(batch, len(inputs), repeat)
        print(f"  {name:16s} {ms:6.3f} ms/alert  = {1000.0 / ms:7.0f} alerts/s on one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="files encoded per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        for survey in ("ztf", "lsst"):
            text, records = survey_inputs(survey)
            raw = json.loads(text)
            inputs = framed(text, records, 7)
            print(f"{survey}: {len(records)} distinct alerts per file")
            bench_avro(inputs, raw, args.repeat)
            bench_parquet(records, raw, args.repeat)
            bench_path(inputs, text, args.repeat, root)


if __name__ == "__main__":
    main()
