"""What every Stage 1 branch worker shares: decode once, dead letters, latency, status.

A branch agent reads the local ``alerts`` buffer (Confluent wire format, local schema IDs,
broker append times as timestamps) as raw bytes and, per message:

1. :meth:`BranchRuntime.decode` decodes it once, through the local registry (schemas cached
   by ID for the life of the worker). An undecodable message, an unknown schema ID or a
   registry that stays unreachable after ``branch_retry_attempts`` retries sends the message
   unchanged to ``<topic_prefix><branch>-deadletter`` with ``error-reason``, ``error-mode``,
   ``error-schema-id`` and ``origin-*`` headers, and the worker goes on.
2. The branch's pure domain code decides what to send.
3. :meth:`BranchRuntime.forward` sends the original bytes (never re-encoded), key and headers
   to an output topic, or :meth:`BranchRuntime.send_json` a new JSON record.

Faust commits an offset only after the producer has flushed every message sent before it
(``acks=all``), so outputs are durable before their input is committed: at least once.

Latency is measured per alert, over the last minute: ``processing`` (decode plus the branch's
own work, in the worker), ``decoding`` (the decode alone) and ``end_to_end`` (append time in
``alerts`` to append time in the output topic, from the delivery report; output topics are
created with ``LogAppendTime``).

Lag: every agent calls :meth:`BranchRuntime.track` once per event it reads (:meth:`alerts`
does it for the agents that use it), and the status gives, per assigned partition of the
agents' input topics, the consumer's high watermark minus the next offset to read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, NamedTuple

import faust
import httpx
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from brokerapp.adapters.cutouts import cutouts_key, cutouts_topic_config
from brokerapp.adapters.registry import registry_client
from brokerapp.model.alert import Alert
from brokerapp.model.profiles import UnknownSurveyError
from brokerapp.model.settings import Settings
from brokerapp.runtime.backoff import backoff_delay
from brokerapp.runtime.batch import BatchLoop, Handler, Outbox, Output, Record
from brokerapp.runtime.latency import LatencyWindow
from brokerapp.runtime.metrics import CONTENT_TYPE, metrics_text, process_sample, summarise
from brokerapp.runtime.statuspage import render
from brokerapp.runtime.topic_config import alerts_topic_config
from brokerapp.wire import records
from brokerapp.wire.codecs import (
    CONFLUENT_HEADER_SIZE,
    ConfluentCodec,
    DecodeError,
    RegistryUnavailable,
    SchemaCache,
)
from brokerapp.wire.fields import FieldDecoder
from brokerapp.wire.headers import deadletter_headers
from brokerapp.wire.lean import CutoutStrippers, encode_cutouts

__all__ = ["OUTPUT_TOPIC_CONFIG", "BranchRuntime", "add_status_pages", "output_config"]

logger = logging.getLogger(__name__)

OUTPUT_TOPIC_CONFIG = {"message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete"}
"""Configuration of topics a branch creates: append times make end-to-end latency exact."""


def output_config(settings: Settings, name: str) -> dict[str, str]:
    """Return the configuration a branch gives output topic ``name`` when it creates it.

    Append times (exact end-to-end latency) and the 7-day retention; ``objects_topic``, which
    holds the latest state of each object, is compacted instead.

    Parameters
    ----------
    settings : Settings
        The one settings object.
    name : str
        Topic name.

    Returns
    -------
    dict of str to str
        Kafka topic configuration.
    """
    if name == settings.objects_topic:
        return {"message.timestamp.type": "LogAppendTime", "cleanup.policy": "compact"}
    if name == settings.cutouts_topic:
        return cutouts_topic_config(settings.alerts_retention_ms, settings.max_message_bytes)
    return dict(OUTPUT_TOPIC_CONFIG, **{"retention.ms": str(settings.alerts_retention_ms)})


class LeanRecord(NamedTuple):
    """An input record with its cutouts taken out (``value``), and its original bytes."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Any
    original: bytes | None


class BranchRuntime:
    """Decoding, dead letters, sending and latency statistics of one branch worker.

    Parameters
    ----------
    app : faust.App
        The branch's app.
    settings : Settings
        The one settings object.
    branch : str
        Branch name (dead-letter topic ``<topic_prefix><branch>-deadletter``).
    source_topic : str, optional
        What the branch reads instead of the ``alerts`` buffer (an output of another branch,
        which that branch creates).
    """

    def __init__(
        self, app: faust.App, settings: Settings, branch: str, source_topic: str | None = None
    ):
        self.app = app
        self.settings = settings
        self.branch = branch
        self.registry = registry_client(settings)
        self.codec = ConfluentCodec(self.registry, SchemaCache())
        # Declared (created if missing) before the worker subscribes: Faust ignores a missing
        # topic it subscribes to. The buffer gets the gateway's own partitions and settings,
        # so whichever worker starts first creates it as the gateway would.
        self.source_name = source_topic or settings.alerts_topic
        self.source = self.topic_of(app, settings, self.source_name)
        # The first reader of the buffer decodes each body whole, so every undecodable alert
        # (a bit flip in a skipped string is found only by decoding it) is dead-lettered at
        # the door; the branches after it decode only the fields they read.
        self.validate = self.source_name == settings.alerts_topic
        self.lean = self.validate and settings.lean_streams
        self.strippers = CutoutStrippers()
        self.fields = FieldDecoder(self.codec)
        self.deadletter_name = f"{settings.topic_prefix}{branch}-deadletter"
        self.processing = LatencyWindow(60)
        self.decoding = LatencyWindow(60)
        self.end_to_end = LatencyWindow(60)
        self.received = 0
        self.sent: Counter[str] = Counter()
        self.deadlettered: Counter[str] = Counter()
        self._outputs: dict[str, faust.TopicT] = {}
        self._next_offsets: dict[TP, int] = {}
        self.loop: BatchLoop | None = None

    def run_batches(
        self,
        handler: Handler,
        topics: list[str] | None = None,
        name: str = "process",
        **options: Any,
    ) -> BatchLoop:
        """Run ``handler`` on batches of the branch's input in the worker (:mod:`.batch`).

        The loop is the worker's service (started and stopped with it) and is registered as
        ``app.batch_loops[name]``. The worker's own consumer then holds only Faust's leader
        topic, in the same group and with the same round-robin protocol as the loop's (no
        standby replicas: a branch on a batch loop has no table).

        Parameters
        ----------
        handler : Handler
            ``handler(records, outbox)``, e.g. built on :meth:`batch_alerts`.
        topics : list of str, optional
            Input topics (default: the branch's source topic).
        name : str
            Name of the loop (the in-memory tests run it by this name).
        **options
            ``transactional`` and ``wait_ms`` of :class:`BatchLoop`.

        Returns
        -------
        BatchLoop
            The loop.
        """

        async def handle(records: list[Record], out: Outbox) -> None:
            await handler(records, out)
            for name in {item.topic for item in out} - self._outputs.keys():
                await self.output(name)  # created before the first send to it

        names = topics or [self.source_name]
        inputs = [self.topic_of(self.app, self.settings, name) for name in names]

        async def declare_inputs() -> None:
            for topic in inputs:
                await topic.maybe_declare()

        self.loop = BatchLoop(
            self.settings,
            self.app.conf.id,
            names,
            handle,
            self.delivered,
            declare=declare_inputs,
            **options,
        )
        self.app.conf.table_standby_replicas = 0
        self.app.service(self.loop)
        loops = getattr(self.app, "batch_loops", {})
        loops[name] = self.loop
        self.app.batch_loops = loops
        return self.loop

    def output_topic(self, name: str, partitions: int | None = None) -> faust.TopicT:
        """Declare (the worker creates it) an output topic of raw bytes with append times.

        Parameters
        ----------
        name : str
            Topic name.
        partitions : int, optional
            Partition count when created (default: ``alerts_partitions``).

        Returns
        -------
        faust.TopicT
            The topic.
        """
        return self.app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions or self.settings.alerts_partitions,
            internal=True,
            config=output_config(self.settings, name),
        )

    @staticmethod
    def topic_of(app: faust.App, settings: Settings, name: str) -> faust.TopicT:
        """Declare an input topic of raw bytes, created as its writer would if missing.

        The ``alerts`` buffer gets the gateway's configuration; any other input (an output of
        another branch) the branches' output configuration.

        Parameters
        ----------
        app : faust.App
            The branch's app.
        settings : Settings
            The one settings object.
        name : str
            Topic name.

        Returns
        -------
        faust.TopicT
            To subscribe an agent to.
        """
        if name == settings.alerts_topic:
            config = alerts_topic_config(settings.alerts_retention_ms, settings.max_message_bytes)
        else:
            config = output_config(settings, name)
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.alerts_partitions,
            internal=True,
            config=config,
        )

    async def output(self, name: str) -> faust.TopicT:
        """Return output topic ``name``, creating it on the cluster on first use."""
        topic = self._outputs.get(name)
        if topic is None:
            topic = self.output_topic(name)
            await topic.maybe_declare()
            self._outputs[name] = topic
        return topic

    async def declare(self, names: list[str]) -> None:
        """Create output topics known in advance (before the first alert needs them)."""
        for name in [self.deadletter_name, *names]:
            await self.output(name)

    async def decode_alert(
        self, value: bytes | None, reads: Iterable[str] | None = None
    ) -> tuple[int, Alert]:
        """Decode one Confluent-framed alert, retrying while the registry is unavailable.

        Only the fields ``reads`` needs are decoded (:class:`brokerapp.wire.fields.FieldDecoder`;
        the rest when a processor asks). A branch reading the ``alerts`` buffer, the first to
        see an alert's body, decodes it whole, so a truncated or corrupt alert is dead-lettered
        there; branches further on read their fields only.

        Parameters
        ----------
        value : bytes or None
            The message value.
        reads : iterable of str, optional
            What the branch reads (:data:`brokerapp.model.profiles.READS`); None: everything.

        Returns
        -------
        tuple of (int, Alert)
            Schema ID and alert.

        Raises
        ------
        DecodeError
            Undecodable, or an unknown schema ID.
        UnknownSurveyError
            A schema of no known survey.
        RegistryUnavailable, httpx.TransportError
            The registry stayed unavailable after ``branch_retry_attempts`` retries.
        """
        attempts = self.settings.branch_retry_attempts
        for attempt in range(1, attempts + 2):
            try:
                started = time.perf_counter()
                decoded = await self.fields.decode(value or b"", None if self.validate else reads)
                self.decoding.add(time.time(), [(time.perf_counter() - started) * 1000.0])
                return decoded
            except (RegistryUnavailable, httpx.TransportError) as exc:
                if attempt > attempts:
                    raise
                delay = backoff_delay(
                    attempt,
                    self.settings.gateway_retry_backoff,
                    self.settings.gateway_retry_backoff_max,
                )
                logger.warning(
                    "%s: %s; retry %d/%d in %.1f s", self.branch, exc, attempt, attempts, delay
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def batch_alerts(
        self, records: list[Record], out: Outbox, reads: Iterable[str] | None = None
    ) -> AsyncIterator[tuple[Record, Alert]]:
        """Yield each record of a batch with its alert, decoded once (as :meth:`alerts` does).

        Undecodable alerts and records of no known survey go to ``out`` as dead letters. The
        time from taking a record to asking for the next is its processing time.

        Parameters
        ----------
        records : list of Record
            One batch.
        out : Outbox
            The batch's outputs.
        reads : iterable of str, optional
            What the branch reads (see :meth:`decode_alert`); None: everything.

        Yields
        ------
        tuple of (Record, Alert)
            The record (key, headers, bytes, append time) and its alert.
        """
        for record in records:
            started = time.perf_counter()
            self.received += 1
            try:
                schema_id, alert = await self.decode_alert(record.value, reads)
                if self.lean:
                    record = await self.strip(record, schema_id, alert, out)
            except (
                DecodeError,
                RegistryUnavailable,
                httpx.TransportError,
                UnknownSurveyError,
            ) as exc:
                self.dead_letter_to(out, record, exc)
                continue
            yield record, alert
            self.processed(started)

    async def strip(self, record: Record, schema_id: int, alert: Alert, out: Outbox) -> Record:
        """Take the cutouts out of an alert: its lean record, the cutouts sent once.

        The cutouts go to ``cutouts_topic`` keyed by alert ID (:mod:`brokerapp.wire.lean`),
        unless the alert has no stamp at all (nothing is sent for it then). The returned
        record carries the lean bytes (same schema and ID, each cutout null) for every output,
        and the original bytes for a dead letter.

        Raises
        ------
        DecodeError
            If the body is not one whole record of its schema.
        """
        schema = await self.codec.schema_for(schema_id)
        stripper = self.strippers.for_schema(schema)
        lean, values = stripper.strip(record.value or b"", CONFLUENT_HEADER_SIZE)
        alert_id = int(alert.view.alert_id)
        cutouts = stripper.cutouts(values, alert_id)
        if any(image is not None for image in cutouts.images.values()):
            out.add(
                self.settings.cutouts_topic,
                cutouts_key(alert_id),
                encode_cutouts(cutouts),
                list(record.headers or ()),
            )
        return LeanRecord(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp,
            record.key,
            lean,
            record.headers,
            record.value,
        )

    def dead_letter_to(self, out: Outbox, record: Record, error: Exception) -> None:
        """Add the record's message, unchanged, to ``out`` for the dead-letter topic."""
        headers = list(record.headers or ()) + deadletter_headers(
            str(error), error, record.topic, record.partition, record.offset
        )
        self.deadlettered[type(error).__name__] += 1
        logger.warning(
            "%s: %s:%d offset %d dead-lettered: %s",
            self.branch,
            record.topic,
            record.partition,
            record.offset,
            error,
        )
        original = getattr(record, "original", record.value)
        out.add(self.deadletter_name, record.key, original or b"", headers)

    def forward_to(
        self,
        out: Outbox,
        name: str,
        record: Record,
        appended_ms: float | None = None,
        key: bytes | None = None,
    ) -> None:
        """Add the record's original bytes, key and headers to ``out`` for topic ``name``.

        ``appended_ms`` defaults to the record's own timestamp; ``key`` replaces its key.
        """
        out.add(
            name,
            record.key if key is None else key,
            record.value or b"",
            list(record.headers or ()),
            float(record.timestamp) if appended_ms is None else appended_ms,
        )

    def json_to(
        self, out: Outbox, name: str, record: Record, key: bytes | None, value: Mapping
    ) -> None:
        """Add a new record as JSON to ``out`` for topic ``name`` (the input's headers kept)."""
        out.add(
            name,
            key,
            records.dumps(value),
            list(record.headers or ()),
            float(record.timestamp),
        )

    def delivered(self, output: Output, metadata: Any) -> None:
        """Count one acknowledged output of a batch and record its end-to-end latency."""
        self.sent[output.topic] += 1
        if output.appended_ms is not None and metadata is not None:
            self.end_to_end.add(time.time(), [metadata.timestamp - output.appended_ms])

    async def alerts(
        self, stream: faust.StreamT, reads: Iterable[str] | None = None
    ) -> AsyncIterator[tuple[faust.EventT, Alert]]:
        """Yield each event of ``stream`` with its alert, decoded once.

        Undecodable alerts and records of no known survey are dead-lettered and skipped. The
        time from reading an event to asking for the next (decode plus the caller's work) is
        recorded as its processing time.

        Parameters
        ----------
        stream : faust.StreamT
            The agent's stream.
        reads : iterable of str, optional
            What the agent reads (see :meth:`decode_alert`); None: everything.

        Yields
        ------
        tuple of (faust.EventT, Alert)
            The event (for its key, headers, bytes and timestamp) and the alert.
        """
        async for event in stream.events():
            started = time.perf_counter()
            self.track(event)
            self.received += 1
            try:
                _schema_id, alert = await self.decode_alert(event.value, reads)
            except (
                DecodeError,
                RegistryUnavailable,
                httpx.TransportError,
                UnknownSurveyError,
            ) as exc:
                await self.dead_letter(event, exc)
                continue
            yield event, alert
            self.processed(started)

    async def dead_letter(self, event: faust.EventT, error: Exception) -> None:
        """Send the event's message unchanged to the dead-letter topic, with the reason."""
        message = event.message
        headers = list(_headers(message.headers)) + deadletter_headers(
            str(error), error, message.topic, message.partition, message.offset
        )
        self.deadlettered[type(error).__name__] += 1
        logger.warning(
            "%s: %s:%d offset %d dead-lettered: %s",
            self.branch,
            message.topic,
            message.partition,
            message.offset,
            error,
        )
        await self.send(self.deadletter_name, message.key, message.value or b"", headers)

    async def send(
        self,
        name: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        appended_ms: float | None = None,
    ) -> None:
        """Hand one message to the worker's producer (it is durable before the next commit).

        Goes straight to the transport producer: a Faust ``Topic.send`` costs about 0.13 ms
        a message here (serializers, futures, callbacks), a tenth of this branch's budget.
        Faust flushes this producer before every offset commit, so at-least-once holds.

        Parameters
        ----------
        name : str
            Output topic (created on first use).
        key : bytes or None
            Message key.
        value : bytes
            Message value.
        headers : list of (str, bytes)
            Message headers.
        appended_ms : float, optional
            Append time of the alert in ``alerts``, for the end-to-end latency (none recorded
            when not given).
        """
        await self.output(name)
        future = await self.app.producer.send(name, key, value, None, None, headers)

        def delivered(done: Any) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            self.sent[name] += 1
            if appended_ms is not None:
                self.end_to_end.add(time.time(), [done.result().timestamp - appended_ms])

        future.add_done_callback(delivered)

    async def forward(
        self,
        name: str,
        event: faust.EventT,
        appended_ms: float | None = None,
        key: bytes | None = None,
    ) -> None:
        """Send the event's original bytes, key and headers to output topic ``name``.

        Parameters
        ----------
        name : str
            Output topic.
        event : faust.EventT
            The input event.
        appended_ms : float, optional
            Append time of the alert in ``alerts`` when the event came from another topic
            (default: the event's own timestamp).
        key : bytes, optional
            A new key instead of the event's own (to re-partition).
        """
        message = event.message
        if appended_ms is None:
            appended_ms = message.timestamp * 1000.0
        await self.send(
            name,
            message.key if key is None else key,
            message.value,
            list(_headers(message.headers)),
            appended_ms,
        )

    async def send_json(
        self, name: str, event: faust.EventT, key: bytes | None, record: Mapping
    ) -> None:
        """Send a new record as JSON to output topic ``name`` (headers of the input kept)."""
        message = event.message
        value = records.dumps(record)
        headers = list(_headers(message.headers))
        await self.send(name, key, value, headers, message.timestamp * 1000.0)

    def track(self, event: faust.EventT) -> None:
        """Record that ``event`` has been read: its partition's next offset, for the lag.

        Agents that read ``stream.events()`` themselves call it once per event; :meth:`alerts`
        calls it for the agents that use it.

        Parameters
        ----------
        event : faust.EventT
            The event just read.
        """
        message = event.message
        self._next_offsets[message.tp] = message.offset + 1

    def input_topics(self) -> set[str]:
        """Return the names of the topics the app's agents (and batch loop) read."""
        names = {name for agent in self.app.agents.values() for name in agent.get_topic_names()}
        if self.loop is not None:
            names.update(self.loop.topics)
        return names

    def lag_by_partition(self) -> dict[str, int | None]:
        """Return ``"<topic>:<partition>"`` -> messages not yet read, per assigned partition.

        Only partitions of the agents' input topics count (not table changelogs). The lag of
        a partition is the consumer's high watermark (``app.consumer.highwater``, the last
        known from a fetch) minus the next offset to read: the one after the last event
        :meth:`track` saw, or the committed offset when that is further on (or when no event
        of the partition has been read since it was assigned). None when either is unknown
        (no fetch yet, nothing read or committed), except that an empty partition (high
        watermark 0) has none. An empty dict when the worker's consumer has not started.

        Returns
        -------
        dict of str to int or None
            Sorted by topic and partition.
        """
        # The app's consumer as it is: asking ``app.consumer`` would create one for a status.
        consumer = getattr(self.app, "_consumer", None)
        if consumer is None:
            return {}
        inputs = self.input_topics()
        committed_offsets = getattr(consumer, "_committed_offset", {})
        lags: dict[str, int | None] = {}
        try:
            assigned = sorted(tp for tp in consumer.assignment() if tp.topic in inputs)
            for tp in assigned:
                highwater = consumer.highwater(tp)
                known = [self._next_offsets.get(tp), committed_offsets.get(tp)]
                offsets = [offset for offset in known if offset is not None]
                if highwater is None:
                    lag = None
                elif offsets:
                    lag = max(highwater - max(offsets), 0)
                else:
                    lag = 0 if highwater == 0 else None
                lags[f"{tp.topic}:{tp.partition}"] = lag
        except (ConsumerNotStarted, AssertionError, RuntimeError):
            # Not started yet, or the assignment changed while it was read (another thread).
            return {}
        return lags

    def processed(self, started: float) -> None:
        """Record the processing time of one alert (``started`` from ``time.perf_counter``)."""
        self.processing.add(time.time(), [(time.perf_counter() - started) * 1000.0])

    def status(self) -> dict[str, Any]:
        """Return the branch's counters, lag and latencies, JSON-ready.

        ``lag_by_partition`` is :meth:`lag_by_partition`; ``lag`` the sum of its known values,
        None when none is known.
        """
        now = time.time()
        lag_by_partition = self.lag_by_partition()
        if self.loop is not None:
            lag_by_partition = dict(
                sorted({**lag_by_partition, **self.loop.lag_by_partition()}.items())
            )
        known = [lag for lag in lag_by_partition.values() if lag is not None]
        return {
            "branch": self.branch,
            "app_id": self.app.conf.id,
            "source": self.source_name,
            "received": self.received,
            "sent": dict(self.sent),
            "deadlettered": sum(self.deadlettered.values()),
            "deadlettered_by_kind": dict(self.deadlettered),
            "processing": self.processing.summary(now),
            "decoding": self.decoding.summary(now),
            "end_to_end": self.end_to_end.summary(now),
            "schemas_cached": len(self.codec.cache),
            "lag": sum(known) if known else None,
            "lag_by_partition": lag_by_partition,
            "batch": self.loop.status() if self.loop is not None else None,
        }


def _headers(headers: Any) -> list[tuple[str, bytes]]:
    """Faust message headers (a list of pairs or a mapping) as a list of pairs."""
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def add_status_pages(app: faust.App, path: str, status: Any) -> None:
    """Serve ``status()`` at ``/<path>/`` (HTML) and ``/<path>/status.json`` (JSON).

    Also serves ``/metrics``: the same status as Prometheus series labelled
    ``worker="<path>"``, with the process's CPU time and memory (names and meaning:
    :mod:`brokerapp.runtime.metrics`).

    Parameters
    ----------
    app : faust.App
        The worker's app (its web view binds to ``web_bind``).
    path : str
        First path segment, the branch name.
    status : callable
        Returns the JSON-ready status dict.
    """

    @app.page(f"/{path}/")
    async def status_page(web: Any, request: Any) -> Any:
        return web.html(render(f"{app.conf.id} status", status()))

    @app.page(f"/{path}/status.json")
    async def status_json(web: Any, request: Any) -> Any:
        return web.json(status())

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        row = {**summarise(path, f"/{path}/", status()), **process_sample()}
        return web.bytes(metrics_text([row]).encode(), headers={"Content-Type": CONTENT_TYPE})
