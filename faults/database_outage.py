"""Scenario e: MariaDB, then Cassandra, down while candidates flow into the sinks.

Chain: the run's solar and non-solar streams (written the way ssfilter writes them: local
schema IDs, keyed by object, split by the alerts' raw fields) -> candidates -> objects ->
MariaDB sink and Cassandra sink, each ``faust -A agents.<x> worker``, on the run's own
MariaDB database and Cassandra keyspace. The sinks reach their databases through a TCP
proxy (:class:`tests.integration.faults.TcpProxy`), so that after a database comes back
the run can read what it holds before the sink can write again.

The input is fed in five slices: before, during the MariaDB outage, between, during the
Cassandra outage, after. Each outage:

1. the database is stopped (``Services.stop``) for ``--outage-seconds`` while its slice of
   alerts is fed; checked: the sink's status shows it retrying, the store unavailable;
2. meanwhile the sink's consumer group's committed offsets are read every two seconds
   (confluent-kafka ``Consumer.committed``);
3. the proxy is closed, the database started again (always, in a ``finally``) and waited
   for, the committed offsets read once more and the rows the database holds read (plain
   SQL through root's socket / CQL on the real port), then the proxy is opened;
4. checked: every row of every message below the committed offsets is in the database --
   no offset was committed past a row that was not stored.

At the end every alert must have its CandidateUpdate and candidate-object update, and both
databases exactly the expected rows; nothing dead-lettered.
"""

from __future__ import annotations

import json
import time
from typing import Any

from faults.common import (
    Feeder,
    Injected,
    Result,
    Run,
    cassandra_keys,
    committed_offsets,
    group_lag,
    make_alerts,
    mariadb_keys,
    say,
    scan,
    wait_until,
)
from faults.verify import check_chain, count_deadletters
from tests.integration.faults import TcpProxy

__all__ = ["run"]

WORKERS = ("candidates", "objects", "mariadb-sink", "cassandra-sink")


def _sink_topics(r: Run) -> list[str]:
    t = r.topics
    return [t["candidates"], t["ss_candidates"], t["annotations"], t["objects"]]


def feed(r: Run, batch: list[Injected], rate: float) -> None:
    """Write a batch of alerts into the streams at ``rate`` and wait until all are in."""
    feeder = Feeder(r.bootstrap, r.local_messages(batch), rate, name="streams")
    feeder.start()
    feeder.finish()


def rows_below(r: Run, offsets: dict[tuple[str, int], int]) -> dict[str, set]:
    """Return the rows of the sink topics' messages below the given offsets (by table)."""
    t = r.topics
    rows: dict[str, set] = {"candidates": set(), "ss_candidates": set(), "objects": set()}

    def candidates(msg: Any) -> None:
        record = json.loads(msg.value())
        rows["candidates"].add(record["candidate"]["candidate_id"])
        rows["candidates"].update(p["candidate_id"] for p in record.get("previous") or ())

    def ss_candidates(msg: Any) -> None:
        rows["ss_candidates"].add(json.loads(msg.value())["candidate"]["candidate_id"])

    def objects(msg: Any) -> None:
        rows["objects"].add(str(json.loads(msg.value())["object_id"]))

    for topic, handle in (
        (t["candidates"], candidates),
        (t["ss_candidates"], ss_candidates),
        (t["objects"], objects),
    ):
        upto = {tp: max(o, 0) for tp, o in offsets.items() if tp[0] == topic}
        scan(r.bootstrap, topic, handle, upto=upto)
    return rows


def outage(
    r: Run,
    store: str,
    proxy: TcpProxy,
    batch: list[Injected],
    seconds: float,
    result: Result,
) -> None:
    """Stop one database for ``seconds`` while ``batch`` is fed, then check the sink."""
    svc = r.svc
    sink = r.workers[f"{store}-sink"]
    group = r.group(f"{store}-sink")
    topics = _sink_topics(r)
    service = svc.mariadb() if store == "mariadb" else svc.cassandra()
    say(f"e: stopping {store}")
    svc.stop(store)
    stopped = time.monotonic()
    try:
        feeder = Feeder(
            r.bootstrap, r.local_messages(batch), max(5.0, len(batch) / max(seconds * 0.7, 1.0))
        )
        feeder.start()
        status = wait_until(
            lambda: (s := sink.status())["retries"] > 0 and not s["store_available"] and s,
            timeout=seconds + 60,
            what=f"the {store} sink to notice the outage",
            poll=0.5,
            check=r.alive,
        )
        result.check(
            True,
            f"{store} sink retrying: {status['retries']} retries, last error "
            f"{(status['last_error'] or '')[:80]}",
        )
        noticed = committed_offsets(r.bootstrap, group, topics)
        samples = []
        while time.monotonic() - stopped < seconds:
            samples.append(committed_offsets(r.bootstrap, group, topics))
            time.sleep(2.0)
        feeder.finish()
        proxy.down()
        say(f"e: {store} down {time.monotonic() - stopped:.0f} s; starting it (sink kept out)")
    finally:
        svc.start(service)
        if store == "mariadb":
            svc.wait_databases([service])
        else:
            svc.wait_ready([service])
    try:
        status = sink.status()
        final = committed_offsets(r.bootstrap, group, topics)
        held = (
            mariadb_keys(svc, r.database)
            if store == "mariadb"
            else cassandra_keys(r.settings, r.keyspace)
        )
    finally:
        proxy.up()
    say(f"e: {store} back after {time.monotonic() - stopped:.0f} s; the sink may write again")
    advanced = sum(max(final.get(tp, -1), 0) - max(o, 0) for tp, o in noticed.items())
    moved = sum(1 for a, b in zip(samples, samples[1:], strict=False) if a != b)
    below = rows_below(r, final)
    unstored = {table: below[table] - held[table] for table in below}
    result.check(
        not any(unstored.values()),
        f"{store}: committed offsets cover {sum(len(v) for v in below.values())} rows, all "
        f"stored"
        + (
            f"; NOT stored: { {t: len(v) for t, v in unstored.items() if v} }"
            if any(unstored.values())
            else ""
        ),
    )
    result.note(
        f"{store}: {status['retries']} sink retries; committed offsets read {len(samples)} "
        f"times while it was down, {advanced} more message(s) committed after the sink "
        f"noticed the outage ({moved} change(s) between reads)"
    )


def run(options: Any, settings: Any) -> Result:
    """Run scenario e; return its result."""
    result = Result("e", f"MariaDB, then Cassandra, down {options.outage_seconds:.0f} s each")
    r = Run("e", settings, keep=options.keep)
    proxies = {
        "mariadb": TcpProxy(settings.mariadb_host, settings.mariadb_port),
        "cassandra": TcpProxy(settings.cassandra_contact_points[0], settings.cassandra_port),
    }
    ok = False
    try:
        for proxy in proxies.values():
            proxy.up()
        alerts = make_alerts(options.alerts)
        result.injected = len(alerts)
        n = len(alerts)
        cuts = [round(n * f) for f in (0, 0.2, 0.45, 0.6, 0.85, 1.0)]
        before, during_m, between, during_c, after = (
            alerts[a:b] for a, b in zip(cuts, cuts[1:], strict=False)
        )
        say(f"e: prefix {r.prefix}; {n} alerts into the solar and non-solar streams")
        r.create_databases()
        r.worker("candidates")
        r.worker("objects")
        r.worker("mariadb-sink", BROKER_MARIADB_PORT=str(proxies["mariadb"].port))
        r.worker("cassandra-sink", BROKER_CASSANDRA_PORT=str(proxies["cassandra"].port))
        r.start(*WORKERS)
        rate = options.rate or 100.0
        feed(r, before, rate)
        outage(r, "mariadb", proxies["mariadb"], during_m, options.outage_seconds, result)
        feed(r, between, rate)
        outage(r, "cassandra", proxies["cassandra"], during_c, options.outage_seconds, result)
        feed(r, after, rate)
        say("e: input all in; waiting for every group to commit everything")
        groups = {
            "candidates": [r.topics["nonsolar"], r.topics["solar"]],
            "objects": [r.topics["candidates"]],
            "mariadb-sink": _sink_topics(r),
            "cassandra-sink": _sink_topics(r),
        }
        wait_until(
            lambda: not any(group_lag(r.bootstrap, r.group(g), t) for g, t in groups.items()),
            timeout=600,
            what="zero lag",
            poll=2.0,
            check=r.alive,
        )
        time.sleep(3.0)
        check_chain(r, alerts, result, stages=("candidates", "cou", "db"))
        result.deadlettered, dead = count_deadletters(r, [r.deadletter(w) for w in WORKERS])
        result.check(not result.deadlettered, f"dead letters: {dead}")
        statuses = r.statuses()
        result.check(
            all(s and s.get("store_available", True) for s in statuses.values()),
            "every worker answers at the end, both stores available",
        )
        ok = result.verdict != "FAIL"
    except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure
        result.failures.append(f"{type(exc).__name__}: {exc}")
        say(f"e: error: {exc!r}")
    finally:
        r.stop_workers()  # before the proxies close under their connections
        for proxy in proxies.values():
            proxy.close()
        r.cleanup(ok)
    return result
