"""Decode throughput of brokerapp.wire.codecs on the sample alerts, per framing mode.

Usage: ``python bench/bench_decode.py [--seconds N]``

For the ZTF and the LSST samples in ``tests/data`` this decodes the same alerts, round robin,
for about ``--seconds`` per row, in one thread pinned to one core, and prints alerts/s:

* ``confluent (cached schema)``: ``ConfluentCodec.decode_known`` on Confluent-framed bodies;
* ``inline container``: ``InlineCodec.decode`` on the original container files;
* ``schemafile``: ``SchemaFileCodec`` with the official schema from ``.avsc`` files (ZTF 4.02
  from ``tests/data/ztf/schema``, LSST 9.0 from lsst-alert-packet) on bodies written with it;
* ``naive: parse_schema per msg``: plain fastavro, ``parse_schema(json.loads(text))`` and
  ``schemaless_reader`` for every message (what decoding without a schema cache costs);
* ``naive: fastavro.reader per msg``: plain ``fastavro.reader`` on each container (parses the
  header schema every time).

It prints numbers and asserts nothing. ``brokerapp`` must be importable: install the project
(``pip install -e .``) or run from the repository root with ``PYTHONPATH=.``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from brokerapp.wire.codecs import (
    ConfluentCodec,
    InlineCodec,
    SchemaCache,
    SchemaFileCodec,
    frame,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
DEFAULT_SECONDS = 2.0


def load(survey: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((DATA / survey).glob("*.avro"))]


def to_official(survey: str, record: dict) -> dict:
    """Adapt a sample record to the official schema used by the schemafile row."""
    if survey == "ztf":  # schema 4.02 adds fp_hists and requires candidate.drbversion
        record = dict(record, fp_hists=record.get("fp_hists"))
        record["candidate"] = {"drbversion": "unknown", **record["candidate"]}
    return record


def workloads(survey: str) -> dict[str, tuple[Callable[[Any], object], list[Any]]]:
    containers = load(survey)
    cache = SchemaCache()
    inline = InlineCodec(cache)
    confluent = ConfluentCodec(cache=cache)
    if survey == "ztf":
        official = SchemaFileCodec.from_avsc(DATA / "ztf" / "schema" / "alert.avsc")
    else:
        official = SchemaFileCodec.lsst("9.0")

    framed: list[bytes] = []
    texts: list[tuple[str, bytes]] = []
    official_bodies: list[bytes] = []
    ids: dict[str, int] = {}
    for data in containers:
        schema, bodies = inline.record_bodies(data)
        schema_id = ids.setdefault(schema.fingerprint, len(ids) + 1)
        confluent.cache.put_id(schema_id, schema)
        framed.append(frame(schema_id, bodies[0]))
        texts.append((schema.text, bodies[0]))
        record = inline.decode_one(data)
        official_bodies.append(official.encode(to_official(survey, record)))

    def naive_parse(message: tuple[str, bytes]) -> dict:
        text, body = message
        parsed = fastavro.parse_schema(json.loads(text))
        return fastavro.schemaless_reader(io.BytesIO(body), parsed)

    def naive_reader(data: bytes) -> list[dict]:
        return list(fastavro.reader(io.BytesIO(data)))

    return {
        "confluent (cached schema)": (confluent.decode_known, framed),
        "inline container": (inline.decode, containers),
        "schemafile": (official.decode, official_bodies),
        "naive: parse_schema per msg": (naive_parse, texts),
        "naive: fastavro.reader per msg": (naive_reader, containers),
    }


def rate(function: Callable[[Any], object], messages: list[Any], seconds: float) -> float:
    """Seconds per message, decoding ``messages`` round robin for about ``seconds``."""
    for message in messages:  # warm-up, fills caches
        function(message)
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for message in messages:
            function(message)
        count += len(messages)
        now = time.perf_counter()
        if now >= deadline:
            return (now - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"time per row (default {DEFAULT_SECONDS})",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    header = f"{'survey':<6} {'mode':<32} {'alerts/s':>10} {'us/alert':>9} {'kB/alert':>9}"
    print(header)
    print("-" * len(header))
    for survey in ("ztf", "lsst"):
        loads = workloads(survey)
        size = sum(len(d) for d in loads["inline container"][1]) / len(loads["inline container"][1])
        timings = {name: rate(fn, msgs, args.seconds) for name, (fn, msgs) in loads.items()}
        for name, per_message in timings.items():
            print(
                f"{survey:<6} {name:<32} {1 / per_message:>10,.0f} "
                f"{per_message * 1e6:>9.1f} {size / 1024:>9.1f}"
            )


if __name__ == "__main__":
    main()
