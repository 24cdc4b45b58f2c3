"""Kafka administration helpers shared by the CLI, the producer and the tests."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
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
