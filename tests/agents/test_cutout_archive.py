"""The cutout archiver in memory: files of real sample alerts, dead letters, a replay.

The batch loop runs its handler and its send-then-commit path with the harness's capturing
producer; the files go to a local archive root under ``tmp_path`` and are read back with
astropy and Pillow, each compared with the raw alert's stamps (plain fastavro and gzip).
"""

import asyncio
import gzip
import hashlib
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from astropy.io import fits
from PIL import Image

from agents.cutout_archive import build
from brokerapp.adapters.archive.files import list_files, read_bytes

from .harness import MJD_OFFSET, header, object_key, prepare, run_agent, samples

KINDS = ("science", "template", "difference")


def expected_files(sample):
    r = sample.record
    # The night: ZTF's UTC date; Rubin's dayObs, the date at UTC-12h.
    if sample.survey == "ztf":
        mjd, hours, alert_id = r["candidate"]["jd"] - MJD_OFFSET, 0, r["candid"]
    else:
        mjd, hours, alert_id = r["diaSource"]["midpointMjdTai"], -12, r["diaSource"]["diaSourceId"]
    when = datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=mjd, hours=hours)
    night = when.strftime("%Y%m%d")
    folder = f"cutouts/{sample.survey}/{night}/{alert_id}"
    return folder, {f"{folder}/{k}.{e}" for k in KINDS for e in ("fits", "png", "jpg")}


def raw_pixels(sample, kind):
    value = sample.record[f"cutout{kind.capitalize()}"]
    data = gzip.decompress(value["stampData"]) if isinstance(value, dict) else value
    return fits.open(io.BytesIO(data))[0].data


def hashes(root):
    return {p: hashlib.sha256(read_bytes(root, p)).hexdigest() for p in list_files(root)}


async def test_each_alert_gives_its_nine_files_bad_ones_dead_lettered(settings, registry):
    chosen = samples("ztf")[:3] + samples("lsst")[:3]
    app = build(settings)
    sent = prepare(app)
    root = settings.archive_url
    async with run_agent(app, "process") as feed:
        for sample in chosen:
            await feed.put(registry.frame_sample(sample), key=object_key(sample))
        broken = samples("ztf")[3]
        broken.record["cutoutDifference"]["stampData"] = b"not a fits file"
        await feed.put(registry.frame_sample(broken), key=b"broken")
        await feed.put(b"\x00\x00\x00\x00", key=b"truncated")
        none = samples("lsst")[4]
        for kind in KINDS:
            none.record[f"cutout{kind.capitalize()}"] = None
        await feed.put(registry.frame_sample(none), key=b"no-stamps")

    wanted = set()
    for sample in chosen:
        folder, names = expected_files(sample)
        wanted |= names
        for kind in KINDS:
            written = fits.open(io.BytesIO(read_bytes(root, f"{folder}/{kind}.fits")))
            np.testing.assert_array_equal(written[0].data, raw_pixels(sample, kind))
            png = Image.open(io.BytesIO(read_bytes(root, f"{folder}/{kind}.png")))
            assert png.format == "PNG" and png.size == raw_pixels(sample, kind).shape[::-1]
            jpg = Image.open(io.BytesIO(read_bytes(root, f"{folder}/{kind}.jpg")))
            assert jpg.format == "JPEG"
    assert set(list_files(root)) == wanted  # nothing of the broken alert, no temporary file

    dead = sent.on(f"{settings.topic_prefix}cutout-archive-deadletter")
    assert [m.key for m in dead] == [b"broken", b"truncated"]
    assert b"difference" in header(dead[0], "error-reason")
    status = app.status()
    assert status["written"] == len(wanted) == 54
    assert status["bytes"] == sum(len(read_bytes(root, p)) for p in wanted)
    assert status["failures"] == 2 and status["alerts_without_stamps"] == 1
    assert status["oldest_unwritten_age_s"] is None  # nothing in hand
    committed = app.batch_loops["process"].consumer.committed
    assert sum(committed.values()) == len(chosen) + 3  # committed after the files

    # A replay of the same alerts: the same files, byte for byte, and no new one.
    before = hashes(root)
    again = build(settings)
    prepare(again)
    async with run_agent(again, "process") as feed:
        for sample in chosen:
            await feed.put(registry.frame_sample(sample), key=object_key(sample))
    assert hashes(root) == before


async def test_a_failed_write_is_retried_until_it_succeeds(settings, registry):
    settings = settings.model_copy(
        update={"sink_retry_backoff": 0.01, "sink_retry_backoff_max": 0.02}
    )
    app = build(settings)
    prepare(app)
    root = Path(settings.archive_url)
    root.mkdir(parents=True)
    blocker = root / "cutouts"
    blocker.write_bytes(b"a file where the folder should be")  # every write fails
    sample = samples("ztf")[0]

    async def unblock():
        while app.status()["files"]["write_failures"] < 2:
            await asyncio.sleep(0.01)
        blocker.unlink()

    fixing = asyncio.create_task(unblock())
    async with run_agent(app, "process") as feed:
        await feed.put(registry.frame_sample(sample), key=object_key(sample))
    await fixing
    _folder, names = expected_files(sample)
    assert set(list_files(settings.archive_url)) == names
    status = app.status()
    assert status["files"]["write_failures"] >= 2 and status["files"]["last_error"]
    assert status["written"] == 9
    assert sum(app.batch_loops["process"].consumer.committed.values()) == 1


def test_the_app_is_its_own_group_on_the_alerts_buffer(settings):
    app = build(settings)
    assert app.conf.id == "unit-cutout-archive"
    assert set(app.agents) == set() and set(app.tables) == set()
    loop = app.batch_loops["process"]
    assert (loop.group_id, loop.topics) == ("unit-cutout-archive", ["alerts"])
    assert loop.transactional is False  # its output is files, written before the commit
    assert app.conf.web_port == settings.cutout_archive_web_port


async def test_an_fsspec_root_gets_the_same_files(settings, registry):
    root = f"memory://images-test-{id(settings)}"
    settings = settings.model_copy(update={"archive_root": root})
    app = build(settings)
    prepare(app)
    sample = samples("lsst")[0]
    async with run_agent(app, "process") as feed:
        await feed.put(registry.frame_sample(sample), key=object_key(sample))
    folder, names = expected_files(sample)
    assert set(list_files(root)) == names
    written = fits.open(io.BytesIO(read_bytes(root, f"{folder}/science.fits")))
    np.testing.assert_array_equal(written[0].data, raw_pixels(sample, "science"))


async def test_the_time_to_the_files_is_the_end_to_end_latency(settings, registry):
    app = build(settings)
    prepare(app)
    appended = time.time() - 2.0  # the alert was appended to the buffer 2 s ago
    async with run_agent(app, "process") as feed:
        for sample in samples("ztf")[:2]:
            await feed.put(registry.frame_sample(sample), timestamp=appended)
    latency = app.status()["end_to_end"]
    assert latency["count"] == 2 and 2000.0 <= latency["p50_ms"] < 60_000.0
