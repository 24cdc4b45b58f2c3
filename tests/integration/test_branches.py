"""The fast branches against real Kafka and the real registry.

Each test fills its own local buffer topic the way the gateway does (Confluent framing with
the local registry's schema ID, keyed by object, append times) and runs the branch worker as
a user does, ``faust -A agents.<branch> worker``, in a subprocess. Expected routing comes
from the alerts' raw fields, read with plain fastavro, never from the code under test.
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Consumer, Producer

from brokerapp.adapters.kafka_admin import ensure_topics
from brokerapp.adapters.registry import RegistryClient
from brokerapp.runtime.topic_config import alerts_topic_config
from brokerapp.wire.codecs import frame

from .workers import WorkerRun

DATA = Path(__file__).parents[1] / "data"
PLUGINS = Path(__file__).parents[1] / "data" / "plugins"


def samples(survey):
    out = []
    for path in sorted(DATA.glob(f"{survey}/*.avro")):
        reader = fastavro.reader(io.BytesIO(path.read_bytes()))
        out.append((reader.writer_schema, next(reader)))
    return out


def ztf_solar(record):
    c = record["candidate"]
    return all(
        c[f] is not None and c[f] != -999.0 and c[f] != "null"
        for f in ("ssdistnr", "ssmagnr", "ssnamenr")
    )


def lsst_solar(record):
    return bool(record["diaSource"].get("ssObjectId")) or record.get("ssSource") is not None


def object_key(record):
    if "objectId" in record:
        return record["objectId"].encode()
    source = record["diaSource"]
    return str(source["diaObjectId"] or source["ssObjectId"] or source["diaSourceId"]).encode()


async def fill_buffer(settings, topic, alerts, partitions=4):
    """Write (schema, record) alerts as the gateway would; return the values in order."""
    ensure_topics(
        settings.kafka_bootstrap,
        [topic],
        partitions,
        alerts_topic_config(-1, settings.max_message_bytes),
    )
    ids = {}
    values = []
    async with RegistryClient(settings.registry_url) as registry:
        for schema, record in alerts:
            key = repr(schema)
            if key not in ids:
                ids[key] = await registry.register(f"{topic}-value", schema)
            body = io.BytesIO()
            fastavro.schemaless_writer(body, fastavro.parse_schema(schema), record)
            values.append((object_key(record), frame(ids[key], body.getvalue())))
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "message.max.bytes": 10485760}
    )
    for key, value in values:
        producer.produce(topic, value, key=key, headers=[("origin-topic", b"test")])
        producer.poll(0)
    assert producer.flush(60) == 0
    return values


def read_topic(settings, topic, count, idle_limit=20):
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "max.partition.fetch.bytes": settings.max_message_bytes,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([topic])
    out, idle = [], 0
    try:
        while len(out) < count and idle < idle_limit:
            msg = consumer.poll(1.0)
            if msg is None or (msg.error() and msg.error().code() == -191):
                idle += 1
                continue
            if msg.error():
                idle += 1
                continue
            out.append(msg)
    finally:
        consumer.close()
    return out


def branch(tmp_path, module, path, port_setting, **env):
    run = WorkerRun(tmp_path / path, module=module, path=path, port_setting=port_setting)
    run.workdir.mkdir(parents=True)
    run.env_overrides.update(env)
    return run


@pytest.fixture
def runs():
    started = []
    yield started
    for run in started:
        run.stop()


CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
"""Cutout fields of both surveys' alert schemas (from the schema documents)."""


def without_cutouts(record):
    return {k: (None if k in CUTOUT_FIELDS else v) for k, v in record.items()}


@pytest.mark.parametrize("lean", ["false", "true"])
async def test_solar_system_split_is_exact_and_leaves_bytes_unchanged(
    services, settings, tmp_path, runs, lean
):
    """Whole bytes unchanged, or (lean streams) the same record with its cutouts null."""
    run = branch(tmp_path, "agents.ssfilter", "ssfilter", "BROKER_SSFILTER_WEB_PORT")
    alerts_topic = f"{run.prefix}-alerts"
    solar, nonsolar = f"{run.prefix}-alerts-solar", f"{run.prefix}-alerts-nonsolar"
    cutouts = f"{run.prefix}-cutouts"
    run.env_overrides.update(
        BROKER_SOLAR_TOPIC=solar,
        BROKER_NONSOLAR_TOPIC=nonsolar,
        BROKER_ALERTS_PARTITIONS="4",
        BROKER_LEAN_STREAMS=lean,
        BROKER_CUTOUTS_TOPIC=cutouts,
    )
    ztf, lsst = samples("ztf"), samples("lsst")
    values = await fill_buffer(settings, alerts_topic, ztf + lsst)
    runs.append(run)
    run.start()
    total = len(values)
    status = run.wait_status(lambda s: sum(s["sent"].get(t, 0) for t in (solar, nonsolar)) >= total)

    # Every output is acknowledged (status), so a short idle read finds all there is.
    got_solar = read_topic(settings, solar, total, idle_limit=3)
    got_nonsolar = read_topic(settings, nonsolar, total, idle_limit=3)
    assert sum(ztf_solar(r) for _s, r in ztf) == 11  # the shared samples: 11 of 18
    assert len(got_solar) + len(got_nonsolar) == total  # each alert exactly once
    if lean == "true":
        # What a reader sees: the record, cutouts null, under the same schema ID.
        by_key = {}
        for (schema, record), (key, value) in zip(ztf + lsst, values, strict=True):
            by_key.setdefault(key, []).append((schema, record, value[:5]))
        for m in got_solar + got_nonsolar:
            options = by_key[m.key()]
            assert m.value()[:5] in {header for _s, _r, header in options}
            decoded = [
                fastavro.schemaless_reader(io.BytesIO(m.value()[5:]), fastavro.parse_schema(s))
                for s, _r, header in options
                if header == m.value()[:5]
            ]
            assert any(d == without_cutouts(r) for d in decoded for _s, r, _h in options)
        assert (
            sum(len(m.value()) for m in got_solar + got_nonsolar)
            < sum(len(v) for _k, v in values) / 5
        )
        assert len(read_topic(settings, cutouts, total, idle_limit=3)) == total
    else:
        expected_solar = {
            v
            for (_s, r), (_k, v) in zip(ztf + lsst, values, strict=True)
            if (ztf_solar(r) if "objectId" in r else lsst_solar(r))
        }
        assert {m.value() for m in got_solar} == expected_solar
        counted = Counter(m.value() for m in got_solar + got_nonsolar)
        assert counted == Counter(v for _k, v in values)
        by_value = dict((v, k) for k, v in values)
        for m in got_solar + got_nonsolar:
            assert m.key() == by_value[m.value()]
    for m in got_solar + got_nonsolar:
        assert dict(m.headers())["origin-topic"] == b"test"
    assert status["deadlettered"] == 0
    assert status["processing"]["p99_ms"] is not None
    assert status["end_to_end"]["count"] >= total
    assert "processing" in run.page()


def lsst_snr(record):
    source = record["diaSource"]
    return source["psfFlux"] / source["psfFluxErr"] if source["psfFluxErr"] else 0.0


async def test_twenty_per_visit_hold_with_visits_interleaved_across_partitions(
    services, settings, tmp_path, runs
):
    """`brokerapp filter BOOTSTRAP TOPIC 1` (Filter001: S/N >= 3) over three visits of 30
    passing alerts each, shuffled over four partitions: exactly 20 per visit come out."""
    import sys

    run = branch(tmp_path, "agents.filters", "filter001", "BROKER_FILTERS_WEB_PORT")
    alerts_topic = f"{run.prefix}-alerts"
    run.command = [
        sys.executable,
        "-m",
        "brokerapp",
        "filter",
        settings.kafka_bootstrap,
        alerts_topic,
        "1",
        "--web-port",
        str(run.port),
    ]
    run.env_overrides["BROKER_ALERTS_PARTITIONS"] = "4"
    passing = [(s, r) for s, r in samples("lsst") if lsst_snr(r) >= 3]
    assert len(passing) >= 30
    visits = [9_000_000_001, 9_000_000_002, 9_000_000_003]
    alerts, serial = [], 0
    for visit in visits:
        for schema, record in passing[:30]:
            serial += 1
            clone = copy.deepcopy(record)
            clone["diaSource"]["visit"] = visit
            clone["diaSource"]["diaSourceId"] = 10**15 + serial
            clone["diaSource"]["diaObjectId"] = 10**15 + serial  # spreads over partitions
            clone["diaSourceId"] = 10**15 + serial
            alerts.append((schema, clone))
    random.Random(3).shuffle(alerts)
    await fill_buffer(settings, alerts_topic, alerts)
    runs.append(run)
    run.start()
    run.wait_status(lambda s: s["received"] >= len(alerts) and s["sent"])
    out_topic = f"{run.prefix}-Filter001"
    schema = fastavro.parse_schema(passing[0][0])
    got = read_topic(settings, out_topic, 90, idle_limit=8)
    per_visit = Counter(
        fastavro.schemaless_reader(io.BytesIO(m.value()[5:]), schema)["diaSource"]["visit"]
        for m in got
    )
    assert per_visit == {visit: 20 for visit in visits}
    assert len({m.value() for m in got}) == 60
    status = run.status()
    assert status["filters"]["Filter001"]["capped"] == 30
    assert status["app_id"].endswith("-filter001")


def node(tmp_path, runs, name, chain_text, plugins=False, **env):
    run = branch(tmp_path, "agents.node", name, "BROKER_NODE_WEB_PORT")
    chain = run.workdir / f"{name}.toml"
    chain.write_text(chain_text)
    run.env_overrides.update(
        {
            "BROKER_NODE_NAME": name,
            "BROKER_NODE_CHAIN": str(chain),
            "BROKER_ALERTS_TOPIC": f"{run.prefix}-alerts",
            "BROKER_ALERTS_PARTITIONS": "4",
            "BROKER_CHAIN_POLL_SECONDS": "0.2",
            **env,
        }
    )
    if plugins:
        path = [str(PLUGINS), os.environ.get("PYTHONPATH", "")]
        run.env_overrides["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    runs.append(run)
    return run, chain


def replace_file(path, text):
    """Write a new version atomically, as an operator's editor or deploy tool does."""
    tmp = path.with_suffix(".new")
    tmp.write_text(text)
    tmp.replace(path)


async def test_chain_change_takes_effect_without_a_restart(services, settings, tmp_path, runs):
    first = 'name = "v1"\n[[processor]]\nuse = "solar_system"\n'
    second = (
        'name = "v2"\n[[processor]]\nuse = "solar_system"\n'
        'solar_stream = "ss"\nnonsolar_stream = "other"\n'
    )
    run, chain = node(tmp_path, runs, "switch", first)
    ztf = samples("ztf")
    await fill_buffer(settings, f"{run.prefix}-alerts", ztf)
    run.start()
    pid = run.process.pid
    run.wait_status(lambda s: sum(s["sent"].values()) >= len(ztf))
    replace_file(chain, second)
    status = run.wait_status(lambda s: s["chain"]["version"] == 2, what="the chain to reload")
    assert status["chain"]["name"] == "v2" and status["chain"]["last_error"] is None
    await fill_buffer(settings, f"{run.prefix}-alerts", ztf)
    run.wait_status(lambda s: sum(s["sent"].values()) >= 2 * len(ztf))
    assert run.process.pid == pid and run.process.poll() is None  # same worker throughout

    def count(stream):
        return len(read_topic(settings, f"{run.prefix}-switch-{stream}", 100, idle_limit=2))

    n_solar = sum(ztf_solar(r) for _s, r in ztf)
    assert (count("solar"), count("nonsolar")) == (n_solar, len(ztf) - n_solar)
    assert (count("ss"), count("other")) == (n_solar, len(ztf) - n_solar)

    replace_file(chain, 'name = "broken"\n[[processor]]\nuse = "no_such_processor"\n')
    broken = run.wait_status(lambda s: s["chain"]["reload_failures"] >= 1)
    assert "no_such_processor" in broken["chain"]["last_error"]
    assert broken["chain"]["name"] == "v2"  # the running chain stays


async def test_external_processor_runs_from_its_entry_point(services, settings, tmp_path, runs):
    chain_text = (
        'name = "tags"\n'
        '[[processor]]\nuse = "tag_bright"\nbrighter_than = 18.0\n'
        '[[processor]]\nuse = "emit_annotations"\nstream = "tags"\n'
    )
    run, _chain = node(tmp_path, runs, "plugin", chain_text, plugins=True)
    ztf = samples("ztf")
    await fill_buffer(settings, f"{run.prefix}-alerts", ztf)
    run.start()
    status = run.wait_status(lambda s: s["received"] >= len(ztf))
    assert status["chain"]["processors"] == ["tag_bright", "emit_annotations"]
    bright = {
        r["candid"]: r["candidate"]["magpsf"] for _s, r in ztf if r["candidate"]["magpsf"] < 18
    }
    assert bright  # the samples have bright alerts
    got = read_topic(settings, f"{run.prefix}-plugin-tags", len(bright), idle_limit=10)
    records = [json.loads(m.value()) for m in got]
    assert {r["alert_id"]: r["annotations"]["tag_bright"]["magnitude"] for r in records} == (
        pytest.approx(bright)
    )
    assert all(r["annotations"]["tag_bright"]["bright"] is True for r in records)


async def test_a_slow_branch_does_not_hold_back_the_fast_one(services, settings, tmp_path, runs):
    """ssfilter and a deliberately slow node read the same buffer: ssfilter finishes every
    alert while the slow node is still far behind (each branch is its own consumer group)."""
    fast = branch(tmp_path, "agents.ssfilter", "ssfilter", "BROKER_SSFILTER_WEB_PORT")
    alerts_topic = f"{fast.prefix}-alerts"
    slow, _chain = node(
        tmp_path,
        runs,
        "slow",
        'name = "slow"\n[[processor]]\nuse = "slow_down"\nmilliseconds = 1000\n',
        plugins=True,
        BROKER_ALERTS_TOPIC=alerts_topic,
    )
    fast.env_overrides.update(
        BROKER_ALERTS_TOPIC=alerts_topic,
        BROKER_SOLAR_TOPIC=f"{fast.prefix}-solar",
        BROKER_NONSOLAR_TOPIC=f"{fast.prefix}-nonsolar",
        BROKER_ALERTS_PARTITIONS="4",
    )
    runs.append(fast)
    slow.start()
    fast.start()
    alerts = samples("ztf") + samples("lsst")
    await fill_buffer(settings, alerts_topic, alerts)
    done = fast.wait_status(lambda s: sum(s["sent"].values()) >= len(alerts))
    # Its processor sleeps on the event loop, so one status read may time out: retry.
    behind = slow.wait_status(lambda s: True, timeout=60, what="the slow node's status")
    assert behind["received"] < len(alerts) / 2  # 1 s an alert: far behind
    print(
        json.dumps(
            {
                "fast_end_to_end": done["end_to_end"],
                "slow_received_when_fast_done": behind["received"],
            }
        )
    )


WATCHLISTS = Path(__file__).parents[1] / "data" / "watchlists"


def alert_position(record):
    if "objectId" in record:
        return record["candidate"]["ra"], record["candidate"]["dec"], record["candid"]
    source = record["diaSource"]
    return source["ra"], source["dec"], source["diaSourceId"]


async def test_watchlist_added_while_running_annotates_the_next_alerts(
    services, settings, tmp_path, runs
):
    import csv
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from brokerapp.wire.codecs import ConfluentCodec, SchemaCache

    run = branch(tmp_path, "agents.watchlist", "watchlist", "BROKER_WATCHLIST_WEB_PORT")
    alerts_topic = f"{run.prefix}-alerts"
    names = {
        "BROKER_WATCHLIST_SOURCE_TOPIC": alerts_topic,
        "BROKER_WATCHLIST_CONTROL_TOPIC": f"{run.prefix}-watchlist-control",
        "BROKER_ANNOTATIONS_TOPIC": f"{run.prefix}-annotations",
        "BROKER_ANNOTATED_ALERTS_TOPIC": f"{run.prefix}-annotated-alerts",
    }
    run.env_overrides.update(names, BROKER_ALERTS_PARTITIONS="4", BROKER_WATCHLIST_TOPICS="true")
    ensure_topics(settings.kafka_bootstrap, [alerts_topic], 4, alerts_topic_config(-1, 10485760))
    runs.append(run)
    run.start()

    # Added while the worker runs, through the CLI.
    env = {**os.environ, **run.env()}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "brokerapp",
            "watchlist",
            "put",
            "wl1",
            str(WATCHLISTS / "watchlist.csv"),
            "--name",
            "test",
            "--owner",
            "me",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    run.wait_status(lambda s: s["watchlists"] == 1, what="the watchlist to be applied")

    alerts = samples("ztf") + samples("lsst")
    await fill_buffer(settings, alerts_topic, alerts)
    status = run.wait_status(lambda s: s["received"] >= len(alerts))

    # Expected hits, from astropy on the raw positions.
    with open(WATCHLISTS / "watchlist.csv") as fh:
        entries = list(csv.DictReader(fh))
    expected = {}
    for _schema, record in alerts:
        ra, dec, alert_id = alert_position(record)
        alert = SkyCoord(ra * u.deg, dec * u.deg)
        for entry in entries:
            sep = alert.separation(
                SkyCoord(float(entry["ra"]) * u.deg, float(entry["dec"]) * u.deg)
            )
            if sep.arcsec <= float(entry["radius"]):
                expected[(alert_id, entry["name"])] = sep.arcsec
    assert len(expected) == 3

    got = read_topic(settings, names["BROKER_ANNOTATIONS_TOPIC"], len(expected), idle_limit=5)
    annotations = [json.loads(m.value()) for m in got]
    assert {(a["alert_id"], a["entry"]): a["separation_arcsec"] for a in annotations} == (
        pytest.approx(expected, abs=1e-6)
    )
    assert {a["watchlist_id"] for a in annotations} == {"wl1"}
    assert status["annotations"] == 3 and status["matched_alerts"] == 3

    annotated = read_topic(settings, names["BROKER_ANNOTATED_ALERTS_TOPIC"], 3, idle_limit=5)
    async with RegistryClient(settings.registry_url) as registry:
        codec = ConfluentCodec(registry, SchemaCache())
        records = [(await codec.decode(m.value()))[1] for m in annotated]
    assert {(alert_position(r["alert"])[2], r["annotations"][0]["entry"]) for r in records} == (
        set(expected)
    )

    own = read_topic(settings, f"{run.prefix}-watchlist-wl1", 3, idle_limit=3)
    assert sorted(m.value() for m in own) == sorted(m.value() for m in annotated)

    # A bad file through REST is refused with its row and column; a delete stops matching.
    base = f"http://127.0.0.1:{run.port}/watchlist/watchlists/wl2?name=bad"
    request = urllib.request.Request(
        base, data=(WATCHLISTS / "watchlist_bad.csv").read_bytes(), method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert "row 4, column 'dec'" in refused.value.read().decode()
    delete = urllib.request.Request(
        f"http://127.0.0.1:{run.port}/watchlist/watchlists/wl1", method="DELETE"
    )
    urllib.request.urlopen(delete, timeout=10).read()
    run.wait_status(lambda s: s["watchlists"] == 0, what="the delete to be applied")
    await fill_buffer(settings, alerts_topic, alerts)
    after = run.wait_status(lambda s: s["received"] >= 2 * len(alerts))
    assert after["annotations"] == 3  # nothing new once deleted


async def test_solar_system_watchlist_follows_named_objects(services, settings, tmp_path, runs):
    import subprocess
    import sys

    run = branch(tmp_path, "agents.watchlist", "watchlist", "BROKER_WATCHLIST_WEB_PORT")
    solar_topic = f"{run.prefix}-alerts-solar"
    annotations_topic = f"{run.prefix}-annotations"
    run.env_overrides.update(
        BROKER_SS_WATCHLIST_SOURCE_TOPIC=solar_topic,
        BROKER_WATCHLIST_SOURCE_TOPIC=f"{run.prefix}-alerts-nonsolar",
        BROKER_WATCHLIST_CONTROL_TOPIC=f"{run.prefix}-watchlist-control",
        BROKER_ANNOTATIONS_TOPIC=annotations_topic,
        BROKER_ANNOTATED_ALERTS_TOPIC=f"{run.prefix}-annotated-alerts",
        BROKER_ALERTS_PARTITIONS="4",
    )
    for topic in (solar_topic, f"{run.prefix}-alerts-nonsolar"):
        ensure_topics(settings.kafka_bootstrap, [topic], 4, alerts_topic_config(-1, 10485760))
    runs.append(run)
    run.start()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "brokerapp",
            "watchlist",
            "put-objects",
            "ss1",
            str(WATCHLISTS / "solar_system.csv"),
        ],
        env={**os.environ, **run.env()},
        check=True,
        capture_output=True,
    )
    run.wait_status(lambda s: s["watchlists"] == 1, what="the watchlist to be applied")
    # From the file, as the surveys write them: ZTF ssnamenr, LSST ssObjectId and designation.
    followed = {"2830", "119257", "21164719644750924", "K12J69D"}
    alerts = samples("ztf") + samples("lsst")
    expected = set()
    for _schema, record in alerts:
        if "objectId" in record:
            names = {record["candidate"]["ssnamenr"]}
        else:
            orbit = record.get("MPCORB") or {}
            names = {str(record["diaSource"]["ssObjectId"] or ""), orbit.get("mpcDesignation")}
        for name in names & followed:
            expected.add((alert_position(record)[2], name))
    assert len(expected) == 4
    await fill_buffer(settings, solar_topic, alerts)
    run.wait_status(lambda s: s["annotations"] >= len(expected))
    got = read_topic(settings, annotations_topic, len(expected) + 1, idle_limit=3)
    assert {(json.loads(m.value())["alert_id"], json.loads(m.value())["entry"]) for m in got} == (
        expected
    )


async def test_crossmatch_annotates_the_nearest_catalogue_source(
    services, settings, tmp_path, runs
):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    run = branch(tmp_path, "agents.crossmatch", "crossmatch", "BROKER_CROSSMATCH_WEB_PORT")
    source = f"{run.prefix}-alerts-nonsolar"
    annotations_topic = f"{run.prefix}-annotations"
    alerts = samples("ztf") + samples("lsst")
    # Two sources near each of three alerts (1" and 1.8" away), the rest of the sky empty.
    rows, expected = ["id,ra,dec,mag"], {}
    for n, (_schema, record) in enumerate([alerts[0], alerts[5], alerts[30]]):
        ra, dec, alert_id = alert_position(record)
        centre = SkyCoord(ra * u.deg, dec * u.deg)
        for m, offset in enumerate((1.0, 1.8)):
            point = centre.directional_offset_by((40 * m) * u.deg, offset * u.arcsec)
            rows.append(f"{10 * n + m},{float(point.ra.deg)!r},{float(point.dec.deg)!r},{n}")
        expected[alert_id] = (10 * n, 1.0)
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("\n".join(rows) + "\n")
    chain = tmp_path / "crossmatch.toml"
    chain.write_text(
        "[[processor]]\nuse = 'catalogue_match'\n"
        f"path = '{catalogue}'\nid_column = 'id'\nradius_arcsec = 2.0\ncolumns = ['mag']\n"
        "[[processor]]\nuse = 'emit_annotations'\n"
    )
    run.env_overrides.update(
        BROKER_CROSSMATCH_CHAIN=str(chain),
        BROKER_WATCHLIST_SOURCE_TOPIC=source,
        BROKER_ANNOTATIONS_TOPIC=annotations_topic,
        BROKER_ALERTS_PARTITIONS="4",
    )
    ensure_topics(settings.kafka_bootstrap, [source], 4, alerts_topic_config(-1, 10485760))
    runs.append(run)
    run.start()
    await fill_buffer(settings, source, alerts)
    run.wait_status(lambda s: s["received"] >= len(alerts))
    got = read_topic(settings, annotations_topic, len(expected) + 1, idle_limit=3)
    found = {}
    for message in got:
        record = json.loads(message.value())
        (match,) = record["annotations"]["catalogue_match"]["matches"]
        found[record["alert_id"]] = (match["id"], match["separation_arcsec"])
    assert found.keys() == expected.keys()
    for alert_id, (source_id, separation) in expected.items():
        assert found[alert_id][0] == source_id
        assert found[alert_id][1] == pytest.approx(separation, abs=1e-6)


async def test_overview_shows_each_workers_numbers_and_metrics(services, settings, tmp_path, runs):
    import subprocess
    import sys
    import urllib.request

    from .workers import free_port

    run = branch(tmp_path, "agents.ssfilter", "ssfilter", "BROKER_SSFILTER_WEB_PORT")
    alerts_topic = f"{run.prefix}-alerts"
    run.env_overrides.update(
        BROKER_SOLAR_TOPIC=f"{run.prefix}-solar",
        BROKER_NONSOLAR_TOPIC=f"{run.prefix}-nonsolar",
        BROKER_ALERTS_PARTITIONS="4",
    )
    alerts = samples("ztf")
    await fill_buffer(settings, alerts_topic, alerts)
    runs.append(run)
    run.start()
    own = run.wait_status(lambda s: sum(s["sent"].values()) >= len(alerts))
    port = free_port()
    env = {**os.environ, **run.env(), "BROKER_GATEWAY_WEB_PORT": str(free_port())}
    overview = subprocess.Popen(
        [sys.executable, "-m", "brokerapp", "overview", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json") as r:
                    rows = {row["worker"]: row for row in json.load(r)}
                break
            except OSError:
                assert time.monotonic() < deadline, "overview did not answer"
                time.sleep(0.3)
        assert rows["ssfilter"]["up"] is True
        assert rows["ssfilter"]["received"] == own["received"] == len(alerts)
        # Each alert to its split stream, and its cutouts once to the cutouts topic.
        assert rows["ssfilter"]["sent"] == 2 * len(alerts)
        assert rows["gateway"]["up"] is False  # none runs in this test
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            page = r.read().decode()
        assert f'href="http://127.0.0.1:{run.port}/ssfilter/"' in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
            metrics = r.read().decode()
        assert f'broker_received_total{{worker="ssfilter"}} {len(alerts)}' in metrics
        assert 'broker_up{worker="gateway"} 0' in metrics
    finally:
        overview.terminate()
        overview.wait(10)
