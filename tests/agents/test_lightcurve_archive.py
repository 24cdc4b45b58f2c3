"""The light-curve archiver in memory, fed what the objects agent writes to its changelog.

The objects agent runs on CandidateUpdates written from the sample alerts' raw fields; every
message it sends to its history table's changelog is handed to the archiver's batch loop, as
Kafka would. The files are read back with astropy and each row compared with the raw
detections of the object's alerts (plain fastavro), never with the code under test.
"""

import asyncio
import hashlib
import io
import json
import math
from collections import defaultdict

from astropy.io import fits
from astropy.io.votable import parse

from agents.lightcurve_archive import build
from agents.objects import build as build_objects
from brokerapp.adapters.archive.files import list_files, read_bytes

from .harness import header, prepare, raw_candidate_update, run_agent, samples

APPENDED_MS = 1_700_000_000_000.0


def same(got, want):
    if want is None:
        return math.isnan(got)
    return math.isclose(got, want, rel_tol=1e-15, abs_tol=0)


async def history_changelog(settings, chosen):
    """Run the objects agent on the samples' updates; return its changelog messages."""
    objects = build_objects(settings)
    sent = prepare(objects)
    async with run_agent(objects, "update") as feed:
        for sample in chosen:
            update = raw_candidate_update(sample, APPENDED_MS)
            await feed.put(json.dumps(update).encode(), key=update["object_id"].encode())
    # The changelog goes through Faust's send buffer: flush until every object's last
    # change is out (each object's last history holds its last update's detection).
    topic = f"{settings.app_prefix}-objects-object_history-changelog"
    last = {}
    for sample in chosen:
        update = raw_candidate_update(sample, APPENDED_MS)
        last[update["object_id"]] = update["candidate"]["candidate_id"]
    for _ in range(200):
        await sent.flush()
        seen = {json.loads(m.key): m for m in sent.on(topic)}
        if all(
            key in seen and last[key] in {d["candidate_id"] for d in json.loads(seen[key].value)}
            for key in last
        ):
            break
        await asyncio.sleep(0.01)
    return sent.on(topic)


def hashes(root):
    return {p: hashlib.sha256(read_bytes(root, p)).hexdigest() for p in list_files(root)}


async def test_each_object_has_its_light_curve_from_the_changelog(settings):
    chosen = samples("ztf") + [s for s in samples("lsst")[:8] if s.record.get("diaObject")]
    changelog = await history_changelog(settings, chosen)

    expected = defaultdict(dict)  # object -> candidate_id -> raw detection
    for sample in chosen:
        update = raw_candidate_update(sample, APPENDED_MS)
        for d in [update["candidate"], *update["previous"]]:
            expected[(sample.survey, update["object_id"])][d["candidate_id"]] = d
    # Each object's changes (Faust's send buffer may fold some of one object's together).
    assert {json.loads(m.key) for m in changelog} == {obj for _survey, obj in expected}

    app = build(settings)
    sent = prepare(app)
    async with run_agent(app, "process") as feed:
        for message in changelog:
            await feed.put_sent(message)
    root = settings.archive_url
    wanted = {f"lightcurves/{s}/{o}.{e}" for s, o in expected for e in ("fits", "vot")}
    assert set(list_files(root)) == wanted
    for (survey, obj), by_id in expected.items():
        want = sorted(by_id.values(), key=lambda d: (d["mjd"], d["candidate_id"]))
        want = want[-settings.history_length :]
        table = fits.open(io.BytesIO(read_bytes(root, f"lightcurves/{survey}/{obj}.fits")))[1]
        assert table.header["OBJECT"] == obj
        assert [int(c) for c in table.data["candidate_id"]] == [d["candidate_id"] for d in want]
        for row, d in zip(table.data, want, strict=True):
            assert same(row["mjd"], d["mjd"]) and row["band"] == d["band"]
            assert same(row["mag"], d["mag"]) and same(row["mag_err"], d["mag_err"])
            assert same(row["flux"], d["flux"]) and same(row["flux_err"], d["flux_err"])
        vot = parse(io.BytesIO(read_bytes(root, f"lightcurves/{survey}/{obj}.vot")))
        rows = vot.get_first_table().to_table()
        assert list(rows["candidate_id"]) == [d["candidate_id"] for d in want]
    status = app.status()
    assert status["objects_written"] == len(expected)
    assert status["superseded"] == len(changelog) - len(expected)  # a batch: the last change
    assert status["written"] == 2 * len(expected) and status["failures"] == 0
    assert sent.on(f"{settings.topic_prefix}lightcurve-archive-deadletter") == []

    # Replayed one by one (each change its own batch): the same bytes in the end.
    before = hashes(root)
    again = build(settings)
    prepare(again)
    for message in changelog:
        async with run_agent(again, "process") as feed:
            await feed.put_sent(message)
    assert hashes(root) == before
    assert again.status()["objects_written"] == len(changelog)


async def test_bad_records_are_dead_lettered_and_tombstones_skipped(settings):
    app = build(settings)
    sent = prepare(app)
    good = [
        {
            "candidate_id": 1,
            "object_id": "ZTF-hand",
            "survey": "ztf",
            "mjd": 60000.0,
            "band": "g",
            "ra": 1.0,
            "dec": 2.0,
            "mag": 18.0,
            "mag_err": 0.1,
            "flux": None,
            "flux_err": None,
            "visit_id": 7,
        }
    ]
    async with run_agent(app, "process") as feed:
        await feed.put(b"not json", key=b'"ZTF-a"')
        await feed.put(json.dumps(good).encode(), key=b'"ZTF-other"', partition=1)
        await feed.put(b"[]", key=b'"ZTF-empty"')
        await feed.put(None, key=b'"ZTF-gone"')
        await feed.put(json.dumps(good).encode(), key=b"ZTF-hand")  # key not JSON
        await feed.put(json.dumps(good).encode(), key=b'"ZTF-hand"')
    dead = sent.on(f"{settings.topic_prefix}lightcurve-archive-deadletter")
    assert [m.key for m in dead] == [b'"ZTF-a"', b'"ZTF-other"', b'"ZTF-empty"', b"ZTF-hand"]
    assert all(header(m, "error-reason") for m in dead)
    assert list_files(settings.archive_url) == [
        "lightcurves/ztf/ZTF-hand.fits",
        "lightcurves/ztf/ZTF-hand.vot",
    ]
    status = app.status()
    assert status["dead_lettered"] == 4 and status["tombstones"] == 1


def test_the_app_reads_the_objects_workers_history_changelog(settings):
    app = build(settings)
    assert app.conf.id == "unit-lightcurve-archive"
    assert set(app.agents) == set() and set(app.tables) == set()
    loop = app.batch_loops["process"]
    changelog = build_objects(settings).tables["object_history"].changelog_topic
    assert loop.topics == [changelog.get_topic_name()]
    assert loop.group_id == "unit-lightcurve-archive" and loop.transactional is False
    assert app.conf.web_port == settings.lightcurve_archive_web_port
    other = build(settings.model_copy(update={"lightcurve_source_topic": "histories"}))
    assert other.batch_loops["process"].topics == ["histories"]


async def test_an_archiver_started_first_creates_its_input_as_a_compacted_changelog(settings):
    app = build(settings)
    sent = prepare(app)
    await app.batch_loops["process"].declare()
    created = sent.created["unit-objects-object_history-changelog"]
    assert created["config"]["cleanup.policy"] == "compact"  # never a 7-day delete policy
    assert "retention.ms" not in created["config"]
    assert created["partitions"] == settings.alerts_partitions
