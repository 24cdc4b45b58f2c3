"""Read and write the gateway's schema ID table from outside the gateway worker.

The gateway records each upstream-to-local schema pair by sending it to its compacted input
topic ``<app_prefix>-gateway-schema-ids`` (:func:`schema_ids_topic`); its ``record_schema_ids``
agent stores what arrives there in the ``schema_ids`` Faust table. That topic therefore holds
the whole table (the latest value per key): keys are UTF-8 strings (``confluent:<ID>`` or
``inline:<fingerprint>``), values JSON objects (``{"local": <ID>, "schema": <text>}``), as
Faust writes them for a ``str`` key with its ``raw`` key serializer and ``json`` values.

:func:`read_id_table` reads the topic from its start to its end (a missing topic is an empty
table); :func:`write_id_table` appends pairs, which a running gateway's agent stores in its
table at once and a stopped one on its next start (its group then starts from the earliest
offset).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from brokerapp.adapters.kafka_admin import ADMIN_TIMEOUT, ensure_topics

__all__ = ["LEARNED_TOPIC", "IdTableError", "read_id_table", "schema_ids_topic", "write_id_table"]

LEARNED_TOPIC = "gateway-schema-ids"
"""Suffix of the gateway agent's input topic (``<app_prefix>-gateway-schema-ids``)."""


class IdTableError(RuntimeError):
    """The ID table topic could not be read to its end, or a write was not acknowledged."""


def schema_ids_topic(app_prefix: str) -> str:
    """Return the name of a site's ID table topic for its ``app_prefix`` setting."""
    return f"{app_prefix}-{LEARNED_TOPIC}"


def read_id_table(bootstrap: str, topic: str, timeout: float = ADMIN_TIMEOUT) -> dict[str, Any]:
    """Return the table the topic holds: the latest JSON value of each key.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers of the site's local cluster.
    topic : str
        The ID table topic (:func:`schema_ids_topic`).
    timeout : float, optional
        Seconds to reach the end of every partition.

    Returns
    -------
    dict
        Key -> value; a key whose latest record is a tombstone is left out. Empty if the
        topic does not exist.

    Raises
    ------
    IdTableError
        If the end was not reached within ``timeout``.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return {}
        partitions = sorted(metadata.partitions)
        ends = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            if high > low:
                ends[partition] = high
        table: dict[str, Any] = {}
        if not ends:
            return table
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise IdTableError(f"{topic}: end not reached within {timeout:.0f} s")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    ends.pop(msg.partition(), None)
                    continue
                raise KafkaException(error)
            key = (msg.key() or b"").decode()
            value = msg.value()
            if value is None:
                table.pop(key, None)
            else:
                table[key] = json.loads(value)
            offset = msg.offset()
            if offset is not None and offset + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
        return table
    finally:
        consumer.close()


def write_id_table(
    bootstrap: str, topic: str, pairs: Mapping[str, Mapping[str, Any]], timeout: float = 60.0
) -> None:
    """Append key/value pairs to an ID table topic, waiting until every one is acknowledged.

    The topic is created (one partition, compacted, as the gateway declares it) if it does
    not exist yet.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers of the site's local cluster.
    topic : str
        The ID table topic.
    pairs : mapping
        Key -> JSON-ready value.
    timeout : float, optional
        Seconds to wait for the acknowledgements.

    Raises
    ------
    IdTableError
        If a write is refused or not acknowledged in time.
    """
    ensure_topics(bootstrap, [topic], 1, {"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failures: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    for key, value in pairs.items():
        producer.produce(
            topic, key=key.encode(), value=json.dumps(value).encode(), on_delivery=delivered
        )
        producer.poll(0)
    left = producer.flush(timeout)
    if left or failures:
        raise IdTableError(
            f"{topic}: {left} write(s) not acknowledged, refused: {failures or 'none'}"
        )
