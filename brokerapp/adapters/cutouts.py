"""The cutouts topic: each alert's image cutouts kept once, in a compacted topic keyed by alert ID.

When internal streams carry lean alerts (``Settings.lean_streams``), whoever strips the
cutouts (:class:`~brokerapp.wire.lean.CutoutStripper`) writes them here once (an alert with
no stamp at all, such as a simulated one, has no record here):

* key: the alert ID as decimal UTF-8 (:func:`cutouts_key`), e.g. ``b"739260766315010006"``;
* value: a cutouts record, a bare Avro body of :data:`~brokerapp.wire.lean.CUTOUTS_SCHEMA`
  (:func:`~brokerapp.wire.lean.encode_cutouts`): survey, alert ID, the three stamps and
  their file names; no registry is involved;
* partition: Kafka's default partitioner of the key (murmur2, as aiokafka, faust and the Java
  client use; a confluent-kafka writer must set ``partitioner=murmur2_random``), which is how
  :func:`fetch_cutouts` finds the one partition to read;
* topic configuration :func:`cutouts_topic_config`: compacted (one record per alert ID,
  the latest), with the alerts' retention and message size.

:func:`fetch_cutouts` reads that partition from its start to its end offset at the time of
the call and returns the latest record of the key: a scan, fine for the command line
(``brokerapp cutouts ALERT_ID``) but not a per-alert lookup for a service, which would want
a store indexed by alert ID.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka.admin import AdminClient

from brokerapp.adapters.kafka_admin import ADMIN_TIMEOUT
from brokerapp.wire.lean import Cutouts, decode_cutouts

__all__ = ["MissingTopicError", "cutouts_key", "cutouts_topic_config", "fetch_cutouts"]

_POLL_MS = 1000
"""How long one fetch of the scan waits for records (ms)."""


class MissingTopicError(LookupError):
    """The cutouts topic does not exist on the cluster."""


def cutouts_key(alert_id: int) -> bytes:
    """Return the message key of an alert's cutouts record: its ID in decimal UTF-8.

    Parameters
    ----------
    alert_id : int
        ZTF ``candid`` or LSST ``diaSourceId``.

    Returns
    -------
    bytes
        The key.
    """
    return str(int(alert_id)).encode()


def cutouts_topic_config(retention_ms: int, max_message_bytes: int) -> dict[str, str]:
    """Return the configuration of the cutouts topic.

    Parameters
    ----------
    retention_ms : int
        How long records are kept (as the alerts buffer keeps whole alerts).
    max_message_bytes : int
        Largest record batch the topic accepts.

    Returns
    -------
    dict of str to str
        ``cleanup.policy=compact,delete`` (one record per alert ID, and none older than the
        retention), ``retention.ms`` and ``max.message.bytes``.
    """
    return {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(retention_ms),
        "max.message.bytes": str(max_message_bytes),
    }


def _partitions(bootstrap: str, topic: str) -> list[int]:
    """Partition numbers of ``topic`` (cluster metadata)."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(
        topic, timeout=ADMIN_TIMEOUT
    )
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise MissingTopicError(f"no topic {topic!r}")
    return sorted(found.partitions)


async def fetch_cutouts(
    bootstrap: str, topic: str, alert_id: int, max_fetch_bytes: int
) -> Cutouts | None:
    """Find the latest cutouts record of one alert in the cutouts topic.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers of the cluster.
    topic : str
        The cutouts topic.
    alert_id : int
        The alert's ID.
    max_fetch_bytes : int
        Largest fetch per partition (at least the largest record).

    Returns
    -------
    Cutouts or None
        The record; None when the partition of the key holds none for it (or its latest is a
        tombstone, a null value).

    Raises
    ------
    MissingTopicError
        If the topic does not exist.
    DecodeError
        If the latest record of the key is not a cutouts record.
    """
    key = cutouts_key(alert_id)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # also what seek_to_beginning races with
        max_partition_fetch_bytes=max_fetch_bytes,
        fetch_max_bytes=max_fetch_bytes,
    )
    partitions = await asyncio.to_thread(_partitions, bootstrap, topic)
    partition = DefaultPartitioner()(key, partitions, partitions)
    await consumer.start()
    try:
        where = TopicPartition(topic, partition)
        consumer.assign([where])
        end = (await consumer.end_offsets([where]))[where]
        await consumer.seek_to_beginning(where)
        latest: bytes | None = None
        while await consumer.position(where) < end:
            batches = await consumer.getmany(where, timeout_ms=_POLL_MS)
            for message in batches.get(where, ()):
                if message.key == key:
                    latest = message.value
    finally:
        await consumer.stop()
    return None if latest is None else decode_cutouts(latest)
