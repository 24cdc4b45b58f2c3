"""The sinks' batching: what is written, and that a flush returns only once it is stored.

The sink's batch loop commits a batch's offsets after every flush of it has returned
(``tests/agents/sink_cases.py`` checks the order of writes and commits).

``TableBatch`` takes its store write as a callable; these tests give it a plain recorder (no
database behind it: the stores themselves are tested on the real servers in
``tests/integration/test_stores.py`` and the sinks end to end in ``test_objects_sinks.py``).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from brokerapp.adapters.stores import StoreRejected
from brokerapp.domain.candidates import CandidateError
from brokerapp.model.settings import load_settings
from brokerapp.runtime.sink import SINK_TABLES, TableBatch, key_columns, rows_of


def event(offset, origin_ms=None):
    """An input record as the batch loop gives it (append time in ms)."""
    headers = [] if origin_ms is None else [("origin-timestamp", str(origin_ms).encode())]
    return SimpleNamespace(timestamp=time.time() * 1000.0, offset=offset, headers=headers)


class Recorder:
    def __init__(self, refuse=()):
        self.writes = []
        self.rejected = []
        self.refuse = set(refuse)

    async def write(self, table, rows):
        if any(row["id"] in self.refuse for row in rows):
            raise StoreRejected(f"refused one of {len(rows)}")
        self.writes.append([row["id"] for row in rows])

    def reject(self, e, error):
        self.rejected.append((e.offset, str(error)))


def batch_of(recorder, size=3, seconds=10.0, remember=0):
    settings = load_settings(sink_batch_size=size, sink_batch_seconds=seconds)
    return TableBatch("t", recorder.write, recorder.reject, settings, ("id",), remember)


async def test_a_full_batch_is_written_once_in_order_and_the_rest_on_flush():
    rec = Recorder()
    batch = batch_of(rec, size=3)
    for n in range(7):
        await batch.add(event(n), [{"id": n}])
    assert rec.writes == [[0, 1, 2], [3, 4, 5]]
    assert batch.status()["pending"] == 1
    await batch.flush()
    assert rec.writes[-1] == [6] and batch.status()["pending"] == 0
    assert batch.status()["rows_written"] == 7


async def test_rows_with_one_key_in_a_batch_are_written_once_the_latest():
    rec = Recorder()
    batch = batch_of(rec, size=10)
    await batch.add(event(0), [{"id": 1, "v": "old"}])
    await batch.add(event(1), [{"id": 1, "v": "new"}, {"id": 2}])
    written = []

    async def write(table, rows):
        written.extend(rows)
        rec.writes.append(rows)

    batch._write = write
    await batch.flush()
    assert written == [{"id": 1, "v": "new"}, {"id": 2}]


async def test_a_refused_row_is_dead_lettered_and_the_rest_stored():
    rec = Recorder(refuse={2})
    batch = batch_of(rec, size=4)
    for n in range(4):
        await batch.add(event(n), [{"id": n}])
    assert rec.writes == [[0], [1], [3]]
    assert [offset for offset, _ in rec.rejected] == [2]
    assert batch.status()["rejected"] == 1


async def test_rows_already_stored_are_not_written_again_within_memory():
    rec = Recorder()
    batch = batch_of(rec, size=2, remember=3)
    await batch.add(event(0), [{"id": 1}, {"id": 2}])
    await batch.add(event(1), [{"id": 2}, {"id": 3}])
    await batch.flush()
    await batch.add(event(2), [{"id": 1}, {"id": 3}, {"id": 4}])
    await batch.add(event(3), [{"id": 5}])
    assert rec.writes == [[1, 2, 3], [4, 5]]
    # Only the latest 3 keys are remembered: 1 and 2 were forgotten.
    await batch.add(event(4), [{"id": 1}, {"id": 5}])
    await batch.flush()
    assert rec.writes[-1] == [1]
    assert batch.status()["skipped_already_stored"] == 3


async def test_a_flush_returns_only_after_the_write_has_returned():
    import asyncio

    rec = Recorder()
    gate = asyncio.Event()

    async def slow(table, rows):
        await gate.wait()
        rec.writes.append([row["id"] for row in rows])

    batch = batch_of(rec, size=100)
    batch._write = slow
    await batch.add(event(0), [{"id": 0}])
    flushing = asyncio.create_task(batch.flush())
    await asyncio.sleep(0.05)
    assert not flushing.done() and rec.writes == []
    gate.set()
    await flushing
    assert rec.writes == [[0]]


def test_each_table_is_keyed_as_each_store_keys_it():
    assert key_columns("candidates", "mariadb") == ("candidate_id",)
    assert key_columns("candidates", "cassandra") == ("object_id", "mjd", "candidate_id")
    assert key_columns("objects", "cassandra") == ("object_id",)
    immutable = {t.table: t.immutable for t in SINK_TABLES}
    assert immutable == {
        "candidates": True,
        "ss_candidates": True,
        "annotations": True,
        "objects": False,
    }


def test_a_value_that_is_not_a_record_is_refused_with_the_reason():
    candidates = SINK_TABLES[0]
    with pytest.raises(CandidateError, match="not JSON"):
        rows_of(candidates, b"\x00\xff")
    with pytest.raises(CandidateError, match="not a JSON object"):
        rows_of(candidates, b"[1, 2]")
    with pytest.raises(CandidateError):
        rows_of(candidates, b'{"alert_id": 1}')


async def test_latency_from_upstream_comes_from_the_gateways_origin_header():
    rec = Recorder()
    batch = batch_of(rec, size=10)
    await batch.add(event(0, origin_ms=time.time() * 1000.0 - 2000.0), [{"id": 0}])
    await batch.add(event(1), [{"id": 1}])
    await batch.flush()
    upstream = batch.status()["upstream_to_stored"]
    assert upstream["count"] == 1
    assert 2000.0 <= upstream["max_ms"] < 60000.0
    assert batch.status()["stored_latency"]["count"] == 2


async def test_a_message_whose_rows_were_all_stored_before_is_not_written_again():
    rec = Recorder()
    batch = batch_of(rec, size=1, remember=10)
    await batch.add(event(0), [{"id": 0}])
    await batch.add(event(1), [{"id": 0}])
    assert rec.writes == [[0]]
    assert batch.status()["skipped_already_stored"] == 1
    assert batch.status()["pending"] == 0
