"""The cutout and light-curve archivers on real Kafka and the real registry, run as workers.

Each test fills its own topics (the alerts buffer as the gateway writes it, or the non-solar
stream as the ssfilter does) and runs the workers as a user does, ``faust -A agents.<name>
worker``, writing under a local archive root in ``tmp_path``. Every file is read back with
astropy and Pillow and compared with the alerts' raw fields (plain fastavro, gzip), never
with the code under test; a second worker on the same input (its own consumer group: a
replay) leaves every file byte-identical; and a deliberately slow archiver
(``archive_delay_ms``) does not hold back the ssfilter reading the same buffer.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import math
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse
from PIL import Image

from brokerapp.tools.services import ServiceError, Services

from .test_branches import fill_buffer, lsst_solar, samples, ztf_solar
from .workers import WorkerRun

KINDS = ("science", "template", "difference")
MJD_OFFSET = 2400000.5


LOCAL = {"kafka-local-1", "registry-local"}
"""The services these tests use: the archivers read and write the local cluster only."""


@pytest.fixture(scope="module")
def services(settings):
    """The local Kafka and registry answering (an upstream outage does not concern these)."""
    svc = Services(settings)
    planned = [s for s in svc.planned() if s.name in LOCAL]
    if {s.name for s in planned} != LOCAL:
        pytest.fail("no services set up: run `brokerapp services up` (make test does)")
    try:
        svc.wait_ready(planned)
    except ServiceError as exc:
        pytest.fail(f"services not answering: {exc}")
    return svc


@pytest.fixture
def runs():
    started = []
    yield started
    for run in started:
        if run.process is not None and run.process.poll() is None:
            run.kill()


def worker(tmp_path, module, path, port_setting, prefix=None, folder=None, **env):
    folder = tmp_path / (folder or path)
    run = WorkerRun(folder, module=module, path=path, port_setting=port_setting)
    if prefix is not None:
        run.prefix = prefix
    run.workdir.mkdir(parents=True)
    run.env_overrides.update(env)
    return run


def archiver(tmp_path, folder, root, **env):
    return worker(
        tmp_path,
        "agents.cutout_archive",
        "cutout-archive",
        "BROKER_CUTOUT_ARCHIVE_WEB_PORT",
        folder=folder,
        BROKER_ARCHIVE_ROOT=str(root),
        **env,
    )


def alert_folder(record):
    """Where an alert's files go; the night: ZTF's UTC date, Rubin's dayObs (UTC-12h)."""
    if "objectId" in record:
        survey, alert_id, mjd = "ztf", record["candid"], record["candidate"]["jd"] - MJD_OFFSET
        hours = 0
    else:
        source = record["diaSource"]
        survey, alert_id, mjd = "lsst", source["diaSourceId"], source["midpointMjdTai"]
        hours = -12
    when = datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=mjd, hours=hours)
    return f"cutouts/{survey}/{when.strftime('%Y%m%d')}/{alert_id}"


def raw_stamp(record, kind):
    value = record[f"cutout{kind.capitalize()}"]
    return gzip.decompress(value["stampData"]) if isinstance(value, dict) else value


def tree(root):
    """Every file under ``root`` (relative path -> sha256), temporary ones included."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


def finished(total):
    return lambda s: s["alerts_archived"] + s["dead_lettered"] >= total and s["backlog"] == 0


async def test_every_cutout_file_equals_its_alert_and_a_replay_changes_none(
    services, settings, tmp_path, runs
):
    root = tmp_path / "archive"
    first = archiver(tmp_path, "cutout-archive", root)
    alerts = samples("ztf") + samples("lsst")
    broken_schema, broken = copy.deepcopy(alerts[0])
    broken["candid"] += 1
    broken["candidate"]["candid"] += 1
    broken["cutoutScience"]["stampData"] = b"\x1f\x8bnot gzip at all"
    await fill_buffer(settings, first.alerts, [*alerts, (broken_schema, broken)])
    total = len(alerts) + 1
    runs.append(first)
    first.start()
    status = first.wait_status(finished(total), timeout=180, what="every alert archived")
    assert status["dead_lettered"] == 1 and status["alerts_archived"] == len(alerts)
    assert status["written"] == 9 * len(alerts)
    assert status["oldest_unwritten_age_s"] is None
    assert "cutout-archive" in first.page()  # the HTML status page
    url = f"http://127.0.0.1:{first.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        metrics = response.read().decode()
    written = f'broker_sent_total{{worker="cutout-archive"}} {9 * len(alerts)}'
    assert written in metrics and 'broker_written_bytes_total{worker="cutout-archive"}' in metrics

    files = tree(root)
    expected = {
        f"{alert_folder(r)}/{k}.{e}" for _s, r in alerts for k in KINDS for e in ("fits", "png")
    } | {f"{alert_folder(r)}/{k}.jpg" for _s, r in alerts for k in KINDS}
    assert set(files) == expected  # no temporary file left, nothing of the broken alert
    assert status["bytes"] == sum((root / p).stat().st_size for p in files)
    for _schema, record in alerts:
        folder = alert_folder(record)
        for kind in KINDS:
            original = fits.open(io.BytesIO(raw_stamp(record, kind)))
            written = fits.open(root / f"{folder}/{kind}.fits")
            assert len(written) == len(original)
            for a, b in zip(written, original, strict=True):
                np.testing.assert_array_equal(a.data, b.data)
            for card in ("CRPIX1", "CRVAL1", "CRVAL2", "PC1_1"):
                assert written[0].header.get(card) == original[0].header.get(card)
            shape = original[0].data.shape
            for ext, fmt in (("png", "PNG"), ("jpg", "JPEG")):
                picture = Image.open(root / f"{folder}/{kind}.{ext}")
                assert picture.format == fmt and picture.size == (shape[1], shape[0])
    first.stop()

    # A replay: another consumer group reads the same buffer into the same root.
    mtimes = {p: (root / p).stat().st_mtime_ns for p in files}
    again = archiver(tmp_path, "replay", root, BROKER_ALERTS_TOPIC=first.alerts)
    runs.append(again)
    again.start()
    again.wait_status(finished(total), timeout=180, what="the replay")
    again.stop()
    assert tree(root) == files  # byte for byte, and no new file
    assert all((root / p).stat().st_mtime_ns >= mtimes[p] for p in files)
    assert any((root / p).stat().st_mtime_ns > mtimes[p] for p in files)  # rewritten


def number(value):
    return None if value is None or value == -999.0 else float(value)


def raw_detections(record):
    """Detections of a non-solar alert and its previous ones, from raw fields."""
    if "objectId" in record:
        out = []
        for s in [record["candidate"], *(record.get("prv_candidates") or ())]:
            if s.get("candid") is not None:
                band = {1: "g", 2: "r", 3: "i"}[s["fid"]]
                out.append((s["candid"], s["jd"] - MJD_OFFSET, band, number(s["magpsf"]), None))
        return "ztf", record["objectId"], out
    out = []
    for s in [record["diaSource"], *(record.get("prvDiaSources") or ())]:
        out.append((s["diaSourceId"], s["midpointMjdTai"], s["band"], None, s["psfFlux"]))
    return "lsst", str(record["diaObject"]["diaObjectId"]), out


def same(got, want):
    if want is None:
        return math.isnan(got) or np.ma.is_masked(got)
    return math.isclose(float(got), want, rel_tol=1e-15, abs_tol=0)


async def test_light_curves_follow_the_objects_worker_and_a_replay_changes_none(
    services, settings, tmp_path, runs
):
    root = tmp_path / "archive"
    candidates = worker(tmp_path, "agents.candidates", "candidates", "BROKER_CANDIDATES_WEB_PORT")
    prefix = candidates.prefix
    topics = {
        "BROKER_NONSOLAR_TOPIC": f"{prefix}-nonsolar",
        "BROKER_SOLAR_TOPIC": f"{prefix}-solar",
        "BROKER_CANDIDATES_TOPIC": f"{prefix}-candidates",
        "BROKER_SS_CANDIDATES_TOPIC": f"{prefix}-ss-candidates",
        "BROKER_CANDIDATE_OBJECT_UPDATES_TOPIC": f"{prefix}-cou",
        "BROKER_OBJECTS_TOPIC": f"{prefix}-objects",
        "BROKER_ARCHIVE_ROOT": str(root),
    }
    candidates.env_overrides.update(topics)
    objects = worker(
        tmp_path, "agents.objects", "objects", "BROKER_OBJECTS_WEB_PORT", prefix, **topics
    )
    archive = worker(
        tmp_path,
        "agents.lightcurve_archive",
        "lightcurve-archive",
        "BROKER_LIGHTCURVE_ARCHIVE_WEB_PORT",
        prefix,
        **topics,
    )
    alerts = [
        (s, r)
        for s, r in samples("ztf") + samples("lsst")
        if not (ztf_solar(r) if "objectId" in r else lsst_solar(r))
        and ("objectId" in r or r.get("diaObject"))
    ]
    await fill_buffer(settings, topics["BROKER_NONSOLAR_TOPIC"], alerts)
    expected = defaultdict(dict)
    for _s, record in alerts:
        survey, obj, detections = raw_detections(record)
        for d in detections:
            expected[(survey, obj)][d[0]] = d
    wanted = {f"lightcurves/{s}/{o}.{e}" for s, o in expected for e in ("fits", "vot")}

    for run in (candidates, objects, archive):
        runs.append(run)
        run.start()
    objects.wait_status(lambda s: s["updates"] >= len(alerts), timeout=180, what="the objects")
    status = archive.wait_status(
        lambda s: s["backlog"] == 0 and s["objects_written"] >= len(expected),
        timeout=180,
        what="every light curve",
    )
    assert status["dead_lettered"] == 0
    files = tree(root)
    assert set(files) == wanted
    for (survey, obj), by_id in expected.items():
        want = sorted(by_id.values(), key=lambda d: (d[1], d[0]))[-settings.history_length :]
        table = fits.open(root / f"lightcurves/{survey}/{obj}.fits")["LIGHTCURVE"].data
        assert [int(c) for c in table["candidate_id"]] == [d[0] for d in want]
        for row, (_cid, mjd, band, mag, flux) in zip(table, want, strict=True):
            assert same(row["mjd"], mjd) and row["band"] == band
            assert same(row["flux"], flux)
            if survey == "ztf":
                assert same(row["mag"], mag)
        vot = parse(str(root / f"lightcurves/{survey}/{obj}.vot")).get_first_table().to_table()
        assert [int(c) for c in vot["candidate_id"]] == [d[0] for d in want]
        assert all(same(a, d[1]) for a, d in zip(vot["mjd"], want, strict=True))
    archive.stop()

    replay = worker(
        tmp_path,
        "agents.lightcurve_archive",
        "lightcurve-archive",
        "BROKER_LIGHTCURVE_ARCHIVE_WEB_PORT",
        folder="replay",
        **topics,
        BROKER_LIGHTCURVE_SOURCE_TOPIC=f"{prefix}-objects-object_history-changelog",
    )
    runs.append(replay)
    replay.start()
    replay.wait_status(
        lambda s: s["backlog"] == 0 and s["objects_written"] >= len(expected),
        timeout=180,
        what="the replay",
    )
    assert tree(root) == files


async def test_a_slow_archiver_does_not_hold_back_the_ssfilter(services, settings, tmp_path, runs):
    root = tmp_path / "archive"
    # Small batches, so its backlog is known (committed offsets) while it is behind.
    slow = archiver(
        tmp_path, "cutout-archive", root, BROKER_ARCHIVE_DELAY_MS="2000", BROKER_BRANCH_BATCH="4"
    )
    solar, nonsolar = f"{slow.prefix}-alerts-solar", f"{slow.prefix}-alerts-nonsolar"
    ssfilter = worker(
        tmp_path,
        "agents.ssfilter",
        "ssfilter",
        "BROKER_SSFILTER_WEB_PORT",
        slow.prefix,
        BROKER_SOLAR_TOPIC=solar,
        BROKER_NONSOLAR_TOPIC=nonsolar,
        BROKER_CUTOUTS_TOPIC=f"{slow.prefix}-cutouts",
    )
    alerts = samples("ztf") + samples("lsst")
    await fill_buffer(settings, slow.alerts, alerts)
    total = len(alerts)
    runs.append(slow)
    slow.start()
    slow.wait_status(lambda s: s["alerts_archived"] >= 4, timeout=120, what="the archiver")
    runs.append(ssfilter)
    ssfilter.start()
    done = ssfilter.wait_status(
        lambda s: sum(s["sent"].get(t, 0) for t in (solar, nonsolar)) >= total,
        timeout=120,
        what="the ssfilter",
    )
    behind = slow.status()
    # The ssfilter has split every alert while the archiver, on the same buffer, is still
    # far behind: its backlog waits for it, not for the ssfilter.
    assert sum(done["sent"].get(t, 0) for t in (solar, nonsolar)) == total
    assert behind["alerts_archived"] < total
    assert behind["backlog"] > 0
    assert behind["oldest_unwritten_age_s"] is not None
    written = json.dumps(behind["files"])
    assert behind["written"] == 9 * behind["alerts_archived"], written


async def test_a_killed_archiver_resumes_and_every_file_is_there(
    services, settings, tmp_path, runs
):
    """Offsets are committed only after the files: kill -9 mid-stream loses no file."""
    root = tmp_path / "archive"
    run = archiver(
        tmp_path, "cutout-archive", root, BROKER_ARCHIVE_DELAY_MS="300", BROKER_BRANCH_BATCH="4"
    )
    alerts = samples("ztf") + samples("lsst")
    await fill_buffer(settings, run.alerts, alerts)
    runs.append(run)
    run.start()
    before = run.wait_status(lambda s: s["alerts_archived"] >= 10, timeout=120, what="a start")
    assert before["alerts_archived"] < len(alerts)
    run.kill()
    run.start(BROKER_ARCHIVE_DELAY_MS="0")
    run.wait_status(
        lambda s: s["backlog"] == 0 and s["alerts_archived"] >= 1, timeout=180, what="the rest"
    )
    finished_files = {p for p in tree(root) if not Path(p).name.startswith(".")}
    expected = {
        f"{alert_folder(r)}/{k}.{e}"
        for _s, r in alerts
        for k in KINDS
        for e in ("fits", "png", "jpg")
    }
    assert finished_files == expected
    for _schema, record in alerts:
        for kind in KINDS:
            written = fits.open(root / f"{alert_folder(record)}/{kind}.fits")
            original = fits.open(io.BytesIO(raw_stamp(record, kind)))
            np.testing.assert_array_equal(written[0].data, original[0].data)
