"""The gateway's mirror: upstream daily topics into the local ``alerts`` buffer.

The gateway worker (``faust -A agents.gateway worker``) runs one :class:`Mirror`. Its input
is on another Kafka cluster (the upstream one), which a Faust stream cannot read -- a Faust
app consumes from one cluster, and its tables must live on the local one -- so the mirror
owns an aiokafka consumer of the upstream cluster (group ``gateway_group``, pattern
subscription) and an aiokafka producer of the local one, inside the gateway's Faust worker
(which provides the table, the web view and the lifecycle).

Per fetched batch (at most ``gateway_batch`` messages):

1. Each upstream message is translated by :class:`SchemaResolver` and the pure functions of
   :mod:`brokerapp.domain.remap`: a Confluent-framed message gets its local schema ID written into
   its header; an inline-schema message (an Avro container, ZTF) becomes one Confluent-framed
   message per record. The key is the alert's object ID (:mod:`brokerapp.wire.avrokey` reads it
   from the body without decoding the rest), so one object's alerts stay on one partition in
   upstream order.
2. Every output is sent with ``acks=all`` from an idempotent producer; the batch's upstream
   offsets are committed only once every send of the batch is acknowledged.

Delivery guarantee: at least once. A crash (even ``kill -9``) between the local writes and
the commit re-mirrors that batch on restart, so a crash duplicates at most ``gateway_batch``
messages; nothing is lost. Kafka transactions cannot make this exactly once, because the
upstream offsets live on the upstream cluster, outside any local transaction.

Failures:

* Registry unreachable (local or upstream), HTTP 5xx, or an upstream schema ID the upstream
  registry does not know: the message's partition is sought back to it and paused, and retried
  after a backoff that doubles each time (``gateway_retry_backoff`` up to
  ``gateway_retry_backoff_max``). Other partitions go on. After ``gateway_retry_attempts``
  retries the message goes to the dead-letter topic.
* An undecodable message (bad framing, malformed container, truncated body), or a schema the
  local registry refuses: the dead-letter topic at once, with the reason in its headers.

Dead-letter messages keep the upstream key, value and headers and add
:func:`brokerapp.wire.headers.deadletter_headers`; their offsets are committed like mirrored ones.

Upstream security: the consumer connects as :mod:`brokerapp.adapters.kafka_security` says
(Rubin: SASL_SSL, SCRAM-SHA-512, group IDs that start with the user name). A group without
``upstream_group_prefix`` stops the worker before it connects; a wrong password, a CA that
does not sign the upstream's certificate, or an ACL that refuses the group or a topic stop it
at once with the cause (:class:`UpstreamAccessError`), never a silent retry loop.

Schema pairs at start: before it subscribes, the mirror reads the ID table's topic
(``<app_prefix>-gateway-schema-ids``, :mod:`brokerapp.adapters.idtable`) besides the table,
so pairs written there by another process (``brokerapp registry import``) are known for the
first message, before the gateway's agent has stored them in the table.

Restarts and new daily topics: the upstream consumer is a static group member
(``group.instance.id``), so a stop (even ``kill -9``) leaves its member entry on the broker for
the session timeout, and a worker restarted within that time takes the entry over without a
rebalance and gets the *previous* assignment back -- even if daily topics matching the pattern
appeared while it was down (the classic protocol does not compare the subscription on that
path, KAFKA-12759). aiokafka then also counts itself a follower, so only the next new matching
topic would trigger a rebalance. The mirror therefore checks the first assignment after a start
against every partition of the subscribed topics and, if it misses some, asks the coordinator
for one rejoin; the broker, seeing the group leader rejoin, rebalances, and the new assignment
covers every matching topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from mode import Service

from brokerapp.adapters.idtable import read_id_table, schema_ids_topic
from brokerapp.adapters.kafka_admin import ensure_topics
from brokerapp.adapters.kafka_security import (
    KafkaSecurity,
    aiokafka_options,
    check_group,
    upstream_security,
)
from brokerapp.adapters.registry import RegistryClient, RegistryError, registry_client
from brokerapp.domain.remap import (
    SchemaIdMap,
    combined_pattern,
    reframe_container,
    rewrite_schema_id,
    upstream_schema_id,
)
from brokerapp.model.settings import Settings
from brokerapp.runtime.backoff import backoff_delay
from brokerapp.runtime.latency import LatencyWindow
from brokerapp.runtime.topic_config import alerts_topic_config
from brokerapp.wire.avrokey import KeyReaders
from brokerapp.wire.codecs import (
    DecodeError,
    InlineCodec,
    ParsedSchema,
    SchemaCache,
    frame,
    parse_schema,
)
from brokerapp.wire.headers import deadletter_headers, trace_headers

__all__ = [
    "Mirror",
    "PermanentError",
    "Resolved",
    "SchemaResolver",
    "TransientError",
    "UpstreamAccessError",
    "start_upstream_consumer",
]

logger = logging.getLogger(__name__)

#: Seconds the mirror waits in one fetch before checking whether it should stop.
FETCH_TIMEOUT_MS = 500
#: Seconds a graceful stop waits for the batch in hand to be written and committed.
STOP_GRACE = 30.0
#: Seconds before a batch whose local writes failed is fetched again.
WRITE_RETRY_DELAY = 2.0
#: Compatibility level the gateway gives the local subject: it holds ZTF and LSST schemas.
SUBJECT_COMPATIBILITY = "NONE"


class TransientError(Exception):
    """A failure that may pass (registry outage, schema not yet known): retry, then dead-letter."""


class PermanentError(Exception):
    """A failure that retrying cannot fix (the local registry refuses the schema)."""


@dataclass(frozen=True)
class Resolved:
    """What the mirror needs to write messages of one upstream schema.

    Attributes
    ----------
    local_id : int
        ID of the schema in the local registry.
    key_of : callable
        Object-ID key (bytes) of a bare Avro body of that schema.
    """

    local_id: int
    key_of: Callable[[bytes], bytes]


def _table_key(kind: str, ident: int | str) -> str:
    return f"{kind}:{ident}"


class SchemaResolver:
    """Upstream schema (by upstream ID, or as a container's header) to local schema ID.

    Known pairs are kept in memory and handed to ``learn``, which records them in the
    gateway's Faust table; a restarted worker reads them back from ``store`` (that table), so
    a known schema needs no registry call after a restart. Entries are
    ``"confluent:<upstream ID>" -> {"local": id, "schema": text}`` and
    ``"inline:<fingerprint>" -> {"local": id}``.

    Parameters
    ----------
    upstream : RegistryClient
        The upstream registry (read only).
    local : RegistryClient
        The local registry.
    subject : str
        Local subject the schemas are registered under (``<alerts topic>-value``).
    store : mapping
        Pairs recorded by earlier runs.
    learn : callable
        ``await learn(key, value)`` records a new pair.
    """

    def __init__(
        self,
        upstream: RegistryClient,
        local: RegistryClient,
        subject: str,
        store: Mapping[str, dict],
        learn: Callable[[str, dict], Awaitable[Any]],
    ):
        self.upstream = upstream
        self.local = local
        self.subject = subject
        self.store = store
        self.learn = learn
        self.ids = SchemaIdMap()
        self.cache = SchemaCache()
        self.keys = KeyReaders()
        self.inline_codec = InlineCodec(self.cache)
        self.calls: Counter[str] = Counter()
        self._confluent: dict[int, Resolved] = {}
        self._inline: dict[str, Resolved] = {}
        self._inline_ids: dict[str, int] = {}
        self._compatibility_set = False
        self._preloaded: dict[str, dict] = {}

    def preload(self, pairs: Mapping[str, dict]) -> None:
        """Take pairs read straight from the ID table's topic, behind the table's own.

        Pairs another process appended to the topic (``brokerapp registry import``) reach the
        table only once the gateway's agent has read them, which may be after the first
        message; read here before the mirror starts, they are known from the start.
        """
        self._preloaded.update(pairs)

    def _recorded(self, key: str) -> dict | None:
        return self.store.get(key) or self._preloaded.get(key)

    def load(self) -> int:
        """Read every pair back from the store (and the preloaded pairs); return how many."""
        loaded = 0
        for key in {*self.store.keys(), *self._preloaded}:
            kind, _, ident = key.partition(":")
            if kind == "confluent":
                loaded += self._stored_confluent(int(ident)) is not None
            elif kind == "inline":
                loaded += self._stored_inline(ident) is not None
        return loaded

    def _stored_confluent(self, upstream_id: int) -> Resolved | None:
        value = self._recorded(_table_key("confluent", upstream_id))
        if value is None:
            return None
        schema = parse_schema(value["schema"])
        resolved = Resolved(int(value["local"]), self._key_reader(schema, upstream_id))
        self._confluent[upstream_id] = resolved
        self.ids.put(upstream_id, resolved.local_id)
        return resolved

    def _stored_inline(self, fingerprint: str) -> int | None:
        value = self._recorded(_table_key("inline", fingerprint))
        if value is None:
            return None
        self._inline_ids[fingerprint] = int(value["local"])
        return self._inline_ids[fingerprint]

    async def _call(self, what: str, call: Any) -> Any:
        self.calls[what] += 1
        try:
            return await call
        except httpx.TransportError as exc:
            raise TransientError(f"{what}: registry unreachable: {exc!r}") from exc
        except RegistryError as exc:
            if exc.status >= 500:
                raise TransientError(f"{what}: {exc}") from exc
            raise PermanentError(f"{what}: {exc}") from exc

    async def _register(self, schema: ParsedSchema) -> int:
        local_id = await self._call("local-register", self.local.register(self.subject, schema.raw))
        if not self._compatibility_set:
            # Best effort: a registry that refuses leaves its default, which may reject the
            # other survey's schema later (then a PermanentError names the cause).
            try:
                await self.local.set_compatibility(self.subject, SUBJECT_COMPATIBILITY)
                self._compatibility_set = True
            except (RegistryError, httpx.TransportError) as exc:
                logger.warning("could not set %s compatibility: %s", self.subject, exc)
        return int(local_id)

    async def confluent(self, upstream_id: int) -> Resolved:
        """Resolve an upstream schema ID.

        Raises
        ------
        TransientError
            Registry unreachable or failing, or the ID unknown upstream.
        PermanentError
            The local registry refuses the schema.
        DecodeError
            The upstream schema text is not a valid Avro schema, or lacks the key fields.
        """
        resolved = self._confluent.get(upstream_id) or self._stored_confluent(upstream_id)
        if resolved is not None:
            return resolved
        try:
            text = await self._call("upstream-fetch", self.upstream.get_schema(upstream_id))
        except KeyError as exc:
            raise TransientError(
                f"schema ID {upstream_id} unknown to the upstream registry"
            ) from exc
        schema = parse_schema(text)
        key_of = self._key_reader(schema, upstream_id)
        local_id = await self._register(schema)
        resolved = Resolved(local_id, key_of)
        self._confluent[upstream_id] = resolved
        self.ids.put(upstream_id, local_id)
        await self.learn(_table_key("confluent", upstream_id), {"local": local_id, "schema": text})
        return resolved

    async def inline(self, schema: ParsedSchema) -> Resolved:
        """Resolve a container's writer schema.

        Raises
        ------
        TransientError
            Local registry unreachable or failing.
        PermanentError
            The local registry refuses the schema.
        DecodeError
            The schema lacks the key fields.
        """
        resolved = self._inline.get(schema.fingerprint)
        if resolved is not None:
            return resolved
        key_of = self._key_reader(schema, None)
        local_id = self._inline_ids.get(schema.fingerprint) or self._stored_inline(
            schema.fingerprint
        )
        if local_id is None:
            local_id = await self._register(schema)
            self._inline_ids[schema.fingerprint] = local_id
            await self.learn(_table_key("inline", schema.fingerprint), {"local": local_id})
        resolved = Resolved(local_id, key_of)
        self._inline[schema.fingerprint] = resolved
        return resolved

    def _key_reader(self, schema: ParsedSchema, schema_id: int | None) -> Callable[[bytes], bytes]:
        try:
            return self.keys.for_schema(schema)
        except (ValueError, DecodeError) as exc:
            raise DecodeError(
                "confluent" if schema_id is not None else "inline",
                f"no object ID in schema {schema.name}: {exc}",
                schema_id,
            ) from exc

    def id_map(self) -> dict[str, int]:
        """Return upstream schema (``confluent:<id>`` or ``inline:<fingerprint>``) -> local ID."""
        pairs = {_table_key("confluent", u): r.local_id for u, r in self._confluent.items()}
        pairs.update({_table_key("inline", f): i for f, i in self._inline_ids.items()})
        return pairs


@dataclass
class _Out:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class _Listener(ConsumerRebalanceListener):
    def __init__(self, mirror: Mirror):
        self.mirror = mirror

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.mirror.flush_commits()
        for tp in revoked:
            self.mirror.forget(tp)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.mirror.read_committed(assigned)
        logger.info("gateway assigned %s", sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))
        self.mirror.check_first_assignment()


def unassigned_partitions(consumer: AIOKafkaConsumer) -> set[TopicPartition]:
    """Return the partitions of the consumer's subscribed topics it has not been assigned.

    Parameters
    ----------
    consumer : AIOKafkaConsumer
        A subscribed consumer; its subscription (the topics its pattern matches in its
        metadata) and its metadata's partitions are used.

    Returns
    -------
    set of TopicPartition
        Empty when this consumer owns every partition of every subscribed topic (always so
        when it is the group's only member and its assignment is current).
    """
    wanted = {
        TopicPartition(topic, partition)
        for topic in consumer.subscription()
        for partition in consumer.partitions_for_topic(topic) or ()
    }
    return wanted - consumer.assignment()


class UpstreamAccessError(RuntimeError):
    """The upstream refuses the broker: credentials, CA, ACLs or group prefix."""


class _Reasons(logging.Handler):
    """Collect aiokafka's connection errors, which say why a bootstrap failed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def start_upstream_consumer(
    consumer: AIOKafkaConsumer, settings: Settings, security: KafkaSecurity
) -> None:
    """Start the upstream consumer, or stop at once with why the upstream refused it.

    aiokafka reports a failed bootstrap as "Unable to bootstrap" and logs the cause (a
    wrong password is ``SaslAuthenticationFailed``, a CA that does not sign the broker's
    certificate ``CERTIFICATE_VERIFY_FAILED``); the error raised here carries that cause.

    Raises
    ------
    UpstreamAccessError
        If the consumer cannot connect and authenticate within
        ``upstream_connect_timeout``.
    """
    reasons = _Reasons()
    aiokafka_log = logging.getLogger("aiokafka")
    aiokafka_log.addHandler(reasons)
    try:
        await asyncio.wait_for(consumer.start(), settings.upstream_connect_timeout)
    except (KafkaConnectionError, TimeoutError) as exc:
        cause = "; ".join(dict.fromkeys(reasons.messages)) or repr(exc)
        raise UpstreamAccessError(
            f"cannot connect to the upstream at {settings.upstream_bootstrap} "
            f"({security.protocol}, {security.mechanism if security.sasl else 'no SASL'}, "
            f"user {security.username!r}, CA {security.cafile or 'system store'}): {cause}"
        ) from exc
    finally:
        aiokafka_log.removeHandler(reasons)


class Mirror(Service):
    """Mirror upstream daily topics into the local alerts topic (see the module docstring).

    Parameters
    ----------
    settings : Settings
        The one settings object.
    store : mapping
        Upstream-to-local schema pairs recorded by earlier runs (the gateway's Faust table).
    learn : callable
        ``await learn(key, value)`` records a new pair in that table.
    **kwargs
        Passed to :class:`mode.Service`.
    """

    def __init__(
        self,
        settings: Settings,
        store: Mapping[str, dict],
        learn: Callable[[str, dict], Awaitable[Any]],
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.settings = settings
        self.pattern = combined_pattern(settings.gateway_topic_patterns)
        self.upstream_registry = registry_client(settings, "upstream")
        self.local_registry = registry_client(settings)
        self.resolver = SchemaResolver(
            self.upstream_registry,
            self.local_registry,
            f"{settings.alerts_topic}-value",
            store,
            learn,
        )
        self.window = LatencyWindow(60)
        self.mirrored = 0
        self.deadlettered: Counter[str] = Counter()
        self.retries = 0
        self.write_failures = 0
        self._attempts: dict[TopicPartition, int] = {}
        self._paused: dict[TopicPartition, str] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._resume_handles: dict[TopicPartition, asyncio.TimerHandle] = {}
        self._loop_done = asyncio.Event()
        self._acked: dict[TopicPartition, int] = {}
        self._commit_task: asyncio.Future | None = None
        self._running = False
        self._first_assignment_checked = False
        self.forced_rejoins = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def on_start(self) -> None:
        """Create the local topics, read the schema map back, connect both clusters."""
        settings = self.settings
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._create_topics)
        self.resolver.preload(
            await loop.run_in_executor(
                None, read_id_table, settings.kafka_bootstrap, schema_ids_topic(settings.app_prefix)
            )
        )
        loaded = self.resolver.load()
        logger.info("gateway: %d schema pair(s) read back from the table", loaded)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            max_request_size=settings.max_message_bytes,
            linger_ms=settings.producer_linger_ms,
            max_batch_size=settings.producer_batch_bytes,
            compression_type=(
                None if settings.local_compression == "none" else settings.local_compression
            ),
            client_id=f"{settings.app_prefix}-gateway-mirror",
        )
        security = upstream_security(settings)
        check_group(security, settings.gateway_group)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.upstream_bootstrap,
            **aiokafka_options(security),
            group_id=settings.gateway_group,
            group_instance_id=f"{settings.gateway_group}-{settings.instance_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=settings.gateway_metadata_max_age_ms,
            max_partition_fetch_bytes=settings.max_message_bytes,
            fetch_max_bytes=max(settings.max_message_bytes, 50 * 1024 * 1024),
            client_id=f"{settings.app_prefix}-gateway-mirror",
        )
        await self._producer.start()
        await start_upstream_consumer(self._consumer, settings, security)
        self._first_assignment_checked = False
        self._consumer.subscribe(pattern=self.pattern, listener=_Listener(self))
        self._running = True
        logger.info("gateway mirrors %r into %s", self.pattern, settings.alerts_topic)

    def _create_topics(self) -> None:
        settings = self.settings
        config = alerts_topic_config(settings.alerts_retention_ms, settings.max_message_bytes)
        ensure_topics(
            settings.kafka_bootstrap, [settings.alerts_topic], settings.alerts_partitions, config
        )
        ensure_topics(settings.kafka_bootstrap, [settings.gateway_deadletter_topic], 1, config)

    async def on_stop(self) -> None:
        """Finish the batch in hand (written and committed), then disconnect."""
        try:
            await asyncio.wait_for(self._loop_done.wait(), STOP_GRACE)
        except TimeoutError:
            logger.warning("gateway: batch not finished within %.0f s of stop", STOP_GRACE)
        await self.flush_commits()
        for handle in self._resume_handles.values():
            handle.cancel()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self.upstream_registry.close()
        await self.local_registry.close()

    @Service.task
    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self.should_stop:
                try:
                    batch = await consumer.getmany(
                        timeout_ms=FETCH_TIMEOUT_MS, max_records=self.settings.gateway_batch
                    )
                except (GroupAuthorizationFailedError, TopicAuthorizationFailedError) as exc:
                    # Not transient: retrying would spin; stop the worker with the reason.
                    error = UpstreamAccessError(
                        f"the upstream at {self.settings.upstream_bootstrap} refuses user "
                        f"{self.settings.upstream_sasl_username!r} "
                        f"(group {self.settings.gateway_group!r}): {exc}; check the ACLs "
                        "and that the group starts with the prefix the upstream requires"
                    )
                    logger.critical("gateway: %s", error)
                    await self.crash(error)
                    return
                if batch:
                    await self.mirror_batch(batch)
                else:
                    self._schedule_commit()  # retries commits deferred by a rebalance
        finally:
            self._loop_done.set()

    def _schedule_commit(self) -> None:
        """Commit the acknowledged offsets in the background, unless a commit is under way."""
        if self._acked and (self._commit_task is None or self._commit_task.done()):
            self._commit_task = asyncio.ensure_future(self._commit_acked())

    async def _commit_acked(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        assigned = consumer.assignment()
        offsets = {tp: o for tp, o in self._acked.items() if tp in assigned}
        for tp in set(self._acked) - set(offsets):  # revoked: the new owner re-mirrors
            del self._acked[tp]
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # E.g. a rebalance under way: the offsets stay pending and go with the next commit.
            logger.info("gateway: commit of %d partition(s) deferred: %r", len(offsets), exc)
            return
        for tp, offset in offsets.items():
            self._committed[tp] = offset
            if self._acked.get(tp) == offset:
                del self._acked[tp]

    async def flush_commits(self) -> None:
        """Commit every acknowledged offset now (waits for a commit under way first)."""
        if self._commit_task is not None:
            await asyncio.wait([self._commit_task])
        if self._acked and self._consumer is not None:
            await self._commit_acked()

    async def read_committed(self, partitions: Any) -> None:
        """Learn the committed offsets of newly assigned partitions (for the lag shown)."""
        consumer = self._consumer
        assert consumer is not None
        for tp in partitions:
            offset = await consumer.committed(tp)
            if offset is not None:
                self._committed[tp] = offset

    def check_first_assignment(self) -> None:
        """Ask for one rebalance if the first assignment after a start misses subscribed partitions.

        A static member restarted within its session timeout gets its previous assignment
        back without a rebalance (see the module docstring), which misses daily topics
        created while it was down. A rejoin of a known member that the broker holds as group
        leader makes the broker rebalance. In a group of several gateways the first
        assignment always misses the other members' partitions, so this costs one extra
        JoinGroup round trip per start there (a rebalance only if this member leads).
        """
        consumer = self._consumer
        if self._first_assignment_checked or consumer is None:
            return
        self._first_assignment_checked = True
        missing = unassigned_partitions(consumer)
        if not missing:
            return
        topics = sorted({tp.topic for tp in missing})
        logger.warning(
            "gateway: first assignment misses %d partition(s) of subscribed topic(s) %s "
            "(previous assignment of a restarted static member?): asking for a rebalance",
            len(missing),
            topics,
        )
        self.forced_rejoins += 1
        # aiokafka has no public call for this; request_rejoin() is what its own
        # metadata listener calls when the group's topics change.
        consumer._coordinator.request_rejoin()

    def forget(self, tp: TopicPartition) -> None:
        """Drop the retry state of a partition this worker no longer owns."""
        self._acked.pop(tp, None)
        self._attempts.pop(tp, None)
        self._paused.pop(tp, None)
        self._committed.pop(tp, None)
        handle = self._resume_handles.pop(tp, None)
        if handle is not None:
            handle.cancel()

    def _pause(self, tp: TopicPartition, offset: int, attempt: int, reason: str) -> None:
        consumer = self._consumer
        assert consumer is not None
        settings = self.settings
        delay = backoff_delay(
            attempt, settings.gateway_retry_backoff, settings.gateway_retry_backoff_max
        )
        consumer.seek(tp, offset)
        consumer.pause(tp)
        self._paused[tp] = reason
        self.retries += 1
        logger.warning(
            "gateway: %s:%d offset %d: %s; retry %d/%d in %.1f s",
            tp.topic,
            tp.partition,
            offset,
            reason,
            attempt,
            settings.gateway_retry_attempts,
            delay,
        )
        self._resume_handles[tp] = asyncio.get_running_loop().call_later(delay, self._resume, tp)

    def _resume(self, tp: TopicPartition) -> None:
        self._resume_handles.pop(tp, None)
        self._paused.pop(tp, None)
        if self._consumer is not None and tp in self._consumer.assignment():
            self._consumer.resume(tp)

    async def _translate(self, record: Any) -> list[_Out]:
        """Return the outputs of one upstream record (raises on failure, see mirror_batch)."""
        value = record.value
        if value is None:
            raise DecodeError("unknown", "empty message (null value)")
        headers = trace_headers(
            record.headers, record.topic, record.partition, record.offset, record.timestamp
        )
        alerts = self.settings.alerts_topic
        if value[:1] == b"\x00":
            upstream_id = upstream_schema_id(value)
            resolved = await self.resolver.confluent(upstream_id)
            out = rewrite_schema_id(value, resolved.local_id)
            return [_Out(alerts, resolved.key_of(out[5:]), out, headers)]
        schema, bodies = reframe_container(value, self.resolver.inline_codec)
        resolved = await self.resolver.inline(schema)
        return [
            _Out(alerts, resolved.key_of(body), frame(resolved.local_id, body), headers)
            for body in bodies
        ]

    def _deadletter(self, record: Any, error: Exception) -> list[_Out]:
        reason = str(error)
        headers = list(record.headers or ()) + deadletter_headers(
            reason, error, record.topic, record.partition, record.offset
        )
        kind = type(error).__name__
        self.deadlettered[kind] += 1
        logger.warning(
            "gateway: %s:%d offset %d dead-lettered: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        return [
            _Out(self.settings.gateway_deadletter_topic, record.key, record.value or b"", headers)
        ]

    async def mirror_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Translate, write and commit one fetched batch.

        Parameters
        ----------
        batch : dict of TopicPartition to list of ConsumerRecord
            As returned by ``AIOKafkaConsumer.getmany``.
        """
        producer, consumer = self._producer, self._consumer
        assert producer is not None and consumer is not None
        pending: list[tuple[asyncio.Future, Any, bool]] = []
        commits: dict[TopicPartition, int] = {}
        starts: dict[TopicPartition, int] = {}
        limit = self.settings.gateway_retry_attempts
        for tp, records in batch.items():
            starts[tp] = records[0].offset
            for record in records:
                try:
                    outs = await self._translate(record)
                except TransientError as exc:
                    attempt = self._attempts.get(tp, 0) + 1
                    if attempt <= limit:
                        self._attempts[tp] = attempt
                        self._pause(tp, record.offset, attempt, str(exc))
                        break
                    outs = self._deadletter(record, exc)
                except (DecodeError, PermanentError) as exc:
                    outs = self._deadletter(record, exc)
                self._attempts.pop(tp, None)
                for out in outs:
                    future = await producer.send(
                        out.topic, out.value, key=out.key, headers=out.headers
                    )
                    pending.append((future, record, out.topic == self.settings.alerts_topic))
                commits[tp] = record.offset + 1
        try:
            results = await asyncio.gather(*(future for future, _r, _a in pending))
        except KafkaError as exc:
            self.write_failures += 1
            logger.error("gateway: local write failed (%r); batch will be fetched again", exc)
            for tp, offset in starts.items():
                if tp in consumer.assignment():
                    consumer.seek(tp, offset)
            await asyncio.sleep(WRITE_RETRY_DELAY)
            return
        # Committed in the background, so the next fetch need not wait for the commit's
        # round trip; every output up to these offsets is already acknowledged.
        self._acked.update(commits)
        self._schedule_commit()
        latencies = [
            meta.timestamp - record.timestamp
            for meta, (_f, record, is_alert) in zip(results, pending, strict=True)
            if is_alert
        ]
        self.mirrored += len(latencies)
        self.window.add(time.time(), latencies)

    def status(self) -> dict[str, Any]:
        """Return what the status page shows, JSON-ready.

        Returns
        -------
        dict
            ``running`` (the mirror is connected), ``rate`` and latency over the last minute,
            totals, ``forced_rejoins`` (rebalances asked for because the first assignment
            after the start missed subscribed partitions), dead letters by kind, registry
            calls, the schema ID map, and per upstream partition its committed offset, high
            watermark, lag and whether it is paused for a retry.
        """
        consumer = self._consumer
        partitions = []
        assignment = sorted(
            consumer.assignment() if consumer is not None else (),
            key=lambda tp: (tp.topic, tp.partition),
        )
        for tp in assignment:
            highwater = consumer.highwater(tp) if consumer is not None else None
            committed = self._committed.get(tp)
            lag = highwater - committed if highwater is not None and committed is not None else None
            partitions.append(
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "committed": committed,
                    "highwater": highwater,
                    "lag": lag,
                    "paused": self._paused.get(tp),
                    "retry": self._attempts.get(tp, 0),
                }
            )
        return {
            "running": self._running,
            "group": self.settings.gateway_group,
            "pattern": self.pattern,
            "alerts_topic": self.settings.alerts_topic,
            "deadletter_topic": self.settings.gateway_deadletter_topic,
            "last_minute": self.window.summary(time.time()),
            "mirrored": self.mirrored,
            "deadlettered": sum(self.deadlettered.values()),
            "deadlettered_by_kind": dict(self.deadlettered),
            "retries": self.retries,
            "write_failures": self.write_failures,
            "forced_rejoins": self.forced_rejoins,
            "registry_calls": dict(self.resolver.calls),
            "schema_ids": self.resolver.id_map(),
            "partitions": partitions,
        }
