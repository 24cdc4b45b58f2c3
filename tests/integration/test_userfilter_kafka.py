"""A sandboxed user filter on the real local Kafka: input consumed, outputs produced, committed.

The 18 ZTF sample alerts go to a fresh input topic, as one Avro container file per message
(as ZTF publishes) or Confluent-framed with their schema in the real local registry (as the
``alerts`` buffer holds them); a runner feeds them to the Python example filter in its
sandbox. The test reads the output topics back as a user would, and the group's committed
offsets.
"""

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from brokerapp.adapters.registry import RegistryClient
from brokerapp.runtime.userfilter.runner import UserFilterRunner, UserFilterSpec
from brokerapp.runtime.userfilter.sandbox import python_plan
from brokerapp.runtime.userfilter.supervisor import SupervisorConfig
from brokerapp.tools.services import ServiceError, Services
from brokerapp.wire.codecs import InlineCodec, frame
from tests.userfilter.conftest import BRIGHT_18, EXAMPLES, HOSTILE, ZTF

LOCAL = {"kafka-local-1", "registry-local"}


@pytest.fixture(scope="module")
def local_services(settings):
    """Only what these tests use: the local Kafka and registry (not the upstream side)."""
    svc = Services(settings)
    planned = [s for s in svc.planned() if s.name in LOCAL]
    if {s.name for s in planned} != LOCAL:
        pytest.fail("no services set up: run `brokerapp services up` (make test does)")
    try:
        svc.wait_ready(planned)
    except ServiceError as exc:
        pytest.fail(f"services not answering: {exc}")
    return svc


CONFIG = SupervisorConfig(
    answer_timeout=10, start_timeout=30, max_restarts=1, restart_initial=0.05, restart_max=0.1
)


@pytest.fixture
def topics(settings, local_services, unique_topic):
    names = {kind: f"sandbox-{kind}-{unique_topic}"[:200] for kind in ("in", "pass", "summary")}
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    futures = admin.create_topics([NewTopic(n, 1, 1) for n in names.values()])
    for future in futures.values():
        future.result(30)
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "message.max.bytes": 10_000_000}
    )
    for index, path in enumerate(ZTF):
        producer.produce(names["in"], Path(path).read_bytes(), key=str(index).encode())
    assert producer.flush(30) == 0
    return names


def read_topic(settings, topic, count, timeout=30.0):
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"sandbox-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages = []
    deadline = asyncio.get_event_loop().time() + timeout
    try:
        while len(messages) < count and asyncio.get_event_loop().time() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
        extra = consumer.poll(2.0)  # nothing more than expected
        assert extra is None or extra.error() is not None
    finally:
        consumer.close()
    return messages


def committed(settings, group, topic):
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return tp.offset
    finally:
        consumer.close()


async def wait_for(predicate, timeout=60.0):
    for _ in range(int(timeout * 10)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_runner_passes_bright_alerts_and_commits(settings, topics):
    name = f"bright-{uuid.uuid4().hex[:6]}"
    spec = UserFilterSpec(
        name=name,
        plan=python_plan(EXAMPLES / "python", "bright:Bright"),
        input_topics=[topics["in"]],
        pass_topic=topics["pass"],
        params={"mag_limit": 18.0},
    )
    runner = UserFilterRunner(settings, spec, CONFIG)
    await runner.start()
    try:
        await wait_for(lambda: runner.status()["filter"]["alerts_in"] == 18)
        await wait_for(lambda: committed(settings, spec.group, topics["in"]) == 18)
        status = runner.status()
    finally:
        await runner.stop()
    assert runner.status()["state"] == "stopped"
    assert status["filter"]["passed"] == 6 and status["filter"]["dropped"] == 12
    assert status["alerts_out"] == 6 and status["filter"]["errors"] == 0
    messages = read_topic(settings, topics["pass"], 6)
    codec = InlineCodec()
    assert {codec.decode_one(m.value())["objectId"] for m in messages} == BRIGHT_18
    for message in messages:
        headers = dict(message.headers())
        assert headers["userfilter"] == name.encode()
        annotations = json.loads(headers["userfilter-annotations"])
        assert annotations["magpsf"] < 18 and annotations["mag_limit"] == 18.0


async def test_runner_emits_records_to_the_filter_stream(settings, topics):
    spec = UserFilterSpec(
        name=f"summary-{uuid.uuid4().hex[:6]}",
        plan=python_plan(EXAMPLES / "python", "bright:Bright"),
        input_topics=[topics["in"]],
        pass_topic=topics["pass"],
        streams={"summary": topics["summary"]},
        params={"mag_limit": 16.0, "summary": True},
    )
    runner = UserFilterRunner(settings, spec, CONFIG)
    await runner.start()
    try:
        await wait_for(lambda: committed(settings, spec.group, topics["in"]) == 18)
    finally:
        await runner.stop()
    values = [json.loads(m.value()) for m in read_topic(settings, topics["summary"], 2)]
    assert sorted(v["objectId"] for v in values) == ["ZTF17aaacxxf", "ZTF17aabuxmy"]
    assert read_topic(settings, topics["pass"], 0, timeout=2) == []


async def test_runner_of_a_filter_that_gives_up_commits_nothing(settings, topics):
    spec = UserFilterSpec(
        name=f"crash-{uuid.uuid4().hex[:6]}",
        plan=python_plan(HOSTILE, "crash:crash"),
        input_topics=[topics["in"]],
        pass_topic=topics["pass"],
    )
    runner = UserFilterRunner(settings, spec, CONFIG)
    await runner.start()
    try:
        await wait_for(lambda: runner.status()["state"] == "failed")
    finally:
        await runner.stop()
    status = runner.status()
    assert "gave up" in status["reason"] and "exited with status 3" in status["reason"]
    assert status["filter"]["state"] == "failed"
    assert committed(settings, spec.group, topics["in"]) < 0  # no offset committed
    assert status["alerts_out"] == 0


@pytest.fixture
async def confluent_input(settings, local_services, unique_topic):
    """The ZTF samples as the local ``alerts`` buffer holds them: Confluent-framed bare bodies."""
    topic = f"sandbox-confluent-{unique_topic}"[:200]
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    codec = InlineCodec()
    values, schema_ids = [], set()
    async with RegistryClient(settings.registry_url) as registry:
        for path in ZTF:
            schema, bodies = codec.record_bodies(Path(path).read_bytes())
            schema_id = await registry.register(f"{topic}-value", schema.raw)
            schema_ids.add(schema_id)
            values.append((schema_id, bodies[0]))
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "message.max.bytes": 10_000_000}
    )
    for schema_id, body in values:
        producer.produce(topic, frame(schema_id, body))
    assert producer.flush(30) == 0
    return topic, values, schema_ids


@pytest.mark.parametrize("mode", ["json", "avro"])
async def test_runner_reads_confluent_framed_alerts(settings, topics, confluent_input, mode):
    topic, values, schema_ids = confluent_input
    entry = ("bright:Bright", EXAMPLES / "python") if mode == "json" else ("avroinfo:info", HOSTILE)
    spec = UserFilterSpec(
        name=f"confluent-{mode}-{uuid.uuid4().hex[:6]}",
        plan=python_plan(entry[1], entry[0]),
        input_topics=[topic],
        pass_topic=topics["pass"],
    )
    runner = UserFilterRunner(settings, spec, CONFIG)
    await runner.start()
    try:
        await wait_for(lambda: committed(settings, spec.group, topic) == 18)
    finally:
        await runner.stop()
    status = runner.status()
    assert status["undecodable"] == 0 and status["filter"]["errors"] == 0
    if mode == "json":
        messages = read_topic(settings, topics["pass"], 6)
        codec = InlineCodec()
        by_body = {body: path for (_, body), path in zip(values, ZTF, strict=True)}
        ids = {
            codec.decode_one(Path(by_body[m.value()[5:]]).read_bytes())["objectId"]
            for m in messages
        }
        assert ids == BRIGHT_18
    else:
        messages = read_topic(settings, topics["pass"], 18)
        reports = [json.loads(dict(m.headers())["userfilter-annotations"]) for m in messages]
        assert [r["bytes"] for r in reports] == [len(body) for _, body in values]
        assert {r["schema_id"] for r in reports} == schema_ids
        assert [m.value() for m in messages] == [frame(i, b) for i, b in values]


async def test_a_new_runner_resumes_from_the_committed_offsets(settings, topics):
    spec = UserFilterSpec(
        name=f"resume-{uuid.uuid4().hex[:6]}",
        plan=python_plan(EXAMPLES / "python", "bright:bright18"),
        input_topics=[topics["in"]],
        pass_topic=topics["pass"],
    )
    first = UserFilterRunner(settings, spec, CONFIG)
    await first.start()
    try:
        await wait_for(lambda: committed(settings, spec.group, topics["in"]) == 18)
    finally:
        await first.stop()
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "message.max.bytes": 10_000_000}
    )
    for path in ZTF:
        producer.produce(topics["in"], Path(path).read_bytes())
    assert producer.flush(30) == 0
    second = UserFilterRunner(settings, spec, CONFIG)
    await second.start()
    try:
        await wait_for(lambda: committed(settings, spec.group, topics["in"]) == 36)
    finally:
        await second.stop()
    assert second.status()["filter"]["alerts_in"] == 18  # only the new ones
    assert len(read_topic(settings, topics["pass"], 12)) == 12
    with pytest.raises(RuntimeError):
        await second.start()


async def test_undecodable_input_is_dead_lettered_with_its_reason(settings, topics):
    deadletter = topics["summary"]  # a fresh topic of this test
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(topics["in"], b"\x00\x00\x00\x00\x07not avro at all", key=b"bad")
    producer.produce(topics["in"], b"neither framing", key=b"worse")
    assert producer.flush(30) == 0
    spec = UserFilterSpec(
        name=f"dlq-{uuid.uuid4().hex[:6]}",
        plan=python_plan(EXAMPLES / "python", "bright:Bright"),
        input_topics=[topics["in"]],
        pass_topic=topics["pass"],
        deadletter_topic=deadletter,
    )
    runner = UserFilterRunner(settings, spec, CONFIG)
    await runner.start()
    try:
        await wait_for(lambda: committed(settings, spec.group, topics["in"]) == 20)
    finally:
        await runner.stop()
    status = runner.status()
    assert status["undecodable"] == 2 and status["filter"]["alerts_in"] == 18
    assert status["filter"]["passed"] == 6
    letters = read_topic(settings, deadletter, 2)
    assert sorted(m.key() for m in letters) == [b"bad", b"worse"]
    assert all(dict(m.headers())["deadletter-reason"] for m in letters)
    assert {m.value() for m in letters} == {
        b"\x00\x00\x00\x00\x07not avro at all",
        b"neither framing",
    }
