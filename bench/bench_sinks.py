"""Rows per second into each store, batched and unbatched, through the sinks' store API.

Usage: ``python -m bench.bench_sinks [--rows 20000] [--unbatched 2000] [--batch 500]``

Writes synthetic ``candidates`` rows (12 columns, 50 detections per object) and ``objects``
rows (with a 1 kB ``stats`` JSON) with :meth:`brokerapp.adapters.stores.MariaDbStore.upsert` and
:meth:`brokerapp.adapters.stores.CassandraStore.upsert`, the calls the sinks make, one await at a
time as a sink does:

unbatched
    one row per upsert (what a sink with ``sink_batch_size = 1`` does);
batched
    ``--batch`` rows per upsert (MariaDB: one ``executemany`` in one transaction; Cassandra:
    concurrent prepared inserts, at most ``sink_concurrency`` in flight);
rewrite
    the batched candidates again: every row already stored (a replay; upserts).

Then, for Cassandra, the cost per row on the node and in the client of one INSERT per request
(``cassandra_batch_rows`` 1) and of the UNLOGGED batches the sinks send (the setting's value).

Needs ``brokerapp services up --databases``. Works in its own database and keyspace
(``bench_sinks``, created through root's unix socket and dropped at the end). Prints, and
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time

import pymysql
from cassandra.cluster import Cluster

from brokerapp.adapters.sql import cql_name, sql_name
from brokerapp.adapters.stores import open_store
from brokerapp.adapters.stores.cassandra import cassandra_cluster_options
from brokerapp.model.settings import load_settings
from brokerapp.tools.services import MARIADB_ACCOUNT_HOST, Services

NAME = "bench_sinks"


def candidate_rows(count: int, rng: random.Random) -> list[dict]:
    return [
        {
            "candidate_id": 10**15 + i,
            "object_id": f"ZTF25bench{i // 50:06d}",
            "survey": "ztf",
            "mjd": 60000.0 + (i % 50) * 0.5,
            "band": "gri"[i % 3],
            "ra": rng.uniform(0, 360),
            "decl": rng.uniform(-30, 80),
            "mag": rng.uniform(15, 21),
            "mag_err": 0.05,
            "flux": None,
            "flux_err": None,
            "visit_id": 10**9 + i,
        }
        for i in range(count)
    ]


def object_rows(count: int) -> list[dict]:
    stats = json.dumps(
        {"bands": {b: {"n": 10, "mean_mag": 18.0} for b in "gri"} | {"pad": "x" * 800}}
    )
    return [
        {
            "object_id": f"ZTF25bench{i:06d}",
            "survey": "ztf",
            "n_detections": 50,
            "first_mjd": 60000.0,
            "last_mjd": 60024.5,
            "latest_candidate_id": 10**15 + i,
            "latest_band": "r",
            "latest_mag": 18.2,
            "ra_mean": 10.0,
            "decl_mean": 20.0,
            "position_scatter_arcsec": 0.1,
            "stats": stats,
        }
        for i in range(count)
    ]


async def timed(store, table: str, rows: list[dict], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        await store.upsert(table, rows[start : start + batch])
    return len(rows) / (time.perf_counter() - started)


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cassandra_cost(settings, pid: int, args) -> None:
    """Cassandra: one INSERT per request against UNLOGGED batches, in the same run.

    CPU per row of the Cassandra node (from /proc) and of this client process, so the figures
    hold on a busy machine; the candidates are one per object (a new detection each, as the
    sinks write them), the layout where batching can only pack different partitions.
    """
    print(f"cassandra cost per row, {args.rows} candidates one per object, batch {args.batch}")
    print("  cassandra_batch_rows   rows/s   node us/row  client us/row")
    for offset, per_request in enumerate((1, settings.cassandra_batch_rows)):
        store = await open_store(
            settings.model_copy(update={"cassandra_batch_rows": per_request}), "cassandra"
        )
        try:
            await store.migrate()
            rows = candidate_rows(args.rows, random.Random(2))
            for i, row in enumerate(rows):
                row["candidate_id"] += (offset + 1) * 10**7
                row["object_id"] = f"ZTF25cost{offset}{i:07d}"
            node, client = _cpu_seconds(pid), time.process_time()
            rate = await timed(store, "candidates", rows, args.batch)
            node, client = _cpu_seconds(pid) - node, time.process_time() - client
            print(
                f"  {per_request:20d} {rate:8.0f} {1e6 * node / len(rows):13.1f} "
                f"{1e6 * client / len(rows):14.1f}"
            )
        finally:
            await store.close()


async def bench(settings, kind: str, args) -> None:
    store = await open_store(settings, kind)
    try:
        await store.migrate()
        rng = random.Random(1)
        rows = candidate_rows(args.rows, rng)
        one = await timed(store, "candidates", rows[: args.unbatched], 1)
        many = await timed(store, "candidates", rows, args.batch)
        again = await timed(store, "candidates", rows, args.batch)
        objects = object_rows(args.rows // 5)
        obj_one = await timed(store, "objects", objects[: args.unbatched], 1)
        obj_many = await timed(store, "objects", objects, args.batch)
        assert await store.count("candidates") == len(rows)
        print(
            f"  {kind:10s} {one:10.0f} {many:10.0f} {again:10.0f} {obj_one:10.0f} {obj_many:10.0f}"
        )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--unbatched", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    base = load_settings()
    settings = base.model_copy(update={"mariadb_database": NAME, "cassandra_keyspace": NAME})
    services = Services(base)
    root = pymysql.connect(unix_socket=str(services.mariadb_socket), user="root", password="")
    with root.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {sql_name(NAME)}")
        cur.execute(f"CREATE DATABASE {sql_name(NAME)}")
        cur.execute(
            f"GRANT ALL PRIVILEGES ON {sql_name(NAME)}.* TO %s@%s",
            (base.mariadb_user, MARIADB_ACCOUNT_HOST),
        )
    print(f"rows/s; candidates {args.rows} (unbatched: first {args.unbatched}), batch {args.batch}")
    print("  store      cand 1/call  cand batch   rewrite  obj 1/call  obj batch")
    try:
        for kind in ("mariadb", "cassandra"):
            asyncio.run(bench(settings, kind, args))
        pid = services.pid("cassandra")
        if pid is not None:
            asyncio.run(cassandra_cost(settings, pid, args))
    finally:
        with root.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {sql_name(NAME)}")
        root.close()

        cluster = Cluster(**cassandra_cluster_options(base))
        try:
            cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {cql_name(NAME)}", timeout=60)
        finally:
            cluster.shutdown()


if __name__ == "__main__":
    main()
