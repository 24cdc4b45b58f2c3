"""The cases every database sink agent passes in memory (run by ``test_<store>_sink.py``).

Each sink agent runs its real stream code in ``test_context()`` on JSON records of its topic;
its store is a :class:`harness.MemoryStore` with the methods the sink calls (``upsert``,
``close``), since MariaDB and Cassandra are servers: the real stores and sinks are covered by
``tests/integration/test_stores.py`` and ``test_objects_sinks.py``. Expected rows are written
from the sample alerts' raw fields (plain fastavro) or by hand.
"""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from brokerapp.adapters.stores import StoreRejected

from .harness import (
    MemoryStore,
    close_to,
    header,
    is_solar,
    prepare,
    raw_candidate_update,
    run_agent,
    samples,
)

APPENDED_MS = 1_700_000_000_000.0


def detection_row(detection: dict) -> dict:
    """A ``candidates`` row: the detection's fields, ``dec`` stored as ``decl``."""
    row = {k: v for k, v in detection.items() if k != "dec"}
    row["decl"] = detection["dec"]
    return row


def updates(solar: bool) -> list[dict]:
    alerts = [s for s in samples("ztf") + samples("lsst") if is_solar(s) == solar]
    return [raw_candidate_update(s, APPENDED_MS) for s in alerts]


class SinkCases:
    """Tests of one sink module (``module``, ``kind``)."""

    module: ModuleType
    kind: str

    @pytest.fixture
    def store(self, monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
        store = MemoryStore(
            refuse=lambda table, row: row.get("band") == "refused-band", rejected=StoreRejected
        )

        async def open_store(settings, kind):
            assert kind == self.kind
            return store

        monkeypatch.setattr("brokerapp.runtime.sink.open_store", open_store)
        return store

    def app(self, settings, **update):
        app = self.module.build(settings.model_copy(update=update))
        return app, prepare(app)

    async def test_candidate_rows_are_every_detection_of_the_raw_alerts_once(self, settings, store):
        app, sent = self.app(settings, sink_batch_size=5)
        records = updates(solar=False)[:20]  # 7 ZTF, 13 LSST: 4 batches of 5
        async with run_agent(app, "sink", topic="candidates") as feed:
            for record in records:
                await feed.put(json.dumps(record).encode(), key=record["object_id"].encode())

        expected = {}
        for record in records:
            for detection in [record["candidate"], *record["previous"]]:
                expected.setdefault(detection["candidate_id"], detection_row(detection))
        assert len(expected) > len(records)  # previous detections stored too
        close_to(store.rows("candidates"), [expected[k] for k in sorted(expected)])
        assert [table for table, _rows in store.batches] == ["candidates"] * 4  # in batches
        assert sent.topics() == set()  # nothing dead-lettered
        status = app.status()["tables"]["candidates"]
        assert (status["batches"], status["pending"]) == (4, 0)

    async def test_a_batchs_rows_are_stored_before_its_offsets_are_committed(self, settings, store):
        app, _sent = self.app(settings, sink_batch_size=10)
        records = updates(solar=False)[:3]
        committed_when_written = []

        async def upsert(table, rows, original=store.upsert):
            committed_when_written.append(dict(feed.kafka.committed))
            await original(table, rows)

        store.upsert = upsert
        async with run_agent(app, "sink", topic="candidates") as feed:
            for record in records:
                await feed.put(json.dumps(record).encode(), key=record["object_id"].encode())
        assert len(store.rows("candidates")) >= 3
        assert committed_when_written == [{}]  # one write, before any commit
        assert {(tp.topic, tp.partition): n for tp, n in feed.kafka.committed.items()} == {
            ("candidates", 0): 3
        }
        assert app.status()["tables"]["candidates"]["pending"] == 0

    async def test_bad_records_and_refused_rows_are_dead_lettered_and_the_rest_stored(
        self, settings, store
    ):
        app, sent = self.app(settings, sink_batch_size=3)
        good, other = updates(solar=False)[:2]
        refused = json.loads(json.dumps(other))
        refused["candidate"]["band"] = "refused-band"
        refused["previous"] = []
        values = [json.dumps(r).encode() for r in (good, refused)] + [b"not json", b"[1]"]
        async with run_agent(app, "sink", topic="candidates") as feed:
            for value in values[:2]:
                await feed.put(value, key=b"k", headers=[("origin-topic", b"up")])
            await feed.put(values[2], key=b"k")
            await feed.put(values[3], key=b"k")  # with the next: a batch of 3 messages
            await feed.put(values[0], key=b"k")

        dead = sent.on(f"{self.kind}-sink-deadletter")
        assert [m.value for m in dead] == [b"not json", b"[1]", values[1]]
        assert b"not JSON" in header(dead[0], "error-reason")
        assert b"not a JSON object" in header(dead[1], "error-reason")
        assert (header(dead[2], "origin-topic"), header(dead[2], "origin-offset")) == (
            b"candidates",  # where the sink read it
            b"1",
        )
        assert b"refused" in header(dead[2], "error-reason")
        stored = {row["candidate_id"] for row in store.rows("candidates")}
        expected = {d["candidate_id"] for d in [good["candidate"], *good["previous"]]}
        assert stored == expected  # the refused row alone is missing
        assert app.status()["tables"]["candidates"]["rejected"] == 1

    async def test_a_solar_system_candidate_is_one_row_with_its_object(self, settings, store):
        app, _sent = self.app(settings, sink_batch_size=1)
        record = next(u for u in updates(solar=True) if u["survey"] == "ztf")
        async with run_agent(app, "sink", topic="ss-candidates") as feed:
            await feed.put(json.dumps(record).encode(), key=record["ss_name"].encode())
        expected = detection_row(record["candidate"])
        expected.update(ss_name=record["ss_name"], ss_distance_arcsec=record["ss_distance_arcsec"])
        close_to(store.rows("ss_candidates"), [expected])
        assert expected["ss_distance_arcsec"] is not None

    async def test_annotations_give_a_row_per_match_or_watchlist_hit(self, settings, store):
        app, _sent = self.app(settings, sink_batch_size=2)
        catalogue = {
            "survey": "ztf",
            "alert_id": 11,
            "object_id": "ZTF-a",
            "annotations": {
                "catalogue_match": {
                    "catalogue": "cat",
                    "matches": [
                        {"id": 7, "separation_arcsec": 1.0, "mag": 17.0},
                        {"id": 8, "separation_arcsec": 1.5, "mag": 18.0},
                    ],
                }
            },
        }
        hit = {
            "alert_id": 12,
            "object_id": "ZTF-b",
            "watchlist_id": "wl1",
            "entry": "star-1",
            "separation_arcsec": 0.5,
            "mjd": 60000.5,
        }
        async with run_agent(app, "sink", topic="annotations") as feed:
            await feed.put(json.dumps(catalogue).encode(), key=b"ZTF-a")
            await feed.put(json.dumps(hit).encode(), key=b"ZTF-b")

        def row(alert_id, source, entry, object_id, separation, mjd, detail):
            return {
                "alert_id": alert_id,
                "source": source,
                "entry": entry,
                "object_id": object_id,
                "separation_arcsec": separation,
                "mjd": mjd,
                "detail": detail,
            }

        assert store.rows("annotations") == [
            row(11, "catalogue:cat", "7", "ZTF-a", 1.0, None, '{"mag": 17.0}'),
            row(11, "catalogue:cat", "8", "ZTF-a", 1.5, None, '{"mag": 18.0}'),
            row(12, "watchlist:wl1", "star-1", "ZTF-b", 0.5, 60000.5, None),
        ]

    async def test_an_object_update_replaces_the_object_row(self, settings, store):
        from .test_objects import EXPECTED_OBJECT

        app, _sent = self.app(settings, sink_batch_size=1)
        older = {**EXPECTED_OBJECT, "n_detections": 2}
        async with run_agent(app, "sink", topic="objects") as feed:
            await feed.put(json.dumps(older).encode(), key=b"ZTF-hand")
            await feed.put(json.dumps(EXPECTED_OBJECT).encode(), key=b"ZTF-hand")
        (stored,) = store.rows("objects")
        stats = json.loads(stored.pop("stats"))
        assert stored == {
            "object_id": "ZTF-hand",
            "survey": "ztf",
            "n_detections": 3,
            "first_mjd": 60000.0,
            "last_mjd": 60002.0,
            "latest_candidate_id": 3,
            "latest_band": "g",
            "latest_mag": 17.0,
            "ra_mean": 10.0,
            "decl_mean": 20.0,
            "position_scatter_arcsec": 0.0,
        }
        assert stats == {
            "bands": EXPECTED_OBJECT["bands"],
            "colours": EXPECTED_OBJECT["colours"],
        }
