"""`brokerapp topics`, `topics grow` and `replay` against the real local Kafka.

Every test makes its own topic (``unique_topic``) and consumer group, writes known messages
with explicit timestamps, and checks what a user would check: the listing's counts and times,
a fresh describe after a grow, and the messages a group reads after its offsets were reset.
Expected values come from what the test wrote, never from the code under test.
"""

import json
import re
import threading
import time
import uuid

import pytest
from click.testing import CliRunner
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from brokerapp.adapters import topics as tp
from brokerapp.model.settings import load_settings
from brokerapp.tools.cli import main
from brokerapp.tools.cli.topics import replay as replay_cmd
from brokerapp.tools.cli.topics import topics as topics_cmd

PARTITIONS = 3
PER_PARTITION = 4


@pytest.fixture
def bootstrap(settings, services):
    return settings.kafka_bootstrap


@pytest.fixture
def group(request):
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:40]
    return f"test-group-{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def base_ms():
    """A whole second one hour ago: well inside any retention, so nothing is deleted."""
    return (int(time.time()) - 3600) * 1000


def stamp(base_ms, partition, index):
    """Timestamp of message ``index`` of ``partition``: interleaved, 10 s per index."""
    return base_ms + (10 * index + partition) * 1000


def create_topic(bootstrap, topic, partitions=PARTITIONS, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, config=config or {})])[topic].result()
    for _ in range(100):
        described = admin.list_topics(timeout=10).topics.get(topic)
        if described is not None and len(described.partitions) == partitions:
            if all(p.leader >= 0 for p in described.partitions.values()):
                return
        time.sleep(0.1)
    raise AssertionError(f"{topic} not in metadata")


def produce_known(bootstrap, topic, base_ms, partitions=PARTITIONS, per_partition=PER_PARTITION):
    """Write known messages to explicit partitions; return them per partition in order."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    written = {p: [] for p in range(partitions)}
    for index in range(per_partition):
        for p in range(partitions):
            key = f"obj-{p}-{index % 2}".encode()
            value = f"alert-{p}-{index}".encode()
            ts = stamp(base_ms, p, index)
            producer.produce(topic, value=value, key=key, partition=p, timestamp=ts)
            written[p].append((key, value, ts))
    assert producer.flush(10) == 0
    return written


def transform(key, value):
    """The test's deterministic "processing": reversed key, upper-cased value plus its length."""
    return key[::-1], value.upper() + b"|%d" % len(value)


def process(bootstrap, group, source, count, sink=None, timeout=10.0):
    """One pass of a consumer group: read ``count`` messages, write transforms, commit, close.

    Returns the (partition, offset, key, value) read, in the order read.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap}) if sink else None
    seen = []
    try:
        consumer.subscribe([source])
        deadline = time.monotonic() + timeout
        while len(seen) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            seen.append((message.partition(), message.offset(), message.key(), message.value()))
            if producer is not None:
                key, value = transform(message.key(), message.value())
                producer.produce(sink, value=value, key=key, partition=message.partition())
        if producer is not None:
            assert producer.flush(10) == 0
        if seen:
            consumer.commit(asynchronous=False)
        # Nothing more to read: the group really is at the end of what it was asked for.
        extra = consumer.poll(0.5)
        assert extra is None or extra.error() is not None, "read more than expected"
    finally:
        consumer.close()
    assert len(seen) == count, f"read {len(seen)} of {count}"
    return seen


def read_all(bootstrap, topic, partitions=PARTITIONS):
    """Every message of a topic, per partition in offset order, as (key, value)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    out = {p: [] for p in range(partitions)}
    done = set()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + 10
        while len(done) < partitions and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                done.add(message.partition())
                continue
            out[message.partition()].append((message.key(), message.value()))
    finally:
        consumer.close()
    assert len(done) == partitions
    return out


def committed(bootstrap, group, topic, partitions=PARTITIONS):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(partitions)]
    )
    result = admin.list_consumer_group_offsets([request])[group].result()
    return {x.partition: (x.offset if x.offset >= 0 else None) for x in result.topic_partitions}


def fresh_partition_count(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_topics(TopicCollection([topic]))[topic].result()
    return len(description.partitions)


# --------------------------------------------------------------------------- topics


def test_topics_shows_partitions_retention_counts_size_and_timestamps(
    settings, bootstrap, unique_topic, base_ms
):
    topic = unique_topic
    create_topic(bootstrap, topic, config={"retention.ms": "86400000", "cleanup.policy": "delete"})
    written = produce_known(bootstrap, topic, base_ms)
    # Drop the first two messages of partition 0: its first message is then its third.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    (deleted,) = admin.delete_records([TopicPartition(topic, 0, 2)]).values()
    assert deleted.result().low_watermark == 2

    (info,) = tp.describe_topics(bootstrap, [topic])
    assert info.name == topic
    assert (info.partitions, info.replication_factor) == (3, 1)
    assert (info.retention_ms, info.cleanup_policy) == (86_400_000, "delete")
    assert (info.earliest, info.latest, info.messages) == (2, 12, 10)
    firsts = {p: written[p][2 if p == 0 else 0][2] for p in range(3)}
    assert {p.partition: p.first_timestamp_ms for p in info.partition_details} == firsts
    assert info.first_timestamp_ms == min(firsts.values()) == stamp(base_ms, 1, 0)
    assert info.last_timestamp_ms == stamp(base_ms, 2, PER_PARTITION - 1)
    # Bytes on disk: what Kafka's log files for this topic take (delete_records keeps files).
    files = list(settings.data_dir.glob(f"kafka-local/*/data/{topic}-*/*.log"))
    assert len({f.parent for f in files}) == 3, files
    assert info.size_bytes == sum(f.stat().st_size for f in files)
    assert info.size_bytes > sum(len(v) for msgs in written.values() for _, v, _ in msgs)

    runner = CliRunner()
    result = runner.invoke(topics_cmd, [topic], obj=settings)
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()
    assert header.split()[:2] == ["topic", "parts"]
    assert row.split()[:6] == [topic, "3", "1", "86400000", "(1d)", "delete"]
    assert row.split()[-5:] == [
        "2",
        "12",
        "10",
        tp.format_timestamp(stamp(base_ms, 1, 0)),
        tp.format_timestamp(stamp(base_ms, 2, PER_PARTITION - 1)),
    ]

    # Through the top-level command, as a user types it, with --json.
    result = runner.invoke(main, ["topics", "--pattern", f"^{re.escape(topic)}$", "--json"])
    assert result.exit_code == 0, result.output
    (got,) = json.loads(result.output)
    assert (got["name"], got["partitions"], got["retention"], got["messages"]) == (
        topic,
        3,
        "1d",
        10,
    )
    assert got["first_timestamp_ms"] == stamp(base_ms, 1, 0)
    assert got["size_bytes"] == info.size_bytes


def test_topics_hides_internal_topics_unless_all(settings, services):
    runner = CliRunner()
    hidden = runner.invoke(
        topics_cmd, ["--pattern", "^__consumer_offsets$", "--json"], obj=settings
    )
    assert hidden.exit_code == 0, hidden.output
    assert json.loads(hidden.output) == []
    shown = runner.invoke(
        topics_cmd, ["--pattern", "^__consumer_offsets$", "--all", "--json"], obj=settings
    )
    assert shown.exit_code == 0, shown.output
    (got,) = json.loads(shown.output)
    assert (got["name"], got["cleanup_policy"]) == ("__consumer_offsets", "compact")
    unknown = runner.invoke(topics_cmd, ["no-such-topic-" + uuid.uuid4().hex], obj=settings)
    assert unknown.exit_code == 1
    assert "no such topic" in unknown.output


# --------------------------------------------------------------------------- grow


def test_grow_raises_partitions_and_refuses_to_shrink(settings, bootstrap, unique_topic):
    topic = unique_topic
    create_topic(bootstrap, topic, partitions=2)

    assert tp.grow_topic(bootstrap, topic, 5) == tp.GrowResult(topic, 2, 5)
    assert fresh_partition_count(bootstrap, topic) == 5

    for wanted in (5, 3, 1):
        with pytest.raises(tp.TopicsError, match="can only add partitions"):
            tp.grow_topic(bootstrap, topic, wanted)
    assert fresh_partition_count(bootstrap, topic) == 5

    runner = CliRunner()
    refused = runner.invoke(topics_cmd, ["grow", topic, "--partitions", "4"], obj=settings)
    assert refused.exit_code == 1
    assert "has 5 partition(s); asked for 4" in refused.output
    assert "Nothing changed" in refused.output
    assert fresh_partition_count(bootstrap, topic) == 5

    grown = runner.invoke(topics_cmd, ["grow", topic, "--partitions", "6"], obj=settings)
    assert grown.exit_code == 0, grown.output
    assert grown.output.strip() == f"{topic}: 5 -> 6 partitions"
    assert fresh_partition_count(bootstrap, topic) == 6
    (info,) = tp.describe_topics(bootstrap, [topic])
    assert info.partitions == 6

    # A missing topic is an error, and asking does not create it (brokers auto-create topics
    # named in metadata requests by default).
    missing = topic + "-missing"
    with pytest.raises(tp.TopicsError, match="no such topic"):
        tp.grow_topic(bootstrap, missing, 3)
    with pytest.raises(tp.TopicsError, match="no such topic"):
        tp.replay(bootstrap, "any-group", missing, tp.ReplayTarget.earliest())
    time.sleep(1)
    assert (
        missing not in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    )


# --------------------------------------------------------------------------- replay


def test_replay_to_earliest_reprocesses_to_the_same_outputs(
    settings, bootstrap, unique_topic, group, base_ms
):
    source, sink = unique_topic, unique_topic + "-out"
    create_topic(bootstrap, source)
    create_topic(bootstrap, sink)
    written = produce_known(bootstrap, source, base_ms)
    total = PARTITIONS * PER_PARTITION

    first = process(bootstrap, group, source, total, sink)
    assert committed(bootstrap, group, source) == {p: PER_PARTITION for p in range(PARTITIONS)}

    # replay through the CLI with the topic taken from the settings (the alerts_topic default).
    runner = CliRunner()
    result = runner.invoke(
        replay_cmd, [group, "--to-earliest"], obj=load_settings(alerts_topic=source)
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"group {group} on {source}: earliest offset (offsets set)"
    assert [line.split("[")[0].strip() for line in lines[1:]] == [
        f"partition {p}: 4 -> 0 (-4)" for p in range(PARTITIONS)
    ]
    assert committed(bootstrap, group, source) == {p: 0 for p in range(PARTITIONS)}

    second = process(bootstrap, group, source, total, sink)
    assert sorted(second) == sorted(first)

    out = read_all(bootstrap, sink)
    for p in range(PARTITIONS):
        expected = [transform(key, value) for key, value, _ in written[p]]
        assert out[p] == expected + expected  # pass 1, then pass 2: the same, in order


def test_replay_to_datetime_lands_on_the_first_message_at_or_after(
    settings, bootstrap, unique_topic, group, base_ms
):
    topic = unique_topic
    create_topic(bootstrap, topic)
    written = produce_known(bootstrap, topic, base_ms)
    process(bootstrap, group, topic, PARTITIONS * PER_PARTITION)

    # base + 11 s: partition 0's messages are at 0, 10, 20, 30 s -> offset 2;
    # partition 1's at 1, 11, 21, 31 s -> offset 1; partition 2's at 2, 12, ... -> offset 1.
    when = tp.format_timestamp(base_ms + 11_000)  # e.g. 2026-07-01T22:15:11.000Z
    plus_two = time.strftime(
        "%Y-%m-%dT%H:%M:%S+02:00", time.gmtime((base_ms + 11_000) / 1000 + 7200)
    )
    naive = when.rstrip("Z")
    runner = CliRunner()
    for text in (when, plus_two, naive):
        dry = runner.invoke(
            replay_cmd, [group, "--topic", topic, "--to-datetime", text, "--dry-run"], obj=settings
        )
        assert dry.exit_code == 0, dry.output
        assert "dry run, nothing changed" in dry.output
        assert "partition 0: 4 -> 2 (-2)" in dry.output
        assert committed(bootstrap, group, topic) == {p: 4 for p in range(PARTITIONS)}

    result = runner.invoke(
        replay_cmd, [group, "--topic", topic, "--to-datetime", plus_two], obj=settings
    )
    assert result.exit_code == 0, result.output
    assert committed(bootstrap, group, topic) == {0: 2, 1: 1, 2: 1}

    # What the group reads next is exactly the messages stamped at or after the time.
    reread = process(bootstrap, group, topic, 8)
    expected = {
        (p, key, value)
        for p, msgs in written.items()
        for key, value, ts in msgs
        if ts >= base_ms + 11_000
    }
    assert {(p, key, value) for p, _, key, value in reread} == expected

    # A time after every message: each partition goes to its latest offset.
    after = tp.replay(
        bootstrap,
        group,
        topic,
        tp.ReplayTarget.at(tp.parse_datetime(tp.format_timestamp(base_ms + 3_600_000))),
    )
    assert [(c.old, c.new) for c in after.changes] == [(4, 4)] * PARTITIONS
    back = tp.replay(
        bootstrap, group, topic, tp.ReplayTarget.at(tp.parse_datetime(when)), dry_run=True
    )
    assert [(c.partition, c.old, c.new) for c in back.changes] == [(0, 4, 2), (1, 4, 1), (2, 4, 1)]
    assert not back.applied


def test_replay_shift_by_moves_back_and_clamps(settings, bootstrap, unique_topic, group, base_ms):
    topic = unique_topic
    create_topic(bootstrap, topic)
    produce_known(bootstrap, topic, base_ms)
    process(bootstrap, group, topic, PARTITIONS * PER_PARTITION)
    assert committed(bootstrap, group, topic) == {p: 4 for p in range(PARTITIONS)}

    runner = CliRunner()

    def shift(n, *extra):
        result = runner.invoke(
            replay_cmd, [group, "--topic", topic, f"--shift-by={n}", *extra], obj=settings
        )
        assert result.exit_code == 0, result.output
        return committed(bootstrap, group, topic), result.output

    offsets, output = shift(-3)
    assert offsets == {p: 1 for p in range(PARTITIONS)}
    assert "partition 2: 4 -> 1 (-3)  [earliest 0, latest 4]" in output
    offsets, _ = shift(-3)  # 1 - 3 is before the earliest offset: clamped to 0
    assert offsets == {p: 0 for p in range(PARTITIONS)}
    offsets, _ = shift(2)
    assert offsets == {p: 2 for p in range(PARTITIONS)}
    offsets, output = shift(100, "--dry-run")  # clamped to latest, but not written
    assert "partition 0: 2 -> 4 (+2)" in output
    assert offsets == {p: 2 for p in range(PARTITIONS)}
    offsets, _ = shift(100)
    assert offsets == {p: 4 for p in range(PARTITIONS)}

    # The group now re-reads exactly the last message of each partition after a shift of -1.
    shift(-1)
    reread = process(bootstrap, group, topic, PARTITIONS)
    assert sorted((p, offset) for p, offset, _, _ in reread) == [(p, 3) for p in range(PARTITIONS)]

    # A group that never committed counts as at the earliest offset.
    fresh = group + "-fresh"
    result = tp.replay(bootstrap, fresh, topic, tp.ReplayTarget.shift_by(-2))
    assert [(c.old, c.new) for c in result.changes] == [(None, 0)] * PARTITIONS
    assert committed(bootstrap, fresh, topic) == {p: 0 for p in range(PARTITIONS)}

    bad = runner.invoke(replay_cmd, [group, "--topic", topic, "--to-earliest", "--shift-by", "1"])
    assert bad.exit_code == 2
    assert "exactly one of" in bad.output


def test_replay_refuses_while_the_group_has_an_active_consumer(
    settings, bootstrap, unique_topic, group, base_ms
):
    topic = unique_topic
    create_topic(bootstrap, topic)
    produce_known(bootstrap, topic, base_ms)
    process(bootstrap, group, topic, PARTITIONS * PER_PARTITION)
    before = committed(bootstrap, group, topic)

    assigned, stop = threading.Event(), threading.Event()

    def member():
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        try:
            consumer.subscribe([topic], on_assign=lambda c, parts: assigned.set())
            while not stop.is_set():
                consumer.poll(0.1)
        finally:
            consumer.close()

    thread = threading.Thread(target=member, daemon=True)
    thread.start()
    try:
        assert assigned.wait(15), "the consumer never joined"
        with pytest.raises(tp.GroupActiveError, match="1 member"):
            tp.replay(bootstrap, group, topic, tp.ReplayTarget.earliest())
        runner = CliRunner()
        for extra in ([], ["--dry-run"]):
            result = runner.invoke(
                replay_cmd, [group, "--topic", topic, "--to-earliest", *extra], obj=settings
            )
            assert result.exit_code == 1
            assert f"consumer group {group} is STABLE with 1 member(s)" in result.output
            assert "stop its consumers first. Nothing changed." in result.output
        assert committed(bootstrap, group, topic) == before
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()

    # Closed: the group is empty and the same replay now goes through.
    result = tp.replay(bootstrap, group, topic, tp.ReplayTarget.earliest())
    assert result.applied
    assert committed(bootstrap, group, topic) == {p: 0 for p in range(PARTITIONS)}
