"""A watchlist of 100,000 entries through the CLI, against a running watchlist worker.

One control message used to carry a whole watchlist, so a CSV of more than about 12,000
entries ended in ``MSG_SIZE_TOO_LARGE``. The CLI now sends chunks and a commit; this test
puts 100,000 entries (the seven of ``tests/data/watchlists/watchlist.csv`` among random
ones) as a user does, ``brokerapp watchlist put``, waits until the worker lists them all,
and sends the sample alerts through. Expected hits come from astropy on the raw positions
over every entry of the file, not from the code under test. A second upload then replaces
the watchlist by one without the hits, and no alert matches any more; the same file then
goes through the REST view.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from brokerapp.adapters.kafka_admin import ensure_topics
from brokerapp.model.settings import load_settings
from brokerapp.runtime.topic_config import alerts_topic_config

from .test_branches import WATCHLISTS, alert_position, branch, fill_buffer, read_topic, samples

ENTRIES = 100_000
SEED = 20261201


@pytest.fixture
def runs():
    started = []
    yield started
    for run in started:
        run.stop()


def write_watchlist(path, entries):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "ra", "dec", "radius"])
        writer.writerows(entries)


def random_entries(count):
    rng = random.Random(SEED)
    return [
        (
            f"random-{i:06d}",
            f"{rng.uniform(0.0, 360.0):.7f}",
            f"{math.degrees(math.asin(rng.uniform(-1.0, 1.0))):.7f}",
            "2",
        )
        for i in range(count)
    ]


def expected_hits(alerts, entries):
    """(alert ID, entry name) -> separation [arcsec], by astropy over every entry."""
    centres = SkyCoord(
        np.array([float(e[1]) for e in entries]) * u.deg,
        np.array([float(e[2]) for e in entries]) * u.deg,
    )
    radii = np.array([float(e[3]) for e in entries])
    hits = {}
    for _schema, record in alerts:
        ra, dec, alert_id = alert_position(record)
        separations = SkyCoord(ra * u.deg, dec * u.deg).separation(centres).arcsec
        for index in np.flatnonzero(separations <= radii):
            hits[(alert_id, entries[index][0])] = float(separations[index])
    return hits


def put(run, watchlist_id, path):
    return subprocess.run(
        [sys.executable, "-m", "brokerapp", "watchlist", "put", watchlist_id, str(path)],
        env={**os.environ, **run.env()},
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )


def base_url(run):
    return f"http://{load_settings().web_bind}:{run.port}/watchlist/watchlists/"


def listed(run):
    url = base_url(run)
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


async def test_a_watchlist_of_100000_entries_loads_through_the_cli_and_matches(
    services, settings, tmp_path, runs
):
    run = branch(tmp_path, "agents.watchlist", "watchlist", "BROKER_WATCHLIST_WEB_PORT")
    alerts_topic = f"{run.prefix}-alerts"
    annotations_topic = f"{run.prefix}-annotations"
    run.env_overrides.update(
        BROKER_WATCHLIST_SOURCE_TOPIC=alerts_topic,
        BROKER_WATCHLIST_CONTROL_TOPIC=f"{run.prefix}-watchlist-control",
        BROKER_ANNOTATIONS_TOPIC=annotations_topic,
        BROKER_ANNOTATED_ALERTS_TOPIC=f"{run.prefix}-annotated-alerts",
        BROKER_ALERTS_PARTITIONS="4",
    )
    ensure_topics(settings.kafka_bootstrap, [alerts_topic], 4, alerts_topic_config(-1, 10485760))
    runs.append(run)
    run.start()

    with open(WATCHLISTS / "watchlist.csv") as fh:
        known = [(r["name"], r["ra"], r["dec"], r["radius"]) for r in csv.DictReader(fh)]
    entries = random_entries(ENTRIES - len(known)) + known
    path = tmp_path / "big.csv"
    write_watchlist(path, entries)
    done = put(run, "big", path)
    assert f"big: {ENTRIES} entries sent" in done.stdout
    assert "Traceback" not in done.stderr
    # The commit counter moves once the commit has been applied to the tables; the
    # watchlist count can show the new list a step earlier, while the commit finishes.
    applied = run.wait_status(
        lambda s: s["commands"].get("commit") == 1, timeout=600, what="the commit to be applied"
    )
    assert applied["commands"] == {"chunk": 20, "commit": 1}  # 5000 entries a chunk
    assert applied["watchlists"] == 1
    assert listed(run) == {"big": {"name": "big", "owner": "unknown", "entries": ENTRIES}}

    alerts = samples("ztf") + samples("lsst")
    expected = expected_hits(alerts, entries)
    assert len(expected) == 3  # the three near-* entries of watchlist.csv
    await fill_buffer(settings, alerts_topic, alerts)
    status = run.wait_status(lambda s: s["received"] >= len(alerts))
    got = read_topic(settings, annotations_topic, len(expected), idle_limit=5)
    annotations = [json.loads(m.value()) for m in got]
    assert {(a["alert_id"], a["entry"]): a["separation_arcsec"] for a in annotations} == (
        pytest.approx(expected, abs=1e-6)
    )
    assert status["annotations"] == 3

    # A new upload without the hits replaces the whole watchlist: nothing matches any more.
    write_watchlist(path, [e for e in entries if not e[0].startswith("near-")])
    put(run, "big", path)
    run.wait_status(
        lambda s: s["commands"].get("commit") == 2, timeout=600, what="the second commit"
    )
    assert listed(run)["big"]["entries"] == ENTRIES - 3
    await fill_buffer(settings, alerts_topic, alerts)
    after = run.wait_status(lambda s: s["received"] >= 2 * len(alerts))
    assert after["annotations"] == 3

    # The same file through REST: streamed in (4 MB, beyond the web server's 1 MB body
    # limit), sent as chunks and a commit.
    request = urllib.request.Request(
        f"{base_url(run)}viarest?owner=rest",
        data=path.read_bytes(),
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        answer = json.load(response)
    assert (answer["accepted"], answer["entries"], answer["chunks"]) == (
        "viarest",
        ENTRIES - 3,
        20,
    )
    run.wait_status(lambda s: s["commands"].get("commit") == 3, timeout=600, what="the REST upload")
    assert listed(run)["viarest"] == {"name": "viarest", "owner": "rest", "entries": ENTRIES - 3}
