"""Key extraction rate of brokerapp.wire.avrokey versus a full fastavro decode, on the samples.

Usage: ``python bench/bench_avrokey.py [--seconds N]``

For the ZTF and LSST sample alerts in ``tests/data`` (original bodies from their containers),
and the LSST samples re-encoded with the official 9.0 schema from lsst-alert-packet
(``lsst9.0``; ``+30 prv``: with 30 previous diaSources each), this runs round robin for about
``--seconds`` per row, in one thread pinned to one core, and prints alerts/s:

* ``key``: :func:`brokerapp.wire.avrokey.object_key_reader` on the bare body;
* ``key, Confluent message``: the same on whole Confluent-framed messages (``start=5``);
* ``key, exact``: ``exact=True``, which also walks over the previous detections (LSST);
* ``full decode``: ``fastavro.schemaless_reader`` with the cached parsed schema, what getting
  the key from a decoded record would cost.

It prints numbers and asserts nothing. ``brokerapp`` must be importable: install the project
(``pip install -e .``) or run from the repository root with ``PYTHONPATH=.``.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from bench.bench_decode import rate
from brokerapp.wire.avrokey import object_key_reader
from brokerapp.wire.codecs import InlineCodec, ParsedSchema, SchemaCache, SchemaFileCodec, frame

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
DEFAULT_SECONDS = 2.0


def samples(survey: str, cache: SchemaCache) -> list[tuple[ParsedSchema, bytes]]:
    inline = InlineCodec(cache)
    out = []
    for path in sorted((DATA / survey).glob("*.avro")):
        schema, (body,) = inline.record_bodies(path.read_bytes())
        out.append((schema, body))
    return out


def official_lsst(cache: SchemaCache, previous: int = 0) -> list[tuple[ParsedSchema, bytes]]:
    """The LSST samples written with lsst-alert-packet's 9.0 schema (no top-level unions).

    ``previous``: give each alert that many ``prvDiaSources`` (copies of its diaSource; the
    samples have none, Rubin alerts carry up to a year of them).
    """
    codec = SchemaFileCodec.lsst("9.0", cache=cache)
    inline = InlineCodec(cache)
    out = []
    for path in sorted((DATA / "lsst").glob("*.avro")):
        record = inline.decode_one(path.read_bytes())
        if previous:
            record["prvDiaSources"] = [dict(record["diaSource"]) for _ in range(previous)]
        out.append((codec.schema, codec.encode(record)))
    return out


def workloads(
    messages: list[tuple[ParsedSchema, bytes]],
) -> dict[str, tuple[Callable[[Any], object], list[Any]]]:
    keys = {schema.fingerprint: object_key_reader(schema) for schema, _body in messages}
    exact = {schema.fingerprint: object_key_reader(schema, exact=True) for schema, _ in messages}
    bodies = [(keys[schema.fingerprint], body) for schema, body in messages]
    framed = [(keys[schema.fingerprint], frame(1, body)) for schema, body in messages]
    exact_bodies = [(exact[schema.fingerprint], body) for schema, body in messages]
    decodes = [(schema.parsed, body) for schema, body in messages]

    def key(message: tuple[Callable, bytes]) -> bytes:
        function, body = message
        return function(body)

    def key_framed(message: tuple[Callable, bytes]) -> bytes:
        function, value = message
        return function(value, 5)

    def full_decode(message: tuple[Any, bytes]) -> dict:
        parsed, body = message
        return fastavro.schemaless_reader(io.BytesIO(body), parsed)

    return {
        "key": (key, bodies),
        "key, Confluent message": (key_framed, framed),
        "key, exact": (key, exact_bodies),
        "full decode (fastavro)": (full_decode, decodes),
    }


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

    cache = SchemaCache()
    sets = {
        "ztf": samples("ztf", cache),
        "lsst": samples("lsst", cache),
        "lsst9.0": official_lsst(cache),
        "+30 prv": official_lsst(cache, previous=30),
    }
    header = (
        f"{'alerts':<8} {'method':<24} {'alerts/s':>11} {'us/alert':>9} "
        f"{'vs decode':>9} {'kB/alert':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, messages in sets.items():
        size = sum(len(body) for _schema, body in messages) / len(messages)
        timings = {
            label: rate(function, inputs, args.seconds)
            for label, (function, inputs) in workloads(messages).items()
        }
        decode = timings["full decode (fastavro)"]
        for label, per_message in timings.items():
            print(
                f"{name:<8} {label:<24} {1 / per_message:>11,.0f} {per_message * 1e6:>9.2f} "
                f"{decode / per_message:>8.0f}x {size / 1024:>9.1f}"
            )


if __name__ == "__main__":
    main()
