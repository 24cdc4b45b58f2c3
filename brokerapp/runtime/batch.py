"""The batch runtime of a branch: fetch many, process the batch, send, commit with the outputs.

Faust's per-event machinery (consumer, conductor, channel, stream, event, acks) costs about
0.14 ms of CPU per message on this project's machines even for an agent that does nothing,
which alone caps a branch at about 7,000 messages/s. A branch whose work needs no Faust table
runs on a :class:`BatchLoop` instead, inside its Faust worker (which still provides the app id,
the lifecycle, the web view and the status pages), as the gateway's mirror does:

1. an aiokafka consumer of the local cluster in the branch's consumer group (the app id; the
   same round-robin protocol as the Faust worker's own member, which holds only its leader
   topic) fetches up to ``branch_batch`` messages;
2. the branch's handler turns the batch into an :class:`Outbox` of outputs (forwarded bytes,
   new JSON records, dead letters), in input order per partition;
3. the outputs are sent and the batch's next offsets committed. With ``branch_transactions``
   (off by default, see that setting) both go in one Kafka transaction (``transactional_id``
   ``<app id>-<instance>``, so a restarted worker fences its killed predecessor and aborts
   what it left open): a reader with ``isolation_level=read_committed`` sees every output
   exactly once, even after ``kill -9``. Without, every send is acknowledged (``acks=all``,
   idempotent producer) before the offsets are committed: at least once, a crash repeating
   at most one batch.

Per-object order holds: a partition's messages are handled in offset order, outputs sent in
that order, batches one after the other. The loop reads with ``read_committed`` so it never
acts on outputs of an aborted transaction upstream of it.

A send that fails (a broker lost, a leader not yet moved) sends the whole batch again after
a backoff (``gateway_retry_backoff`` doubling to ``gateway_retry_backoff_max``), committing
nothing meanwhile: the transaction is aborted, or, without transactions, the outputs already
written are written again (at least once); ``send_failures`` counts them.

On a rebalance the batch in hand is finished (sent and committed) before partitions are given
up; records of a partition revoked meanwhile are dropped (the new owner reads them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError, ProducerFenced
from mode import Service

from brokerapp.model.settings import Settings
from brokerapp.runtime.backoff import backoff_delay

__all__ = ["BatchLoop", "Handler", "Output", "Outbox", "Record"]

logger = logging.getLogger(__name__)

#: Seconds a graceful stop waits for the batch in hand to be sent and committed.
STOP_GRACE_SECONDS = 30.0
#: Longest wait (s) for the consumer's position of one partition between two fetches.
POSITION_WAIT_SECONDS = 0.5


class Record(Protocol):
    """What a handler reads of one input message (an aiokafka ``ConsumerRecord``)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    """Milliseconds (the broker's append time on the project's topics)."""
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Output:
    """One message a batch sends.

    Attributes
    ----------
    topic : str
        Output topic.
    key : bytes or None
        Message key.
    value : bytes
        Message value.
    headers : list of (str, bytes)
        Message headers.
    appended_ms : float or None
        Append time of the alert in ``alerts`` (milliseconds), for the end-to-end latency;
        None records none.
    """

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    appended_ms: float | None = None


@dataclass
class Outbox:
    """The outputs of one batch, in the order they are to be sent."""

    items: list[Output] = field(default_factory=list)

    def add(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        appended_ms: float | None = None,
    ) -> None:
        """Append one output (see :class:`Output`)."""
        self.items.append(Output(topic, key, value, headers, appended_ms))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Output]:
        return iter(self.items)


Handler = Callable[[list[Any], Outbox], Awaitable[None]]
"""``handler(records, outbox)``: a branch's work on one batch of :class:`Record`."""

Delivered = Callable[[Output, Any], None]
"""``delivered(output, metadata)``: called once per output its broker acknowledged."""


class _Listener(ConsumerRebalanceListener):
    def __init__(self, loop: BatchLoop):
        self.loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # The batch in hand is sent and committed before the partitions go.
        async with self.loop.lock:
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.loop.read_committed(assigned)


class BatchLoop(Service):
    """The consume-process-send-commit loop of one branch (see the module docstring).

    Parameters
    ----------
    settings : Settings
        The one settings object (bootstrap servers, ``branch_batch``, ``branch_batch_wait_ms``,
        ``branch_transactions``, ``producer_linger_ms``, ``producer_batch_bytes``,
        ``local_compression``, ``branch_fetch_bytes``, ``instance_id``).
    group_id : str
        Consumer group: the branch's app id.
    topics : list of str
        Input topics.
    handler : Handler
        The branch's work on a batch.
    delivered : callable
        Called per acknowledged output (counters and latency of the branch).
    transactional : bool, optional
        Default ``branch_transactions``; False for a branch whose real output is not Kafka
        (a database sink: its rows are stored before the commit, at least once).
    wait_ms : int, optional
        Longest wait for a fetch (default ``branch_batch_wait_ms``).
    declare : callable, optional
        Awaited before subscribing: creates the input topics that do not exist yet (as a
        Faust worker creates its agents' topics), so a writer that starts later finds them.
    """

    def __init__(
        self,
        settings: Settings,
        group_id: str,
        topics: list[str],
        handler: Handler,
        delivered: Delivered,
        transactional: bool | None = None,
        wait_ms: int | None = None,
        declare: Callable[[], Awaitable[Any]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.settings = settings
        self.group_id = group_id
        self.topics = list(topics)
        self.handler = handler
        self.delivered = delivered
        self.transactional = (
            settings.branch_transactions if transactional is None else transactional
        )
        self.wait_ms = settings.branch_batch_wait_ms if wait_ms is None else wait_ms
        self.declare = declare
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.next_offsets: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.batches = 0
        self.transactions = 0
        self.commit_ms_total = 0.0
        self.send_failures = 0

    @property
    def transactional_id(self) -> str:
        """Stable per worker: ``<group id>-<instance_id>``."""
        return f"{self.group_id}-{self.settings.instance_id}"

    def _producer(self) -> AIOKafkaProducer:
        settings = self.settings
        options: dict[str, Any] = {
            "bootstrap_servers": settings.kafka_bootstrap,
            "client_id": f"{self.group_id}-batch",
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": settings.producer_linger_ms,
            "max_batch_size": settings.producer_batch_bytes,
            "max_request_size": settings.max_message_bytes,
        }
        if settings.local_compression != "none":
            options["compression_type"] = settings.local_compression
        if self.transactional:
            options["transactional_id"] = self.transactional_id
        return AIOKafkaProducer(**options)

    async def on_start(self) -> None:
        """Connect the producer (fencing any predecessor) and subscribe the consumer."""
        settings = self.settings
        if self.declare is not None:
            await self.declare()
        self.producer = self._producer()
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"{self.group_id}-batch",
            group_id=self.group_id,
            group_instance_id=f"{self.group_id}-{settings.instance_id}-batch",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=settings.branch_batch,
            max_partition_fetch_bytes=settings.max_message_bytes,
            fetch_max_bytes=max(settings.branch_fetch_bytes, settings.max_message_bytes),
        )
        await self.consumer.start()
        self.consumer.subscribe(self.topics, listener=_Listener(self))
        self.add_future(self._run())

    async def on_stop(self) -> None:
        """Finish the batch in hand (sent and committed), then disconnect."""
        try:
            await asyncio.wait_for(self.lock.acquire(), STOP_GRACE_SECONDS)
        except TimeoutError:
            logger.warning("%s: the batch in hand did not finish in time", self.group_id)
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        wait = self.wait_ms
        while not self.should_stop:
            fetched = await consumer.getmany(
                timeout_ms=wait, max_records=self.settings.branch_batch
            )
            async with self.lock:
                assigned = consumer.assignment()
                records = [r for tp, rs in fetched.items() if tp in assigned for r in rs]
                if records:
                    await self.handle(records)
                await self._learn_positions(assigned)
                if not records:
                    await self._commit_skipped(assigned)

    async def _commit_skipped(self, assigned: set[TopicPartition]) -> None:
        """Commit positions that moved past records without a batch: transaction markers.

        A transaction's commit marker takes an offset after its last record; a reader steps
        over it on its next fetch. Committing only record offsets would leave each partition
        one short of its end for good (a lag that never reaches 0).
        """
        consumer = self.consumer
        assert consumer is not None
        moved = {
            tp: offset
            for tp, offset in self.next_offsets.items()
            if tp in assigned and offset > self.committed.get(tp, offset)
        }
        if moved:
            await consumer.commit(moved)
            self.committed.update(moved)

    async def _learn_positions(self, assigned: set[TopicPartition]) -> None:
        """Record the consumer's position per partition (past transaction markers too)."""
        consumer = self.consumer
        assert consumer is not None
        for tp in assigned:
            try:
                # A partition still resetting its position is left for the next round: the
                # lock is held, and a rebalance waits for it.
                self.next_offsets[tp] = await asyncio.wait_for(
                    consumer.position(tp), POSITION_WAIT_SECONDS
                )
            except IllegalStateError:  # revoked meanwhile
                self.next_offsets.pop(tp, None)
            except TimeoutError:
                continue

    async def handle(self, records: list[Any]) -> None:
        """Process one batch, send its outputs and commit its offsets (see the docstring).

        Parameters
        ----------
        records : list of Record
            The batch, in offset order per partition.
        """
        outbox = Outbox()
        await self.handler(records, outbox)
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
        consumer = self.consumer
        assert consumer is not None
        for tp in offsets:  # past any transaction marker the fetch stepped over
            offsets[tp] = max(offsets[tp], await consumer.position(tp))
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                if self.transactional:
                    await self._send_transaction(outbox, offsets)
                else:
                    await self._send_then_commit(outbox, offsets)
                break
            except KafkaError as exc:
                # E.g. a broker lost and its partitions' leaders not yet moved: the whole batch
                # again (an aborted transaction, or at least once), after a backoff.
                if isinstance(exc, ProducerFenced):
                    raise  # another worker with this transactional ID took over
                attempt += 1
                self.send_failures += 1
                delay = backoff_delay(
                    attempt,
                    self.settings.gateway_retry_backoff,
                    self.settings.gateway_retry_backoff_max,
                )
                logger.warning(
                    "%s: sending a batch of %d failed (%r); again in %.1f s",
                    self.group_id,
                    len(outbox),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
        self.commit_ms_total += (time.perf_counter() - started) * 1000.0
        self.batches += 1
        self.next_offsets.update(offsets)
        self.committed.update(offsets)

    async def _send_all(self, outbox: Outbox) -> list[tuple[Output, asyncio.Future]]:
        producer = self.producer
        assert producer is not None
        sent = []
        for item in outbox:
            future = await producer.send(
                item.topic, item.value, key=item.key, headers=item.headers or None
            )
            sent.append((item, future))
        return sent

    def _report(self, sent: list[tuple[Output, asyncio.Future]]) -> None:
        for item, future in sent:
            self.delivered(item, future.result())

    async def _send_transaction(self, outbox: Outbox, offsets: dict[TopicPartition, int]) -> None:
        producer = self.producer
        assert producer is not None
        async with producer.transaction():
            sent = await self._send_all(outbox)
            await producer.send_offsets_to_transaction(offsets, self.group_id)
        self.transactions += 1
        self._report(sent)

    async def _send_then_commit(self, outbox: Outbox, offsets: dict[TopicPartition, int]) -> None:
        consumer = self.consumer
        assert consumer is not None
        sent = await self._send_all(outbox)
        if sent:
            await asyncio.gather(*(future for _item, future in sent))
        await consumer.commit(offsets)
        self._report(sent)

    async def read_committed(self, partitions: Any) -> None:
        """Learn the committed offsets of newly assigned partitions (for the lag shown)."""
        consumer = self.consumer
        if consumer is None:
            return
        for tp in partitions:
            offset = await consumer.committed(tp)
            if offset is not None:
                self.committed[tp] = offset

    def lag_by_partition(self) -> dict[str, int | None]:
        """Return ``"<topic>:<partition>"`` -> messages not yet handled, per assigned partition.

        The consumer's high watermark (from its last fetch; with ``read_committed`` the last
        stable offset) minus its position (which steps over transaction markers too; the
        committed offset before the first fetch); None when either is unknown, 0 for an empty
        partition.
        """
        consumer = self.consumer
        if consumer is None:
            return {}
        lags: dict[str, int | None] = {}
        for tp in sorted(consumer.assignment()):
            highwater = consumer.last_stable_offset(tp) if self.transactional else None
            if highwater is None:
                highwater = consumer.highwater(tp)
            offset = self.next_offsets.get(tp, self.committed.get(tp))
            if highwater is None:
                lag = None
            elif offset is None:
                lag = 0 if highwater == 0 else None
            else:
                lag = max(highwater - offset, 0)
            lags[f"{tp.topic}:{tp.partition}"] = lag
        return lags

    def status(self) -> dict[str, Any]:
        """Batches, transactions and the mean time to send and commit one batch."""
        return {
            "group": self.group_id,
            "transactional": self.transactional,
            "transactional_id": self.transactional_id if self.transactional else None,
            "batches": self.batches,
            "transactions": self.transactions,
            "send_failures": self.send_failures,
            "send_commit_ms_mean": (
                round(self.commit_ms_total / self.batches, 3) if self.batches else None
            ),
        }
