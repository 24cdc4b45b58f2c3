"""Decoding only the fields a branch reads, against decoding the whole alert.

Usage: ``PYTHONPATH=. python bench/bench_fields.py [--seconds S] [--simulated N]``

For the ZTF samples (``tests/data/ztf``), the Rubin 9.0 samples (``tests/data/lsst``) and
``--simulated`` alerts of ``lsst-alert-packet``'s 9.0 simulator, bare Avro bodies are read,
round robin, for about ``--seconds`` per cell (best of three), and the time per alert is
printed in microseconds, with its ratio to the full decode:

* ``full``: ``fastavro.schemaless_reader`` with the parsed writer schema (the whole record);
* ``projection``: the same with a reader schema holding only the branch's fields
  (:func:`brokerapp.wire.fields.projection_schema`);
* ``keyreader``: the project's field reader (:class:`brokerapp.wire.avrokey.KeyReader`)
  reading the same fields, assembled into the same nested dict
  (:class:`brokerapp.wire.fields.FieldReader`, strategy ``keyreader``); ``n/a`` when the
  field set crosses an array (previous detections), which it cannot read;
* ``alert: full+of``: the whole record then ``Alert.of`` (what a branch does today), and
  ``alert: fields``: ``FieldDecoder.decode_known`` (strategy ``auto``) then reading the
  branch's view attributes (what a branch would do with the new API).

Field sets, as the branches declare them (read names turned into each survey's fields by its
profile): ``ssfilter`` (the ``solar_system`` chain), ``crossmatch`` (``catalogue_match`` and
``emit_annotations``), ``watchlist`` (the match agent's position and annotation fields) and
``candidates`` (:data:`brokerapp.domain.candidates.CANDIDATE_READS`). Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from brokerapp.domain.candidates import CANDIDATE_READS
from brokerapp.domain.processors import CatalogueMatch, EmitAnnotations, chain_from_config
from brokerapp.domain.watchlists.annotated import WATCHLIST_MATCH_READS
from brokerapp.model.alert import Alert
from brokerapp.model.profiles import VIEW_READS
from brokerapp.tools.produce import SourceAlert, load_files, simulate
from brokerapp.wire.codecs import ConfluentCodec, ParsedSchema, frame
from brokerapp.wire.fields import FieldDecoder, FieldReader, present_paths

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
DEFAULT_SECONDS = 0.3
DEFAULT_SIMULATED = 20
REPEATS = 3
SCHEMA_ID = 1


def branch_reads() -> dict[str, frozenset[str]]:
    """The read names of each branch, from its chain or its declared constant."""
    ssfilter = chain_from_config({"name": "ssfilter", "processor": [{"use": "solar_system"}]})
    # catalogue_match loads a catalogue file: its reads and emit_annotations' are the class's.
    crossmatch_reads = CatalogueMatch.reads | EmitAnnotations.reads | {"alert_id"}
    return {
        "ssfilter": frozenset(ssfilter.reads or ()),
        "crossmatch": crossmatch_reads,
        "watchlist": WATCHLIST_MATCH_READS,
        "candidates": CANDIDATE_READS,
    }


def per_alert(run: Callable[[Any], object], items: list[Any], seconds: float) -> float:
    """Best of :data:`REPEATS` runs of about ``seconds``: microseconds per call."""
    best = float("inf")
    for _ in range(REPEATS):
        count = 0
        started = time.perf_counter()
        deadline = started + seconds
        while True:
            for item in items:
                run(item)
            count += len(items)
            now = time.perf_counter()
            if now >= deadline:
                break
        best = min(best, (now - started) / count * 1e6)
    return best


def bodies(alerts: list[SourceAlert]) -> tuple[ParsedSchema, list[bytes]]:
    schema = alerts[0].schema
    out = []
    for alert in alerts:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, schema.parsed, alert.record)
        out.append(buffer.getvalue())
    return schema, out


def survey_rows(name: str, alerts: list[SourceAlert], seconds: float) -> list[list[str]]:
    schema, raw = bodies(alerts)
    framed = [frame(SCHEMA_ID, body) for body in raw]
    codec = ConfluentCodec()
    codec.cache.put_id(SCHEMA_ID, schema.raw)
    decoder = FieldDecoder(codec)
    parsed = schema.parsed

    def full(body: bytes) -> object:
        return fastavro.schemaless_reader(io.BytesIO(body), parsed)

    full_us = per_alert(full, raw, seconds)
    mean_kb = sum(map(len, raw)) / len(raw) / 1024
    rows = [[f"{name} ({len(raw)} alerts, {mean_kb:.0f} KB)", "full", f"{full_us:.1f}", "1.00"]]

    def whole_alert(data: bytes) -> object:
        return Alert.of(full(data[5:]), SCHEMA_ID)

    whole_us = per_alert(whole_alert, framed, seconds)
    rows.append(["", "alert: full+of", f"{whole_us:.1f}", f"{whole_us / full_us:.2f}"])
    profile = decoder.profile_of(schema)
    for branch, reads in branch_reads().items():
        paths = present_paths(schema, profile.field_paths(reads))
        projection = FieldReader(schema, paths, strategy="projection")
        cells = [f"{branch} ({len(paths)} fields)"]
        us = per_alert(projection.read, raw, seconds)
        rows.append([cells[0], "projection", f"{us:.1f}", f"{us / full_us:.2f}"])
        auto = FieldReader(schema, paths)
        if auto.strategy == "keyreader":
            us = per_alert(auto.read, raw, seconds)
            rows.append(["", "keyreader", f"{us:.1f}", f"{us / full_us:.2f}"])
        else:
            rows.append(["", "keyreader", "n/a", "(crosses an array)"])
        view_names = sorted(reads & VIEW_READS)
        extra = sorted(reads - VIEW_READS)

        def fields_alert(
            data: bytes,
            reads: frozenset[str] = reads,
            view_names: list[str] = view_names,
            extra: list[str] = extra,
        ) -> object:
            alert = decoder.decode_known(data, schema, SCHEMA_ID, reads)
            view = alert.view
            for attribute in view_names:
                getattr(view, attribute)
            return alert.record_for(*extra)

        us = per_alert(fields_alert, framed, seconds)
        rows.append(["", f"alert: fields ({auto.strategy})", f"{us:.1f}", f"{us / full_us:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--simulated", type=int, default=DEFAULT_SIMULATED)
    args = parser.parse_args()
    sources = {
        "ZTF samples": load_files(str(DATA / "ztf")),
        "Rubin 9.0 samples": load_files(str(DATA / "lsst")),
    }
    if args.simulated:
        sources["Rubin 9.0 simulated"] = simulate(args.simulated, "9.0")
    header = ["alerts / field set", "decode", "us/alert", "ratio to full"]
    table = [header]
    for name, alerts in sources.items():
        table += survey_rows(name, alerts, args.seconds)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if i == 0:
            print("-|-".join("-" * width for width in widths))


if __name__ == "__main__":
    main()
