"""The gateway against an upstream run as Rubin runs it: SASL_SSL, SCRAM-SHA-512, ACLs.

``services up --upstream`` serves the broker's side of the stand-in upstream on a SASL_SSL
listener with a CA the project made, SCRAM credentials and ``StandardAuthorizer`` ACLs
(read the daily alert topics, only with groups that start with ``brokerapp-``). Every
gateway test mirrors through it; these show each wrong setting stopping the gateway at once
with the cause, and the ACLs refusing what the broker's user may not do.
"""

from __future__ import annotations

import subprocess
import uuid

from confluent_kafka import Consumer, KafkaError, Producer

from brokerapp.adapters.kafka_admin import ensure_topics
from brokerapp.adapters.kafka_security import librdkafka_config, upstream_security

from .workers import WorkerRun

SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"


def gateway(tmp_path) -> WorkerRun:
    run = WorkerRun(tmp_path / "gateway")
    run.workdir.mkdir(parents=True)
    return run


def refused_start(run: WorkerRun, **env: str) -> str:
    """Start the gateway with ``env``; return its log once it has stopped by itself.

    A refusal at connection time stops the worker before its status page answers; one that
    comes with the first fetch (an ACL on the group) may come just after.
    """
    run.env_overrides.update(env)
    try:
        run.start()
    except AssertionError as exc:
        assert "exited" in str(exc), exc
    assert run.process is not None
    try:
        run.process.wait(120)
    except subprocess.TimeoutExpired:
        run.stop()
        raise AssertionError(f"the gateway kept running:\n{run.log()}") from None
    assert run.process.returncode != 0
    return run.log()


def test_a_wrong_password_stops_the_gateway_with_the_cause(services, tmp_path):
    log = refused_start(gateway(tmp_path), BROKER_UPSTREAM_SASL_PASSWORD="not-the-password")
    assert "cannot connect to the upstream at 127.0.0.1:9192" in log
    assert "SaslAuthenticationFailed" in log
    assert "not-the-password" not in log


def test_a_ca_that_did_not_sign_the_upstream_stops_the_gateway(services, tmp_path):
    log = refused_start(gateway(tmp_path), BROKER_UPSTREAM_SSL_CAFILE=SYSTEM_CAS)
    assert "cannot connect to the upstream" in log
    assert "CERTIFICATE_VERIFY_FAILED" in log


def test_a_group_without_the_prefix_is_refused_before_connecting(services, tmp_path):
    run = gateway(tmp_path)
    log = refused_start(run, BROKER_GATEWAY_GROUP=f"{run.prefix}-gateway")
    assert f"consumer group '{run.prefix}-gateway' does not start with 'brokerapp-'" in log


def test_the_upstream_acl_refuses_an_unprefixed_group(services, tmp_path):
    # The gateway's own check turned off: the upstream's ACL refuses the group itself.
    run = gateway(tmp_path)
    run.env_overrides.update(
        BROKER_GATEWAY_GROUP=f"{run.prefix}-gateway", BROKER_UPSTREAM_GROUP_PREFIX=""
    )
    ensure_topics(services.settings.upstream_feed_bootstrap, [run.lsst_topic("20260301")], 1)
    log = refused_start(run)
    assert "refuses user 'brokerapp'" in log
    assert "GroupAuthorizationFailed" in log


def broker_user_config(settings) -> dict:
    return {
        "bootstrap.servers": settings.upstream_bootstrap,
        **librdkafka_config(upstream_security(settings)),
    }


def test_the_broker_user_reads_alert_topics_only_and_writes_none(services):
    settings = services.settings
    alert_topic = f"lsst-alerts-acl{uuid.uuid4().hex[:8]}"
    other_topic = f"private-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.upstream_feed_bootstrap, [alert_topic, other_topic], 1)
    feed = Producer({"bootstrap.servers": settings.upstream_feed_bootstrap})
    for topic in (alert_topic, other_topic):
        feed.produce(topic, b"payload")
    feed.flush(30)

    def first_event(topic):
        consumer = Consumer(
            {
                **broker_user_config(settings),
                "group.id": f"brokerapp-acl-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        try:
            for _ in range(30):
                msg = consumer.poll(1.0)
                if msg is not None:
                    return msg
            return None
        finally:
            consumer.close()

    read = first_event(alert_topic)
    assert read is not None and read.error() is None and read.value() == b"payload"
    refused = first_event(other_topic)
    assert refused is not None and refused.error() is not None
    assert refused.error().code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    errors = []
    producer = Producer({**broker_user_config(settings), "message.timeout.ms": 10000})
    producer.produce(alert_topic, b"forged", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(30)
    assert errors and errors[0] is not None
    assert errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
