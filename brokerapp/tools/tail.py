"""Watch alerts arrive: consume topics, decode each message once and summarise it in one line.

The framing of each message is detected (:func:`brokerapp.wire.codecs.detect_mode`): Confluent
wire format is decoded with schemas fetched by ID from the registry (cached), Avro containers
with their own header schema. Undecodable messages are counted and reported with the reason,
never fatal. Used by the demo and by tests that check what reached a topic.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from brokerapp.adapters.registry import RegistryAccess, RegistryClient, open_registry
from brokerapp.model.profiles import AlertView, view
from brokerapp.wire.codecs import ConfluentCodec, DecodeError, InlineCodec, SchemaCache, detect_mode


@dataclass
class TailReport:
    """What a tail run saw."""

    alerts: int = 0
    bytes: int = 0
    errors: Counter = field(default_factory=Counter)
    surveys: Counter = field(default_factory=Counter)
    topics: Counter = field(default_factory=Counter)

    def line(self) -> str:
        """Return the summary line."""
        surveys = ", ".join(f"{n} {s}" for s, n in sorted(self.surveys.items()))
        errors = sum(self.errors.values())
        return (
            f"received {self.alerts} alerts ({surveys or 'none'}), {self.bytes} bytes, "
            f"from {len(self.topics)} topic(s); {errors} undecodable"
        )


def alert_line(topic: str, alert: AlertView) -> str:
    """Return the one-line summary of an alert printed by the demo."""

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    return (
        f"{topic:<28} {alert.survey:<4} alert {alert.alert_id:<20} object "
        f"{alert.object_id!s:<20} ra {num(alert.ra, '10.6f')} dec {num(alert.dec, '+10.6f')} "
        f"mag {num(alert.magnitude, '6.3f')}"
    )


class AlertDecoder:
    """Decode a message of any framing once, with shared schema caches.

    Parameters
    ----------
    registry : RegistryClient
        Where Confluent-framed schema IDs are resolved.
    """

    def __init__(self, registry: RegistryClient):
        cache = SchemaCache()
        self.confluent = ConfluentCodec(registry, cache)
        self.inline = InlineCodec(cache)

    async def decode(self, value: bytes) -> dict:
        """Return the alert record of one message; raise ``DecodeError`` if there is none."""
        if detect_mode(value) == "inline":
            return self.inline.decode_one(value)
        _schema_id, record = await self.confluent.decode(value)
        return record


async def tail(
    bootstrap: str,
    registry_url: str | RegistryAccess,
    topics: list[str] | None = None,
    pattern: str | None = None,
    count: int | None = None,
    idle_seconds: float = 10.0,
    on_alert: Callable[[str, AlertView], None] | None = None,
    max_fetch_bytes: int = 10 * 1024 * 1024,
) -> TailReport:
    """Consume from the earliest offset until ``count`` alerts or ``idle_seconds`` of silence.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers.
    registry_url : str or RegistryAccess
        Confluent-compatible registry base URL.
    topics : list of str, optional
        Topics to read.
    pattern : str, optional
        Regular expression of topics to read instead (new matching topics are picked up).
    count : int, optional
        Stop after this many alerts.
    idle_seconds : float
        Stop after this long with no message.
    on_alert : callable, optional
        Called with ``(topic, AlertView)`` for each decoded alert.
    max_fetch_bytes : int
        Largest fetch per partition (alerts reach 190 kB).

    Returns
    -------
    TailReport
        Counts of alerts, bytes and errors.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"brokerapp-tail-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=max_fetch_bytes,
        fetch_max_bytes=max_fetch_bytes * 5,
        metadata_max_age_ms=5000,
    )
    if pattern:
        consumer.subscribe(pattern=re.compile(pattern).pattern)
    else:
        consumer.subscribe(topics=topics or [])
    report = TailReport()
    async with open_registry(registry_url) as registry:
        decoder = AlertDecoder(registry)
        await consumer.start()
        try:
            loop = asyncio.get_running_loop()
            last = loop.time()
            while count is None or report.alerts < count:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                if not batches:
                    if loop.time() - last > idle_seconds:
                        break
                    continue
                last = loop.time()
                for tp, messages in batches.items():
                    for message in messages:
                        report.bytes += len(message.value)
                        report.topics[tp.topic] += 1
                        try:
                            record = await decoder.decode(message.value)
                        except DecodeError as exc:
                            report.errors[exc.reason] += 1
                            continue
                        alert = view(record)
                        report.alerts += 1
                        report.surveys[alert.survey] += 1
                        if on_alert:
                            on_alert(tp.topic, alert)
        finally:
            await consumer.stop()
    return report
