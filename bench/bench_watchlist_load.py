"""A 10^6-entry watchlist: load time through the CLI, and lookup cost in the deployed store.

Usage: ``python -m bench.bench_watchlist_load [--entries 1000000] [--lookups 5000]
[--keep]`` (needs Kafka and the local registry: ``brokerapp services up``).

1. Writes a CSV of N entries (uniform on the sphere, radius 2 arcsec, fixed seed).
2. Starts one watchlist worker as deployed (``faust -A agents.watchlist worker``, RocksDB
   table store, its own topics, app ID and data folder) and runs ``brokerapp watchlist put``
   on the file, as a user does. Printed: the CLI's own time (read and check the file, send
   the chunks, then the commit), and the load time, from the CLI's start to the worker's
   REST list showing the N entries in force (the commit applied: zone rows, version swap).
3. Stops the worker, so its RocksDB files are closed, and opens the ``watchlist_zones``
   table's database read-only with ``rocksdict``, as the worker's store reads it: keys and
   values JSON. A lookup is what the ``match`` agent does per alert: read the alert's one
   zone (``get`` + ``json.loads``), :func:`brokerapp.domain.zones.lookup_in`, then
   :func:`brokerapp.domain.watchlists.zonetable.in_force` (one more ``get``, of the version
   marker, when something matched). Alerts are uniform on the sphere, every tenth on an
   entry's centre, so about a tenth must match (checked). Times per alert, median and 99th
   percentile, one thread.

Between 2 and 3 the same file is also sent through the REST view (``PUT``), replacing the
watchlist by a new version of the same 10^6 entries; its answer time and the time until
the worker applied its commit are printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rocksdict import AccessType, Options, Rdict

from brokerapp.domain.watchlists.zonetable import in_force
from brokerapp.domain.zones import lookup_in
from brokerapp.model.settings import load_settings
from tests.integration.workers import WorkerRun

SEED = 20261201
RADIUS_ARCSEC = 2.0


def make_entries(n: int) -> list[tuple[str, float, float]]:
    rng = random.Random(SEED)
    return [
        (
            f"entry-{i:07d}",
            rng.uniform(0.0, 360.0),
            math.degrees(math.asin(rng.uniform(-1.0, 1.0))),
        )
        for i in range(n)
    ]


def write_csv(path: Path, entries: list[tuple[str, float, float]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "ra", "dec", "radius"])
        for name, ra, dec in entries:
            writer.writerow([name, f"{ra:.7f}", f"{dec:.7f}", RADIUS_ARCSEC])


def listed(run: WorkerRun) -> dict:
    url = f"http://{load_settings().web_bind}:{run.port}/watchlist/watchlists/"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


class JsonStore:
    """The worker's RocksDB table read as its store reads it: JSON keys and values."""

    def __init__(self, path: Path):
        self.db = Rdict(
            str(path), access_type=AccessType.read_only(), options=Options(raw_mode=True)
        )

    def get(self, key: str) -> object:
        raw = self.db.get(json.dumps(key).encode())
        return None if raw is None else json.loads(raw)

    def close(self) -> None:
        self.db.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--keep", action="store_true", help="Keep the data folder.")
    args = parser.parse_args()
    settings = load_settings()
    workdir = Path(tempfile.mkdtemp(prefix="bench-watchlist-"))
    run = WorkerRun(
        workdir / "watchlist",
        module="agents.watchlist",
        path="watchlist",
        port_setting="BROKER_WATCHLIST_WEB_PORT",
    )
    run.workdir.mkdir(parents=True)
    run.env_overrides.update(
        BROKER_STORE="rocksdb://",
        BROKER_WATCHLIST_CONTROL_TOPIC=f"{run.prefix}-watchlist-control",
        BROKER_WATCHLIST_SOURCE_TOPIC=f"{run.prefix}-alerts-nonsolar",
        BROKER_SS_WATCHLIST_SOURCE_TOPIC=f"{run.prefix}-alerts-solar",
        BROKER_ANNOTATIONS_TOPIC=f"{run.prefix}-annotations",
        BROKER_ANNOTATED_ALERTS_TOPIC=f"{run.prefix}-annotated-alerts",
    )
    entries = make_entries(args.entries)
    path = workdir / "watchlist.csv"
    write_csv(path, entries)
    size_mb = path.stat().st_size / 1e6
    print(
        f"watchlist: {args.entries:,} entries, radius {RADIUS_ARCSEC:g} arcsec, "
        f"CSV {size_mb:.1f} MB"
    )
    print(f"chunks of {settings.watchlist_chunk_entries:,} entries (watchlist_chunk_entries)")
    try:
        run.start()
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "brokerapp", "watchlist", "put", "big", str(path)],
            env={**os.environ, **run.env()},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        cli_s = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"watchlist put failed:\n{done.stderr[-2000:]}")
        print(f"CLI (read, check, send chunks and commit): {cli_s:.1f} s  [{done.stdout.strip()}]")
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            try:
                if listed(run).get("big", {}).get("entries") == args.entries:
                    break
            except OSError:
                pass
            run.wait_status(lambda s: True, timeout=60)
            time.sleep(0.5)
        else:
            raise SystemExit("the worker never listed the watchlist")
        load_s = time.perf_counter() - started
        status = run.status()
        print(
            f"load time, CLI start to the worker's table having it: {load_s:.1f} s "
            f"({args.entries / load_s:,.0f} entries/s; worker applied {status['commands']})"
        )
        # The same file through REST, replacing the watchlist whole (a new version).
        started = time.perf_counter()
        request = urllib.request.Request(
            f"http://{settings.web_bind}:{run.port}/watchlist/watchlists/big",
            data=path.read_bytes(),
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=1800) as response:
            answer = json.load(response)
        rest_sent_s = time.perf_counter() - started
        run.wait_status(
            lambda s: s["commands"].get("commit") == 2, timeout=1800, what="the REST commit"
        )
        rest_s = time.perf_counter() - started
        print(
            f"REST PUT of the same file (streamed in, {answer['chunks']} chunks): answered in "
            f"{rest_sent_s:.1f} s; the new version in force after {rest_s:.1f} s "
            f"(the old one's rows removed)"
        )
    finally:
        run.stop()
    tables = run.workdir / "state" / "watchlist"
    db_path = next(tables.glob("**/tables/watchlist_zones-0.db"))
    size = sum(f.stat().st_size for f in db_path.rglob("*") if f.is_file())
    print(f"RocksDB watchlist_zones: {size / 1e6:.0f} MB on disk")
    store = JsonStore(db_path)
    rng = random.Random(SEED + 1)
    alerts = []
    for k in range(args.lookups):
        if k % 10 == 0:
            _, ra, dec = entries[rng.randrange(len(entries))]
            alerts.append((round(ra, 7), round(dec, 7)))
        else:
            alerts.append(
                (rng.uniform(0.0, 360.0), math.degrees(math.asin(rng.uniform(-1.0, 1.0))))
            )
    times = []
    found = 0
    rows = []
    for ra, dec in alerts:
        t0 = time.perf_counter()
        matches = lookup_in(store, ra, dec, key=str)
        if matches:
            matches = in_force(store, matches)
        times.append(time.perf_counter() - t0)
        found += bool(matches)
    for zone in range(720):
        value = store.get(str(zone))
        rows.append(len(value) if value else 0)
    store.close()
    expected = len(range(0, args.lookups, 10))
    median_ms = statistics.median(times) * 1e3
    p99_ms = percentile(times, 0.99) * 1e3
    print(
        f"lookup in RocksDB ({args.lookups:,} alerts, one zone read + JSON decode + match): "
        f"median {median_ms:.2f} ms, p99 {p99_ms:.2f} ms; "
        f"{found} alerts matched (>= {expected} placed on entries)"
    )
    print(f"rows per zone: mean {statistics.mean(rows):.0f}, max {max(rows)}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir}")


if __name__ == "__main__":
    main()
