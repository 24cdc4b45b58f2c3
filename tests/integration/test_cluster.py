"""The three-broker option for fault tests: replicated topics survive a killed broker."""

import signal
import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from brokerapp.model.settings import load_settings
from brokerapp.tools import produce as prod
from brokerapp.tools.services import Services

# Ports of a separate cluster, so the suite's own single-broker cluster keeps running.
BASE_PORT = 9392


@pytest.fixture
def cluster(settings, services, tmp_path):
    three = load_settings(home=tmp_path, kafka_bootstrap=f"127.0.0.1:{BASE_PORT}")
    (tmp_path / "lib").symlink_to(settings.data_dir / "lib")
    svc = Services(three)
    try:
        svc.up(brokers=3, registry=False)
        yield svc, three
    finally:
        svc.down(grace=5)


def test_three_brokers_replicate_and_take_writes_with_one_killed(cluster):
    svc, three = cluster
    bootstrap = ",".join(f"127.0.0.1:{BASE_PORT + 2 * i}" for i in range(3))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("replicated", 3)])["replicated"].result()
    # A created topic reaches every broker's metadata a moment later: ask until it is there.
    for _ in range(100):
        metadata = admin.list_topics(timeout=30)
        if "replicated" in metadata.topics and metadata.topics["replicated"].partitions:
            break
        time.sleep(0.2)
    assert len(metadata.brokers) == 3
    assert all(len(p.replicas) == 3 for p in metadata.topics["replicated"].partitions.values())
    # The broker asked may still miss the new topic: ask again until one answers.
    for attempt in range(50):
        configs = admin.describe_configs([ConfigResource("topic", "replicated")])
        try:
            (config,) = [f.result() for f in configs.values()]
            break
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or attempt == 49:
                raise
            time.sleep(0.2)
    assert config["min.insync.replicas"].value == "2"

    assert svc.stop("kafka-local-3", sig=signal.SIGKILL)
    report = prod.produce(
        {"bootstrap.servers": bootstrap, "message.timeout.ms": 60000},
        iter([("replicated", b"k", b"v%d" % i) for i in range(100)]),
    )
    assert report.count == 100
