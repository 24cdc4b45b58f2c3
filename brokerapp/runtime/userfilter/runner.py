"""The Kafka side of a user filter: consume its granted input, feed the sandbox, produce.

A :class:`UserFilterRunner` is one filter's worker. Outside the sandbox, with the runner's
own Kafka client (a :class:`~brokerapp.runtime.batch.BatchLoop` in consumer group
``spec.group_id``), it

1. fetches up to ``userfilter_batch`` messages of the granted input topics;
2. turns each into an :class:`~.process.AlertItem` (decoding it for a ``"json"`` filter,
   cutting out the bare Avro body and its writer schema for an ``"avro"`` one); values are
   Confluent-framed Avro (schemas from the local registry) or one-record Avro container
   files (ZTF's framing), told apart per message;
3. asks the sandboxed filter (:class:`~.supervisor.FilterSupervisor`) for a verdict per
   alert, and writes the outputs:

   - ``pass``: the original message (same key and value) to ``spec.pass_topic``, with the
     headers ``userfilter`` (the filter's name) and, if any, ``userfilter-annotations``
     (the annotations as JSON);
   - ``emit``: each record as JSON to the topic granted for its stream
     (``spec.streams[stream]``), keyed like the alert, with the ``userfilter`` header;
   - ``drop`` and ``error``: nothing (counted in the status); a message that cannot be
     decoded goes to ``spec.deadletter_topic`` when one is set, with a
     ``deadletter-reason`` header;

4. sends the outputs, waits for every acknowledgement, and only then commits the batch's
   offsets (at least once; a crash repeats at most one batch).

When the filter gives up (too many faults in a row) the batch in hand is not committed and
the runner stops, with state ``failed`` and the reason in :meth:`UserFilterRunner.status`.
The runner is started and stopped with :meth:`~UserFilterRunner.start` and
:meth:`~UserFilterRunner.stop`, so a command-and-control service can drive it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from brokerapp.adapters.registry import RegistryClient, registry_client
from brokerapp.model.settings import Settings
from brokerapp.runtime.batch import BatchLoop, Outbox, Output
from brokerapp.runtime.userfilter.process import AlertItem
from brokerapp.runtime.userfilter.sandbox import SandboxPlan
from brokerapp.runtime.userfilter.supervisor import (
    FilterGaveUp,
    FilterSupervisor,
    SupervisorConfig,
)
from brokerapp.wire.codecs import (
    ConfluentCodec,
    DecodeError,
    InlineCodec,
    SchemaCache,
    detect_mode,
    unframe,
)

__all__ = ["UserFilterRunner", "UserFilterSpec"]

log = logging.getLogger(__name__)


@dataclass
class UserFilterSpec:
    """What one filter is granted.

    Attributes
    ----------
    name : str
        Its name (consumer group ``userfilter-<name>`` unless ``group_id`` is set).
    plan : SandboxPlan
        Its sandbox (command, code, limits).
    input_topics : list of str
        Topics it may read.
    pass_topic : str
        Where passed alerts go.
    streams : dict
        Its own output streams: stream name -> topic.
    params : dict
        Its parameters (sent in ``start``).
    deadletter_topic : str or None
        Where undecodable input goes (None: counted and skipped).
    group_id : str or None
        Consumer group (default ``userfilter-<name>``).
    """

    name: str
    plan: SandboxPlan
    input_topics: list[str]
    pass_topic: str
    streams: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    deadletter_topic: str | None = None
    group_id: str | None = None

    @property
    def group(self) -> str:
        """The consumer group."""
        return self.group_id or f"userfilter-{self.name}"


class UserFilterRunner:
    """One filter's worker: Kafka in, sandbox, Kafka out (see the module docstring).

    Parameters
    ----------
    settings : Settings
        Bootstrap servers, registry, batch size and the ``userfilter_*`` fields.
    spec : UserFilterSpec
        The filter and its grants.
    config : SupervisorConfig, optional
        Timeouts and restart policy (default: from ``settings``).
    """

    def __init__(
        self, settings: Settings, spec: UserFilterSpec, config: SupervisorConfig | None = None
    ):
        self.settings = settings
        self.spec = spec
        self.supervisor = FilterSupervisor(
            spec.name,
            spec.plan,
            config or SupervisorConfig.from_settings(settings),
            streams=frozenset(spec.streams),
            params=spec.params,
        )
        self.registry: RegistryClient | None = None
        self.confluent: ConfluentCodec | None = None
        self.inline = InlineCodec()
        self._local_ids: dict[str, int] = {}
        batch_settings = settings.model_copy(update={"branch_batch": settings.userfilter_batch})
        self.loop = BatchLoop(
            batch_settings,
            spec.group,
            list(spec.input_topics),
            self._handle,
            self._delivered,
            transactional=False,
        )
        self.alerts_out = 0
        self.undecodable = 0
        self.state = "new"
        self.reason: str | None = None
        self._stopping: asyncio.Future | None = None

    async def start(self) -> None:
        """Start the sandbox (handshake), then the consumer and producer.

        A runner starts once; to run the filter again after :meth:`stop`, make a new runner
        (it resumes from the group's committed offsets).

        Raises
        ------
        FilterGaveUp
            If the filter cannot start within its restart limit.
        RuntimeError
            If this runner was started before.
        """
        if self.state != "new":
            raise RuntimeError(f"runner {self.spec.name} was already started ({self.state})")
        self.state = "starting"
        self.registry = registry_client(self.settings)
        self.confluent = ConfluentCodec(self.registry, SchemaCache())
        try:
            await self.supervisor.start()
        except FilterGaveUp as exc:
            self.state, self.reason = "failed", str(exc)
            await self.registry.close()
            raise
        await self.loop.start()
        self.state = "running"

    async def stop(self) -> None:
        """Finish the batch in hand (sent and committed), stop Kafka clients and the sandbox.

        Safe to call more than once and concurrently: every caller waits for the one stop.
        """
        if self.state == "new":
            return
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self.state != "failed":
            self.state = "stopping"
        await self.loop.stop()
        await self.supervisor.stop()
        if self.registry is not None:
            await self.registry.close()
        if self.state != "failed":
            self.state = "stopped"

    def status(self) -> dict[str, Any]:
        """Return the runner's and the filter's status (JSON-ready)."""
        return {
            "name": self.spec.name,
            "state": self.state,
            "reason": self.reason,
            "group": self.spec.group,
            "input_topics": list(self.spec.input_topics),
            "alerts_out": self.alerts_out,
            "undecodable": self.undecodable,
            "filter": self.supervisor.status(),
            "kafka": self.loop.status(),
            "lag": self.loop.lag_by_partition(),
        }

    def _delivered(self, output: Output, metadata: Any) -> None:
        self.alerts_out += 1

    def _local_schema_id(self, fingerprint: str) -> int:
        return self._local_ids.setdefault(fingerprint, len(self._local_ids) + 1)

    async def _item(self, record: Any, encoding: str) -> AlertItem:
        data: bytes = record.value or b""
        item = AlertItem(topic=record.topic, partition=record.partition, offset=record.offset)
        if detect_mode(data) == "confluent":
            assert self.confluent is not None
            schema_id, body = unframe(data)
            schema = await self.confluent.schema_for(schema_id)
            item.schema_id, item.schema = schema_id, schema.raw
            if encoding == "json":
                item.record = self.confluent.decode_known(data)[1]
            else:
                item.body = bytes(body)
            return item
        parsed, bodies = self.inline.record_bodies(data)
        if len(bodies) != 1:
            raise DecodeError("inline", f"container holds {len(bodies)} records, expected 1")
        item.schema_id = self._local_schema_id(parsed.fingerprint)
        item.schema = parsed.raw
        if encoding == "json":
            item.record = self.inline.decode_one(data)
        else:
            item.body = bodies[0]
        return item

    async def _handle(self, records: list[Any], outbox: Outbox) -> None:
        encoding = self.supervisor.encoding
        items: list[AlertItem] = []
        sources: list[Any] = []
        for record in records:
            try:
                items.append(await self._item(record, encoding))
            except DecodeError as exc:
                self.undecodable += 1
                if self.spec.deadletter_topic:
                    headers = [*record.headers, ("deadletter-reason", str(exc).encode()[:500])]
                    outbox.add(self.spec.deadletter_topic, record.key, record.value, headers)
                continue
            sources.append(record)
        if not items:
            return
        try:
            verdicts = await self.supervisor.process(items)
        except FilterGaveUp as exc:
            self.state, self.reason = "failed", str(exc)
            log.error("user filter %s gave up: %s", self.spec.name, exc)
            # Not awaited here: stopping the loop waits for this batch's lock.
            self._stopping = asyncio.ensure_future(self._stop())
            raise
        name = self.spec.name.encode()
        for record, verdict in zip(sources, verdicts, strict=True):
            action = verdict["action"]
            if action == "pass":
                headers = [*record.headers, ("userfilter", name)]
                if verdict["annotations"]:
                    headers.append(("userfilter-annotations", orjson.dumps(verdict["annotations"])))
                outbox.add(self.spec.pass_topic, record.key, record.value, headers)
            elif action == "emit":
                for stream, value in verdict["records"]:
                    outbox.add(
                        self.spec.streams[stream],
                        record.key,
                        orjson.dumps(value),
                        [("userfilter", name), ("userfilter-stream", stream.encode())],
                    )
