"""The watchlist REST view's decisions, on plain dicts and bytes."""

from __future__ import annotations

import asyncio
import json

import pytest

from brokerapp.runtime.watchlist_view import (
    UploadTooLargeError,
    delete_messages,
    get_body,
    list_body,
    read_body,
    upload,
)

CSV = b"name,ra,dec,radius\nM31,10.6847,41.2690,5\nM33,23.4621,30.6599,\n"


def test_an_upload_becomes_chunks_then_a_commit():
    status, body, messages = upload(CSV, "w1", {"name": "galaxies", "radius": "3"}, 1, "v1")
    assert status == 200
    assert body == {"accepted": "w1", "entries": 2, "version": "v1", "chunks": 2}
    assert [key for key, _ in messages] == [b"w1@v1#0", b"w1@v1#1", b"w1"]
    second = json.loads(messages[1][1])
    assert second["items"] == [{"name": "M33", "ra": 23.4621, "dec": 30.6599, "radius_arcsec": 3.0}]
    assert json.loads(messages[2][1]) == {
        "op": "commit",
        "watchlist_id": "w1",
        "version": "v1",
        "chunks": 2,
        "count": 2,
        "kind": "watchlist",
        "name": "galaxies",
        "owner": "unknown",
    }


def test_a_bad_file_is_refused_with_its_row_and_column_and_nothing_sent():
    status, body, messages = upload(b"name,ra,dec,radius\nx,1,95,2\n", "w1", {}, 5000)
    assert status == 400 and messages == []
    assert body["error"] == "watchlist w1: row 1, column 'dec': 95 is outside -90..90 (CSV line 2)"
    status, body, _ = upload(CSV, "w1", {}, 5000)  # M33 has no radius and none given
    assert status == 400 and "row 2, column 'radius'" in body["error"]


def test_a_delete_is_one_message_keyed_by_the_watchlist():
    status, body, messages = delete_messages("w1")
    assert (status, body) == (200, {"accepted": "w1", "op": "delete"})
    assert messages == [(b"w1", b'{"op":"delete","watchlist_id":"w1","payload":null}')]
    assert delete_messages("bad id")[0] == 400


TABLE = {
    "w1": {
        "kind": "watchlist",
        "id": "w1",
        "name": "galaxies",
        "owner": "me",
        "version": "v1",
        "chunks": 1,
        "count": 1,
        "zones": [524],
    },
    "w1@v1#0": {
        "chunks": 1,
        "items": [{"name": "M31", "ra": 10.6847, "dec": 41.269, "radius_arcsec": 5.0}],
    },
    "w1@v0#0": {
        "chunks": 1,
        "items": [{"name": "staged", "ra": 1.0, "dec": 1.0, "radius_arcsec": 5.0}],
    },
}


def test_the_list_shows_each_watchlist_in_force_and_get_reads_its_chunks():
    assert list_body(TABLE) == {"w1": {"name": "galaxies", "owner": "me", "entries": 1}}
    assert get_body(TABLE, "w1") == (
        200,
        {
            "kind": "watchlist",
            "id": "w1",
            "name": "galaxies",
            "owner": "me",
            "entries": [{"name": "M31", "ra": 10.6847, "dec": 41.269, "radius_arcsec": 5.0}],
        },
    )
    assert get_body(TABLE, "w2") == (404, {"error": "no watchlist 'w2'"})


class Body:
    """An aiohttp-like request whose body arrives in pieces."""

    def __init__(self, *pieces):
        self.content = self
        self.pieces = pieces

    async def iter_chunked(self, size):
        for piece in self.pieces:
            await asyncio.sleep(0)
            yield piece


async def test_the_body_is_streamed_in_up_to_the_limit():
    assert await read_body(Body(b"ab", b"cd"), 4) == b"abcd"
    with pytest.raises(UploadTooLargeError):
        await read_body(Body(b"ab", b"cde"), 4)
