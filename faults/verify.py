"""Read a run's outputs back and compare them, alert by alert, with what was injected.

Each stage is read in full (every message of its topics up to their current ends):

``alerts``
    The local buffer: every injected alert, decoded with the registry's schema.
``split``
    ssfilter's streams: each alert in the stream its raw fields say, never in the other.
``candidates``
    One CandidateUpdate per alert (``alert_id``), non-solar and solar topics.
``cou``
    The objects worker's candidate-object updates (``candidate.alert_id``), non-solar only.
``objects-topic``
    The objects worker's ObjectUpdates (``alert_id``, the alert that led to each), non-solar
    only (a compacted topic, but its active segment is never compacted during a run).
``db``
    MariaDB and Cassandra: the exact key sets :func:`faults.common.expected_rows` gives.

Topics are read with ``isolation.level=read_committed`` (:func:`faults.common.scan`): what a
downstream consumer sees, without the messages of aborted transactions.

An alert is *processed* when it is found in every stage checked, *lost* otherwise; extra
copies in the topics are *duplicated*. Each topic read gets a :class:`TopicReport` (messages,
distinct IDs, duplicates, lost); this module counts duplicates and the scenario judges them
(:func:`judge_duplicates`). Expected database rows missing (e.g. previous detections) are
failures too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from faults.common import (
    AlertIds,
    Injected,
    Result,
    Run,
    Tally,
    cassandra_keys,
    compare_rows,
    expected_objects,
    expected_rows,
    mariadb_keys,
    object_rows,
    say,
    scan,
    tally,
)

__all__ = [
    "STAGES",
    "WRITERS",
    "TopicReport",
    "check_chain",
    "count_deadletters",
    "judge_duplicates",
    "topic_table",
]

STAGES = ("alerts", "split", "candidates", "cou", "objects-topic", "db")
#: Topic role (a key of ``Run.topics``) -> the worker that writes it.
WRITERS = {
    "alerts": "gateway",
    "solar": "ssfilter",
    "nonsolar": "ssfilter",
    "candidates": "candidates",
    "ss_candidates": "candidates",
    "cou": "objects",
    "objects": "objects",
}
#: Topic role -> the roles of its writer's input topics (copies of an alert there may be
#: copied on: a branch that is exactly once still repeats its input's duplicates).
INPUTS = {
    "solar": ("alerts",),
    "nonsolar": ("alerts",),
    "candidates": ("solar", "nonsolar"),
    "ss_candidates": ("solar", "nonsolar"),
    "cou": ("candidates",),
    "objects": ("candidates",),
}
#: The writers that read another cluster (their input offsets cannot join a local
#: transaction, so they stay at least once).
FROM_OTHER_CLUSTER = frozenset({"gateway"})
#: Local writers still at least once, with the reason (the README lists them too).
AT_LEAST_ONCE = {
    "objects": "its history is a Faust table, whose changelog Faust writes outside the "
    "branch's transaction, so it still runs as a Faust agent: at least once",
}


@dataclass(frozen=True)
class TopicReport:
    """What one output topic holds, against what it should.

    Attributes
    ----------
    role : str
        Its key in ``Run.topics`` (``alerts``, ``solar``, ...).
    topic : str
        Its name.
    writer : str
        The worker that writes it.
    messages : int
        Messages read (committed only).
    distinct : int
        Distinct IDs among them (alert IDs).
    duplicates : int
        ``messages - distinct`` (undecodable messages aside).
    added : int
        Copies beyond those of the writer's input: per ID, the copies here minus the copies
        in its input topics (:data:`INPUTS`; one each when they were not read), if more.
        Duplicates the writer made itself (all of them for the gateway).
    lost : int
        Expected IDs not found.
    worst_partition : int
        Most duplicates within one partition.
    """

    role: str
    topic: str
    writer: str
    messages: int
    distinct: int
    duplicates: int
    added: int
    lost: int
    worst_partition: int

    @property
    def local(self) -> bool:
        """Whether its writer reads the local cluster (so can write exactly once)."""
        return self.writer not in FROM_OTHER_CLUSTER


def check_chain(
    run: Run,
    alerts: list[Injected],
    result: Result,
    stages: tuple[str, ...] = STAGES,
    bootstrap: str | None = None,
    reports: list[TopicReport] | None = None,
) -> set[int]:
    """Check the stages' outputs against the injected alerts; fill ``result``.

    Parameters
    ----------
    run : Run
        The scenario's run (topics, database, keyspace).
    alerts : list of Injected
        What was injected (and must come out).
    result : Result
        Gets processed, lost, duplicated counts and failed checks.
    stages : tuple of str
        Which of :data:`STAGES` to check.
    bootstrap : str, optional
        Cluster of the local topics (default the run's).
    reports : list of TopicReport, optional
        Gets one report per topic read.

    Returns
    -------
    set of int
        IDs of the alerts missing from some stage.
    """
    bootstrap = bootstrap or run.bootstrap
    t = run.topics
    by_id = {a.alert_id: a for a in alerts}
    solar = {a.alert_id for a in alerts if a.solar}
    nonsolar = set(by_id) - solar
    missing: set[int] = set()
    duplicated = 0
    ids = AlertIds(run.settings.registry_url)

    def alert_id(msg: Any) -> int | None:
        return ids.alert_id(msg.value())

    def json_id(path: tuple[str, ...]) -> Any:
        def read(msg: Any) -> Any:
            record = json.loads(msg.value())
            for name in path:
                record = record[name]
            return record

        return read

    read: dict[str, Counter] = {}

    def added_copies(role: str, copies: Counter) -> int:
        inputs = [read[r] for r in INPUTS.get(role, ()) if r in read]
        if not inputs:
            return sum(n - 1 for n in copies.values() if n > 1)
        return sum(max(0, n - max(1, sum(c[i] for c in inputs))) for i, n in copies.items())

    def stage(name: str, role: str, counted: Tally, want: set[int]) -> None:
        nonlocal duplicated
        copies = counted.copies
        read[role] = copies
        lost = want - set(copies)
        foreign = set(copies) - set(by_id)
        missing.update(lost)
        duplicated += counted.duplicates
        per_partition = counted.partition_duplicates()
        if reports is not None:
            reports.append(
                TopicReport(
                    role=role,
                    topic=counted.topic,
                    writer=WRITERS[role],
                    messages=counted.messages,
                    distinct=len(copies),
                    duplicates=counted.duplicates,
                    added=added_copies(role, copies),
                    lost=len(lost),
                    worst_partition=max(per_partition.values(), default=0),
                )
            )
        result.check(
            not lost and not foreign,
            f"{name}: {len(want) - len(lost)}/{len(want)} alerts in {counted.topic}"
            + (f", {len(lost)} missing (e.g. {sorted(lost)[:3]})" if lost else "")
            + (f", {len(foreign)} not injected" if foreign else "")
            + f", {counted.duplicates} duplicate(s)",
        )

    if "alerts" in stages:
        say(f"reading {t['alerts']}")
        buffer = tally(bootstrap, t["alerts"], alert_id)
        stage("alerts", "alerts", buffer, set(by_id))
        result.check(
            buffer.undecodable == 0,
            f"alerts: {buffer.undecodable} undecodable message(s) in the buffer",
        )
    if "split" in stages:
        say(f"reading {t['solar']} and {t['nonsolar']}")
        in_solar = tally(bootstrap, t["solar"], alert_id)
        in_nonsolar = tally(bootstrap, t["nonsolar"], alert_id)
        stage("split/solar", "solar", in_solar, solar)
        stage("split/nonsolar", "nonsolar", in_nonsolar, nonsolar)
        wrong = (set(in_solar.copies) & nonsolar) | (set(in_nonsolar.copies) & solar)
        bad = in_solar.undecodable + in_nonsolar.undecodable
        result.check(
            not wrong and not bad,
            f"split: {len(wrong)} alert(s) in the wrong stream, {bad} undecodable message(s)",
        )
    if "candidates" in stages:
        say(f"reading {t['candidates']} and {t['ss_candidates']}")
        cands = tally(bootstrap, t["candidates"], json_id(("alert_id",)))
        ss = tally(bootstrap, t["ss_candidates"], json_id(("alert_id",)))
        stage("candidates", "candidates", cands, nonsolar)
        stage("ss-candidates", "ss_candidates", ss, solar)
    if "cou" in stages:
        say(f"reading {t['cou']}")
        cou = tally(bootstrap, t["cou"], json_id(("candidate", "alert_id")))
        stage("objects", "cou", cou, nonsolar)
    if "objects-topic" in stages:
        say(f"reading {t['objects']}")
        updates = tally(bootstrap, t["objects"], json_id(("alert_id",)))
        stage("objects-topic", "objects", updates, nonsolar)
    if "db" in stages:
        want = expected_rows(alerts)
        for store, keys in (
            ("mariadb", lambda: mariadb_keys(run.svc, run.database)),
            ("cassandra", lambda: cassandra_keys(run.settings, run.keyspace)),
        ):
            say(f"reading the {store} tables")
            got = keys()
            compare_rows(store, got, want, result)
            for alert in alerts:
                own = got["ss_candidates" if alert.solar else "candidates"]
                if alert.alert_id not in own or (
                    not alert.solar and alert.object_id not in got["objects"]
                ):
                    missing.add(alert.alert_id)
    if "db" in stages:
        want_objects = expected_objects(alerts, run.settings.history_length)
        rows = object_rows(run.svc, run.database, run.keyspace)
        for store, have in rows.items():
            wrong = {
                obj: (have.get(obj), want)
                for obj, want in want_objects.items()
                if have.get(obj) != want
            }
            result.check(
                not wrong,
                f"{store}.objects: n_detections and latest_candidate_id of "
                f"{len(want_objects) - len(wrong)}/{len(want_objects)} objects as expected"
                + (f"; wrong e.g. {list(wrong.items())[:2]} (got, want)" if wrong else ""),
            )
    result.processed = len(by_id) - len(missing)
    result.lost += len(missing)
    result.duplicated += duplicated
    return missing


def count_deadletters(run: Run, topics: list[str], bootstrap: str | None = None) -> tuple[int, str]:
    """Read dead-letter topics; return the number of messages and a summary with reasons."""
    counts: Counter = Counter()
    reasons: Counter = Counter()

    def handle(msg: Any, topic: str) -> None:
        counts[topic] += 1
        reason = dict(msg.headers() or []).get("error-reason", b"(no error-reason)")
        reasons[reason.decode(errors="replace")[:160]] += 1

    for topic in topics:
        scan(bootstrap or run.bootstrap, topic, lambda m, t=topic: handle(m, t))
    total = sum(counts.values())
    if not total:
        return 0, "none"
    where = ", ".join(f"{t}: {n}" for t, n in counts.items())
    why = "; ".join(f"{n}x {reason}" for reason, n in reasons.most_common(3))
    return total, f"{where} -- {why}"


def judge_duplicates(
    reports: list[TopicReport],
    result: Result,
    transactions: bool,
    gateway_batch: int,
    gateway_kills: int,
) -> list[str]:
    """Judge each topic's duplicates; record the checks; return the per-topic table.

    The gateway reads another cluster, so its ``alerts`` buffer stays at least once: each
    kill may re-mirror one batch, so a partition may hold up to ``gateway_batch`` duplicates
    per gateway kill. A topic written by a branch that reads local topics must hold no
    duplicate of its own making (``added``: copies beyond those of its input, which an exactly
    once branch repeats) when ``transactions`` (``Settings.branch_transactions``) is true;
    when it is false the branches are at least once and duplicates are counted, not judged.
    Losses are judged by :func:`check_chain` (always a failure).

    Parameters
    ----------
    reports : list of TopicReport
        From :func:`check_chain`.
    result : Result
        Gets one check per topic.
    transactions : bool
        Whether the branch workers ran with ``branch_transactions``.
    gateway_batch : int
        The gateway's ``gateway_batch``.
    gateway_kills : int
        Times the gateway was killed.

    Returns
    -------
    list of str
        The table: one line per topic, after a header.
    """
    rows = []
    for report in reports:
        if not report.local:
            allowed = gateway_batch * gateway_kills
            ok = report.worst_partition <= allowed
            limit = f"<= {allowed}/partition"
            why = f"at least once: {gateway_batch} per partition per kill, {gateway_kills} kill(s)"
        elif transactions and report.writer in AT_LEAST_ONCE:
            ok = True
            limit = "any"
            why = AT_LEAST_ONCE[report.writer]
        elif transactions:
            ok = report.added == 0
            limit = "0 added"
            why = "branch_transactions: exactly once inside the local cluster"
        else:
            ok = True
            limit = "any"
            why = "branch_transactions false: at least once, duplicates counted only"
        if report.local and (not transactions or report.writer in AT_LEAST_ONCE):
            result.note(
                f"{report.topic}: {report.duplicates} duplicate(s), {report.added} added by "
                f"{report.writer} ({why})"
            )
        elif report.local:
            result.check(
                ok,
                f"{report.topic} ({report.writer}): {report.duplicates} duplicate(s), "
                f"{report.added} of them added by {report.writer} beyond its input's copies, "
                f"allowed {limit} ({why})",
            )
        else:
            result.check(
                ok,
                f"{report.topic} ({report.writer}): {report.duplicates} duplicate(s), "
                f"{report.worst_partition} at most in one partition, allowed {limit} ({why})",
            )
        rows.append(
            (
                report.role,
                report.writer,
                str(report.messages),
                str(report.distinct),
                str(report.duplicates),
                str(report.added),
                str(report.worst_partition),
                str(report.lost),
                limit,
                "ok" if ok and not report.lost else "FAIL",
            )
        )
    return topic_table(rows)


def topic_table(rows: list[tuple[str, ...]]) -> list[str]:
    """Format per-topic rows (see :func:`judge_duplicates`) as aligned lines under a header."""
    header = (
        "topic",
        "written by",
        "messages",
        "distinct IDs",
        "duplicates",
        "added here",
        "most in a partition",
        "lost",
        "allowed duplicates",
        "verdict",
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        text = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
        text += [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(text)

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]
