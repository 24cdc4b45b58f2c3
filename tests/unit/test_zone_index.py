"""bench.zone_index.ZoneIndex, the in-memory baseline of bench/bench_zones.py.

The benchmark compares it with the zone tables and the CatalogueIndex of
brokerapp.domain.zones, so it must give their answers: checked here on random skies against
build_zones, lookup_in, cone_in and nearest_in, plus its own in-place operations.
"""

from __future__ import annotations

import json
import random

import pytest

from bench.zone_index import ZoneIndex
from brokerapp.domain.zones import (
    Entry,
    Match,
    build_zones,
    cone_in,
    entry_zones,
    lookup_in,
    nearest_in,
    zone_of,
)


def names(matches):
    return [m.entry.name for m in matches]


def random_entries(seed: int, n: int) -> list[Entry]:
    rng = random.Random(seed)
    return [
        Entry(i, rng.uniform(0.0, 360.0), rng.uniform(-90.0, 90.0), rng.choice([0.0, 5.0, 3600.0]))
        for i in range(n)
    ]


@pytest.mark.parametrize("height", [0.25, 1.0])
def test_agrees_with_the_zone_functions(height):
    entries = random_entries(11, 400)
    index = ZoneIndex(entries, height_deg=height)
    table = build_zones(entries, height)
    assert index.to_table() == table
    assert json.loads(json.dumps(index.to_table(str))) == json.loads(json.dumps(table))
    rng = random.Random(12)
    for _ in range(300):
        ra, dec = rng.uniform(0.0, 360.0), rng.uniform(-90.0, 90.0)
        assert index.lookup(ra, dec) == lookup_in(table, ra, dec, height_deg=height)
        assert index.cone(ra, dec, 7200.0) == cone_in(table, ra, dec, 7200.0, height_deg=height)
        assert index.nearest(ra, dec, 7200.0, 3) == nearest_in(
            table, ra, dec, 7200.0, 3, height_deg=height
        )


@pytest.mark.parametrize(
    ("dec", "radius", "zones_expected"),
    [(0.1, 5.0, [360]), (0.0, 5.0, [359, 360]), (89.9, 3600.0, list(range(715, 720)))],
)
def test_zones_for(dec, radius, zones_expected):
    assert ZoneIndex().zones_for(Entry("x", 10.0, dec, radius)) == zones_expected
    assert entry_zones(dec, radius) == zones_expected


def test_bad_height_and_entry_raise():
    with pytest.raises(ValueError, match="height"):
        ZoneIndex(height_deg=0.0)
    with pytest.raises(ValueError, match="radius"):
        ZoneIndex().add(Entry("a", 1.0, 2.0, -1.0))
    with pytest.raises(ValueError, match="ra"):
        ZoneIndex([Entry("a", 1.0, 2.0, 3.0)]).add(Entry("b", float("nan"), 2.0, 3.0))


def test_remove_and_replace():
    index = ZoneIndex([Entry("a", 10.0, 0.125, 3600.0), Entry("b", 10.0, 0.125, 5.0)])
    assert len(index) == 2 and "a" in index
    assert sorted(names(index.lookup(10.5, 0.5))) == ["a"]
    assert index.remove("a") is True
    assert index.remove("a") is False
    assert "a" not in index
    assert index.lookup(10.5, 0.5) == []
    assert names(index.lookup(10.0, 0.125)) == ["b"]
    assert index.get(zone_of(1.0)) is None  # emptied zones are dropped
    # Re-adding a name replaces the entry, including its zones.
    index.add(Entry("b", 10.0, 0.125, 3600.0))
    assert len(index) == 1
    assert names(index.lookup(10.5, 0.5)) == ["b"]
    index.add(Entry("b", 200.0, -30.1, 2.0))
    assert index.lookup(10.5, 0.5) == [] and index.lookup(10.0, 0.125) == []
    assert sorted(index.to_table()) == [zone_of(-30.1)]


def test_update_bulk_equals_adds_and_last_wins():
    entries = [Entry(i, i * 7.3 % 360, (i * 13.1) % 180 - 90, (i % 5) * 900.0) for i in range(200)]
    one_by_one = ZoneIndex()
    for entry in entries:
        one_by_one.add(entry)
    bulk = ZoneIndex(entries + [Entry(3, 1.0, 2.0, 3.0)])
    one_by_one.add(Entry(3, 1.0, 2.0, 3.0))
    assert bulk.to_table() == one_by_one.to_table()
    assert bulk.to_table() == build_zones(entries + [Entry(3, 1.0, 2.0, 3.0)])
    assert len(bulk) == 200


def test_invalid_entry_leaves_index_unchanged():
    index = ZoneIndex([Entry("a", 1.0, 2.0, 3.0)])
    before = index.to_table()
    with pytest.raises(ValueError, match="dec"):
        index.add(Entry("a", 1.0, 95.0, 3.0))
    with pytest.raises(ValueError, match="ra"):
        index.update([Entry("b", 1.0, 2.0, 3.0), Entry("c", float("nan"), 2.0, 3.0)])
    assert index.to_table() == before and len(index) == 1


def test_get_accepts_str_and_int_keys():
    index = ZoneIndex([Entry("a", 1.0, 2.0, 3.0)])
    zone = zone_of(2.0)
    assert index.get(zone) is index.get(str(zone))
    assert index.get("nonsense") is None and index.get(None, []) == []
    assert names(lookup_in(index, 1.0, 2.0)) == ["a"]


def test_entries_and_payload_survive():
    payload = {"mag": 18.2, "tags": ["agn"]}
    index = ZoneIndex([Entry("p", 1.0, 2.0, 3.0, payload)])
    assert index.entries() == [Entry("p", 1.0, 2.0, 3.0, payload)]
    (match,) = index.lookup(1.0, 2.0)
    assert match == Match(Entry("p", 1.0, 2.0, 3.0, payload), 0.0)
