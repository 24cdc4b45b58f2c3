"""Kafka administration helpers shared by the CLI, the producer and the tests."""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

#: Seconds an admin request may take.
ADMIN_TIMEOUT = 30.0


def ensure_topics(
    bootstrap: str, topics: list[str], partitions: int, config: dict[str, str] | None = None
) -> list[str]:
    """Create the topics that do not exist yet.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers.
    topics : list of str
        Topic names.
    partitions : int
        Partition count of created topics (existing topics are left as they are).
    config : dict, optional
        Topic configuration of created topics (e.g. ``retention.ms``).

    Returns
    -------
    list of str
        The topics created.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=ADMIN_TIMEOUT).topics)
    missing = [t for t in topics if t not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, config=config or {}) for t in missing],
        operation_timeout=ADMIN_TIMEOUT,
    )
    for future in futures.values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return missing


def delete_topics(bootstrap: str, topics: list[str]) -> list[str]:
    """Delete those of the topics that exist and wait until they are gone.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers.
    topics : list of str
        Topic names.

    Returns
    -------
    list of str
        The topics deleted.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = [t for t in topics if t in admin.list_topics(timeout=ADMIN_TIMEOUT).topics]
    if not existing:
        return []
    for future in admin.delete_topics(existing, operation_timeout=ADMIN_TIMEOUT).values():
        future.result()
    deadline = time.monotonic() + ADMIN_TIMEOUT
    while time.monotonic() < deadline:
        if not set(existing) & set(admin.list_topics(timeout=ADMIN_TIMEOUT).topics):
            break
        time.sleep(0.2)
    return existing


#: Largest gap (offsets between a group's committed offset and the end) that
#: :func:`unread_records` reads to count the records in it; a wider gap is lag as it stands.
PROBE_MAX_GAP = 1000
#: Seconds :func:`unread_records` reads before it gives up on a partition's gap.
PROBE_TIMEOUT = 5.0


def unread_records(
    bootstrap: str, gaps: Mapping[tuple[str, int], tuple[int, int]]
) -> dict[tuple[str, int], int]:
    """Count the committed records a consumer group has not read yet, per partition.

    ``end - committed`` over-counts on a topic written in transactions: each transaction's
    commit marker (and an aborted transaction's records) takes offsets no reader is given,
    so a reader that commits its last record's offset + 1 stays one short of the end for
    good. For each small gap this reads the partition from the committed offset to the end
    with ``isolation_level=read_committed`` and counts the records it is given.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers.
    gaps : mapping of (str, int) to (int, int)
        ``(topic, partition) -> (committed, end)`` offsets.

    Returns
    -------
    dict of (str, int) to int
        Records not yet read: counted for gaps up to :data:`PROBE_MAX_GAP`, else the gap.
    """
    out = {tp: max(end - committed, 0) for tp, (committed, end) in gaps.items()}
    probe = {tp: gap for tp, gap in out.items() if 0 < gap <= PROBE_MAX_GAP}
    if not probe:
        return out
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unread-records-probe",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(t, p, gaps[(t, p)][0]) for t, p in probe])
        counted = dict.fromkeys(probe, 0)
        open_ = set(probe)
        deadline = time.monotonic() + PROBE_TIMEOUT
        while open_ and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            tp = (message.topic(), message.partition())
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    open_.discard(tp)
                continue
            if message.offset() < gaps[tp][1]:
                counted[tp] += 1
            else:
                open_.discard(tp)
        for tp in probe:
            if tp not in open_:
                out[tp] = counted[tp]
        return out
    finally:
        consumer.close()
