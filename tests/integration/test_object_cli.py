"""`brokerapp object` and `brokerapp produce --from-db` against the real databases and Kafka.

The tables live in a MariaDB database and a Cassandra keyspace of this module's own (named
`t_<random>`, dropped at the end; the database made and granted through root's unix socket
as in `test_stores.py`), migrated with the stores' `migrate()` and filled with rows built by
`brokerapp.domain.candidates` from hand-written detections. The commands run as subprocesses
pointed there by `BROKER_MARIADB_DATABASE` and `BROKER_CASSANDRA_KEYSPACE`. Skips when the
databases are not up.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from brokerapp.adapters.kafka_admin import delete_topics
from brokerapp.adapters.stores import open_store
from brokerapp.domain.candidates import candidate_rows, object_row, object_update
from brokerapp.domain.history import merge_history, object_statistics

from .databases import databases_or_skip, private_stores

REPO = Path(__file__).resolve().parents[2]
KINDS = ["mariadb", "cassandra"]
PNG = b"\x89PNG\r\n\x1a\n"

OBJECT_A = "ZTF24aaaaaaa"
OBJECT_B = "ZTF24aaaaaab"


def _detection(candidate_id, object_id, mjd, band, mag, mag_err, ra=150.0, dec=-2.25):
    return {
        "candidate_id": candidate_id,
        "object_id": object_id,
        "survey": "ztf",
        "mjd": mjd,
        "band": band,
        "ra": ra,
        "dec": dec,
        "mag": mag,
        "mag_err": mag_err,
        "flux": None,
        "flux_err": None,
        "visit_id": 1000 + candidate_id,
    }


# Object A: three g, two r (one g without a magnitude), positions scattered by ~0.1".
DETECTIONS_A = [
    _detection(2001, OBJECT_A, 60100.125, "g", 18.40, 0.05, 150.00000, -2.25000),
    _detection(2002, OBJECT_A, 60100.15, "r", 18.10, 0.06, 150.00003, -2.25002),
    _detection(2003, OBJECT_A, 60102.5, "g", None, None, 150.00001, -2.24999),
    _detection(2004, OBJECT_A, 60103.25, "g", 18.00, 0.04, 149.99998, -2.25001),
    _detection(2005, OBJECT_A, 60103.3, "r", 17.80, None, 150.00002, -2.25003),
]
DETECTIONS_B = [
    _detection(1002, OBJECT_B, 60101.0, "r", 19.5, 0.1, 10.0, 20.0),
    _detection(1001, OBJECT_B, 60100.0, "r", 19.7, 0.12, 10.0, 20.0),
]


def _update(detections):
    """A CandidateUpdate of the latest detection, with the others as previous ones."""
    latest = max(detections, key=lambda d: (d["mjd"], d["candidate_id"]))
    return {
        "alert_id": latest["candidate_id"] + 500_000,
        "object_id": latest["object_id"],
        "survey": "ztf",
        "candidate": latest,
        "previous": [d for d in detections if d is not latest],
        "ss_name": None,
        "ss_distance_arcsec": None,
        "appended_ms": 1.0,
    }


def _statistics(settings, detections):
    return object_statistics(
        merge_history([], detections, settings.history_length),
        rate_window_days=settings.rate_window_days,
        colour_window_days=settings.colour_window_days,
    )


@pytest.fixture(scope="module")
def db_services(request):
    return databases_or_skip(request.config)


@pytest.fixture(scope="module")
def loaded(db_services):
    """Settings of a fresh database and keyspace, migrated and holding both objects."""
    with private_stores(db_services) as settings:
        yield from _loaded(settings)


def _loaded(settings):
    candidates = []
    objects = []
    for detections in (DETECTIONS_A, DETECTIONS_B):
        update = _update(detections)
        candidates += candidate_rows(update)
        objects.append(object_row(object_update(_statistics(settings, detections), 1)))

    async def load():
        for kind in KINDS:
            store = await open_store(settings, kind)
            try:
                assert await store.migrate() == [1]
                await store.upsert("candidates", candidates)
                await store.upsert("objects", objects)
            finally:
                await store.close()

    asyncio.run(load())
    yield settings


def _run(settings, *args, **env):
    environment = {
        **os.environ,
        "BROKER_MARIADB_DATABASE": settings.mariadb_database,
        "BROKER_CASSANDRA_KEYSPACE": settings.cassandra_keyspace,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "brokerapp", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _field(lines, label):
    """The value of a `  label   value` line of the statistics table."""
    for line in lines:
        if line.startswith("  " + label + " "):
            return line[len(label) + 2 :].strip()
    raise AssertionError(f"no {label!r} line in {lines}")


@pytest.mark.parametrize("kind", KINDS)
def test_object_prints_statistics_and_light_curve(loaded, kind, tmp_path):
    stats = _statistics(loaded, DETECTIONS_A)
    plot = tmp_path / f"{kind}.png"
    done = _run(loaded, "object", OBJECT_A, "--store", kind, "--plot", str(plot))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Object {OBJECT_A}"
    assert _field(lines, "survey") == "ztf"
    assert _field(lines, "detections") == "5"
    assert _field(lines, "first MJD") == "60100.12500"
    assert _field(lines, "last MJD") == "60103.30000"
    assert _field(lines, "latest mag (band)") == "17.800 (r)"
    assert _field(lines, "latest candidate") == "2005"
    assert _field(lines, "mean RA [deg]") == f"{stats['ra_mean']:.6f}"
    assert _field(lines, "mean Dec [deg]") == f"{stats['dec_mean']:.6f}"
    scatter = _field(lines, "position scatter")
    assert scatter == f"{stats['position_scatter_arcsec']:.3f} arcsec"
    assert 0.01 < float(scatter.split()[0]) < 0.2

    # Per band: n, latest, peak, mean magnitude, rate (g: 18.4 -> 18.0 in 3.125 d).
    bands = lines[lines.index("Bands") + 2 : lines.index("Bands") + 4]
    assert [line.split() for line in bands] == [
        ["g", "3", "18.000", "18.000", "18.200", f"{-0.4 / 3.125:+.4f}"],
        ["r", "2", "17.800", "17.800", "17.950", f"{-0.3 / 3.15:+.4f}"],
    ]
    assert lines[lines.index("Colours") + 1].split() == ["g-r", "+0.200"]

    heading = "Light curve: 5 detections, 1 without a magnitude (left out of plots)"
    start = lines.index(heading)
    assert lines[start + 1].split() == ["MJD", "band", "mag", "±", "err", "candidate"]
    assert [line.split() for line in lines[start + 2 :] if not line.startswith("plot:")] == [
        ["60100.12500", "g", "18.400", "±", "0.050", "2001"],
        ["60100.15000", "r", "18.100", "±", "0.060", "2002"],
        ["60102.50000", "g", "-", "2003"],
        ["60103.25000", "g", "18.000", "±", "0.040", "2004"],
        ["60103.30000", "r", "17.800", "±", "-", "2005"],
    ]
    assert lines[-1] == f"plot: {plot} (4 points)"
    assert plot.read_bytes()[:8] == PNG


def test_object_json_is_the_same_from_both_stores(loaded):
    documents = {}
    for kind in KINDS:
        done = _run(loaded, "object", OBJECT_B, "--store", kind, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        documents[kind] = json.loads(done.stdout)
    mariadb, cassandra = documents["mariadb"], documents["cassandra"]
    assert mariadb["store"] == "mariadb" and cassandra["store"] == "cassandra"
    assert {**mariadb, "store": None} == {**cassandra, "store": None}
    assert mariadb["n_detections"] == 2 and mariadb["n_without_mag"] == 0
    assert [r["candidate_id"] for r in mariadb["light_curve"]] == [1001, 1002]
    assert mariadb["light_curve"][0]["mag"] == 19.7
    assert mariadb["object"]["n_detections"] == 2
    assert mariadb["object"]["stats"]["bands"]["r"]["n"] == 2
    assert mariadb["object"]["stats"]["colours"] == {}


@pytest.mark.parametrize("kind", KINDS)
def test_object_unknown_or_unreachable_exits_1(loaded, kind, tmp_path):
    plot = tmp_path / "nothing.png"
    done = _run(loaded, "object", "ZTF24nothere", "--store", kind, "--plot", str(plot))
    assert done.returncode == 1
    assert "no object 'ZTF24nothere'" in done.stderr
    assert done.stdout == ""
    assert not plot.exists()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    setting = "BROKER_MARIADB_PORT" if kind == "mariadb" else "BROKER_CASSANDRA_PORT"
    down = _run(loaded, "object", OBJECT_A, "--store", kind, **{setting: str(port)})
    assert down.returncode == 1
    assert f"{kind}: unavailable" in down.stderr
    assert "Traceback" not in down.stderr


def _read_topic(settings, topic, count, seconds=60):
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out = []
    deadline = time.monotonic() + seconds
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            out.append(msg)
        # Nothing more than expected arrives.
        extra = consumer.poll(2.0)
        if extra is not None and not extra.error():
            out.append(extra)
    finally:
        consumer.close()
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_produce_from_db_candidates(loaded, services, unique_topic, kind):
    expected = sorted(
        DETECTIONS_A + DETECTIONS_B, key=lambda d: (d["object_id"], d["mjd"], d["candidate_id"])
    )
    topic = f"{unique_topic}-{kind}"
    try:
        done = _run(loaded, "produce", "--from-db", "candidates", "--topic", topic, "--store", kind)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith(f"produced {len(expected)} candidates records from {kind}")
        messages = _read_topic(loaded, topic, len(expected))
    finally:
        delete_topics(loaded.kafka_bootstrap, [topic])
    # One record per stored candidate, keyed by object, grouped by object, in time order.
    assert len(messages) == len(expected)
    assert [m.key().decode() for m in messages] == [d["object_id"] for d in expected]
    updates = [json.loads(m.value()) for m in messages]
    assert [u["candidate"] for u in updates] == expected  # the row's values, decl -> dec
    for update, detection in zip(updates, expected, strict=True):
        assert update == {
            "alert_id": detection["candidate_id"],
            "object_id": detection["object_id"],
            "survey": "ztf",
            "candidate": detection,
            "previous": [],
            "ss_name": None,
            "ss_distance_arcsec": None,
            "appended_ms": 0.0,
        }

    # What the objects worker does with them gives back the stored statistics.
    from agents.objects import parse_update

    history = {}
    for message in messages:
        object_id, detections, _update = parse_update(message.value())
        history[object_id] = merge_history(
            history.get(object_id, []), detections, loaded.history_length
        )
    for object_id, detections in ((OBJECT_A, DETECTIONS_A), (OBJECT_B, DETECTIONS_B)):
        rebuilt = object_statistics(
            history[object_id],
            rate_window_days=loaded.rate_window_days,
            colour_window_days=loaded.colour_window_days,
        )
        assert rebuilt == _statistics(loaded, detections)


def test_produce_from_db_one_object_and_other_tables(loaded, services, unique_topic):
    topics = [f"{unique_topic}-{n}" for n in range(2)]
    try:
        one = _run(
            loaded,
            "produce",
            "--from-db",
            "candidates",
            "--object",
            OBJECT_B,
            "--topic",
            topics[0],
            "--store",
            "cassandra",
        )
        assert one.returncode == 0, one.stdout + one.stderr
        assert one.stdout.startswith(f"produced 2 candidates records of object {OBJECT_B}")
        candidates = _read_topic(loaded, topics[0], 2)
        objects = _run(loaded, "produce", "--from-db", "objects", "-t", topics[1])
        assert objects.returncode == 0, objects.stdout + objects.stderr
        assert objects.stdout.startswith("produced 2 objects records from mariadb")
        rows = _read_topic(loaded, topics[1], 2)
    finally:
        delete_topics(loaded.kafka_bootstrap, topics)
    assert [json.loads(m.value())["candidate"]["candidate_id"] for m in candidates] == [1001, 1002]
    assert {m.key().decode() for m in candidates} == {OBJECT_B}
    by_key = {m.key().decode(): json.loads(m.value()) for m in rows}
    assert set(by_key) == {OBJECT_A, OBJECT_B}
    assert by_key[OBJECT_A]["n_detections"] == 5
    assert json.loads(by_key[OBJECT_A]["stats"])["colours"] == {"g-r": pytest.approx(0.2)}

    misuse = _run(loaded, "produce", "--from-db", "candidates", "--files", "tests/data/ztf")
    assert misuse.returncode == 2
    assert "--from-db" in misuse.stderr
