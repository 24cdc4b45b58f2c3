"""Exactly once between local branches, after ``kill -9``, against real Kafka and the registry.

ssfilter (alerts -> alerts-solar / alerts-nonsolar, the original bytes) and candidates (both
split streams -> candidates / ss-candidates, new JSON records) run as workers, as a user runs
them. Each input message carries a ``seq`` header of its own that every branch keeps; both
workers are killed with SIGKILL while they are busy, restarted, and left to finish. Read with
``isolation_level=read_committed``, every output topic then holds each ``seq`` exactly once:
nothing lost, nothing duplicated. The expected routing comes from the raw fields (plain
fastavro), never from the code under test.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer

from brokerapp.adapters.kafka_admin import ensure_topics
from brokerapp.runtime.topic_config import alerts_topic_config

from .test_branches import branch, fill_buffer, lsst_solar, samples, ztf_solar
from .test_branches import runs as runs  # the fixture

COPIES = 40
"""Each of the 68 sample alerts is written this many times (2,720 messages)."""


def read_committed(settings, topic: str) -> list:
    """Every committed message of ``topic`` (until 5 idle polls after the end)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": False,
            "max.partition.fetch.bytes": settings.max_message_bytes,
        }
    )
    consumer.subscribe([topic])
    out, idle = [], 0
    try:
        while idle < 5:
            msg = consumer.poll(1.0)
            if msg is None:
                idle += 1
                continue
            assert not msg.error(), msg.error()
            idle = 0
            out.append(msg)
    finally:
        consumer.close()
    return out


def seqs(messages) -> Counter:
    return Counter(dict(m.headers())["seq"].decode() for m in messages)


def kill_while_busy(run, total: int) -> dict:
    """SIGKILL the worker once it has read part, but not all, of its input."""
    status = run.wait_status(
        lambda s: 0 < s["received"] < total, timeout=120, what=f"{run.path} to be busy"
    )
    run.kill()
    return status


@pytest.mark.parametrize("transactions", ["true"])
async def test_no_output_is_lost_or_duplicated_after_kill_9(
    services, settings, tmp_path, runs, transactions
):
    ssfilter = branch(
        tmp_path,
        "agents.ssfilter",
        "ssfilter",
        "BROKER_SSFILTER_WEB_PORT",
        BROKER_BRANCH_TRANSACTIONS=transactions,
        BROKER_BRANCH_BATCH="100",
    )
    prefix = ssfilter.prefix
    topics = {
        "BROKER_ALERTS_TOPIC": f"{prefix}-alerts",
        "BROKER_SOLAR_TOPIC": f"{prefix}-solar",
        "BROKER_NONSOLAR_TOPIC": f"{prefix}-nonsolar",
        "BROKER_CANDIDATES_TOPIC": f"{prefix}-candidates",
        "BROKER_SS_CANDIDATES_TOPIC": f"{prefix}-ss-candidates",
    }
    ssfilter.env_overrides.update(topics)
    candidates = branch(
        tmp_path,
        "agents.candidates",
        "candidates",
        "BROKER_CANDIDATES_WEB_PORT",
        BROKER_BRANCH_TRANSACTIONS=transactions,
        BROKER_BRANCH_BATCH="100",
        **topics,
    )
    candidates.prefix = prefix

    alerts = samples("ztf") + samples("lsst")
    solar = [ztf_solar(r) if "objectId" in r else lsst_solar(r) for _s, r in alerts]
    # One registration per schema (fill_buffer), then the copies, each with its own seq.
    framed = await fill_buffer(settings, f"{prefix}-schemas", alerts)
    source = topics["BROKER_ALERTS_TOPIC"]
    ensure_topics(
        settings.kafka_bootstrap, [source], 4, alerts_topic_config(-1, settings.max_message_bytes)
    )
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 5})
    expected_solar, expected_nonsolar = set(), set()
    for copy in range(COPIES):
        for i, (key, value) in enumerate(framed):
            seq = f"{copy}-{i}"
            (expected_solar if solar[i] else expected_nonsolar).add(seq)
            producer.produce(source, value, key=key, headers=[("seq", seq.encode())])
            producer.poll(0)
    assert producer.flush(60) == 0
    total = COPIES * len(framed)

    runs.extend([ssfilter, candidates])
    killed = {}
    for run in (ssfilter, candidates):  # candidates reads what ssfilter has committed
        run.start()
        killed[run.path] = kill_while_busy(run, total)["received"]
        run.start()
    for run, partitions in ((ssfilter, 4), (candidates, 8)):
        # Caught up: every input partition assigned, known and read to its end.
        run.wait_status(
            lambda s, n=partitions: (
                len(s["lag_by_partition"]) == n
                and all(lag == 0 for lag in s["lag_by_partition"].values())
            ),
            timeout=180,
            what=f"{run.path} to catch up",
        )

    got = {name: seqs(read_committed(settings, topic)) for name, topic in topics.items()}
    for name, want in (
        ("BROKER_SOLAR_TOPIC", expected_solar),
        ("BROKER_NONSOLAR_TOPIC", expected_nonsolar),
        ("BROKER_SS_CANDIDATES_TOPIC", expected_solar),
        ("BROKER_CANDIDATES_TOPIC", expected_nonsolar),
    ):
        counts = got[name]
        assert set(counts) == want, (name, "lost", len(want - set(counts)), killed)
        duplicated = {seq: n for seq, n in counts.items() if n > 1}
        assert duplicated == {}, (name, "duplicated", len(duplicated), killed)
