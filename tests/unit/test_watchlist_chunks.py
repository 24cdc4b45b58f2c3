"""Large watchlists as chunks and a commit: splitting, the wire form and assembly."""

from __future__ import annotations

import json

import pytest

from brokerapp.domain.watchlists import (
    SolarSystemWatchlist,
    Watchlist,
    WatchlistCommand,
    WatchlistEntry,
    WatchlistError,
)
from brokerapp.domain.watchlists.chunks import (
    WatchlistChunk,
    WatchlistCommit,
    assemble,
    chunk_commands,
    new_version,
    parse_control,
)


def entry(i):
    return WatchlistEntry(f"e{i}", 10.0 + i, -5.0 + i, 2.0)


def item(i):
    return {"name": f"e{i}", "ra": 10.0 + i, "dec": -5.0 + i, "radius_arcsec": 2.0}


WL = Watchlist("w1", "my list", "me", tuple(entry(i) for i in range(5)))


def test_a_watchlist_splits_into_chunks_of_the_given_size_and_one_commit():
    chunks, commit = chunk_commands(WL, 2, version="v1")
    assert [(c.seq, c.chunks, [i["name"] for i in c.items]) for c in chunks] == [
        (0, 3, ["e0", "e1"]),
        (1, 3, ["e2", "e3"]),
        (2, 3, ["e4"]),
    ]
    assert chunks[1].items[0] == {"name": "e2", "ra": 12.0, "dec": -3.0, "radius_arcsec": 2.0}
    assert [c.key for c in chunks] == [b"w1@v1#0", b"w1@v1#1", b"w1@v1#2"]
    assert commit.key == b"w1"  # like a put or a delete: compaction keeps the last
    assert commit.to_json() == {
        "op": "commit",
        "watchlist_id": "w1",
        "version": "v1",
        "chunks": 3,
        "count": 5,
        "kind": "watchlist",
        "name": "my list",
        "owner": "me",
    }


def test_every_chunk_is_under_the_message_size_it_was_sized_for():
    entries = tuple(
        WatchlistEntry(f"entry-{i:07d}", 359.123456789 - i % 360, i % 180 - 89.987654321, 5.5)
        for i in range(12000)
    )
    chunks, commit = chunk_commands(Watchlist("w", "n", "o", entries), 5000, "v")
    assert commit.chunks == 3 and commit.count == 12000
    assert max(len(c.to_bytes()) for c in chunks) < 1_000_000


def test_solar_system_watchlists_chunk_their_objects():
    watchlist = SolarSystemWatchlist("ss", "rocks", "me", ("2830", "2018VB12", "119257"))
    chunks, commit = chunk_commands(watchlist, 2, version="v")
    assert [c.items for c in chunks] == [("2830", "2018VB12"), ("119257",)]
    assert commit.kind == "solar_system" and commit.count == 3


def test_chunks_and_commits_round_trip_through_the_control_topic_bytes():
    chunks, commit = chunk_commands(WL, 2, version="v1")
    assert parse_control(chunks[2].to_bytes()) == chunks[2]
    assert parse_control(commit.to_bytes()) == commit
    assert json.loads(chunks[2].to_bytes()) == {
        "op": "chunk",
        "watchlist_id": "w1",
        "version": "v1",
        "seq": 2,
        "chunks": 3,
        "kind": "watchlist",
        "items": [{"name": "e4", "ra": 14.0, "dec": -1.0, "radius_arcsec": 2.0}],
    }
    put = WatchlistCommand.put(WL)
    assert parse_control(put.to_bytes()) == put  # whole-watchlist commands still read


def test_a_chunk_with_a_bad_entry_is_refused_naming_it():
    value = json.dumps(
        {
            "op": "chunk",
            "watchlist_id": "w1",
            "version": "v1",
            "seq": 0,
            "chunks": 1,
            "kind": "watchlist",
            "items": [item(0), {**item(1), "dec": 95.0}],
        }
    )
    with pytest.raises(WatchlistError) as error:
        parse_control(value)
    assert "items[1].dec: 95.0 is outside -90..90" in str(error.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seq": 3}, "seq 3 is not below chunks 3"),
        ({"version": "a b"}, "version: 'a b' is not a valid version"),
        ({"kind": "galaxies"}, "kind: unknown kind 'galaxies'"),
        ({"seq": -1}, "seq: expected an integer >= 0, got -1"),
    ],
)
def test_a_chunk_with_bad_fields_is_refused(change, message):
    fields = {"op": "chunk", "watchlist_id": "w1", "version": "v1", "seq": 0, "chunks": 3}
    fields.update({"kind": "watchlist", "items": [item(0)], **change})
    with pytest.raises(WatchlistError, match=message.replace("(", r"\(")):
        parse_control(json.dumps(fields))


def test_a_commit_with_unknown_fields_is_refused():
    value = {**WatchlistCommit("w1", "v1", 1, 1, "watchlist", "n", "o").to_json(), "extra": 1}
    with pytest.raises(WatchlistError, match="unknown field 'extra'"):
        parse_control(json.dumps(value))


def staged(*seqs, chunks=3):
    """Staged chunks of WL split by 2: {seq: {"chunks", "items"}}."""
    parts = {0: [item(0), item(1)], 1: [item(2), item(3)], 2: [item(4)]}
    return {seq: {"chunks": chunks, "items": parts[seq]} for seq in seqs}


COMMIT = WatchlistCommit("w1", "v1", 3, 5, "watchlist", "my list", "me")


def test_chunks_staged_out_of_order_assemble_in_seq_order():
    assembled = assemble(COMMIT, staged(2, 0, 1))
    assert [i["name"] for i in assembled] == ["e0", "e1", "e2", "e3", "e4"]


def test_a_chunk_received_twice_counts_once():
    # Staging keys chunks by seq: a second copy replaces the first.
    chunks = staged(0, 1, 2)
    chunks[1] = staged(1)[1]
    assert len(assemble(COMMIT, chunks)) == 5


def test_a_missing_chunk_refuses_the_commit_naming_it():
    with pytest.raises(WatchlistError) as error:
        assemble(COMMIT, staged(0, 2))
    assert str(error.value) == "watchlist commit: missing chunk 1 of 3"


def test_chunks_of_another_upload_size_and_extra_chunks_are_refused():
    with pytest.raises(WatchlistError) as error:
        assemble(COMMIT, {**staged(0, 1, 2), 3: {"chunks": 4, "items": [item(9)]}})
    text = str(error.value)
    assert "chunks [3] beyond the 3 committed" in text
    assert "chunk 3 belongs to an upload of 4 chunks" in text


def test_a_name_in_two_chunks_and_a_wrong_count_are_refused():
    chunks = staged(0, 1, 2)
    chunks[2] = {"chunks": 3, "items": [item(1)]}
    with pytest.raises(WatchlistError, match=r"duplicate entry name 'e1' \(chunks 0 and 2\)"):
        assemble(COMMIT, chunks)
    short = WatchlistCommit("w1", "v1", 3, 6, "watchlist", "my list", "me")
    with pytest.raises(WatchlistError, match="5 items staged, the commit announces 6"):
        assemble(short, staged(0, 1, 2))


def test_versions_are_new_each_time_and_valid_in_keys():
    versions = {new_version() for _ in range(100)}
    assert len(versions) == 100
    chunk = WatchlistChunk("w1", versions.pop(), 0, 1, "watchlist", (item(0),))
    assert chunk.key.startswith(b"w1@")


def test_chunk_items_are_normalised_as_a_watchlist_would_be():
    raw = [{"name": " M31 ", "ra": 10, "dec": -0.0, "radius_arcsec": 5}, item(1)]
    checked = WatchlistChunk("w1", "v1", 0, 1, "watchlist", tuple(raw))
    assert checked.items[0] == {"name": "M31", "ra": 10.0, "dec": 0.0, "radius_arcsec": 5.0}
    assert checked.items[1] == item(1)
    with pytest.raises(WatchlistError, match=r"items\[1\]: duplicate 'e0' \(also items\[0\]\)"):
        WatchlistChunk("w1", "v1", 0, 1, "watchlist", (item(0), item(0)))
    objects = WatchlistChunk("s", "v1", 0, 1, "solar_system", ("002830", "2018 VB12"))
    assert objects.items == ("2830", "2018VB12")
    with pytest.raises(WatchlistError, match=r"items\[0\]: 'null' is ZTF's marker"):
        WatchlistChunk("s", "v1", 0, 1, "solar_system", ("null",))
