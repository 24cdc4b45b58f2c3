"""The fault suite's duplicate verdicts (scenario a) fail when they should.

Hand-made per-topic counts, no server: the gateway's buffer may hold up to ``gateway_batch``
duplicates per partition per gateway kill; a topic written by a branch must hold none of its
own making (beyond its input's copies) when ``branch_transactions`` is true, and any number
passes (counted) when it is false.
"""

from __future__ import annotations

from collections import Counter

from faults.common import Result, Tally
from faults.verify import TopicReport, judge_duplicates


def report(
    role: str, writer: str, duplicates: int, worst: int | None = None, added: int | None = None
) -> TopicReport:
    return TopicReport(
        role=role,
        topic=f"fa-{role}",
        writer=writer,
        messages=100 + duplicates,
        distinct=100,
        duplicates=duplicates,
        added=duplicates if added is None else added,
        lost=0,
        worst_partition=duplicates if worst is None else worst,
    )


def test_the_gateway_buffer_may_hold_one_batch_per_partition_per_kill():
    result = Result("a", "test")
    judge_duplicates(
        [report("alerts", "gateway", 30, worst=20)],
        result,
        transactions=True,
        gateway_batch=10,
        gateway_kills=2,
    )
    assert result.failures == []


def test_more_than_that_in_one_partition_fails():
    result = Result("a", "test")
    judge_duplicates(
        [report("alerts", "gateway", 21, worst=21)],
        result,
        transactions=True,
        gateway_batch=10,
        gateway_kills=2,
    )
    assert len(result.failures) == 1 and "fa-alerts" in result.failures[0]
    assert result.verdict == "FAIL"


def test_one_duplicate_written_by_a_branch_fails_with_transactions():
    result = Result("a", "test")
    lines = judge_duplicates(
        [
            report("alerts", "gateway", 0),
            report("solar", "ssfilter", 0),
            report("candidates", "candidates", 1),
        ],
        result,
        transactions=True,
        gateway_batch=500,
        gateway_kills=1,
    )
    assert len(result.failures) == 1
    assert result.failures[0].startswith("fa-candidates (candidates): 1 dup")
    assert [line.split()[-1] for line in lines[2:]] == ["ok", "ok", "FAIL"]


def test_the_objects_branch_is_at_least_once_and_says_why():
    result = Result("a", "test")
    judge_duplicates(
        [report("cou", "objects", 3)],
        result,
        transactions=True,
        gateway_batch=500,
        gateway_kills=1,
    )
    assert result.failures == []
    assert any("fa-cou: 3 duplicate(s)" in n and "Faust table" in n for n in result.notes)


def test_a_branch_may_repeat_the_duplicates_of_its_input_with_transactions():
    result = Result("a", "test")
    judge_duplicates(
        [report("alerts", "gateway", 5), report("nonsolar", "ssfilter", 5, added=0)],
        result,
        transactions=True,
        gateway_batch=500,
        gateway_kills=1,
    )
    assert result.failures == []


def test_branch_duplicates_are_counted_not_judged_without_transactions():
    result = Result("a", "test")
    lines = judge_duplicates(
        [report("candidates", "candidates", 40)],
        result,
        transactions=False,
        gateway_batch=500,
        gateway_kills=1,
    )
    assert result.failures == [] and result.verdict == "PASS"
    assert any("fa-candidates: 40 duplicate(s)" in note for note in result.notes)
    assert lines[2].split()[-2:] == ["any", "ok"]


def test_a_lost_alert_shows_as_fail_in_the_table():
    result = Result("a", "test")
    lost = TopicReport("nonsolar", "fa-nonsolar", "ssfilter", 99, 99, 0, 0, 1, 0)
    lines = judge_duplicates([lost], result, transactions=True, gateway_batch=1, gateway_kills=1)
    assert lines[2].split()[-1] == "FAIL"


def test_duplicates_are_counted_per_partition():
    counted = Tally(
        "t",
        copies=Counter({1: 3, 2: 1, 3: 2}),
        by_partition={0: Counter({1: 3, 2: 1}), 1: Counter({3: 1}), 2: Counter({3: 1})},
    )
    assert counted.messages == 6
    assert counted.duplicates == 3  # two extra copies of 1, one of 3
    assert counted.partition_duplicates() == {0: 2, 1: 0, 2: 0}  # 3's copy is on another one
