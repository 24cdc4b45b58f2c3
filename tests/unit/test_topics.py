"""Pure parts of brokerapp.adapters.topics: time parsing, formatting, topic selection, offset plans,
the active-group rule and the DescribeLogDirs wire format (responses built by hand here)."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from confluent_kafka import ConsumerGroupState

from brokerapp.adapters.topics import (
    OffsetChange,
    PartitionInfo,
    PartitionOffsets,
    ReplayResult,
    ReplayTarget,
    TopicInfo,
    TopicsError,
    format_json,
    format_table,
    format_timestamp,
    group_is_active,
    human_bytes,
    human_duration,
    new_offset,
    parse_datetime,
    plan_offsets,
    select_topics,
    sum_log_dir_sizes,
    summarize,
    to_millis,
)

# --- --to-datetime parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07-01T22:15:00Z", datetime(2026, 7, 1, 22, 15, tzinfo=UTC)),
        ("2026-07-01T22:15:00", datetime(2026, 7, 1, 22, 15, tzinfo=UTC)),  # naive = UTC
        ("2026-07-01T23:15:00+01:00", datetime(2026, 7, 1, 22, 15, tzinfo=UTC)),
        ("2026-07-01T17:15:00-05:00", datetime(2026, 7, 1, 22, 15, tzinfo=UTC)),
        ("2026-07-01", datetime(2026, 7, 1, tzinfo=UTC)),
        ("2026-07-01 22:15:00.250", datetime(2026, 7, 1, 22, 15, 0, 250000, tzinfo=UTC)),
        ("  2026-07-01T22:15Z ", datetime(2026, 7, 1, 22, 15, tzinfo=UTC)),
    ],
)
def test_parse_datetime_gives_utc(text, expected):
    got = parse_datetime(text)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "1700000000", ""])
def test_parse_datetime_rejects_non_iso(text):
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_datetime(text)


def test_parse_datetime_rejects_before_epoch():
    # Kafka reads negative timestamps as the special "latest" (-1) and "earliest" (-2).
    with pytest.raises(ValueError, match="before 1970"):
        parse_datetime("1969-12-31T23:59:59Z")


def test_to_millis_is_exact():
    assert to_millis(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    when = datetime(2026, 7, 1, 22, 15, 0, 123000, tzinfo=UTC)
    assert to_millis(when) == 1_782_944_100_123
    assert to_millis(when.replace(tzinfo=None)) == 1_782_944_100_123
    assert to_millis(when.astimezone(timezone(timedelta(hours=9)))) == 1_782_944_100_123


def test_replay_target_at_uses_milliseconds():
    target = ReplayTarget.at(parse_datetime("1970-01-01T00:00:01.5Z"))
    assert (target.kind, target.timestamp_ms) == ("datetime", 1500)
    assert target.describe() == "first offset at or after 1970-01-01T00:00:01.500Z"


# --- formatting


def test_format_timestamp():
    assert format_timestamp(None) is None
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1_782_944_100_123) == "2026-07-01T22:15:00.123Z"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (604_800_000, "7d"),
        (86_400_000, "1d"),
        (129_600_000, "1d12h"),
        (3_600_000, "1h"),
        (90_000, "1m30s"),
        (1500, "1s500ms"),
        (604_800_001, "7d1ms"),
        (0, "0ms"),
        (-1, "forever"),
    ],
)
def test_human_duration(ms, text):
    assert human_duration(ms) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (65_900, "65.9 kB"),
        (999_949, "999.9 kB"),
        (999_950, "1.0 MB"),
        (14_500_000, "14.5 MB"),
        (1_200_000_000, "1.2 GB"),
        (3 * 10**18, "3000.0 PB"),
    ],
)
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def info(**kw):
    parts = kw.pop(
        "parts",
        (
            PartitionInfo(0, 2, 10, 1_782_944_100_000, 1_782_944_160_000),
            PartitionInfo(1, 0, 5, 1_782_944_000_000, 1_782_944_050_000),
            PartitionInfo(2, 0, 0, None, None),
        ),
    )
    args = {
        "name": "alerts",
        "partitions": parts,
        "replication_factor": 1,
        "retention_ms": 604_800_000,
        "cleanup_policy": "delete",
        "size_bytes": 123_456,
    }
    args.update(kw)
    return summarize(**args)


def test_summarize_sums_offsets_and_picks_timestamps():
    topic = info()
    assert (topic.partitions, topic.earliest, topic.latest, topic.messages) == (3, 2, 15, 13)
    # First message: earliest over the partitions' first messages; last: largest timestamp.
    assert topic.first_timestamp_ms == 1_782_944_000_000
    assert topic.last_timestamp_ms == 1_782_944_160_000
    assert [p.messages for p in topic.partition_details] == [8, 5, 0]


def test_summarize_empty_topic_has_no_timestamps():
    topic = info(parts=(PartitionInfo(0, 7, 7, None, None),))
    assert topic.messages == 0
    assert topic.first_timestamp_ms is None and topic.last_timestamp_ms is None


def test_format_table_shows_every_column():
    empty = info(name="empty", parts=(PartitionInfo(0, 0, 0, None, None),), retention_ms=-1)
    lines = format_table([info(), empty]).splitlines()
    assert lines[0].split()[:3] == ["topic", "parts", "rf"]
    row = lines[1].split()
    assert row[:12] == [
        "alerts",
        "3",
        "1",
        "604800000",
        "(7d)",
        "delete",
        "123.5",
        "kB",
        "2",
        "15",
        "13",
        "2026-07-01T22:13:20.000Z",
    ]
    assert row[12] == "2026-07-01T22:16:00.000Z"
    assert lines[2].split()[3:5] == ["-1", "(forever)"]
    assert lines[2].split()[-2:] == ["-", "-"]
    # Columns are aligned: every line has the header's "parts" column ending at one place.
    end = lines[0].index("parts") + len("parts")
    assert all(line[end - 1] != " " for line in lines)


def test_format_json_has_raw_and_human_values():
    (out,) = json.loads(format_json([info()]))
    assert out["name"] == "alerts"
    assert (out["partitions"], out["replication_factor"]) == (3, 1)
    assert (out["retention_ms"], out["retention"]) == (604_800_000, "7d")
    assert (out["size_bytes"], out["size"]) == (123_456, "123.5 kB")
    assert (out["earliest"], out["latest"], out["messages"]) == (2, 15, 13)
    assert out["first_timestamp"] == "2026-07-01T22:13:20.000Z"
    assert out["last_timestamp_ms"] == 1_782_944_160_000
    assert [p["messages"] for p in out["partition_details"]] == [8, 5, 0]
    assert list(out)[-1] == "partition_details"


# --- topic selection


NAMES = [
    "alerts",
    "__consumer_offsets",
    "_schemas",
    "ztf_20260701_programid1",
    "gateway-deadletter",
]


def test_select_hides_internal_topics_unless_all():
    assert select_topics(NAMES) == ["alerts", "gateway-deadletter", "ztf_20260701_programid1"]
    assert select_topics(NAMES, include_internal=True) == sorted(NAMES)


def test_select_by_pattern_and_names():
    assert select_topics(NAMES, pattern="^ztf_") == ["ztf_20260701_programid1"]
    assert select_topics(NAMES, pattern="offsets") == []
    assert select_topics(NAMES, pattern="offsets", include_internal=True) == ["__consumer_offsets"]
    assert select_topics(NAMES, ["alerts"]) == ["alerts"]
    # A named internal topic is shown without --all; names and pattern add up.
    assert select_topics(NAMES, ["_schemas"], pattern="dead") == [
        "_schemas",
        "gateway-deadletter",
    ]


def test_select_unknown_topic_is_an_error():
    with pytest.raises(TopicsError, match="no such topic: nope"):
        select_topics(NAMES, ["alerts", "nope"])


# --- offset plans


def part(partition=0, earliest=10, latest=50, committed=30, at_timestamp=None):
    return PartitionOffsets(partition, earliest, latest, committed, at_timestamp)


def test_earliest_and_latest():
    assert new_offset(ReplayTarget.earliest(), part()) == 10
    assert new_offset(ReplayTarget.latest(), part()) == 50
    assert new_offset(ReplayTarget.earliest(), part(committed=None)) == 10


def test_datetime_goes_to_found_offset_else_latest():
    target = ReplayTarget("datetime", timestamp_ms=1000)
    assert new_offset(target, part(at_timestamp=17)) == 17
    assert new_offset(target, part(at_timestamp=None)) == 50


@pytest.mark.parametrize(
    ("committed", "shift", "expected"),
    [
        (30, -5, 25),
        (30, -20, 10),  # exactly to earliest
        (30, -21, 10),  # clamped to earliest
        (30, 5, 35),
        (30, 20, 50),
        (30, 1000, 50),  # clamped to latest
        (30, 0, 30),
        (5, 0, 10),  # committed offset already deleted by retention: clamped up
        (None, -5, 10),  # no committed offset: taken as at earliest
        (None, 5, 15),
        (None, 100, 50),
    ],
)
def test_shift_by_clamps(committed, shift, expected):
    assert new_offset(ReplayTarget.shift_by(shift), part(committed=committed)) == expected


def test_unknown_target_is_an_error():
    with pytest.raises(ValueError, match="unknown replay target"):
        new_offset(ReplayTarget("sideways"), part())


def test_plan_covers_every_partition_in_order():
    plan = plan_offsets(
        ReplayTarget.shift_by(-3),
        [part(2, 0, 4, 4), part(0, 0, 9, None), part(1, 3, 8, 5)],
    )
    assert plan == (
        OffsetChange(0, None, 0, 0, 9),
        OffsetChange(1, 5, 3, 3, 8),
        OffsetChange(2, 4, 1, 0, 4),
    )


def test_replay_lines():
    result = ReplayResult(
        "branch",
        "alerts",
        ReplayTarget.shift_by(-3),
        (OffsetChange(0, None, 0, 0, 9), OffsetChange(1, 5, 3, 3, 8)),
        applied=False,
    )
    assert result.lines() == [
        "group branch on alerts: shift by -3 (dry run, nothing changed)",
        "  partition 0: - -> 0  [earliest 0, latest 9]",
        "  partition 1: 5 -> 3 (-2)  [earliest 3, latest 8]",
    ]


# --- active groups


@pytest.mark.parametrize(
    ("state", "members", "active"),
    [
        (ConsumerGroupState.EMPTY, 0, False),
        (ConsumerGroupState.DEAD, 0, False),
        (ConsumerGroupState.STABLE, 1, True),
        (ConsumerGroupState.PREPARING_REBALANCING, 0, True),
        (ConsumerGroupState.COMPLETING_REBALANCING, 2, True),
        (ConsumerGroupState.UNKNOWN, 0, True),
        (ConsumerGroupState.EMPTY, 1, True),
    ],
)
def test_group_is_active(state, members, active):
    assert group_is_active(state, members) is active


# --- DescribeLogDirs answers (kafka-python's describe_log_dirs, one per broker)


def answer(broker, dirs):
    return {
        "broker": broker,
        "log_dirs": [
            {
                "error_code": error,
                "log_dir": path,
                "topics": [
                    {
                        "name": name,
                        "partitions": [
                            {
                                "partition_index": partition,
                                "partition_size": size,
                                "offset_lag": 0,
                                "is_future_key": future,
                            }
                            for partition, size, future in parts
                        ],
                    }
                    for name, parts in topics.items()
                ],
                "total_bytes": 1 << 40,
                "usable_bytes": 1 << 39,
            }
            for error, path, topics in dirs
        ],
    }


def test_log_dir_sizes_sum_over_directories_and_brokers():
    answers = [
        answer(
            1,
            [
                (
                    0,
                    "/data/a",
                    {"alerts": [(0, 1000, False), (1, 20, False)], "other": [(0, 5, False)]},
                ),
                # A replica being moved to another directory is on disk twice while it moves.
                (0, "/data/b", {"alerts": [(0, 300, True)]}),
            ],
        ),
        # A second replica on another broker counts too.
        answer(2, [(0, "/data/c", {"alerts": [(1, 7, False)]})]),
    ]
    sizes = sum_log_dir_sizes(answers)
    assert sizes == {("alerts", 0): 1300, ("alerts", 1): 27, ("other", 0): 5}


def test_log_dir_errors_are_reported():
    with pytest.raises(TopicsError, match="broker 3 log directory /data/bad: KAFKA_STORAGE_ERROR"):
        sum_log_dir_sizes([answer(3, [(56, "/data/bad", {})])])


def test_topic_info_is_a_value():
    a = TopicInfo("t", 1, 1, 1, "delete", 0, 0, 0, None, None)
    assert a == TopicInfo("t", 1, 1, 1, "delete", 0, 0, 0, None, None)
    assert a.messages == 0
