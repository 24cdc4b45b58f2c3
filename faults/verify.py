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
``db``
    MariaDB and Cassandra: the exact key sets :func:`faults.common.expected_rows` gives.

An alert is *processed* when it is found in every stage checked, *lost* otherwise; extra
copies in the topics are *duplicated* (at least once allows them). Expected database rows
missing (e.g. previous detections) are failures too.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from faults.common import (
    AlertIds,
    Injected,
    Result,
    Run,
    cassandra_keys,
    compare_rows,
    expected_objects,
    expected_rows,
    mariadb_keys,
    object_rows,
    say,
    scan,
    tally_alerts,
    tally_json,
)

__all__ = ["STAGES", "check_chain", "count_deadletters"]

STAGES = ("alerts", "split", "candidates", "cou", "db")


def _dups(copies: Counter) -> int:
    return sum(n - 1 for n in copies.values() if n > 1)


def check_chain(
    run: Run,
    alerts: list[Injected],
    result: Result,
    stages: tuple[str, ...] = STAGES,
    bootstrap: str | None = None,
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

    def stage(name: str, copies: Counter, want: set[int], topic: str) -> None:
        nonlocal duplicated
        lost = want - set(copies)
        foreign = set(copies) - set(by_id)
        missing.update(lost)
        duplicated += _dups(copies)
        result.check(
            not lost and not foreign,
            f"{name}: {len(want) - len(lost)}/{len(want)} alerts in {topic}"
            + (f", {len(lost)} missing (e.g. {sorted(lost)[:3]})" if lost else "")
            + (f", {len(foreign)} not injected" if foreign else "")
            + f", {_dups(copies)} duplicate(s)",
        )

    if "alerts" in stages:
        say(f"reading {t['alerts']}")
        copies, bad = tally_alerts(bootstrap, t["alerts"], ids)
        stage("alerts", copies, set(by_id), t["alerts"])
        result.check(bad == 0, f"alerts: {bad} undecodable message(s) in the buffer")
    if "split" in stages:
        say(f"reading {t['solar']} and {t['nonsolar']}")
        in_solar, bad_s = tally_alerts(bootstrap, t["solar"], ids)
        in_nonsolar, bad_n = tally_alerts(bootstrap, t["nonsolar"], ids)
        stage("split/solar", in_solar, solar, t["solar"])
        stage("split/nonsolar", in_nonsolar, nonsolar, t["nonsolar"])
        wrong = (set(in_solar) & nonsolar) | (set(in_nonsolar) & solar)
        result.check(
            not wrong and not bad_s and not bad_n,
            f"split: {len(wrong)} alert(s) in the wrong stream, "
            f"{bad_s + bad_n} undecodable message(s)",
        )
    if "candidates" in stages:
        say(f"reading {t['candidates']} and {t['ss_candidates']}")
        cands = tally_json(bootstrap, t["candidates"], lambda r: r["alert_id"])
        ss = tally_json(bootstrap, t["ss_candidates"], lambda r: r["alert_id"])
        stage("candidates", cands, nonsolar, t["candidates"])
        stage("ss-candidates", ss, solar, t["ss_candidates"])
    if "cou" in stages:
        say(f"reading {t['cou']}")
        cou = tally_json(bootstrap, t["cou"], lambda r: r["candidate"]["alert_id"])
        stage("objects", cou, nonsolar, t["cou"])
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
