"""Declination-zone index (brokerapp.domain.zones): lookup cost, memory, zone height, storage.

Usage: ``python -m bench.bench_zones [--sizes 10000,100000,1000000] [--alerts 100000]
[--heights 0.1,0.25,0.5,1] [--quick]``

Entries and alerts are uniform on the sphere (fixed seed). It prints, and asserts nothing:

1. Watchlist: an index of N entries of radius 1-5 arcsec, and 10^5 random alerts looked up
   (a) in the :class:`~bench.zone_index.ZoneIndex`, (b) with
   :func:`~brokerapp.domain.zones.lookup_in`
   over a plain dict of JSON-decoded zone values with ``str`` keys (a table value as it
   arrives), (c) the same but decoding the zone's JSON on every read, as a RocksDB-backed
   table does (fewer alerts). Build time, and memory per entry: the Python heap retained by
   the index as measured by ``tracemalloc`` (rows, floats, names, zone lists and dicts; the
   input list freed), in a second build.
2. Zone height, at the largest N: lookup cost, rows per zone, the JSON size of the largest
   zone value (one table write rewrites the whole value) and the time to decode it, and the
   copies stored for a 5 arcsec and a 1 deg entry.
3. Storage scheme, at the largest N with 1% of the entries of radius 1 deg: each entry
   stored in every zone its circle overlaps (one read per alert, the module's scheme) versus
   stored in its home zone only, the lookup reading the zones of ``dec +/- r_max``.
4. Catalogue: N sources (radius 0), ``nearest`` (k = 1) within several radii, in a
   :class:`~bench.zone_index.ZoneIndex` (rows, pure Python) and in a
   :class:`~brokerapp.domain.zones.CatalogueIndex` (numpy arrays, vectorised distances); build
   time and memory per source (``tracemalloc``) of each.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import time
import timeit
import tracemalloc
from collections.abc import Callable

import numpy as np

from bench.zone_index import ZoneIndex
from brokerapp.domain import zones
from brokerapp.domain.zones import (
    DEFAULT_HEIGHT_DEG,
    CatalogueIndex,
    Entry,
    build_zones,
    entry_zones,
    lookup_in,
    match_in,
    zone_of,
)

SEED = 20260701


def sky(rng: np.random.Generator, n: int) -> tuple[list[float], list[float]]:
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return ra.tolist(), dec.tolist()


def watchlist(rng: np.random.Generator, n: int, big_fraction: float = 0.0) -> list[Entry]:
    ra, dec = sky(rng, n)
    radius = rng.uniform(1.0, 5.0, n)
    radius[: int(n * big_fraction)] = 3600.0
    return [
        Entry(i, a, d, r) for i, (a, d, r) in enumerate(zip(ra, dec, radius.tolist(), strict=True))
    ]


def per_call_us(fn: Callable[[float, float], object], ras, decs) -> tuple[float, int]:
    found = 0
    start = time.perf_counter()
    for ra, dec in zip(ras, decs, strict=True):
        found += len(fn(ra, dec))
    return (time.perf_counter() - start) / len(ras) * 1e6, found


def retained_bytes(make: Callable[[], object]) -> tuple[object, int]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    made = make()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return made, after - before


class RocksLike:
    """Zone values kept as JSON bytes and decoded on every ``get``, as a RocksDB store does."""

    def __init__(self, table: dict) -> None:
        self._raw = {str(zone): json.dumps(rows).encode() for zone, rows in table.items()}

    def get(self, key):
        raw = self._raw.get(key)
        return None if raw is None else json.loads(raw)


def bench_watchlist(sizes: list[int], alerts: int) -> None:
    print(f"1. watchlist lookups, radius 1-5 arcsec, height 0.25 deg, {alerts:,} alerts")
    print(
        f"{'entries':>9} {'build s':>8} {'B/entry':>8} {'index us':>9} {'dict us':>8}"
        f" {'decode us':>10} {'matches':>8}"
    )
    for n in sizes:
        rng = np.random.default_rng(SEED)
        entries = watchlist(rng, n)
        ras, decs = sky(rng, alerts)
        start = time.perf_counter()
        index = ZoneIndex(entries)
        build = time.perf_counter() - start
        del entries
        _, memory = retained_bytes(lambda n=n: ZoneIndex(watchlist(np.random.default_rng(SEED), n)))
        in_index, found = per_call_us(index.lookup, ras, decs)
        table = json.loads(json.dumps(index.to_table()))  # str keys, fresh lists
        in_dict, found_dict = per_call_us(
            lambda ra, dec, t=table: lookup_in(t, ra, dec, key=str), ras, decs
        )
        rocks = RocksLike(index.to_table())
        few = max(1, min(alerts, 2000))
        decoded, _ = per_call_us(
            lambda ra, dec, t=rocks: lookup_in(t, ra, dec, key=str), ras[:few], decs[:few]
        )
        if found != found_dict:
            print(f"   ! index found {found} matches, the dict {found_dict}")
        print(
            f"{n:>9,} {build:>8.2f} {memory / n:>8.0f} {in_index:>9.2f} {in_dict:>8.2f}"
            f" {decoded:>10.0f} {found:>8}"
        )
        del index, table, rocks
        gc.collect()


def bench_heights(n: int, alerts: int, heights: list[float]) -> None:
    print(f"\n2. zone height, {n:,} entries of radius 1-5 arcsec")
    print(
        f"{'height':>7} {'zones':>6} {'lookup us':>10} {'rows/zone':>10} {'max rows':>9}"
        f" {'max kB':>7} {'decode ms':>10} {'copies 5as':>11} {'copies 1deg':>12}"
    )
    rng = np.random.default_rng(SEED)
    entries = watchlist(rng, n)
    ras, decs = sky(rng, alerts)
    _, probe_decs = sky(np.random.default_rng(SEED + 1), 20000)
    for height in heights:
        index = ZoneIndex(entries, height_deg=height)
        lookup, _ = per_call_us(index.lookup, ras, decs)
        sizes = [len(rows) for rows in index.to_table().values()]
        biggest = max(index.to_table().values(), key=len)
        raw = json.dumps(biggest).encode()
        decode = 1e3 * min(timeit.repeat(lambda raw=raw: json.loads(raw), number=3, repeat=5)) / 3
        copies_small = np.mean([len(entry_zones(d, 5.0, height)) for d in probe_decs])
        copies_big = np.mean([len(entry_zones(d, 3600.0, height)) for d in probe_decs])
        print(
            f"{height:>7} {zones.zone_count(height):>6} {lookup:>10.2f} {np.mean(sizes):>10.0f}"
            f" {max(sizes):>9} {len(raw) / 1e3:>7.0f} {decode:>10.2f} {copies_small:>11.4f}"
            f" {copies_big:>12.2f}"
        )
        del index
        gc.collect()


def bench_schemes(n: int, alerts: int) -> None:
    height = DEFAULT_HEIGHT_DEG
    print(f"\n3. storage scheme, {n:,} entries, 1% of radius 1 deg, the rest 1-5 arcsec")
    rng = np.random.default_rng(SEED)
    entries = watchlist(rng, n, big_fraction=0.01)
    ras, decs = sky(rng, alerts)
    replicated = build_zones(entries, height)
    home: dict[int, list] = {}
    for row in (zones.entry_to_json(entry) for entry in entries):
        home.setdefault(zone_of(row[zones.DEC], height), []).append(row)
    for rows in home.values():
        rows.sort(key=zones._sort_key)
    r_max = max(entry.radius_arcsec for entry in entries)
    last = zones.zone_count(height) - 1

    def neighbours(ra: float, dec: float) -> list:
        reach = r_max / 3600.0 + zones.DEC_PAD_DEG
        lo = zone_of(max(-90.0, dec - reach), height)
        hi = zone_of(min(90.0, dec + reach), height)
        out = []
        for zone in range(lo, min(hi, last) + 1):
            out.extend(match_in(home.get(zone), ra, dec))
        return out

    one, found_one = per_call_us(lambda ra, dec: lookup_in(replicated, ra, dec), ras, decs)
    many, found_many = per_call_us(neighbours, ras, decs)
    if found_one != found_many:
        print(f"   ! the schemes found {found_one} and {found_many} matches")
    stored_one = sum(map(len, replicated.values()))
    stored_many = sum(map(len, home.values()))
    reads = 2 * math.ceil(r_max / 3600.0 / height) + 1
    print(f"{'scheme':<34} {'reads/alert':>11} {'lookup us':>10} {'rows stored':>12}")
    print(f"{'every overlapped zone, read one':<34} {1:>11} {one:>10.2f} {stored_one:>12,}")
    print(f"{'home zone, read dec +/- r_max':<34} {reads:>11} {many:>10.2f} {stored_many:>12,}")
    print(f"matches: {found_one} for {alerts:,} alerts")


def bench_catalogue(n: int, alerts: int) -> None:
    height = DEFAULT_HEIGHT_DEG
    print(f"\n4. catalogue, {n:,} sources, nearest within radius (k = 1), height {height} deg")
    rng = np.random.default_rng(SEED)
    ra, dec = sky(rng, n)
    ras, decs = sky(rng, alerts)
    start = time.perf_counter()
    index = ZoneIndex(Entry(i, a, d) for i, (a, d) in enumerate(zip(ra, dec, strict=True)))
    build = time.perf_counter() - start
    start = time.perf_counter()
    catalogue = CatalogueIndex(np.arange(n), ra, dec)
    build_np = time.perf_counter() - start
    del index
    gc.collect()
    index, memory = retained_bytes(
        lambda: ZoneIndex(Entry(i, a, d) for i, (a, d) in enumerate(zip(ra, dec, strict=True)))
    )
    _, memory_np = retained_bytes(lambda: CatalogueIndex(np.arange(n), ra, dec))
    print(f"{'':>13} {'ZoneIndex':>11} {'Catalogue':>10}")
    print(f"{'build s':>13} {build:>11.2f} {build_np:>10.2f}")
    print(f"{'B/source':>13} {memory / n:>11.0f} {memory_np / n:>10.0f}")
    print(f"{'radius arcsec':>13} {'nearest us':>11} {'nearest us':>10} {'found':>7}")
    for radius in (2.0, 5.0, 60.0, 600.0, 3600.0):
        m = alerts if radius <= 60.0 else max(1, alerts // 20)
        pure, found = per_call_us(lambda a, d, r=radius: index.nearest(a, d, r), ras[:m], decs[:m])
        vec, found_np = per_call_us(
            lambda a, d, r=radius: catalogue.nearest(a, d, r), ras[:m], decs[:m]
        )
        if found != found_np:
            print(f"   ! ZoneIndex found {found}, CatalogueIndex {found_np}")
        print(f"{radius:>13g} {pure:>11.2f} {vec:>10.2f} {found / m:>7.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--heights", default="0.1,0.25,0.5,1")
    parser.add_argument("--quick", action="store_true", help="sizes up to 10^5, 10^4 alerts")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    alerts = args.alerts
    if args.quick:
        sizes, alerts = [s for s in sizes if s <= 100_000] or [10_000], min(alerts, 10_000)
    heights = [float(h) for h in args.heights.split(",")]
    bench_watchlist(sizes, alerts)
    bench_heights(max(sizes), alerts, heights)
    bench_schemes(max(sizes), alerts)
    bench_catalogue(max(sizes), alerts)


if __name__ == "__main__":
    main()
