"""Candidates, objects and the database sinks, end to end on real Kafka, MariaDB and Cassandra.

One pipeline per module, run as a user runs it (``faust -A agents.<worker> worker``): the
candidates, objects and crossmatch workers and both sinks, on the test's own topics, MariaDB
database and Cassandra keyspace (migrated with ``brokerapp db migrate``). The sample alerts are
written to the solar and non-solar streams as the ssfilter would (the split by their raw
fields). Expected rows come from the alerts' raw fields read with plain fastavro and, for
the object statistics, a direct numpy computation from the same detections; never from the
code under test.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import subprocess
import sys
import time
import uuid
from collections import defaultdict

import numpy as np
import pymysql
import pytest

from brokerapp.adapters.kafka_admin import ensure_topics
from brokerapp.adapters.sql import cql_name, sql_name
from brokerapp.adapters.stores import open_store
from brokerapp.runtime.topic_config import alerts_topic_config

from .databases import cassandra_cluster, databases_or_skip, mariadb_root, private_stores
from .test_branches import fill_buffer, lsst_solar, samples, ztf_solar
from .workers import REPO, WorkerRun

TABLES = ("candidates", "ss_candidates", "annotations", "objects")
WORKERS = (
    ("agents.candidates", "candidates", "BROKER_CANDIDATES_WEB_PORT"),
    ("agents.objects", "objects", "BROKER_OBJECTS_WEB_PORT"),
    ("agents.crossmatch", "crossmatch", "BROKER_CROSSMATCH_WEB_PORT"),
    ("agents.mariadb_sink", "mariadb-sink", "BROKER_MARIADB_SINK_WEB_PORT"),
    ("agents.cassandra_sink", "cassandra-sink", "BROKER_CASSANDRA_SINK_WEB_PORT"),
)
MJD_OFFSET = 2400000.5


# ------------------------------------------------------------- expected, from raw fields


def lsst_mag(flux):
    return -2.5 * math.log10(flux) + 31.4 if flux is not None and flux > 0 else None


def raw_detection(survey, source, object_id):
    """A detection straight from a ZTF candidate / LSST diaSource record."""
    if survey == "ztf":
        ra, dec = source["ra"], source["dec"]
        return {
            "candidate_id": source["candid"],
            "object_id": object_id,
            "mjd": source["jd"] - MJD_OFFSET,
            "band": {1: "g", 2: "r", 3: "i"}[source["fid"]],
            "ra": ra,
            "dec": dec,
            "mag": source["magpsf"],
        }
    flux = source.get("psfFlux")
    return {
        "candidate_id": source["diaSourceId"],
        "object_id": object_id,
        "mjd": source["midpointMjdTai"],
        "band": source["band"],
        "ra": source["ra"],
        "dec": source["dec"],
        "mag": lsst_mag(flux),
    }


def expected_tables(alerts):
    """Candidate detections per object, solar-system detections, from raw fields."""
    objects = defaultdict(dict)
    solar = {}
    for _schema, record in alerts:
        if "objectId" in record:
            survey, own, prv = "ztf", record["candidate"], record.get("prv_candidates") or []
            object_id, is_solar = record["objectId"], ztf_solar(record)
            prv = [p for p in prv if p.get("candid") is not None]
        else:
            survey, own, prv = "lsst", record["diaSource"], record.get("prvDiaSources") or []
            object_id = str(record["diaObject"]["diaObjectId"]) if record.get("diaObject") else None
            is_solar = lsst_solar(record)
        if is_solar:
            solar[raw_detection(survey, own, object_id)["candidate_id"]] = record
            continue
        for source in [own, *prv]:
            detection = raw_detection(survey, source, object_id)
            objects[object_id].setdefault(detection["candidate_id"], detection)
    return objects, solar


def numpy_statistics(detections):
    """Object statistics computed directly with numpy."""
    mjd = np.array([d["mjd"] for d in detections])
    ra = np.radians([d["ra"] for d in detections])
    dec = np.radians([d["dec"] for d in detections])
    vectors = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)
    mean = vectors.mean(axis=0)
    mean /= np.linalg.norm(mean)
    # atan2(|a x b|, a . b): exact for small angles, where arccos(a . b) loses precision.
    cross = np.linalg.norm(np.cross(vectors, mean), axis=1)
    separations = np.degrees(np.arctan2(cross, vectors @ mean)) * 3600
    out = {
        "n_detections": len(detections),
        "first_mjd": mjd.min(),
        "last_mjd": mjd.max(),
        "ra_mean": np.degrees(np.arctan2(mean[1], mean[0])) % 360,
        "decl_mean": np.degrees(np.arcsin(mean[2])),
        "position_scatter_arcsec": float(np.sqrt(np.mean(separations**2))),
        "bands": {},
    }
    latest = max(detections, key=lambda d: (d["mjd"], d["candidate_id"]))
    out["latest_candidate_id"] = latest["candidate_id"]
    for band in {d["band"] for d in detections}:
        points = sorted(
            (d["mjd"], d["mag"]) for d in detections if d["band"] == band and d["mag"] is not None
        )
        if not points:
            continue
        times, mags = np.array(points).T
        recent = times >= times.max() - 10.0  # rate_window_days default
        rate = None
        if recent.sum() >= 2 and len(set(times[recent])) >= 2:
            rate = float(np.polyfit(times[recent], mags[recent], 1)[0])
        out["bands"][band] = {
            "n": sum(1 for d in detections if d["band"] == band),
            "mean_mag": float(mags.mean()),
            "peak_mag": float(mags.min()),
            "latest_mag": float(mags[-1]),
            "rate_mag_per_day": rate,
        }
    return out


# ------------------------------------------------------------------------ the pipeline


class Pipeline:
    def __init__(self, tmp_path, settings, svc):
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.svc = svc
        self.database = settings.mariadb_database
        self.topics = {
            "BROKER_NONSOLAR_TOPIC": f"{self.prefix}-nonsolar",
            "BROKER_SOLAR_TOPIC": f"{self.prefix}-solar",
            "BROKER_WATCHLIST_SOURCE_TOPIC": f"{self.prefix}-nonsolar",
            "BROKER_CANDIDATES_TOPIC": f"{self.prefix}-candidates",
            "BROKER_SS_CANDIDATES_TOPIC": f"{self.prefix}-ss-candidates",
            "BROKER_CANDIDATE_OBJECT_UPDATES_TOPIC": f"{self.prefix}-cou",
            "BROKER_OBJECTS_TOPIC": f"{self.prefix}-objects",
            "BROKER_ANNOTATIONS_TOPIC": f"{self.prefix}-annotations",
        }
        self.env = {
            **self.topics,
            "BROKER_ALERTS_PARTITIONS": "4",
            "BROKER_MARIADB_DATABASE": self.database,
            "BROKER_CASSANDRA_KEYSPACE": settings.cassandra_keyspace,
            "BROKER_SINK_BATCH_SECONDS": "0.2",
            "BROKER_SINK_RETRY_BACKOFF_MAX": "2",
            # Secrets every worker is given, so the leak test can look for them.
            "BROKER_WEB_TOKEN": f"web-{uuid.uuid4().hex}",
            "BROKER_SMTP_PASSWORD": f"smtp-{uuid.uuid4().hex}",
            "BROKER_EMAIL_UNSUBSCRIBE_SECRET": f"unsub-{uuid.uuid4().hex}",
            # Sent as basic auth to the local registry (Apicurio, auth off, ignores it).
            "BROKER_REGISTRY_BASIC_AUTH_USER_INFO": f"broker:reg-{uuid.uuid4().hex}",
            "BROKER_UPSTREAM_REGISTRY_BASIC_AUTH_USER_INFO": f"broker:upreg-{uuid.uuid4().hex}",
        }
        self.settings = settings
        self.runs = {}
        for module, path, port_setting in WORKERS:
            run = WorkerRun(tmp_path / path, module=module, path=path, port_setting=port_setting)
            run.prefix = self.prefix
            run.workdir.mkdir(parents=True)
            run.env_overrides.update(self.env)
            self.runs[path] = run

    def migrate(self):
        import os

        env = {**os.environ, **self.env}
        done = subprocess.run(
            [sys.executable, "-m", "brokerapp", "db", "migrate"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    async def feed(self, alerts):
        nonsolar = [a for a in alerts if not is_solar(a[1])]
        solar = [a for a in alerts if is_solar(a[1])]
        await fill_buffer(self.settings, self.topics["BROKER_NONSOLAR_TOPIC"], nonsolar)
        await fill_buffer(self.settings, self.topics["BROKER_SOLAR_TOPIC"], solar)

    async def counts(self):
        out = {}
        for kind in ("mariadb", "cassandra"):
            store = await open_store(self.settings, kind)
            try:
                out[kind] = {t: await store.count(t) for t in TABLES}
            finally:
                await store.close()
        return out

    async def dumps(self):
        out = {}
        for kind in ("mariadb", "cassandra"):
            store = await open_store(self.settings, kind)
            try:
                out[kind] = {t: await store.dump(t) for t in TABLES}
            finally:
                await store.close()
        return out

    def sink_received(self):
        return {k: self.runs[f"{k}-sink"].status()["received"] for k in ("mariadb", "cassandra")}

    async def wait_for(self, predicate, timeout=240, what="rows"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for run in self.runs.values():
                if run.process is not None and run.process.poll() is not None:
                    raise AssertionError(f"{run.path} exited:\n{run.log()}")
            last = await self.counts()
            if predicate(last):
                return last
            await asyncio.sleep(1.0)
        logs = "\n".join(run.log()[-2000:] for run in self.runs.values())
        raise AssertionError(f"timed out waiting for {what}: {last}\n{logs}")


def is_solar(record):
    return ztf_solar(record) if "objectId" in record else lsst_solar(record)


def catalogue_of(tmp_path, objects):
    """One catalogue source 0.5" north of each object's first detection."""
    rows, where = ["id,ra,dec"], {}
    for n, (object_id, detections) in enumerate(sorted(objects.items())):
        first = min(detections.values(), key=lambda d: d["mjd"])
        rows.append(f"{n},{first['ra']!r},{first['dec'] + 0.5 / 3600!r}")
        where[object_id] = (n, first["ra"], first["dec"] + 0.5 / 3600)
    path = tmp_path / "catalogue.csv"
    path.write_text("\n".join(rows) + "\n")
    chain = tmp_path / "crossmatch.toml"
    chain.write_text(
        "[[processor]]\nuse = 'catalogue_match'\n"
        f"path = '{path}'\nid_column = 'id'\nradius_arcsec = 2.0\nk = 1\n"
        "[[processor]]\nuse = 'emit_annotations'\n"
    )
    return chain, where


@pytest.fixture(scope="module")
def db_services(request):
    return databases_or_skip(request.config)


@pytest.fixture(scope="module")
def alerts():
    return samples("ztf") + samples("lsst")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, db_services, alerts):
    tmp_path = tmp_path_factory.mktemp("pipeline")
    with private_stores(db_services) as settings:
        pipe = Pipeline(tmp_path, settings, db_services)
        objects, _solar = expected_tables(alerts)
        chain, pipe.catalogue = catalogue_of(tmp_path, objects)
        pipe.runs["crossmatch"].env_overrides["BROKER_CROSSMATCH_CHAIN"] = str(chain)
        pipe.migrate_output = pipe.migrate()
        for topic in pipe.topics.values():
            config = alerts_topic_config(-1, 10485760)
            ensure_topics(pipe.settings.kafka_bootstrap, [topic], 4, config)
        try:
            for run in pipe.runs.values():
                run.start()
            asyncio.run(pipe.feed(alerts))
            yield pipe
        finally:
            for run in pipe.runs.values():
                run.stop()


def expected_counts(alerts):
    objects, solar = expected_tables(alerts)
    return {
        "candidates": sum(len(d) for d in objects.values()),
        "ss_candidates": len(solar),
        "annotations": sum(1 for _s, r in alerts if not is_solar(r)),
        "objects": len(objects),
    }


# -------------------------------------------------------------------------------- tests


async def test_every_alert_lands_in_both_stores_with_correct_values(pipeline, alerts):
    assert "1" in pipeline.migrate_output
    want = expected_counts(alerts)
    got = await pipeline.wait_for(lambda c: c["mariadb"] == want and c["cassandra"] == want)
    assert got == {"mariadb": want, "cassandra": want}
    objects, solar = expected_tables(alerts)
    dumps = await pipeline.dumps()
    for kind, tables in dumps.items():
        candidates = {row["candidate_id"]: row for row in tables["candidates"]}
        for object_id, detections in objects.items():
            for candidate_id, expected in detections.items():
                row = candidates[candidate_id]
                assert row["object_id"] == object_id, kind
                assert row["mjd"] == pytest.approx(expected["mjd"], abs=1e-9)
                assert row["band"] == expected["band"]
                assert row["ra"] == pytest.approx(expected["ra"])
                assert row["decl"] == pytest.approx(expected["dec"])
                if expected["mag"] is None:
                    assert row["mag"] is None
                else:
                    assert row["mag"] == pytest.approx(expected["mag"], rel=1e-6)
        ss_rows = {row["candidate_id"]: row for row in tables["ss_candidates"]}
        assert set(ss_rows) == set(solar)
        for candidate_id, record in solar.items():
            if "objectId" in record:
                assert ss_rows[candidate_id]["ss_name"] == record["candidate"]["ssnamenr"]
            else:
                assert ss_rows[candidate_id]["ss_name"] == str(record["diaSource"]["ssObjectId"])

        for row in tables["annotations"]:
            n, ra, dec = pipeline.catalogue[row["object_id"]]
            assert row["source"] == "catalogue:catalogue"
            assert row["entry"] == str(n)

        rows = {row["object_id"]: row for row in tables["objects"]}
        assert set(rows) == set(objects)
        for object_id, detections in objects.items():
            want_stats = numpy_statistics(list(detections.values()))
            row = rows[object_id]
            for column in ("n_detections", "latest_candidate_id"):
                assert row[column] == want_stats[column], (kind, object_id, column)
            for column in ("first_mjd", "last_mjd", "decl_mean"):
                assert row[column] == pytest.approx(want_stats[column], abs=1e-9)
            assert row["ra_mean"] == pytest.approx(want_stats["ra_mean"], abs=1e-9)
            assert row["position_scatter_arcsec"] == pytest.approx(
                want_stats["position_scatter_arcsec"], abs=1e-6
            )
            bands = json.loads(row["stats"])["bands"]
            for band, expected in want_stats["bands"].items():
                for key, value in expected.items():
                    if value is None:
                        assert bands[band][key] is None, (object_id, band, key)
                    else:
                        assert bands[band][key] == pytest.approx(value, rel=1e-9, abs=1e-9), (
                            kind,
                            object_id,
                            band,
                            key,
                        )


def plain_dumps(svc, settings):
    """Every row of every table, read with plain SQL (root, unix socket) and plain CQL.

    Not through the project's store classes: rows as sorted tuples of (column, value).
    """
    out = {"mariadb": {}, "cassandra": {}}
    root = mariadb_root(svc)
    try:
        with root.cursor(pymysql.cursors.DictCursor) as cur:
            for table in TABLES:
                cur.execute(
                    f"SELECT * FROM {sql_name(settings.mariadb_database)}.{sql_name(table)}"
                )
                rows = cur.fetchall()
                out["mariadb"][table] = sorted((tuple(sorted(r.items())) for r in rows), key=repr)
    finally:
        root.close()
    cluster = cassandra_cluster(settings)
    try:
        session = cluster.connect()
        for table in TABLES:
            rows = session.execute(
                f"SELECT * FROM {cql_name(settings.cassandra_keyspace)}.{cql_name(table)}"
            )
            out["cassandra"][table] = sorted(
                (tuple(sorted(r._asdict().items())) for r in rows), key=repr
            )
    finally:
        cluster.shutdown()
    return out


async def test_replaying_the_stream_in_another_order_leaves_every_table_identical(
    pipeline, alerts, db_services
):
    want = expected_counts(alerts)
    await pipeline.wait_for(lambda c: c["mariadb"] == want and c["cassandra"] == want)
    before = plain_dumps(db_services, pipeline.settings)
    for kind in before:
        assert {t: len(rows) for t, rows in before[kind].items()} == want, kind
    # Fresh sink processes: their memory of stored rows is empty, so every row of the replay
    # is written to the stores again, and only the upserts can keep the tables as they were.
    for kind in ("mariadb", "cassandra"):
        run = pipeline.runs[f"{kind}-sink"]
        run.stop()
        run.start()
        run.wait_status(lambda s: True, timeout=120, what=f"the restarted {kind} sink")
    shuffled = list(alerts)
    random.Random(7).shuffle(shuffled)
    await pipeline.feed(shuffled)
    # Every sink agent reads the replay and writes every row again: per non-solar alert a
    # CandidateUpdate (its detection and previous ones), an annotation and an ObjectUpdate;
    # per solar alert a CandidateUpdate. The object updates come last (candidates, then the
    # objects worker), so the wait is per table: each has written at least its rows again.
    nonsolar = sum(1 for _s, r in alerts if not is_solar(r))
    per_pass = 3 * nonsolar + (len(alerts) - nonsolar)
    for kind in ("mariadb", "cassandra"):
        status = pipeline.runs[f"{kind}-sink"].wait_status(
            lambda s: (
                s["received"] >= per_pass
                and all(
                    s["tables"][t]["pending"] == 0 and s["tables"][t]["rows_written"] >= want[t]
                    for t in TABLES
                )
            ),
            timeout=180,
            what=f"{kind} sink to write the replay's rows",
        )
        for table in TABLES:
            written = status["tables"][table]
            assert written["skipped_already_stored"] == 0, (kind, table, written)
            assert written["rows_written"] >= want[table], (kind, table, written)
    after = plain_dumps(db_services, pipeline.settings)
    for kind in before:
        for table in TABLES:
            assert after[kind][table] == before[kind][table], (kind, table)


async def test_mariadb_outage_mid_stream_loses_nothing(pipeline, alerts, db_services):
    from brokerapp.model.profiles import profile_for

    want = expected_counts(alerts)
    await pipeline.wait_for(lambda c: c["mariadb"] == want and c["cassandra"] == want)
    # New alerts: fresh candidate IDs for the non-solar ZTF alerts (one new row each).
    fresh = []
    for n, (schema, record) in enumerate(alerts):
        if "objectId" in record and not is_solar(record):
            fresh.append((schema, profile_for(record).with_alert_id(record, 10**17 + n)))
    sink = pipeline.runs["mariadb-sink"]
    assert db_services.stop("mariadb")
    try:
        await pipeline.feed(fresh)
        sink.wait_status(
            lambda s: s["retries"] > 0 and not s["store_available"],
            timeout=120,
            what="the MariaDB sink to notice the outage",
        )
        time.sleep(3)
    finally:
        db_services.start(db_services.mariadb())
        db_services.wait_databases([db_services.mariadb()])
    grown = dict(
        want,
        candidates=want["candidates"] + len(fresh),
        annotations=want["annotations"] + len(fresh),
    )
    got = await pipeline.wait_for(lambda c: c["mariadb"] == grown and c["cassandra"] == grown)
    assert got["mariadb"] == grown
    status = sink.status()
    assert status["deadlettered"] == 0
    assert status["store_available"]


async def test_no_worker_prints_a_secret_in_its_log_or_status(pipeline, alerts):
    want = expected_counts(alerts)
    # After the tests above (the outage test adds rows): at least every alert's rows.
    await pipeline.wait_for(lambda c: all(c[k][t] >= want[t] for k in c for t in want))
    secrets = {
        "mariadb password": pipeline.settings.mariadb_secret().get_secret_value(),
        "web token": pipeline.env["BROKER_WEB_TOKEN"],
        "smtp password": pipeline.env["BROKER_SMTP_PASSWORD"],
        "unsubscribe secret": pipeline.env["BROKER_EMAIL_UNSUBSCRIBE_SECRET"],
        "registry password": pipeline.env["BROKER_REGISTRY_BASIC_AUTH_USER_INFO"].split(":")[1],
        "upstream registry password": (
            pipeline.env["BROKER_UPSTREAM_REGISTRY_BASIC_AUTH_USER_INFO"].split(":")[1]
        ),
    }
    assert secrets["mariadb password"], "the embedded MariaDB runs with a generated password"
    cassandra = pipeline.settings.cassandra_secret().get_secret_value()
    if cassandra:  # generated by `services up --databases` on a node with PasswordAuthenticator
        secrets["cassandra password"] = cassandra
    seen = 0
    for run in pipeline.runs.values():
        texts = [path.read_text(errors="replace") for path in run.workdir.glob(f"{run.path}-*.log")]
        texts += [json.dumps(run.status()), run.page()]
        seen += len(texts)
        for what, secret in secrets.items():
            for text in texts:
                assert secret not in text, f"{run.path} prints the {what}"
    assert seen >= 3 * len(pipeline.runs)  # a log, the status JSON and the page of each
