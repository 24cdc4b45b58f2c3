"""Administration of the alert buffer: describe topics, add partitions, replay consumer groups.

The functions here do the Kafka work and return data classes; ``brokerapp topics`` and
``brokerapp replay`` in :mod:`brokerapp.tools.cli` only format them.

Semantics
---------
Describing a topic (:func:`describe_topics`)
    ``earliest`` and ``latest`` are the log-start and log-end offsets of each partition,
    summed over the partitions; ``messages = latest - earliest`` is what the topic holds.
    This counts offsets, so on a compacted topic, or one with transaction markers, it is an
    upper bound. ``first_timestamp_ms`` is the timestamp of the message at each partition's
    earliest offset (read with a short-lived consumer that commits nothing), the smallest
    over the partitions; ``last_timestamp_ms`` is the largest timestamp held
    (``OffsetSpec.max_timestamp()``, the broker's answer), which is the last message's
    timestamp unless producers set timestamps out of order. ``size_bytes`` is the bytes on
    disk of every replica of every partition, summed over the brokers and their log
    directories (a topic with replication factor 3 counts three times). The ``AdminClient``
    of confluent-kafka 2.16 (librdkafka) has no DescribeLogDirs call, nor has aiokafka's, so
    :func:`log_dir_sizes` asks every broker through kafka-python's
    ``KafkaAdminClient.describe_log_dirs``.

Adding partitions (:func:`grow_topic`)
    Kafka can only add partitions. Keys are hashed modulo the partition count, so after a
    rise most keys map to another partition than before: per-key (per-object) order then
    holds only within each partition, not across the rise. The README section "The alert
    buffer" says what that means for branches and how to shrink (a new topic).

Replaying a consumer group (:func:`replay`)
    Sets the group's committed offsets on every partition of one topic. Targets:

    * ``earliest`` / ``latest``: each partition's log-start / log-end offset;
    * ``datetime``: per partition, the first offset whose timestamp is at or after the time
      (``OffsetSpec.for_timestamp``); a partition with no such message goes to its latest
      offset, i.e. the group reads only what arrives from now on there;
    * ``shift``: each partition's committed offset moved by N (negative = back), clamped to
      ``[earliest, latest]``. A partition where the group has committed nothing is taken to
      be at its earliest offset, because that is where the group starts reading it (Faust and
      this repository's consumers use ``auto.offset.reset=earliest``): a negative N leaves it
      at the earliest offset and a positive N skips N messages.

    A group with members (any state but Empty or Dead) is refused with
    :class:`GroupActiveError` before anything is read or written: its members would overwrite
    the new offsets with their next commit. Kafka enforces the same rule itself (it rejects
    offset commits from outside a non-empty group), which covers a member joining between our
    check and the write. With ``dry_run`` the plan is computed and nothing is written.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from confluent_kafka import (
    OFFSET_INVALID,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    NewPartitions,
    OffsetSpec,
    ResourceType,
)

#: Seconds an admin request (DescribeLogDirs included) or a first-message read may take.
TIMEOUT = 30.0

#: Consumer group states in which a group has no members, so its offsets may be changed.
IDLE_STATES = frozenset({ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TopicsError(Exception):
    """An admin request that cannot be done as asked (the message says why)."""


class GroupActiveError(TopicsError):
    """The consumer group has members, so its offsets are left alone."""


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class PartitionInfo:
    """Offsets and timestamps of one partition.

    Attributes
    ----------
    partition : int
        Partition number.
    earliest : int
        Log-start offset (first offset held).
    latest : int
        Log-end offset (offset the next message gets).
    first_timestamp_ms : int or None
        Timestamp (ms since the epoch) of the message at ``earliest``; None when the
        partition is empty or that message has no timestamp.
    max_timestamp_ms : int or None
        Largest timestamp held; None when the partition is empty.
    """

    partition: int
    earliest: int
    latest: int
    first_timestamp_ms: int | None
    max_timestamp_ms: int | None

    @property
    def messages(self) -> int:
        """Offsets held, ``latest - earliest``."""
        return self.latest - self.earliest


@dataclass(frozen=True)
class TopicInfo:
    """What ``brokerapp topics`` shows for one topic.

    Attributes
    ----------
    name : str
        Topic name.
    partitions : int
        Partition count.
    replication_factor : int
        Replicas per partition (the largest over the partitions).
    retention_ms : int
        ``retention.ms``; -1 keeps messages forever.
    cleanup_policy : str
        ``cleanup.policy`` (``delete``, ``compact`` or both).
    size_bytes : int
        Bytes on disk, every replica on every broker.
    earliest : int
        Earliest offsets summed over the partitions.
    latest : int
        Latest offsets summed over the partitions.
    first_timestamp_ms : int or None
        Smallest over the partitions of the timestamp of the message at the earliest offset.
    last_timestamp_ms : int or None
        Largest timestamp held.
    partition_details : tuple of PartitionInfo
        The same per partition.
    """

    name: str
    partitions: int
    replication_factor: int
    retention_ms: int
    cleanup_policy: str
    size_bytes: int
    earliest: int
    latest: int
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None
    partition_details: tuple[PartitionInfo, ...] = field(default=(), repr=False)

    @property
    def messages(self) -> int:
        """Offsets held, ``latest - earliest`` summed over the partitions."""
        return self.latest - self.earliest

    def to_json(self) -> dict:
        """Return the JSON form: raw values plus human-readable retention, size and times."""
        out = asdict(self)
        out["messages"] = self.messages
        out["retention"] = human_duration(self.retention_ms)
        out["size"] = human_bytes(self.size_bytes)
        out["first_timestamp"] = format_timestamp(self.first_timestamp_ms)
        out["last_timestamp"] = format_timestamp(self.last_timestamp_ms)
        del out["partition_details"]  # put back last, after the human forms
        out["partition_details"] = [
            {**asdict(p), "messages": p.messages} for p in self.partition_details
        ]
        return out


@dataclass(frozen=True)
class GrowResult:
    """Partition counts of a topic before and after :func:`grow_topic`."""

    topic: str
    old: int
    new: int


@dataclass(frozen=True)
class ReplayTarget:
    """Where :func:`replay` moves a group.

    Build it with :meth:`earliest`, :meth:`latest`, :meth:`at` or :meth:`shift_by`.

    Attributes
    ----------
    kind : str
        ``earliest``, ``latest``, ``datetime`` or ``shift``.
    timestamp_ms : int or None
        Target time (ms since the epoch) of a ``datetime`` target.
    shift : int
        Offsets to move by for a ``shift`` target (negative = back).
    """

    kind: str
    timestamp_ms: int | None = None
    shift: int = 0

    @classmethod
    def earliest(cls) -> ReplayTarget:
        """Go to each partition's earliest offset."""
        return cls("earliest")

    @classmethod
    def latest(cls) -> ReplayTarget:
        """Go to each partition's latest offset (skip everything held)."""
        return cls("latest")

    @classmethod
    def at(cls, when: datetime) -> ReplayTarget:
        """Go to the first offset at or after a time (see :func:`parse_datetime`)."""
        return cls("datetime", timestamp_ms=to_millis(when))

    @classmethod
    def shift_by(cls, n: int) -> ReplayTarget:
        """Move the committed offset by ``n`` (negative = back), clamped."""
        return cls("shift", shift=n)

    def describe(self) -> str:
        """Return a short human description, e.g. ``shift by -10``."""
        if self.kind == "datetime":
            return f"first offset at or after {format_timestamp(self.timestamp_ms)}"
        if self.kind == "shift":
            return f"shift by {self.shift:+d}"
        return f"{self.kind} offset"


@dataclass(frozen=True)
class PartitionOffsets:
    """What :func:`plan_offsets` needs to know about one partition.

    Attributes
    ----------
    partition : int
        Partition number.
    earliest : int
        Log-start offset.
    latest : int
        Log-end offset.
    committed : int or None
        The group's committed offset (next offset it reads); None if it has none.
    at_timestamp : int or None
        For a ``datetime`` target: first offset whose timestamp is at or after the target,
        None if there is no such message.
    """

    partition: int
    earliest: int
    latest: int
    committed: int | None
    at_timestamp: int | None = None


@dataclass(frozen=True)
class OffsetChange:
    """One partition's committed offset before and after a replay.

    Attributes
    ----------
    partition : int
        Partition number.
    old : int or None
        Committed offset before (None: the group had none).
    new : int
        Committed offset after.
    earliest : int
        Log-start offset when planned.
    latest : int
        Log-end offset when planned.
    """

    partition: int
    old: int | None
    new: int
    earliest: int
    latest: int

    def line(self) -> str:
        """Return ``partition 3: 120 -> 100 (-20)``, with ``-`` for no committed offset."""
        old = "-" if self.old is None else str(self.old)
        delta = f" ({self.new - self.old:+d})" if self.old is not None else ""
        return (
            f"partition {self.partition}: {old} -> {self.new}{delta}"
            f"  [earliest {self.earliest}, latest {self.latest}]"
        )


@dataclass(frozen=True)
class ReplayResult:
    """The outcome of :func:`replay`.

    Attributes
    ----------
    group : str
        Consumer group.
    topic : str
        Topic whose offsets were (or would be) set.
    target : ReplayTarget
        Where the group was moved.
    changes : tuple of OffsetChange
        One per partition of the topic, by partition number.
    applied : bool
        False for a dry run: nothing was written.
    """

    group: str
    topic: str
    target: ReplayTarget
    changes: tuple[OffsetChange, ...]
    applied: bool

    def lines(self) -> list[str]:
        """Return a header line and one line per partition."""
        mode = "offsets set" if self.applied else "dry run, nothing changed"
        head = f"group {self.group} on {self.topic}: {self.target.describe()} ({mode})"
        return [head, *(f"  {c.line()}" for c in self.changes)]


# --------------------------------------------------------------------------- pure helpers


def parse_datetime(text: str) -> datetime:
    """Parse an ISO 8601 time; without a timezone it is taken as UTC.

    Parameters
    ----------
    text : str
        E.g. ``2026-07-01``, ``2026-07-01T22:15:00``, ``2026-07-01T22:15:00Z``,
        ``2026-07-01T23:15:00+01:00``.

    Returns
    -------
    datetime
        Timezone-aware, in UTC.

    Raises
    ------
    ValueError
        If the text is not ISO 8601 or the time is before 1970 (Kafka reads negative
        timestamps as "latest"/"earliest").
    """
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r} (e.g. 2026-07-01T22:15:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    if when < _EPOCH:
        raise ValueError(f"time before 1970-01-01: {text!r}")
    return when


def to_millis(when: datetime) -> int:
    """Return milliseconds since the epoch of an aware datetime (naive = UTC), exactly."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(milliseconds=1)


def format_timestamp(ms: int | None) -> str | None:
    """Return ``2026-07-01T22:15:00.123Z`` for ms since the epoch, None for None."""
    if ms is None:
        return None
    when = _EPOCH + timedelta(milliseconds=ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def human_duration(ms: int) -> str:
    """Return a duration in ms as ``7d``, ``1d12h``, ``90s`` -> ``1m30s``; -1 is ``forever``.

    Every non-zero unit is kept, so the text is exact (``7d1ms`` for 604800001).
    """
    if ms < 0:
        return "forever"
    if ms == 0:
        return "0ms"
    parts = []
    for unit, size in _UNITS:
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def human_bytes(n: int) -> str:
    """Return a byte count in decimal units: ``512 B``, ``65.9 kB``, ``1.2 GB``."""
    if n < 1000:
        return f"{n} B"
    units = ("kB", "MB", "GB", "TB", "PB")
    value, index = n / 1000, 0
    while value >= 999.95 and index < len(units) - 1:
        value, index = value / 1000, index + 1
    return f"{value:.1f} {units[index]}"


def is_internal(name: str) -> bool:
    """Return whether a topic is internal (leading underscore, e.g. ``__consumer_offsets``)."""
    return name.startswith("_")


def select_topics(
    names: Iterable[str],
    wanted: Sequence[str] = (),
    pattern: str | None = None,
    include_internal: bool = False,
) -> list[str]:
    """Choose the topics to describe, sorted.

    Parameters
    ----------
    names : iterable of str
        Topics of the cluster.
    wanted : sequence of str
        Topics named explicitly: always kept, internal or not.
    pattern : str, optional
        Regular expression (``re.search``) a topic must match.
    include_internal : bool
        Keep internal topics that were not named explicitly.

    Returns
    -------
    list of str
        Named topics plus those matching (all when neither is given).

    Raises
    ------
    TopicsError
        If a named topic does not exist.
    """
    names = set(names)
    missing = [t for t in wanted if t not in names]
    if missing:
        raise TopicsError("no such topic: " + ", ".join(missing))
    chosen = set(wanted)
    if pattern is not None or not wanted:
        regex = re.compile(pattern) if pattern is not None else None
        chosen |= {
            t
            for t in names
            if (include_internal or not is_internal(t)) and (regex is None or regex.search(t))
        }
    return sorted(chosen)


def summarize(
    name: str,
    partitions: Sequence[PartitionInfo],
    replication_factor: int,
    retention_ms: int,
    cleanup_policy: str,
    size_bytes: int,
) -> TopicInfo:
    """Sum per-partition offsets and pick the first/last timestamps of a topic."""
    details = tuple(sorted(partitions, key=lambda p: p.partition))
    firsts = [p.first_timestamp_ms for p in details if p.first_timestamp_ms is not None]
    lasts = [p.max_timestamp_ms for p in details if p.max_timestamp_ms is not None]
    return TopicInfo(
        name=name,
        partitions=len(details),
        replication_factor=replication_factor,
        retention_ms=retention_ms,
        cleanup_policy=cleanup_policy,
        size_bytes=size_bytes,
        earliest=sum(p.earliest for p in details),
        latest=sum(p.latest for p in details),
        first_timestamp_ms=min(firsts) if firsts else None,
        last_timestamp_ms=max(lasts) if lasts else None,
        partition_details=details,
    )


_COLUMNS = (
    "topic",
    "parts",
    "rf",
    "retention.ms",
    "cleanup",
    "disk",
    "earliest",
    "latest",
    "messages",
    "first message (UTC)",
    "last message (UTC)",
)


def format_table(infos: Sequence[TopicInfo]) -> str:
    """Return an aligned text table, one row per topic (``-`` for no timestamp)."""
    rows = [_COLUMNS]
    for info in infos:
        rows.append(
            (
                info.name,
                str(info.partitions),
                str(info.replication_factor),
                f"{info.retention_ms} ({human_duration(info.retention_ms)})",
                info.cleanup_policy,
                human_bytes(info.size_bytes),
                str(info.earliest),
                str(info.latest),
                str(info.messages),
                format_timestamp(info.first_timestamp_ms) or "-",
                format_timestamp(info.last_timestamp_ms) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    numeric = {1, 2, 6, 7, 8}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_json(infos: Sequence[TopicInfo]) -> str:
    """Return the topics as a JSON list (see :meth:`TopicInfo.to_json`)."""
    return json.dumps([info.to_json() for info in infos], indent=2)


def group_is_active(state: ConsumerGroupState, members: int) -> bool:
    """Return whether a group has (or may have) members: any state but Empty/Dead, or members."""
    return members > 0 or state not in IDLE_STATES


def new_offset(target: ReplayTarget, p: PartitionOffsets) -> int:
    """Return the committed offset ``target`` gives a partition (see the module docstring)."""
    if target.kind == "earliest":
        return p.earliest
    if target.kind == "latest":
        return p.latest
    if target.kind == "datetime":
        return p.latest if p.at_timestamp is None else p.at_timestamp
    if target.kind == "shift":
        base = p.earliest if p.committed is None else p.committed
        return min(max(base + target.shift, p.earliest), p.latest)
    raise ValueError(f"unknown replay target {target.kind!r}")


def plan_offsets(
    target: ReplayTarget, partitions: Iterable[PartitionOffsets]
) -> tuple[OffsetChange, ...]:
    """Return the offset change of every partition, by partition number."""
    return tuple(
        OffsetChange(p.partition, p.committed, new_offset(target, p), p.earliest, p.latest)
        for p in sorted(partitions, key=lambda p: p.partition)
    )


# --------------------------------------------------------------------------- DescribeLogDirs


def sum_log_dir_sizes(answers: Iterable[Mapping]) -> dict[tuple[str, int], int]:
    """Sum DescribeLogDirs answers into bytes per ``(topic, partition)``.

    Parameters
    ----------
    answers : iterable of mapping
        One per broker, as kafka-python's ``KafkaAdminClient.describe_log_dirs`` returns
        them: ``{"broker": id, "log_dirs": [{"error_code", "log_dir", "topics": [{"name",
        "partitions": [{"partition_index", "partition_size", ...}]}]}]}``.

    Returns
    -------
    dict
        Bytes per ``(topic, partition)``, summed over the brokers and their log directories
        (a replica being moved between directories counts in both).

    Raises
    ------
    TopicsError
        If a broker reports an error for a log directory.
    """
    sizes: dict[tuple[str, int], int] = {}
    for answer in answers:
        for log_dir in answer["log_dirs"]:
            code = log_dir["error_code"]
            if code:
                raise TopicsError(
                    f"broker {answer['broker']} log directory {log_dir['log_dir']}: "
                    f"{KafkaError(code).name()} ({code})"
                )
            for topic in log_dir["topics"]:
                for part in topic["partitions"]:
                    key = (topic["name"], part["partition_index"])
                    sizes[key] = sizes.get(key, 0) + part["partition_size"]
    return sizes


def log_dir_sizes(
    bootstrap: str, topics: Mapping[str, Sequence[int]], timeout: float = TIMEOUT
) -> dict[tuple[str, int], int]:
    """Return bytes on disk per ``(topic, partition)``, summed over every broker's replicas.

    Sends DescribeLogDirs to every broker of the cluster through kafka-python's admin client
    (confluent-kafka's has no such call).

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers of the cluster.
    topics : mapping of str to sequence of int
        Partitions to ask about, per topic.
    timeout : float
        Seconds per request.

    Returns
    -------
    dict
        Bytes per ``(topic, partition)``; partitions no broker reports are absent.

    Raises
    ------
    TopicsError
        If a broker reports a log directory error.
    kafka.errors.KafkaError
        If the cluster cannot be reached.
    """
    if not topics:
        return {}
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="brokerapp-topics",
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        answers = admin.describe_log_dirs({name: list(parts) for name, parts in topics.items()})
    finally:
        admin.close()
    return sum_log_dir_sizes(answers)


# --------------------------------------------------------------------------- Kafka work


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _list_offsets(
    admin: AdminClient, partitions: Iterable[TopicPartition], spec: OffsetSpec
) -> dict[tuple[str, int], tuple[int, int]]:
    """Return ``(offset, timestamp)`` per ``(topic, partition)`` for one offset spec."""
    futures = admin.list_offsets(
        {TopicPartition(tp.topic, tp.partition): spec for tp in partitions},
        request_timeout=TIMEOUT,
    )
    out = {}
    for tp, future in futures.items():
        result = future.result()
        out[(tp.topic, tp.partition)] = (result.offset, result.timestamp)
    return out


def first_timestamps(
    bootstrap: str, starts: Mapping[tuple[str, int], int], timeout: float = TIMEOUT
) -> dict[tuple[str, int], int | None]:
    """Return the timestamp of the first message readable from each start offset.

    A consumer with a throw-away group id is assigned the partitions at the given offsets,
    takes one message from each and commits nothing.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers.
    starts : mapping of (str, int) to int
        Offset to read from per ``(topic, partition)``; only give non-empty partitions.
    timeout : float
        Seconds to wait for all of them.

    Returns
    -------
    dict
        Timestamp (ms) per ``(topic, partition)``; None when the message has no timestamp or
        the partition ends before any message is readable (only transaction markers left).

    Raises
    ------
    TopicsError
        If some partition gave nothing within ``timeout``.
    KafkaException
        On a consumer error.
    """
    found: dict[tuple[str, int], int | None] = {}
    if not starts:
        return found
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"brokerapp-topics-peek-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "max.partition.fetch.bytes": 65536,
            "fetch.wait.max.ms": 100,
        }
    )
    try:
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in starts.items()])
        deadline = time.monotonic() + timeout
        while len(found) < len(starts) and time.monotonic() < deadline:
            done = []
            for message in consumer.consume(num_messages=500, timeout=0.2):
                key = (message.topic(), message.partition())
                if key in found:
                    continue
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                if error is None:
                    kind, stamp = message.timestamp()
                    found[key] = None if kind == TIMESTAMP_NOT_AVAILABLE or stamp < 0 else stamp
                else:
                    found[key] = None
                done.append(TopicPartition(*key))
            if done:
                consumer.pause(done)
    finally:
        consumer.close()
    missing = sorted(set(starts) - set(found))
    if missing:
        names = ", ".join(f"{t}[{p}]" for t, p in missing[:10])
        raise TopicsError(f"no message read within {timeout:.0f} s from {names}")
    return found


def describe_topics(
    bootstrap: str,
    topics: Sequence[str] = (),
    pattern: str | None = None,
    include_internal: bool = False,
    timeout: float = TIMEOUT,
) -> list[TopicInfo]:
    """Describe topics: partitions, replication, retention, size, offsets and timestamps.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers of the cluster.
    topics : sequence of str
        Topics to describe (always shown, internal or not).
    pattern : str, optional
        Regular expression (``re.search``) of further topics to describe.
    include_internal : bool
        Also list internal topics (leading underscore) that were not named.
    timeout : float
        Seconds per request.

    Returns
    -------
    list of TopicInfo
        Sorted by name; all non-internal topics when neither topics nor pattern is given.

    Raises
    ------
    TopicsError
        If a named topic does not exist, or a size or first message cannot be read.
    KafkaException
        If Kafka fails a request.
    """
    admin = _admin(bootstrap)
    metadata = admin.list_topics(timeout=timeout)
    names = select_topics(metadata.topics, topics, pattern, include_internal)
    if not names:
        return []
    partitions = {
        name: sorted(metadata.topics[name].partitions.values(), key=lambda p: p.id)
        for name in names
    }
    tps = [TopicPartition(name, p.id) for name in names for p in partitions[name]]

    configs = {}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        configs[resource.name] = future.result()

    earliest = _list_offsets(admin, tps, OffsetSpec.earliest())
    latest = _list_offsets(admin, tps, OffsetSpec.latest())
    max_stamp = _list_offsets(admin, tps, OffsetSpec.max_timestamp())
    starts = {key: earliest[key][0] for key in earliest if latest[key][0] > earliest[key][0]}
    firsts = first_timestamps(bootstrap, starts, timeout=timeout)
    sizes = log_dir_sizes(
        bootstrap, {name: [p.id for p in partitions[name]] for name in names}, timeout
    )

    infos = []
    for name in names:
        details = []
        for p in partitions[name]:
            key = (name, p.id)
            stamp = max_stamp[key][1]
            details.append(
                PartitionInfo(
                    partition=p.id,
                    earliest=earliest[key][0],
                    latest=latest[key][0],
                    first_timestamp_ms=firsts.get(key),
                    max_timestamp_ms=stamp if stamp >= 0 else None,
                )
            )
        infos.append(
            summarize(
                name,
                details,
                replication_factor=max((len(p.replicas) for p in partitions[name]), default=0),
                retention_ms=int(configs[name]["retention.ms"].value),
                cleanup_policy=configs[name]["cleanup.policy"].value,
                size_bytes=sum(sizes.get((name, p.id), 0) for p in partitions[name]),
            )
        )
    return infos


def partition_count(admin: AdminClient, topic: str, timeout: float = TIMEOUT) -> int:
    """Return a topic's partition count from fresh metadata.

    Raises
    ------
    TopicsError
        If the topic does not exist.
    """
    # Ask for all topics: a metadata request naming a missing topic makes a broker with
    # auto.create.topics.enable (Kafka's default) create it.
    metadata = admin.list_topics(timeout=timeout)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        reason = described.error.str() if described is not None else "not in metadata"
        raise TopicsError(f"no such topic: {topic} ({reason})")
    return len(described.partitions)


def grow_topic(bootstrap: str, topic: str, partitions: int, timeout: float = TIMEOUT) -> GrowResult:
    """Raise a topic's partition count and wait until metadata shows it.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers.
    topic : str
        Existing topic.
    partitions : int
        New total partition count; must be more than the current one.
    timeout : float
        Seconds for the request and for metadata to show the new count.

    Returns
    -------
    GrowResult
        Old and new counts.

    Raises
    ------
    TopicsError
        If the topic does not exist, ``partitions`` is not more than its count (Kafka cannot
        shrink a topic), or Kafka refuses.
    """
    admin = _admin(bootstrap)
    old = partition_count(admin, topic, timeout)
    if partitions <= old:
        raise TopicsError(
            f"{topic} has {old} partition(s); asked for {partitions}. Kafka can only add "
            "partitions, never remove them: give more than "
            f"{old}, or, to have fewer, create a new topic and replay into it "
            "(README, 'The alert buffer'). Nothing changed."
        )
    future = admin.create_partitions(
        [NewPartitions(topic, partitions)], operation_timeout=timeout, request_timeout=timeout
    )[topic]
    try:
        future.result()
    except KafkaException as exc:
        raise TopicsError(f"Kafka refused to grow {topic} to {partitions}: {exc}") from exc
    deadline = time.monotonic() + timeout
    while partition_count(admin, topic, timeout) < partitions:
        if time.monotonic() > deadline:
            raise TopicsError(f"{topic} grown, but metadata still shows fewer than {partitions}")
        time.sleep(0.1)
    return GrowResult(topic, old, partitions)


def committed_offsets(
    admin: AdminClient, group: str, topic: str, partitions: Sequence[int], timeout: float = TIMEOUT
) -> dict[int, int | None]:
    """Return a group's committed offset per partition of a topic (None where it has none)."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    result = admin.list_consumer_group_offsets([request], request_timeout=timeout)[group].result()
    out: dict[int, int | None] = {}
    for tp in result.topic_partitions:
        if tp.error is not None:
            raise KafkaException(tp.error)
        out[tp.partition] = None if tp.offset == OFFSET_INVALID or tp.offset < 0 else tp.offset
    return out


def check_group_idle(admin: AdminClient, group: str, timeout: float = TIMEOUT) -> None:
    """Raise :class:`GroupActiveError` if the group has members.

    A group that does not exist is reported as Dead by Kafka and passes.
    """
    description = admin.describe_consumer_groups([group], request_timeout=timeout)[group].result()
    if group_is_active(description.state, len(description.members)):
        clients = sorted({m.client_id for m in description.members})
        who = f" (clients: {', '.join(clients)})" if clients else ""
        raise GroupActiveError(
            f"consumer group {group} is {description.state.name} with "
            f"{len(description.members)} member(s){who}: stop its consumers first. "
            "Nothing changed."
        )


def replay(
    bootstrap: str,
    group: str,
    topic: str,
    target: ReplayTarget,
    dry_run: bool = False,
    timeout: float = TIMEOUT,
) -> ReplayResult:
    """Set a consumer group's committed offsets on every partition of a topic.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers of the cluster holding the topic and the group.
    group : str
        Consumer group; it must have no members (a group that never existed is fine).
    topic : str
        Topic whose partitions get new offsets (other topics of the group are untouched).
    target : ReplayTarget
        Where to move (see the module docstring).
    dry_run : bool
        Compute and return the plan without writing it.
    timeout : float
        Seconds per request.

    Returns
    -------
    ReplayResult
        Old and new offset per partition.

    Raises
    ------
    GroupActiveError
        If the group has members (checked first, also for a dry run; nothing is written).
    TopicsError
        If the topic does not exist or Kafka refuses the new offsets.
    """
    admin = _admin(bootstrap)
    count = partition_count(admin, topic, timeout)
    check_group_idle(admin, group, timeout)
    numbers = list(range(count))
    tps = [TopicPartition(topic, p) for p in numbers]
    earliest = _list_offsets(admin, tps, OffsetSpec.earliest())
    latest = _list_offsets(admin, tps, OffsetSpec.latest())
    at_time: dict[tuple[str, int], tuple[int, int]] = {}
    if target.kind == "datetime":
        at_time = _list_offsets(admin, tps, OffsetSpec.for_timestamp(target.timestamp_ms))
    committed = committed_offsets(admin, group, topic, numbers, timeout)
    states = []
    for p in numbers:
        found = at_time.get((topic, p), (-1, -1))[0]
        states.append(
            PartitionOffsets(
                partition=p,
                earliest=earliest[(topic, p)][0],
                latest=latest[(topic, p)][0],
                committed=committed.get(p),
                at_timestamp=found if found >= 0 else None,
            )
        )
    changes = plan_offsets(target, states)
    if not dry_run:
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, c.partition, c.new) for c in changes]
        )
        future = admin.alter_consumer_group_offsets([request], request_timeout=timeout)[group]
        try:
            result = future.result()
        except KafkaException as exc:
            raise TopicsError(
                f"Kafka refused the new offsets of group {group} (did a consumer join?): {exc}"
            ) from exc
        errors = [
            f"partition {tp.partition}: {tp.error}" for tp in result.topic_partitions if tp.error
        ]
        if errors:
            raise TopicsError(f"Kafka refused offsets of group {group}: " + "; ".join(errors))
    return ReplayResult(group, topic, target, changes, applied=not dry_run)
