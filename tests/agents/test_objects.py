"""The objects agent in memory: each object's history in the table, its statistics sent on.

The ``update`` agent runs its real stream code in ``test_context()`` with its
``object_history`` table in memory (``memory://``), on CandidateUpdates written by hand or
from a sample alert's raw fields (plain fastavro, :func:`harness.raw_candidate_update`). The
expected histories and statistics are written by hand; numpy statistics over every sample,
on real Kafka, are in ``tests/integration/test_objects_sinks.py``.
"""

import json

from agents.objects import build

from .harness import close_to, header, prepare, raw_candidate_update, run_agent, samples

APPENDED_S = 1_700_000_000.0


def detection(candidate_id, mjd, band, mag, ra=10.0, dec=20.0):
    return {
        "candidate_id": candidate_id,
        "object_id": "ZTF-hand",
        "survey": "ztf",
        "mjd": mjd,
        "band": band,
        "ra": ra,
        "dec": dec,
        "mag": mag,
        "mag_err": 0.05,
        "flux": None,
        "flux_err": None,
        "visit_id": 100 + candidate_id,
    }


D1 = detection(1, 60000.0, "g", 18.0)
D2 = detection(2, 60001.5, "r", 17.5)
D3 = detection(3, 60002.0, "g", 17.0)


def update(own, previous):
    return {
        "alert_id": own["candidate_id"],
        "object_id": "ZTF-hand",
        "survey": "ztf",
        "candidate": own,
        "previous": previous,
        "ss_name": None,
        "ss_distance_arcsec": None,
        "appended_ms": APPENDED_S * 1000.0,
    }


FIRST = update(D2, [D1])
SECOND = update(D3, [D1, D2])

EXPECTED_OBJECT = {  # after SECOND, by hand
    "object_id": "ZTF-hand",
    "survey": "ztf",
    "n_detections": 3,
    "first_mjd": 60000.0,
    "last_mjd": 60002.0,
    "latest": {"candidate_id": 3, "mjd": 60002.0, "band": "g", "mag": 17.0, "mag_err": 0.05},
    "ra_mean": 10.0,
    "dec_mean": 20.0,
    "position_scatter_arcsec": 0.0,
    "bands": {
        "g": {
            "n": 2,
            "first_mjd": 60000.0,
            "last_mjd": 60002.0,
            "latest_mag": 17.0,
            "latest_mag_err": 0.05,
            "latest_mjd": 60002.0,
            "peak_mag": 17.0,
            "peak_mjd": 60002.0,
            "mean_mag": 17.5,
            "rate_mag_per_day": -0.5,  # 1 mag brighter in 2 days
            "rate_n": 2,
        },
        "r": {
            "n": 1,
            "first_mjd": 60001.5,
            "last_mjd": 60001.5,
            "latest_mag": 17.5,
            "latest_mag_err": 0.05,
            "latest_mjd": 60001.5,
            "peak_mag": 17.5,
            "peak_mjd": 60001.5,
            "mean_mag": 17.5,
            "rate_mag_per_day": None,
            "rate_n": 1,
        },
    },
    "colours": {"g-r": -0.5},  # latest g 17.0 minus latest r 17.5, within a day of the last
    "colour_mjd": 60002.0,
    "history_length": 3,
    "alert_id": 3,
}


async def test_history_grows_in_the_table_and_each_update_sends_the_statistics(settings):
    app = build(settings)
    sent = prepare(app)
    async with run_agent(app, "update") as feed:
        await feed.put(json.dumps(FIRST).encode(), key=b"ZTF-hand", timestamp=APPENDED_S)
        await feed.put(json.dumps(SECOND).encode(), key=b"ZTF-hand", timestamp=APPENDED_S)

    assert app.tables["object_history"]["ZTF-hand"] == [D1, D2, D3]
    objects = sent.on("objects")
    assert [m.key for m in objects] == [b"ZTF-hand", b"ZTF-hand"]
    first = objects[0].json()
    assert (first["n_detections"], first["alert_id"]) == (2, 2)
    assert set(first["bands"]) == {"g", "r"}
    close_to(objects[1].json(), EXPECTED_OBJECT, abs_tol=1e-6)
    pairs = sent.on("candidate-object-updates")
    assert [m.key for m in pairs] == [b"ZTF-hand", b"ZTF-hand"]
    assert pairs[1].json()["candidate"] == SECOND
    close_to(pairs[1].json()["object"], EXPECTED_OBJECT, abs_tol=1e-6)
    assert sent.created["objects"]["config"]["cleanup.policy"] == "compact"
    await sent.flush()
    changelog = sent.on("unit-objects-object_history-changelog")
    assert [json.loads(m.key) for m in changelog] == ["ZTF-hand", "ZTF-hand"]  # JSON keys
    assert json.loads(changelog[-1].value) == [D1, D2, D3]


async def test_a_replayed_or_older_update_changes_nothing(settings):
    app = build(settings)
    sent = prepare(app)
    async with run_agent(app, "update") as feed:
        for value in (SECOND, SECOND, FIRST):
            await feed.put(json.dumps(value).encode(), key=b"ZTF-hand")
    assert app.tables["object_history"]["ZTF-hand"] == [D1, D2, D3]
    for message in sent.on("objects"):
        close_to({**message.json(), "alert_id": 3}, EXPECTED_OBJECT, abs_tol=1e-6)


async def test_the_table_keeps_the_latest_history_length_detections_of_a_real_alert(settings):
    app = build(settings.model_copy(update={"history_length": 5}))
    sent = prepare(app)
    sample = next(s for s in samples("ztf") if s.path.name.startswith("2019_01_10"))
    candidate = raw_candidate_update(sample, APPENDED_S * 1000.0)
    async with run_agent(app, "update") as feed:
        await feed.put(json.dumps(candidate).encode(), key=b"ZTF17aaacxxf")

    record = sample.record
    raw = [record["candidate"], *(p for p in record["prv_candidates"] if p["candid"])]
    latest = sorted(raw, key=lambda c: (c["jd"], c["candid"]))[-5:]
    history = app.tables["object_history"]["ZTF17aaacxxf"]
    assert [d["candidate_id"] for d in history] == [c["candid"] for c in latest]
    (obj,) = [m.json() for m in sent.on("objects")]
    assert obj["n_detections"] == obj["history_length"] == 5
    assert obj["latest"]["candidate_id"] == 739260766315010006
    close_to(obj["first_mjd"], latest[0]["jd"] - 2400000.5)
    close_to(obj["last_mjd"], latest[-1]["jd"] - 2400000.5)


async def test_a_record_keyed_otherwise_is_rekeyed_and_a_bad_one_dead_lettered(settings):
    app = build(settings)
    sent = prepare(app)
    value = json.dumps(FIRST).encode()
    async with run_agent(app, "update") as feed:
        await feed.put(value, key=b"some-other-key", headers=[("origin-topic", b"x")])
        await feed.put(b'{"alert_id": 7}', key=b"ZTF-hand")
        await feed.put(b"not json", key=b"ZTF-hand")

    (rekeyed,) = sent.on("candidates")
    assert (rekeyed.key, rekeyed.value) == (b"ZTF-hand", value)
    assert header(rekeyed, "origin-topic") == b"x"
    dead = sent.on("objects-deadletter")
    assert [m.value for m in dead] == [b'{"alert_id": 7}', b"not json"]
    assert all(b"not a CandidateUpdate" in header(m, "error-reason") for m in dead)
    assert "ZTF-hand" not in app.tables["object_history"]
    assert sent.on("objects") == []
    assert app.status()["rekeyed"] == 1
