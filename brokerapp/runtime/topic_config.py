"""Configuration of the local ``alerts`` topic, the buffer between the gateway and the branches.

The gateway creates the topic when it mirrors into it, and a branch when it is started before
the gateway; both give it this configuration (Kafka topic-level settings, as strings).
"""

from __future__ import annotations

__all__ = ["alerts_topic_config"]


def alerts_topic_config(retention_ms: int, max_message_bytes: int) -> dict[str, str]:
    """Topic configuration of the local ``alerts`` buffer.

    The buffer keeps messages for ``retention_ms`` and deletes older segments. Its timestamps
    are the broker's append times (``LogAppendTime``): retention and replay by time then count
    from arrival in the buffer, and the gateway reads the latency it adds from its delivery
    reports. The upstream timestamp travels in the ``origin-timestamp`` header.

    Parameters
    ----------
    retention_ms : int
        ``retention.ms`` (-1 keeps everything).
    max_message_bytes : int
        Largest message the topic accepts.

    Returns
    -------
    dict of str to str
        Kafka topic configuration.
    """
    return {
        "retention.ms": str(retention_ms),
        "cleanup.policy": "delete",
        "message.timestamp.type": "LogAppendTime",
        "max.message.bytes": str(max_message_bytes),
    }
