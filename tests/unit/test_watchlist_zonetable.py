"""The watchlist worker's table edits, on plain dicts: staging, commits, deletes, matching.

Zone numbers are written by hand: zone = floor((dec + 90) / 0.25), so dec 0.1 is zone 360
and dec 0.3 zone 361 (a 2 arcsec circle there stays in its zone).
"""

from __future__ import annotations

import copy

import pytest

from brokerapp.domain.watchlists import WatchlistCommand, WatchlistError
from brokerapp.domain.watchlists.chunks import WatchlistChunk, WatchlistCommit
from brokerapp.domain.watchlists.zonetable import (
    apply,
    commit,
    commit_steps,
    delete,
    entries_json,
    in_force,
    stage,
    summary,
    watchlist_ids,
    zone_keys,
)
from brokerapp.domain.zones import lookup_in

A = {"name": "a", "ra": 10.0, "dec": 0.1, "radius_arcsec": 2.0}
B = {"name": "b", "ra": 10.5, "dec": 0.3, "radius_arcsec": 2.0}
A_MOVED = {"name": "a", "ra": 20.0, "dec": 0.1, "radius_arcsec": 2.0}


def chunk(version, seq, chunks, *items, watchlist_id="w1", kind="watchlist"):
    return WatchlistChunk(watchlist_id, version, seq, chunks, kind, items)


def commit_of(version, chunks, count, watchlist_id="w1", kind="watchlist"):
    return WatchlistCommit(watchlist_id, version, chunks, count, kind, "my list", "me")


def found(zones, ra, dec):
    """Names of the entries in force whose circle holds (ra, dec)."""
    return {m.entry.payload["entry"] for m in in_force(zones, lookup_in(zones, ra, dec, key=str))}


@pytest.fixture
def tables():
    return {}, {}, {}


def test_staged_chunks_change_nothing_a_reader_sees(tables):
    watchlists, zones, ss_objects = tables
    stage(watchlists, chunk("v1", 1, 2, B))
    stage(watchlists, chunk("v1", 0, 2, A))
    assert zones == {} and ss_objects == {}
    assert watchlist_ids(watchlists) == []
    assert sorted(watchlists) == ["w1@v1#0", "w1@v1#1"]
    assert watchlists["w1@v1#1"] == {"chunks": 2, "items": [B]}


def test_a_commit_puts_the_staged_version_in_force(tables):
    watchlists, zones, ss_objects = tables
    stage(watchlists, chunk("v1", 1, 2, B))  # out of order
    stage(watchlists, chunk("v1", 0, 2, A))
    applied = commit(watchlists, zones, ss_objects, commit_of("v1", 2, 2))
    assert (applied.op, applied.count, applied.removed_chunks) == ("commit", 2, [])
    assert watchlists["w1"] == {
        "kind": "watchlist",
        "id": "w1",
        "name": "my list",
        "owner": "me",
        "version": "v1",
        "chunks": 2,
        "count": 2,
        "zones": [360, 361],
    }
    assert sorted(zone_keys(zones)) == ["360", "361"]
    assert zones["@w1"] == "v1"
    row = zones["360"][0]
    assert row[0] == "w1@v1/a" and row[-1] == {"watchlist": "w1", "version": "v1", "entry": "a"}
    assert found(zones, 10.0, 0.1) == {"a"}
    assert found(zones, 10.5, 0.3) == {"b"}
    assert found(zones, 10.0, 0.2) == set()
    assert summary(watchlists["w1"]) == {"name": "my list", "owner": "me", "entries": 2}
    assert entries_json(watchlists, "w1") == {
        "kind": "watchlist",
        "id": "w1",
        "name": "my list",
        "owner": "me",
        "entries": [A, B],
    }


def test_a_new_version_replaces_the_old_one_and_its_chunks_go(tables):
    watchlists, zones, ss_objects = tables
    stage(watchlists, chunk("v1", 0, 1, A, B))
    commit(watchlists, zones, ss_objects, commit_of("v1", 1, 2))
    stage(watchlists, chunk("v2", 0, 1, A_MOVED))
    assert found(zones, 10.0, 0.1) == {"a"}  # staged only: v1 still in force
    assert found(zones, 20.0, 0.1) == set()
    applied = commit(watchlists, zones, ss_objects, commit_of("v2", 1, 1))
    assert applied.removed_chunks == ["w1@v1#0"]
    assert found(zones, 10.0, 0.1) == set()
    assert found(zones, 20.0, 0.1) == {"a"}
    assert found(zones, 10.5, 0.3) == set()
    assert sorted(watchlists) == ["w1", "w1@v2#0"]
    assert sorted(zone_keys(zones)) == ["360"]  # zone 361 held only b
    assert [row[0] for row in zones["360"]] == ["w1@v2/a"]


class Recording(dict):
    """A dict that logs its writes, to replay them one by one as a remote reader would."""

    def __init__(self, *args):
        super().__init__(*args)
        self.log = []

    def __setitem__(self, key, value):
        self.log.append(("set", key, copy.deepcopy(value)))
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.log.append(("del", key, None))
        super().__delitem__(key)


def test_a_reader_replaying_the_zone_writes_in_order_never_sees_a_mix(tables):
    watchlists, _, ss_objects = tables
    zones = Recording()
    stage(watchlists, chunk("v1", 0, 1, A, B))
    commit(watchlists, zones, ss_objects, commit_of("v1", 1, 2))
    before = dict(zones)
    start = len(zones.log)
    stage(watchlists, chunk("v2", 0, 1, A_MOVED))
    commit(watchlists, zones, ss_objects, commit_of("v2", 1, 1))
    old = {"a@10": True, "a@20": False, "b": True}
    new = {"a@10": False, "a@20": True, "b": False}
    seen = []
    replica = dict(before)
    for op, key, value in [(None, None, None), *zones.log[start:]]:
        if op == "set":
            replica[key] = value
        elif op == "del":
            del replica[key]
        state = {
            "a@10": "a" in found(replica, 10.0, 0.1),
            "a@20": "a" in found(replica, 20.0, 0.1),
            "b": "b" in found(replica, 10.5, 0.3),
        }
        assert state in (old, new), f"a mix after {op} {key}: {state}"
        seen.append(state == new)
    assert seen[0] is False and seen[-1] is True
    assert seen == sorted(seen)  # once new, never old again


def test_a_commit_with_a_missing_chunk_changes_nothing(tables):
    watchlists, zones, ss_objects = tables
    stage(watchlists, chunk("v1", 0, 1, A))
    commit(watchlists, zones, ss_objects, commit_of("v1", 1, 1))
    stage(watchlists, chunk("v2", 0, 2, A_MOVED))  # chunk 1 of v2 never came
    snapshot = copy.deepcopy(tables)
    with pytest.raises(WatchlistError, match="missing chunk 1 of 2"):
        commit(watchlists, zones, ss_objects, commit_of("v2", 2, 2))
    assert tables == snapshot
    assert found(zones, 10.0, 0.1) == {"a"}


def test_an_upload_that_never_commits_goes_with_the_next_commit(tables):
    watchlists, zones, ss_objects = tables
    stage(watchlists, chunk("crashed", 0, 3, A))  # a client died after one chunk
    stage(watchlists, chunk("v2", 0, 1, B))
    applied = commit(watchlists, zones, ss_objects, commit_of("v2", 1, 1))
    assert applied.removed_chunks == ["w1@crashed#0"]
    assert found(zones, 10.5, 0.3) == {"b"}


def test_a_delete_stops_matching_and_removes_rows_marker_header_and_chunks(tables):
    watchlists, zones, ss_objects = tables
    stage(watchlists, chunk("v1", 0, 1, A, B))
    commit(watchlists, zones, ss_objects, commit_of("v1", 1, 2))
    stage(watchlists, chunk("other", 0, 1, A, watchlist_id="w2"))
    commit(watchlists, zones, ss_objects, commit_of("other", 1, 1, watchlist_id="w2"))
    applied = delete(watchlists, zones, ss_objects, "w1")
    assert applied.removed_chunks == ["w1@v1#0"]
    assert sorted(watchlists) == ["w2", "w2@other#0"]
    assert sorted(zones) == ["360", "@w2"]
    assert [row[0] for row in zones["360"]] == ["w2@other/a"]
    assert found(zones, 10.0, 0.1) == {"a"}  # w2's a


def test_a_whole_watchlist_put_is_staged_and_committed_under_its_offset(tables):
    from brokerapp.domain.watchlists import Watchlist, WatchlistEntry

    watchlists, zones, ss_objects = tables
    put = WatchlistCommand.put(
        Watchlist("w1", "old style", "me", (WatchlistEntry("a", 10.0, 0.1, 2.0),))
    )
    applied = apply(watchlists, zones, ss_objects, put, "o7", 5000)
    assert (applied.op, applied.version) == ("put", "o7")
    assert watchlists["w1"]["version"] == "o7" and watchlists["w1"]["name"] == "old style"
    assert found(zones, 10.0, 0.1) == {"a"}
    apply(watchlists, zones, ss_objects, WatchlistCommand.delete("w1"), "o8", 5000)
    assert watchlists == {} and zones == {}


def test_rows_written_before_versions_existed_are_replaced_by_a_commit(tables):
    watchlists, zones, ss_objects = tables
    # The layout before chunked uploads: whole JSON header, rows without a version.
    watchlists["w1"] = {"kind": "watchlist", "id": "w1", "name": "n", "owner": "o", "entries": [A]}
    zones["360"] = [["w1/a", 10.0, 0.1, 2.0, 0.0005556, {"watchlist": "w1", "entry": "a"}]]
    assert found(zones, 10.0, 0.1) == {"a"}
    assert summary(watchlists["w1"])["entries"] == 1
    stage(watchlists, chunk("v2", 0, 1, B))
    commit(watchlists, zones, ss_objects, commit_of("v2", 1, 1))
    assert found(zones, 10.0, 0.1) == set()
    assert found(zones, 10.5, 0.3) == {"b"}
    assert "360" not in zones


def test_solar_system_watchlists_follow_their_objects_version_by_version(tables):
    watchlists, zones, ss_objects = tables
    ss = {"watchlist_id": "ss1", "kind": "solar_system"}
    stage(watchlists, chunk("v1", 0, 2, "2830", "2018VB12", **ss))
    stage(watchlists, chunk("v1", 1, 2, "119257", **ss))
    commit(watchlists, zones, ss_objects, commit_of("v1", 2, 3, **ss))
    assert ss_objects == {"2830": ["ss1"], "2018VB12": ["ss1"], "119257": ["ss1"]}
    assert entries_json(watchlists, "ss1")["objects"] == ["2830", "2018VB12", "119257"]
    stage(watchlists, chunk("v2", 0, 1, "2830", "K12J69D", **ss))
    commit(watchlists, zones, ss_objects, commit_of("v2", 1, 2, **ss))
    assert ss_objects == {"2830": ["ss1"], "K12J69D": ["ss1"]}
    delete(watchlists, zones, ss_objects, "ss1")
    assert ss_objects == {} and watchlists == {} and zones == {}


def test_a_reader_between_any_two_steps_of_a_commit_sees_one_version(tables, monkeypatch):
    from brokerapp.domain.watchlists import zonetable

    monkeypatch.setattr(zonetable, "STEP_ITEMS", 1)  # a step per entry and per zone
    watchlists, zones, ss_objects = tables
    stage(watchlists, chunk("v1", 0, 1, A, B))
    commit(watchlists, zones, ss_objects, commit_of("v1", 1, 2))
    stage(watchlists, chunk("v2", 0, 1, A_MOVED))
    steps = zonetable.commit_steps(watchlists, zones, ss_objects, commit_of("v2", 1, 1))
    states = []
    while True:
        states.append((found(zones, 10.0, 0.1), found(zones, 20.0, 0.1), found(zones, 10.5, 0.3)))
        try:
            next(steps)
        except StopIteration as done:
            applied = done.value
            break
    old, new = ({"a"}, set(), {"b"}), (set(), {"a"}, set())
    assert all(state in (old, new) for state in states)
    assert states[0] == old and states[-1] == new and len(states) > 4
    assert applied.count == 1


def test_a_commit_replayed_after_its_swap_removes_the_old_rows_left(tables):
    watchlists, zones, ss_objects = tables
    stage(watchlists, chunk("v1", 0, 1, A, B))
    commit(watchlists, zones, ss_objects, commit_of("v1", 1, 2))
    stage(watchlists, chunk("v2", 0, 1, A_MOVED))
    steps = commit_steps(watchlists, zones, ss_objects, commit_of("v2", 1, 1))
    while zones.get("@w1") != "v2":  # the worker stops right after the swap
        next(steps)
    assert [row[0] for row in zones["361"]] == ["w1@v1/b"]  # left behind
    commit(watchlists, zones, ss_objects, commit_of("v2", 1, 1))  # the commit read again
    assert sorted(zone_keys(zones)) == ["360"]
    assert [row[0] for row in zones["360"]] == ["w1@v2/a"]
