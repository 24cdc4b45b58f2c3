"""The whole chain under offered load, the way an operator judges a broker (issue 7, item 1).

Usage: ``python -m bench.bench_e2e [--rates 1000,10000] [--seconds 10] [--drain 120]
[--small-above 2000] [--no-profile]``

Needs the services with the databases (``make services``). For each offered rate, a fresh
chain on its own topics, consumer groups, MariaDB database and Cassandra keyspace:

    upstream daily topics (ZTF Avro containers, LSST Confluent framing)
      -> gateway -> alerts -> ssfilter -> alerts-solar / alerts-nonsolar
      -> watchlist (zone lookup, no watchlist loaded) and crossmatch (100k-source catalogue
         plus a source near each sample) -> annotations
      -> candidates -> objects -> MariaDB and Cassandra sinks

every stage a ``faust -A agents.<x> worker`` process, and beside them, in the same run, the
solar-system split hand-written with confluent-kafka and fastavro and a bare consume loop
(:mod:`bench.baselines`). Alerts are the real samples looped with fresh alert IDs (ZTF and
LSST alternating), published upstream at the offered rate for ``--seconds``; above
``--small-above`` alerts/s the cutouts are removed (the per-message cost without the
bytes: a full-size 10 kHz stream is about 1 GB/s, beyond one disk and two cores).

Printed and written to ``bench/results/`` (``e2e.md``, ``e2e-<rate>-latency.png``,
``e2e-<rate>-lag.png``), nothing asserted:

- per stage: throughput (messages per second while it was busy), consumer lag over time
  (committed offsets, every second), mean CPU and peak RSS of its process;
- end-to-end latency from the upstream append time (the ``origin-timestamp`` header the
  gateway adds and every branch keeps) to each output topic's append time, p50/p99/max,
  read back from the topics; for the sinks, to the row confirmed stored (their status);
- where the run falls behind: the branch (not the gateway) with the largest lag 3 s after
  the offered load stops, profiled with py-spy for 10 s while it drains (top functions by
  own time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import quote

import psutil
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics, unread_records
from brokerapp.adapters.registry import registry_client
from brokerapp.adapters.sql import cql_name, sql_name
from brokerapp.model.profiles import profile_for
from brokerapp.model.settings import load_settings
from brokerapp.runtime.topic_config import alerts_topic_config
from brokerapp.tools.produce import Encoder, load_files
from brokerapp.tools.services import MARIADB_ACCOUNT_HOST, Services
from tests.integration.workers import REPO, WorkerRun

DATA = REPO / "tests" / "data"
RESULTS = REPO / "bench" / "results"
DATE = "20261124"
WARMUP = 40
"""Alerts sent (slowly) before the measured load, and left out of every number."""
WORKERS = (
    ("agents.gateway", "gateway", "BROKER_GATEWAY_WEB_PORT"),
    ("agents.ssfilter", "ssfilter", "BROKER_SSFILTER_WEB_PORT"),
    ("agents.watchlist", "watchlist", "BROKER_WATCHLIST_WEB_PORT"),
    ("agents.crossmatch", "crossmatch", "BROKER_CROSSMATCH_WEB_PORT"),
    ("agents.candidates", "candidates", "BROKER_CANDIDATES_WEB_PORT"),
    ("agents.objects", "objects", "BROKER_OBJECTS_WEB_PORT"),
    ("agents.mariadb_sink", "mariadb-sink", "BROKER_MARIADB_SINK_WEB_PORT"),
    ("agents.cassandra_sink", "cassandra-sink", "BROKER_CASSANDRA_SINK_WEB_PORT"),
)


# ----------------------------------------------------------------------------- the input


def _encode_slice(args: tuple) -> list[bytes]:
    """Encode alerts ``start..stop`` (in a pool process): samples with fresh IDs."""
    start, stop, small, lsst_id = args
    sources = _sources()
    values = []
    for n in range(start, stop):
        source = sources[n % len(sources)]
        record = profile_for(source.record).with_alert_id(source.record, 10**17 + n)
        if small:
            for cutout in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
                record[cutout] = None
        if "candidate" in record:
            values.append(Encoder("inline").encode(record, source.schema))
        else:
            encoder = Encoder("confluent", {source.schema.fingerprint: lsst_id})
            values.append(encoder.encode(record, source.schema))
    return values


_SOURCES: list = []


def _sources() -> list:
    """ZTF and LSST samples, alternating."""
    if not _SOURCES:
        ztf, lsst = load_files(str(DATA / "ztf")), load_files(str(DATA / "lsst"))
        for n in range(max(len(ztf), len(lsst))):
            _SOURCES.extend(s[n] for s in (ztf, lsst) if n < len(s))
    return _SOURCES


def encode_alerts(count: int, small: bool, lsst_id: int) -> list[bytes]:
    """``count`` distinct upstream message values, encoded on every core."""
    step = 2000
    jobs = [(s, min(s + step, count), small, lsst_id) for s in range(0, count, step)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        return [v for chunk in pool.map(_encode_slice, jobs) for v in chunk]


def is_ztf(value: bytes) -> bool:
    return value[:4] == b"Obj\x01"


# ----------------------------------------------------------------------------- the chain


class Chain:
    """Every worker of one run, on names of its own."""

    def __init__(self, settings, workdir: Path, tag: str):
        self.settings = settings
        self.workdir = workdir
        self.prefix = f"e2e{tag}{uuid.uuid4().hex[:6]}"
        p = self.prefix
        self.topics = {
            "alerts": f"{p}-alerts",
            "solar": f"{p}-solar",
            "nonsolar": f"{p}-nonsolar",
            "annotations": f"{p}-annotations",
            "annotated": f"{p}-annotated",
            "candidates": f"{p}-candidates",
            "ss_candidates": f"{p}-ss-candidates",
            "cou": f"{p}-cou",
            "objects": f"{p}-objects",
            "control": f"{p}-control",
            "base_solar": f"{p}-base-solar",
            "base_nonsolar": f"{p}-base-nonsolar",
        }
        self.upstream = {"ztf": f"ztf_{DATE}_programid1_{p}", "lsst": f"lsst-alerts-{p}-{DATE}"}
        self.database = f"{p}_db"
        self.env = {
            "BROKER_SOLAR_TOPIC": self.topics["solar"],
            "BROKER_NONSOLAR_TOPIC": self.topics["nonsolar"],
            "BROKER_WATCHLIST_SOURCE_TOPIC": self.topics["nonsolar"],
            "BROKER_SS_WATCHLIST_SOURCE_TOPIC": self.topics["solar"],
            "BROKER_WATCHLIST_CONTROL_TOPIC": self.topics["control"],
            "BROKER_ANNOTATIONS_TOPIC": self.topics["annotations"],
            "BROKER_ANNOTATED_ALERTS_TOPIC": self.topics["annotated"],
            "BROKER_CANDIDATES_TOPIC": self.topics["candidates"],
            "BROKER_SS_CANDIDATES_TOPIC": self.topics["ss_candidates"],
            "BROKER_CANDIDATE_OBJECT_UPDATES_TOPIC": self.topics["cou"],
            "BROKER_OBJECTS_TOPIC": self.topics["objects"],
            "BROKER_MARIADB_DATABASE": self.database,
            "BROKER_CASSANDRA_KEYSPACE": p,
            "BROKER_CROSSMATCH_CHAIN": str(workdir / "crossmatch.toml"),
        }
        self.runs: dict[str, WorkerRun] = {}
        for module, path, port_setting in WORKERS:
            run = WorkerRun(workdir / path, module=module, path=path, port_setting=port_setting)
            run.prefix = p
            run.workdir.mkdir(parents=True)
            run.env_overrides.update(self.env)
            self.runs[path] = run
        self.baselines: dict[str, subprocess.Popen] = {}
        self.groups = {
            "gateway": (f"brokerapp-{p}-gateway", [*self.upstream.values()], "upstream"),
            "ssfilter": (f"{p}-ssfilter", [self.topics["alerts"]], "local"),
            "watchlist": (
                f"{p}-watchlist",
                [self.topics["nonsolar"], self.topics["solar"]],
                "local",
            ),
            "crossmatch": (f"{p}-crossmatch", [self.topics["nonsolar"]], "local"),
            "candidates": (
                f"{p}-candidates",
                [self.topics["nonsolar"], self.topics["solar"]],
                "local",
            ),
            "objects": (f"{p}-objects", [self.topics["candidates"]], "local"),
            "mariadb-sink": (f"{p}-mariadb-sink", self.sink_topics(), "local"),
            "cassandra-sink": (f"{p}-cassandra-sink", self.sink_topics(), "local"),
            "baseline split": (f"{p}-base-split", [self.topics["alerts"]], "local"),
        }

    def sink_topics(self) -> list[str]:
        t = self.topics
        return [t["candidates"], t["ss_candidates"], t["annotations"], t["objects"]]

    def prepare(self, services: Services) -> None:
        """Catalogue, database and keyspace (migrated), topics."""
        rng = random.Random(3)
        rows = ["id,ra,dec"]
        for n in range(100_000):
            ra, dec = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))
            rows.append(f"{n},{ra!r},{dec!r}")
        for n, source in enumerate(_sources()):
            ra, dec = profile_for(source.record).ra_dec(source.record)
            rows.append(f"{10**6 + n},{ra!r},{dec + 0.5 / 3600!r}")
        (self.workdir / "catalogue.csv").write_text("\n".join(rows) + "\n")
        (self.workdir / "crossmatch.toml").write_text(
            "[[processor]]\nuse = 'catalogue_match'\n"
            f"path = '{self.workdir / 'catalogue.csv'}'\nid_column = 'id'\n"
            "radius_arcsec = 2.0\nk = 1\n[[processor]]\nuse = 'emit_annotations'\n"
        )
        import pymysql

        root = pymysql.connect(unix_socket=str(services.mariadb_socket), user="root")
        with root.cursor() as cur:
            cur.execute(f"CREATE DATABASE {sql_name(self.database)}")
            cur.execute(
                f"GRANT ALL PRIVILEGES ON {sql_name(self.database)}.* TO %s@%s",
                (self.settings.mariadb_user, MARIADB_ACCOUNT_HOST),
            )
        root.close()
        env = {**os.environ, **self.env}
        subprocess.run(
            [sys.executable, "-m", "brokerapp", "db", "migrate"], env=env, cwd=REPO, check=True
        )
        local = [t for k, t in self.topics.items() if k not in ("objects", "control")]
        ensure_topics(self.settings.kafka_bootstrap, local, 4, alerts_topic_config(-1, 10485760))
        ensure_topics(
            self.settings.upstream_feed_bootstrap,
            list(self.upstream.values()),
            4,
            {"message.timestamp.type": "LogAppendTime"},
        )

    def start(self) -> None:
        """Start every worker at once, wait until each runs, then start the baselines."""
        self.launch()
        self.wait_ready()
        self.start_baselines()

    def launch(self) -> None:
        """Start every worker process at once, without waiting for any."""
        for run in self.runs.values():
            run.runs += 1
            log = open(run.workdir / f"{run.path}-1.log", "wb")  # noqa: SIM115
            run.process = subprocess.Popen(
                [sys.executable, "-m", "faust", "-A", run.module, "worker", "-l", "warn"],
                cwd=REPO,
                env=run.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()

    def wait_ready(self, timeout: float = 180.0) -> dict[str, float]:
        """Wait until every launched worker runs.

        Returns
        -------
        dict of str to float
            Per worker, the ``time.monotonic()`` at which it was first seen running (its
            status polled every 0.25 s, all workers at once).
        """
        ready: dict[str, float] = {}
        errors: list[BaseException] = []

        def wait(name: str, run: WorkerRun) -> None:
            try:
                run.wait_status(run.ready, timeout=timeout, what=f"{run.module} to run")
                ready[name] = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - re-raised below, in the caller
                errors.append(exc)

        threads = [
            threading.Thread(target=wait, args=item, daemon=True) for item in self.runs.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return ready

    def start_baselines(self) -> None:
        """The hand-written split and the bare consume loop, beside the chain."""
        bootstrap = self.settings.kafka_bootstrap
        t = self.topics
        self.baselines["baseline split"] = self._baseline(
            "split",
            bootstrap,
            self.settings.registry_url,
            t["alerts"],
            t["base_solar"],
            t["base_nonsolar"],
            self.groups["baseline split"][0],
        )
        self.baselines["bare consume"] = self._baseline(
            "consume", bootstrap, t["alerts"], f"{self.prefix}-base-consume"
        )
        time.sleep(8)  # the baselines join their groups (offset reset: latest)

    def _baseline(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.baselines", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=open(self.workdir / f"baseline-{args[0]}.log", "wb"),  # noqa: SIM115
        )

    def pids(self) -> dict[str, int]:
        out = {name: run.process.pid for name, run in self.runs.items() if run.process}
        out.update({name: p.pid for name, p in self.baselines.items()})
        return out

    def stop_baselines(self) -> dict[str, dict]:
        out = {}
        for name, process in self.baselines.items():
            process.send_signal(signal.SIGTERM)
            stdout, _ = process.communicate(timeout=60)
            lines = stdout.decode().strip().splitlines()
            out[name] = json.loads(lines[-1]) if lines else {}
        return out

    def stop(self) -> None:
        for run in self.runs.values():
            run.stop()
        for process in self.baselines.values():
            if process.poll() is None:
                process.kill()

    def cleanup(self, services: Services) -> None:
        import pymysql
        from cassandra.cluster import Cluster

        from brokerapp.adapters.stores.cassandra import cassandra_cluster_options

        local = [
            name
            for name in AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
            .list_topics(timeout=30)
            .topics
            if name.startswith(self.prefix)
        ]
        delete_topics(self.settings.kafka_bootstrap, local)
        delete_topics(self.settings.upstream_feed_bootstrap, list(self.upstream.values()))
        root = pymysql.connect(unix_socket=str(services.mariadb_socket), user="root")
        with root.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {sql_name(self.database)}")
        root.close()
        cluster = Cluster(**cassandra_cluster_options(self.settings))
        try:
            cluster.connect().execute(
                f"DROP KEYSPACE IF EXISTS {cql_name(self.prefix)}", timeout=120
            )
        finally:
            cluster.shutdown()
        self.delete_groups()
        self.delete_subjects()

    def delete_subjects(self) -> None:
        """Delete the run's schema subjects in both registries (soft, then permanently)."""
        import httpx

        for url in (self.settings.registry_url, self.settings.upstream_registry_url):
            with httpx.Client(base_url=url.rstrip("/") + "/", timeout=30) as client:
                response = client.get("subjects")
                response.raise_for_status()
                for subject in response.json():
                    if subject.startswith(self.prefix):
                        path = f"subjects/{quote(subject, safe='')}"
                        client.delete(path).raise_for_status()
                        client.delete(path, params={"permanent": "true"}).raise_for_status()

    def delete_groups(self, timeout: float = 120.0) -> None:
        """Delete the run's consumer groups on both clusters.

        A stopped worker's group stays non-empty until the broker expires its member (the
        session timeout); such groups are retried until ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        for bootstrap in (self.settings.kafka_bootstrap, self.settings.upstream_feed_bootstrap):
            admin = AdminClient({"bootstrap.servers": bootstrap})
            listed = admin.list_consumer_groups(request_timeout=30).result()
            groups = [g.group_id for g in listed.valid if g.group_id.startswith(self.prefix)]
            while groups:
                left = []
                for group, future in admin.delete_consumer_groups(groups).items():
                    try:
                        future.result()
                    except KafkaException as exc:
                        if exc.args[0].code() != KafkaError.NON_EMPTY_GROUP:
                            raise
                        left.append(group)
                if left and time.monotonic() > deadline:
                    raise RuntimeError(f"consumer groups still in use: {left}")
                if left:
                    time.sleep(2)
                groups = left


def register_lsst_schema(chain: Chain) -> int:
    """Register the LSST samples' schema upstream under the chain's topic; return its ID."""
    schema = next(s for s in _sources() if "diaSource" in s.record).schema

    async def register() -> int:
        async with registry_client(chain.settings, "upstream") as registry:
            return await registry.register(f"{chain.upstream['lsst']}-value", schema.raw)

    return asyncio.run(register())


# ------------------------------------------------------------------------- measurement


class Sampler(threading.Thread):
    """Every second: consumer lag per group, CPU and RSS per process, worker counters."""

    def __init__(self, chain: Chain):
        super().__init__(daemon=True)
        self.chain = chain
        self.stop_event = threading.Event()
        self.rows: list[dict] = []
        self.missed: Counter[str] = Counter()
        self.bootstraps = {
            "local": chain.settings.kafka_bootstrap,
            "upstream": chain.settings.upstream_feed_bootstrap,
        }
        self.admins = {
            name: AdminClient({"bootstrap.servers": bootstrap})
            for name, bootstrap in self.bootstraps.items()
        }
        self.processes = {name: psutil.Process(pid) for name, pid in chain.pids().items()}
        services = Services(chain.settings)
        for name in ("kafka-upstream-1", "kafka-local-1", "registry-local", "mariadb", "cassandra"):
            pid = services.pid(name)
            if pid is not None:
                self.processes[f"[{name}]"] = psutil.Process(pid)
        psutil.cpu_percent(None)
        for process in self.processes.values():
            process.cpu_percent(None)

    def lag(self, group: str, topics: list[str], cluster: str) -> int | None:
        admin = self.admins[cluster]
        try:
            metadata = admin.list_topics(timeout=5).topics
            tps = [
                TopicPartition(t, p)
                for t in topics
                if t in metadata
                for p in metadata[t].partitions
            ]
            ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=5)
            request = [ConsumerGroupTopicPartitions(group, tps)]
            (future,) = admin.list_consumer_group_offsets(request, request_timeout=5).values()
            committed = {
                (tp.topic, tp.partition): tp.offset for tp in future.result().topic_partitions
            }
        except KafkaException as exc:
            # A sample missed is a gap in the plot; counted, and reported with the results.
            self.missed[f"{group}: {exc.args[0]}"] += 1
            return None
        gaps = {}
        for tp, future in ends.items():
            done = committed.get((tp.topic, tp.partition), -1)
            gaps[(tp.topic, tp.partition)] = (max(done, 0), future.result().offset)
        # Transaction markers take offsets no reader is given: count the records themselves.
        return sum(unread_records(self.bootstraps[cluster], gaps).values())

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop_event.is_set():
            row: dict = {
                "t": time.monotonic() - started,
                "lag": {},
                "cpu": {},
                "rss": {},
                "received": {},
            }
            for name, (group, topics, cluster) in self.chain.groups.items():
                row["lag"][name] = self.lag(group, topics, cluster)
            row["cpu"]["[machine, % of all cores]"] = psutil.cpu_percent(None)
            for name, process in self.processes.items():
                try:
                    row["cpu"][name] = process.cpu_percent(None)
                    row["rss"][name] = process.memory_info().rss
                except psutil.Error:
                    pass
            for name, run in self.chain.runs.items():
                try:
                    status = run.status()
                except OSError:
                    continue
                row["received"][name] = status.get("mirrored", status.get("received"))
                if name.endswith("-sink"):
                    row.setdefault("sinks", {})[name] = status
            self.rows.append(row)
            self.stop_event.wait(1.0)


def wait_drained(sampler: Sampler, timeout: float) -> bool:
    """Wait until every consumer group has committed everything (or ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    seen = len(sampler.rows)
    while time.monotonic() < deadline:
        rows = sampler.rows
        if len(rows) > seen + 1 and all(v == 0 for v in rows[-1]["lag"].values()):
            return True
        time.sleep(1)
    return False


def publish(chain: Chain, values: list[bytes], rate: float) -> tuple[float, float]:
    """Offer ``values`` upstream at ``rate`` per second; return (start, seconds taken)."""
    producer = Producer(
        {
            "bootstrap.servers": chain.settings.upstream_feed_bootstrap,
            "message.max.bytes": chain.settings.max_message_bytes,
            "linger.ms": 5,
            "queue.buffering.max.kbytes": 1048576,
        }
    )
    started = time.monotonic()
    for n, value in enumerate(values):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        topic = chain.upstream["ztf" if is_ztf(value) else "lsst"]
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(300)
    return started, time.monotonic() - started


def latencies(
    settings, topic: str, since_ms: float = 0.0, limit_seconds: float = 120.0
) -> list[float]:
    """Append time minus origin-timestamp of the messages of a local topic (ms).

    Only messages whose upstream append time is ``since_ms`` or later count.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52428800,
            "max.partition.fetch.bytes": settings.max_message_bytes,
        }
    )
    consumer.subscribe([topic])
    out: list[float] = []
    idle, deadline = 0, time.monotonic() + limit_seconds
    while idle < 5 and time.monotonic() < deadline:
        messages = consumer.consume(1000, 1.0)
        if not messages:
            idle += 1
            continue
        idle = 0
        for msg in messages:
            if msg.error():
                continue
            for name, value in msg.headers() or ():
                if name == "origin-timestamp":
                    if float(value) >= since_ms:
                        out.append(msg.timestamp()[1] - float(value))
                    break
    consumer.close()
    return out


def summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)],
        "max_ms": ordered[-1],
    }


def find_py_spy() -> str | None:
    """Return the py-spy executable: next to this Python (its virtualenv) first, then PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def profile(pid: int, seconds: int, out: Path) -> list[tuple[str, float]]:
    """py-spy for ``seconds``: the functions with the most own samples (share of all)."""
    py_spy = find_py_spy()
    if py_spy is None:
        return [("py-spy not installed (pip install py-spy)", 0.0)]
    done = subprocess.run(
        [
            py_spy,
            "record",
            "-p",
            str(pid),
            "-d",
            str(seconds),
            "-r",
            "50",
            "-f",
            "raw",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return [(f"py-spy failed (exit {done.returncode}): {why[0]}", 0.0)]
    own: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines() if out.exists() else ():
        stack, _, count = line.rpartition(" ")
        leaf = stack.split(";")[-1]
        own[leaf] += int(count)
        total += int(count)
    return [(name, n / total) for name, n in own.most_common(10)] if total else []


# ------------------------------------------------------------------------------ one run


def run_once(
    settings,
    services: Services,
    rate: int,
    seconds: float,
    drain: float,
    small: bool,
    do_profile: bool,
    workdir: Path,
) -> dict:
    count = int(rate * seconds)
    chain = Chain(settings, workdir, str(rate))
    print(
        f"== {rate} alerts/s for {seconds:.0f} s ({count} alerts, "
        f"{'without' if small else 'with'} cutouts); prefix {chain.prefix}",
        flush=True,
    )
    lsst_id = register_lsst_schema(chain)
    values = encode_alerts(count + WARMUP, small, lsst_id)
    size = sum(len(v) for v in values) / len(values)
    print(f"   encoded: {size / 1024:.1f} kB per alert on average", flush=True)
    result: dict = {
        "rate": rate,
        "seconds": seconds,
        "count": count,
        "small": small,
        "bytes_per_alert": size,
    }
    try:
        chain.prepare(services)
        chain.start()
        sampler = Sampler(chain)
        sampler.start()
        # Warm-up: a few alerts through every stage (assignments done, connections open,
        # schemas cached) before the measured load; they are left out of every number.
        publish(chain, values[:WARMUP], 20.0)
        wait_drained(sampler, 180.0)
        load_start = sampler.rows[-1]["t"]
        result["load_start"] = load_start
        start_ms = time.time() * 1000.0
        started, took = publish(chain, values[WARMUP:], rate)
        offered_end = sampler.rows[-1]["t"] if sampler.rows else 0.0
        result["offered_rate"] = count / took
        print(f"   offered {count / took:.0f} alerts/s for {took:.1f} s", flush=True)
        # The branch furthest behind when the load stops (the gateway's lag is the load
        # itself, still upstream; the baselines are not ours).
        time.sleep(3)
        lags = sampler.rows[-1]["lag"] if sampler.rows else {}
        behind = {n: v for n, v in lags.items() if v and n in chain.runs and n != "gateway"}
        slowest = max(behind, key=behind.get) if behind else None
        if do_profile and slowest and slowest in chain.runs:
            pid = chain.runs[slowest].process.pid
            print(f"   profiling {slowest} (lag {behind[slowest]}) for 10 s", flush=True)
            result["profile"] = {"stage": slowest, "top": profile(pid, 10, workdir / "profile.txt")}
        wait_drained(sampler, drain)
        sampler.stop_event.set()
        sampler.join()
        result["drained"] = all(v == 0 for v in sampler.rows[-1]["lag"].values())
        baselines = chain.stop_baselines()
        result["timeline"] = sampler.rows
        if sampler.missed:
            print(f"   lag samples missed: {dict(sampler.missed)}", flush=True)
        result["offered_end"] = offered_end
        result["stages"] = stage_numbers(sampler.rows, load_start)
        print("   reading the outputs back for latencies", flush=True)
        topics = chain.topics

        def measured(*names: str) -> list[float]:
            return [v for n in names for v in latencies(settings, topics[n], start_ms)]

        consumed = baselines.get("bare consume", {})
        result["latency"] = {
            "alerts (gateway)": measured("alerts"),
            "solar/nonsolar (ssfilter)": measured("solar", "nonsolar"),
            "annotations (crossmatch)": measured("annotations"),
            "candidates (candidates)": measured("candidates"),
            "objects (objects)": measured("objects"),
            "baseline split": measured("base_solar", "base_nonsolar"),
            "bare consume": [
                latency
                for latency, origin in zip(
                    consumed.get("latencies_ms", []), consumed.get("origins_ms", []), strict=True
                )
                if origin >= start_ms
            ],
        }
        last_sinks = next((r["sinks"] for r in reversed(sampler.rows) if r.get("sinks")), {})
        result["sink_latency"] = {
            name: {t: v["upstream_to_stored"] for t, v in status["tables"].items()}
            for name, status in last_sinks.items()
        }
        result["baselines"] = {k: v.get("handled") for k, v in baselines.items()}
    finally:
        chain.stop()
        try:
            chain.cleanup(services)
        except Exception as exc:  # noqa: BLE001 - report, keep the numbers
            print(f"   cleanup failed: {exc}", flush=True)
    return result


def stage_numbers(rows: list[dict], load_start: float) -> dict[str, dict]:
    """Throughput while busy, mean CPU and peak RSS of each process, from ``load_start``."""
    out: dict[str, dict] = {}
    rows = [r for r in rows if r["t"] >= load_start]
    names = {n for r in rows for n in r["cpu"]}
    for name in sorted(names):
        series = [
            (r["t"], r["received"][name]) for r in rows if r["received"].get(name) is not None
        ]
        rate = received = None
        if series:
            base = series[0][1]
            final = series[-1][1]
            received = final - base
            first = next((t for t, v in series if v > base), None)
            done = next((t for t, v in series if v == final), None)
            if first is not None and done is not None and received:
                rate = received / (done - first + 1.0)
        cpu = [r["cpu"][name] for r in rows if name in r["cpu"]]
        rss = [r["rss"][name] for r in rows if name in r["rss"]]
        lags = [r["lag"][name] for r in rows if r["lag"].get(name) is not None]
        out[name] = {
            "received": received,
            "rate": rate,
            "cpu_mean": statistics.mean(cpu) if cpu else None,
            "cpu_max": max(cpu) if cpu else None,
            "rss_mb": max(rss) / 2**20 if rss else None,
            "lag_max": max(lags) if lags else None,
        }
    return out


# ------------------------------------------------------------------------------ reports


def plots(result: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rate = result["rate"]
    files = []
    fig, ax = plt.subplots(figsize=(9, 5))
    for name, values in result["latency"].items():
        if values:
            ax.hist(
                [max(v, 0.1) for v in values],
                bins=[10 ** (i / 20) for i in range(-20, 121)],
                histtype="step",
                label=name,
            )
    ax.set_xscale("log")
    ax.set_xlabel("upstream append to output append [ms]")
    ax.set_ylabel("alerts")
    ax.set_title(f"End-to-end latency, {rate} alerts/s offered")
    ax.legend(fontsize=8)
    path = RESULTS / f"e2e-{rate}-latency.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    files.append(path.name)

    fig, ax = plt.subplots(figsize=(9, 5))
    timeline = result["timeline"]
    for name in timeline[0]["lag"]:
        points = [(r["t"], r["lag"][name]) for r in timeline if r["lag"].get(name) is not None]
        if points:
            ax.plot(*zip(*points, strict=True), label=name)
    ax.axvline(result["offered_end"], color="grey", linestyle=":", label="load stops")
    ax.set_xlabel("seconds")
    ax.set_ylabel("consumer lag [messages]")
    ax.set_title(f"Consumer lag, {rate} alerts/s offered")
    ax.legend(fontsize=8)
    path = RESULTS / f"e2e-{rate}-lag.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    files.append(path.name)
    return files


def fmt(value, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def markdown(results: list[dict], command: str) -> str:
    lines = [
        "# End-to-end benchmark",
        "",
        f"`{command}` on {os.cpu_count()} cores, every service and worker on this one machine.",
        "",
    ]
    for result in results:
        lines += [
            f"## {result['rate']} alerts/s offered for {result['seconds']:.0f} s "
            f"({'without' if result['small'] else 'with'} cutouts, "
            f"{result['bytes_per_alert'] / 1024:.1f} kB per alert)",
            "",
            f"Achieved offered rate {result.get('offered_rate', 0):.0f} alerts/s; "
            + ("every stage drained." if result.get("drained") else "NOT drained in time."),
            "",
            "| stage | messages in | msgs/s busy | max lag | CPU mean % | CPU max % | RSS MB |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, s in result.get("stages", {}).items():
            lines.append(
                f"| {name} | {fmt(s['received'])} | {fmt(s['rate'])} | {fmt(s['lag_max'])} "
                f"| {fmt(s['cpu_mean'])} | {fmt(s['cpu_max'])} | {fmt(s['rss_mb'])} |"
            )
        lines += [
            "",
            "| output (latency from upstream append) | count | p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|",
        ]
        for name, values in result.get("latency", {}).items():
            s = summary(values)
            lines.append(
                f"| {name} | {s['count']} | {fmt(s['p50_ms'])} | {fmt(s['p99_ms'])} "
                f"| {fmt(s['max_ms'])} |"
            )
        for sink, tables in result.get("sink_latency", {}).items():
            for table, s in tables.items():
                lines.append(
                    f"| {sink} {table} (stored, last minute) | {s['count']} | {fmt(s['p50_ms'])} "
                    f"| {fmt(s['p99_ms'])} | {fmt(s['max_ms'])} |"
                )
        if "profile" in result:
            lines += [
                "",
                f"Slowest stage when the load stopped: **{result['profile']['stage']}**; "
                "py-spy, 10 s while it drained, functions by own time:",
                "",
            ]
            for name, share in result["profile"]["top"]:
                lines.append(f"- {share:5.1%} `{name}`")
        lines += [
            "",
            f"![latency](e2e-{result['rate']}-latency.png) ![lag](e2e-{result['rate']}-lag.png)",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,10000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=120.0)
    parser.add_argument("--small-above", type=int, default=2000)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    services = Services(settings)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        for rate in (int(r) for r in args.rates.split(",")):
            workdir = Path(tmp) / str(rate)
            workdir.mkdir()
            result = run_once(
                settings,
                services,
                rate,
                args.seconds,
                args.drain,
                rate > args.small_above,
                not args.no_profile,
                workdir,
            )
            plots(result)
            results.append(result)
    command = "python -m bench.bench_e2e " + " ".join(sys.argv[1:])
    text = markdown(results, command.strip())
    (RESULTS / "e2e.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
