"""Zone stores compared: memory per entry and lookup time per alert (issue 5, item 7).

Usage: ``python -m bench.bench_zone_stores [--sizes 10000,100000,1000000] [--lookups 2000]
[--db-max 100000] [--stores dict,rocksdb,mariadb,cassandra]``

N watchlist entries (uniform on the sphere, radius 2 arcsec, fixed seed) are stored, each in
every zone its circle overlaps (:func:`brokerapp.domain.zones.entry_zones`, height 0.25 deg), in:

dict
    ``{zone: rows}`` from :func:`~brokerapp.domain.zones.build_zones`; bytes = Python heap retained,
    by ``tracemalloc`` (a second build, the input list excluded).
rocksdb
    ``rocksdict.Rdict`` in a temporary folder, key ``str(zone)``, value the zone's rows as JSON
    (as the Faust table stores them); bytes = size of the folder after flush and a full
    compaction, the database closed (SST files, manifest, options, log).
mariadb
    InnoDB table ``(zone, name, ra, dec, radius)``, primary key ``(zone, name)`` (a zone is
    contiguous); ``executemany`` batches of 5000 rows; bytes = ``data_length +
    index_length`` of ``information_schema.tables`` after ``ANALYZE TABLE`` (allocated pages).
cassandra
    Keyspace ``bench_zones`` (SimpleStrategy, RF 1), one partition per zone, prepared inserts
    through ``execute_concurrent_with_args`` (concurrency 64); bytes = all SSTable component
    files of the table under the node's data folder after a flush, forced without nodetool by
    ``ALTER TABLE ... WITH memtable_flush_period_in_ms`` (LZ4 compression, the default).

A lookup reads the alert's one zone and matches it: ``get`` + ``json.loads`` +
:func:`~brokerapp.domain.zones.match_in` for RocksDB, :func:`~brokerapp.domain.zones.match_in` on
the
dict's list, and for the databases a parameterised ``SELECT ... WHERE zone = ?`` followed by
a declination prefilter and the exact distance
(:func:`~brokerapp.domain.zones.angular_separation_arcsec`) row by row. Alerts are uniform on the
sphere, a tenth of them placed on entry centres so that every store must find the same
matches (checked). Times are per alert, median and 99th percentile, one client thread.
MariaDB and Cassandra are loaded only up to ``--db-max`` entries; larger sizes get an
extrapolated row (marked ``~``): load time and lookup time linear in N through the two
largest measured sizes, bytes per entry those of the largest measured size.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

from brokerapp.adapters.sql import cql_name, sql_name
from brokerapp.domain.zones import (
    DEFAULT_HEIGHT_DEG,
    ON_RADIUS_TOLERANCE_ARCSEC,
    Entry,
    angular_separation_arcsec,
    build_zones,
    entry_zones,
    match_in,
    zone_of,
)
from brokerapp.model.settings import load_settings

SEED = 20260705
RADIUS_ARCSEC = 2.0
HEIGHT = DEFAULT_HEIGHT_DEG
BATCH = 5000
CONCURRENCY = 64
KEYSPACE = "bench_zones"
#: Seconds a Cassandra request may take (the driver's 10 s default times out inserts of
#: 10^6 rows on a busy machine).
REQUEST_TIMEOUT_S = 120.0


class Result:
    """One row of the table."""

    def __init__(self, store: str, n: int, load_s: float, bytes_total: float, times: list[float]):
        self.store, self.n, self.load_s = store, n, load_s
        self.bytes_per_entry = bytes_total / n
        self.times = times
        self.median_us = statistics.median(times) * 1e6 if times else math.nan
        self.p99_us = _percentile(times, 0.99) * 1e6 if times else math.nan
        self.lookups = len(times)
        self.extrapolated = False
        self.found = 0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def sky(rng: random.Random, n: int) -> tuple[list[float], list[float]]:
    ras = [rng.uniform(0.0, 360.0) for _ in range(n)]
    decs = [math.degrees(math.asin(rng.uniform(-1.0, 1.0))) for _ in range(n)]
    return ras, decs


def make_entries(n: int) -> list[Entry]:
    ras, decs = sky(random.Random(SEED), n)
    return [
        Entry(i, ra, dec, RADIUS_ARCSEC) for i, (ra, dec) in enumerate(zip(ras, decs, strict=True))
    ]


def make_alerts(entries: list[Entry], count: int) -> list[tuple[float, float]]:
    rng = random.Random(SEED + 1)
    ras, decs = sky(rng, count)
    alerts = list(zip(ras, decs, strict=True))
    for k in range(0, count, 10):  # every tenth alert on an entry's centre
        entry = entries[rng.randrange(len(entries))]
        alerts[k] = (entry.ra, entry.dec)
    return alerts


def zone_rows(entries: list[Entry]):
    """Yield ``(zone, name, ra, dec, radius)`` for every stored copy of every entry."""
    for entry in entries:
        for zone in entry_zones(entry.dec, entry.radius_arcsec, HEIGHT):
            yield zone, entry.name, entry.ra, entry.dec, entry.radius_arcsec


def exact_matches(rows, ra: float, dec: float) -> int:
    """Count the rows ``(name, ra, dec, radius)`` whose circle holds the position."""
    found = 0
    for _name, ra_e, dec_e, radius in rows:
        reach = radius + ON_RADIUS_TOLERANCE_ARCSEC
        if abs(dec - dec_e) * 3600.0 > reach + 1e-6:
            continue
        if angular_separation_arcsec(ra, dec, ra_e, dec_e) <= reach:
            found += 1
    return found


def time_lookups(
    lookup: Callable[[float, float], int], alerts: list[tuple[float, float]]
) -> tuple[list[float], int]:
    times = []
    found = 0
    clock = time.perf_counter
    for ra, dec in alerts:
        start = clock()
        found += lookup(ra, dec)
        times.append(clock() - start)
    return times, found


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- stores


def bench_dict(entries: list[Entry], alerts) -> Result:
    gc.collect()
    start = time.perf_counter()
    table = build_zones(entries, HEIGHT)
    load = time.perf_counter() - start
    del table
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table = build_zones(entries, HEIGHT)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    times, found = time_lookups(
        lambda ra, dec: len(match_in(table.get(zone_of(dec, HEIGHT)), ra, dec)), alerts
    )
    result = Result("dict", len(entries), load, retained, times)
    result.found = found
    return result


def bench_rocksdb(entries: list[Entry], alerts) -> Result:
    from rocksdict import Rdict

    folder = Path(tempfile.mkdtemp(prefix="bench-zone-rocks-"))
    try:
        table = build_zones(entries, HEIGHT)
        start = time.perf_counter()
        db = Rdict(str(folder / "db"))
        for zone, rows in table.items():
            db[str(zone)] = json.dumps(rows).encode()
        db.flush()
        load = time.perf_counter() - start
        del table
        db.compact_range(None, None)
        db.close()
        size = folder_bytes(folder)
        db = Rdict(str(folder / "db"))

        def lookup(ra: float, dec: float) -> int:
            raw = db.get(str(zone_of(dec, HEIGHT)))
            return 0 if raw is None else len(match_in(json.loads(raw), ra, dec))

        times, found = time_lookups(lookup, alerts)
        db.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = Result("rocksdb", len(entries), load, size, times)
    result.found = found
    return result


def bench_mariadb(entries: list[Entry], alerts) -> Result:
    import pymysql

    settings = load_settings()
    conn = pymysql.connect(
        host=settings.mariadb_host,
        port=settings.mariadb_port,
        user=settings.mariadb_user,
        password=settings.mariadb_secret().get_secret_value(),
        database=settings.mariadb_database,
        autocommit=False,
    )
    table = f"zone_entries_{uuid.uuid4().hex[:12]}"  # built from hex digits only
    quoted = sql_name(table)  # names cannot be bound: checked, quoted
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE {quoted} (zone INT NOT NULL, name VARCHAR(32) NOT NULL,"
                " ra DOUBLE NOT NULL, `dec` DOUBLE NOT NULL, radius DOUBLE NOT NULL,"
                " PRIMARY KEY (zone, name)) ENGINE=InnoDB"
            )
            insert = (
                f"INSERT INTO {quoted} (zone, name, ra, `dec`, radius) VALUES (%s, %s, %s, %s, %s)"
            )
            start = time.perf_counter()
            batch: list[tuple] = []
            for zone, name, ra, dec, radius in zone_rows(entries):
                batch.append((zone, str(name), ra, dec, radius))
                if len(batch) >= BATCH:
                    cur.executemany(insert, batch)
                    batch.clear()
            if batch:
                cur.executemany(insert, batch)
            conn.commit()
            load = time.perf_counter() - start
            cur.execute(f"ANALYZE TABLE {quoted}")
            cur.fetchall()
            cur.execute(
                "SELECT data_length + index_length FROM information_schema.tables"
                " WHERE table_schema = %s AND table_name = %s",
                (settings.mariadb_database, table),
            )
            size = int(cur.fetchone()[0])
            select = f"SELECT name, ra, `dec`, radius FROM {quoted} WHERE zone = %s"

            def lookup(ra: float, dec: float) -> int:
                cur.execute(select, (zone_of(dec, HEIGHT),))
                return exact_matches(cur.fetchall(), ra, dec)

            times, found = time_lookups(lookup, alerts)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {quoted}")
        conn.commit()
        conn.close()
    result = Result("mariadb", len(entries), load, size, times)
    result.found = found
    return result


def bench_cassandra(entries: list[Entry], alerts) -> Result:
    from cassandra.cluster import Cluster
    from cassandra.concurrent import execute_concurrent_with_args

    from brokerapp.adapters.stores.cassandra import cassandra_cluster_options

    settings = load_settings()
    data_root = settings.data_dir / "cassandra" / "data" / "data" / KEYSPACE
    cluster = Cluster(**cassandra_cluster_options(settings))
    session = cluster.connect()
    session.default_timeout = REQUEST_TIMEOUT_S
    table = f"zone_entries_{uuid.uuid4().hex[:12]}"
    quoted = f"{cql_name(KEYSPACE)}.{cql_name(table)}"  # checked, quoted
    try:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {cql_name(KEYSPACE)} WITH replication ="
            " {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(
            f"CREATE TABLE {quoted} (zone int, name text, ra double, dec double,"
            " radius double, PRIMARY KEY (zone, name))"
        )
        insert = session.prepare(
            f"INSERT INTO {quoted} (zone, name, ra, dec, radius) VALUES (?, ?, ?, ?, ?)"
        )
        rows = [(z, str(name), ra, dec, r) for z, name, ra, dec, r in zone_rows(entries)]
        start = time.perf_counter()
        for k in range(0, len(rows), 50_000):
            results = execute_concurrent_with_args(
                session, insert, rows[k : k + 50_000], concurrency=CONCURRENCY
            )
            failed = [r for ok, r in results if not ok]
            if failed:
                raise RuntimeError(f"{len(failed)} inserts failed: {failed[0]!r}")
        load = time.perf_counter() - start
        del rows
        # force a flush without nodetool: a periodic memtable flush of 1 s
        session.execute(f"ALTER TABLE {quoted} WITH memtable_flush_period_in_ms = 1000")
        folders = []
        size, stable, deadline = -1, 0, time.monotonic() + 60
        while time.monotonic() < deadline and stable < 3:
            time.sleep(1.0)
            folders = list(data_root.glob(f"{table}-*"))
            now = sum(folder_bytes(f) for f in folders)
            stable = stable + 1 if now == size and now > 0 else 0
            size = now
        select = session.prepare(f"SELECT name, ra, dec, radius FROM {quoted} WHERE zone = ?")

        def lookup(ra: float, dec: float) -> int:
            return exact_matches(session.execute(select, (zone_of(dec, HEIGHT),)), ra, dec)

        times, found = time_lookups(lookup, alerts)
    finally:
        session.execute(f"DROP TABLE IF EXISTS {quoted}")
        cluster.shutdown()
    result = Result("cassandra", len(entries), load, max(size, 0), times)
    result.found = found
    return result


STORES = {
    "dict": bench_dict,
    "rocksdb": bench_rocksdb,
    "mariadb": bench_mariadb,
    "cassandra": bench_cassandra,
}
DATABASES = ("mariadb", "cassandra")


def extrapolate(store: str, n: int, measured: list[Result]) -> Result | None:
    done = sorted(
        (r for r in measured if r.store == store and not r.extrapolated), key=lambda r: r.n
    )
    if not done:
        return None
    last = done[-1]
    if len(done) >= 2:
        prev = done[-2]

        def line(a: float, b: float) -> float:
            return b + (b - a) / (last.n - prev.n) * (n - last.n)

        load = line(prev.load_s, last.load_s)
        median = line(prev.median_us, last.median_us)
        p99 = median * last.p99_us / last.median_us  # the tail keeps its last ratio
    else:
        scale = n / last.n
        load, median, p99 = last.load_s * scale, last.median_us * scale, last.p99_us * scale
    result = Result(store, n, load, last.bytes_per_entry * n, [])
    result.median_us, result.p99_us, result.extrapolated = median, p99, True
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--db-max", type=int, default=100_000, help="largest N loaded into a DB")
    parser.add_argument("--stores", default=",".join(STORES))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = args.stores.split(",")
    began = time.perf_counter()
    print("$ python -m bench.bench_zone_stores " + " ".join(sys.argv[1:]))
    print(
        f"entries radius {RADIUS_ARCSEC} arcsec, zone height {HEIGHT} deg,"
        f" {args.lookups} alerts (1 in 10 on an entry), pid {os.getpid()}"
    )
    results: list[Result] = []
    header = (
        f"{'store':<10} {'entries':>9} {'rows':>9} {'load s':>8} {'B/entry':>8}"
        f" {'median us':>10} {'p99 us':>9} {'lookups':>8} {'found':>6}"
    )
    lines = []
    for n in sizes:
        entries = make_entries(n)
        alerts = make_alerts(entries, args.lookups)
        rows = sum(1 for _ in zone_rows(entries))
        for store in stores:
            if store in DATABASES and n > args.db_max:
                result = extrapolate(store, n, results)
                if result is None:
                    continue
            else:
                result = STORES[store](entries, alerts)
            results.append(result)
            mark = "~" if result.extrapolated else " "
            line = (
                f"{store:<10} {n:>9,} {rows:>9,} {mark}{result.load_s:>7.1f} "
                f"{mark}{result.bytes_per_entry:>7.0f} {mark}{result.median_us:>9.0f}"
                f" {mark}{result.p99_us:>8.0f} {result.lookups:>8} "
                f"{'-' if result.extrapolated else result.found:>6}"
            )
            lines.append(line)
            print(line, file=sys.stderr, flush=True)
        del entries
        gc.collect()
    print(header)
    print("\n".join(lines))
    if any(r.extrapolated for r in results):
        print("~ extrapolated (not measured), see the module docstring")
    found = {(r.n, r.found) for r in results if not r.extrapolated}
    for n in sizes:
        counts = {f for m, f in found if m == n}
        if len(counts) > 1:
            print(f"! stores disagree on the matches at N = {n:,}: {sorted(counts)}")
    interpret(results)
    print(f"run time {time.perf_counter() - began:.0f} s")


def interpret(results: list[Result]) -> None:
    """Print which store fits the hot path and which the cost, from the largest N."""
    if not results:
        return
    n = max(r.n for r in results)
    at_n = [r for r in results if r.n == n]
    fastest = min(at_n, key=lambda r: r.median_us)
    smallest = min(at_n, key=lambda r: r.bytes_per_entry)
    print(f"\nAt N = {n:,}: fastest lookup {fastest.store} ({fastest.median_us:.0f} us median),")
    print(f"smallest footprint {smallest.store} ({smallest.bytes_per_entry:.0f} B/entry).")
    by_store = {r.store: r for r in at_n}
    disk = [r for r in at_n if r.store != "dict"]
    if "dict" in by_store:
        d = by_store["dict"]
        print(
            f"Hot path: decoded zones in memory (dict / ZoneIndex / a Faust memory table) answer"
            f" in {d.median_us:.0f} us at {d.bytes_per_entry:.0f} B of Python heap per entry."
        )
    for r in disk:
        what = {
            "rocksdb": "json.loads of the whole zone on every read",
            "mariadb": "a round trip and every row of the zone over the wire",
            "cassandra": "a round trip through the driver and every row of the partition",
        }[r.store]
        print(
            f"{r.store}: {r.median_us:.0f} us median ({what}), {r.bytes_per_entry:.0f} B/entry"
            f"{' (extrapolated)' if r.extrapolated else ''}."
        )
    print(
        "So: a durable copy in a disk store (cost), a decoded copy in RAM for the lookups;"
        " reading a disk store per alert only fits a low alert rate or small watchlists."
    )


if __name__ == "__main__":
    main()
