"""Scenario a: ``kill -9`` each worker of the chain in turn, mid-stream, and restart it.

The chain, every stage a ``faust -A agents.<x> worker`` process on this run's names::

    upstream daily topics (ZTF containers, LSST Confluent framing with an upstream ID)
      -> gateway -> alerts -> ssfilter -> solar / nonsolar -> candidates
      -> candidates, ss-candidates -> objects -> candidate-object-updates, objects
      -> MariaDB sink, Cassandra sink

While the upstream is fed at a steady rate, each worker in turn (gateway, ssfilter,
candidates, objects, MariaDB sink, Cassandra sink) is killed with SIGKILL once it is busy,
left dead for ``DEAD_SECONDS`` while the stream goes on, and started again with the same
identity (static membership: it gets its partitions back without waiting for a session
time-out). When the input is all in, the run waits until every consumer group has committed
everything, then reads every stage back (:func:`faults.verify.check_chain`, committed
messages only: ``isolation.level=read_committed``): every injected alert in ``alerts``, in
exactly one of the solar/non-solar streams (the one its raw fields say), a CandidateUpdate,
a candidate-object update and an ObjectUpdate for each, and exactly the expected rows in
both databases. A loss anywhere fails.

Duplicates are judged per output topic (:func:`faults.verify.judge_duplicates`), and a table
of every topic (messages, distinct alert IDs, duplicates, most duplicates in one partition,
lost) is printed: the ``alerts`` buffer, which the gateway writes from another cluster, may
hold up to ``gateway_batch`` duplicates per partition per gateway kill (at least once); every
topic written by a branch that reads the local cluster must hold no more copies of an alert
than the branch's input topics (it repeats the gateway's duplicates, adds none) when
``branch_transactions`` is true (its outputs and input offsets commit in one transaction),
and may hold any when it is false (at least once).
"""

from __future__ import annotations

import time
from typing import Any

from faults.common import (
    Feeder,
    Result,
    Run,
    group_lag,
    make_alerts,
    say,
    wait_until,
)
from faults.verify import TopicReport, check_chain, count_deadletters, judge_duplicates

__all__ = ["ORDER", "run"]

#: The workers, in the order they are killed.
ORDER = ("gateway", "ssfilter", "candidates", "objects", "mariadb-sink", "cassandra-sink")
#: Seconds a killed worker stays dead while the stream goes on.
DEAD_SECONDS = 2.0
#: Seconds the input is spread over (unless ``--rate`` is given); kills go on, round after
#: round, while it is being fed (each worker is killed at least once).
FEED_SECONDS = 45.0


def progress(status: dict | None) -> int:
    """Return what a worker has done so far: alerts mirrored (gateway) or messages received."""
    if not status:
        return -1
    return int(status.get("mirrored", status.get("received", 0)))


def inputs(run: Run) -> dict[str, tuple[str, list[str], str]]:
    """Worker -> (consumer group, its input topics, cluster)."""
    t = run.topics
    sink_inputs = [t["candidates"], t["ss_candidates"], t["annotations"], t["objects"]]
    return {
        "gateway": (run.group("gateway"), list(run.upstream.values()), "upstream"),
        "ssfilter": (run.group("ssfilter"), [t["alerts"]], "local"),
        "candidates": (run.group("candidates"), [t["nonsolar"], t["solar"]], "local"),
        "objects": (run.group("objects"), [t["candidates"]], "local"),
        "mariadb-sink": (run.group("mariadb-sink"), sink_inputs, "local"),
        "cassandra-sink": (run.group("cassandra-sink"), sink_inputs, "local"),
    }


def lags(run: Run) -> dict[str, int]:
    """Uncommitted input messages of every worker's consumer group."""
    out = {}
    for name, (group, topics, cluster) in inputs(run).items():
        bootstrap = run.settings.upstream_feed_bootstrap if cluster == "upstream" else run.bootstrap
        out[name] = group_lag(bootstrap, group, topics)
    return out


def kill_and_restart(
    run: Run, name: str, feeder: Feeder, result: Result, interrupted: set[str]
) -> bool:
    """Kill one worker with SIGKILL once it is busy, then restart it; False if it was idle.

    ``interrupted`` gets the worker's name when its group had uncommitted input at the kill
    (the kill interrupted work in hand, which is what the scenario tests).
    """
    worker = run.workers[name]
    before = progress(worker.status())
    # Busy: it has taken at least a few more messages since we looked.
    try:
        wait_until(
            lambda: progress(worker.status()) >= before + 5,
            timeout=180 if feeder.is_alive() else 20,
            what=f"{name} to process input",
            poll=0.2,
            check=run.alive,
        )
    except TimeoutError:
        result.note(f"{name} idle (input all processed): not killed again")
        return False
    at_kill = progress(worker.status())
    group, topics, cluster = inputs(run)[name]
    bootstrap = run.settings.upstream_feed_bootstrap if cluster == "upstream" else run.bootstrap
    worker.kill()
    lag = group_lag(bootstrap, group, topics)
    say(
        f"a: killed {name} (SIGKILL) after {at_kill} messages; {lag} uncommitted input "
        f"message(s); upstream {feeder.sent}/{len(feeder.messages)} sent"
    )
    if lag == 0:
        result.note(f"{name} had no uncommitted input when killed")
    else:
        interrupted.add(name)
    time.sleep(DEAD_SECONDS)
    started = time.monotonic()
    worker.start()
    wait_until(
        lambda: progress(worker.status()) > 0 or feeder.sent >= len(feeder.messages),
        timeout=180,
        what=f"{name} to process again after its restart",
        poll=0.2,
        check=run.alive,
    )
    took = time.monotonic() - started
    if progress(worker.status()) > 0:
        say(f"a: {name} restarted, processing again after {took:.1f} s")
    else:
        say(f"a: {name} restarted after {took:.1f} s (nothing left for it yet)")
    return True


def run(options: Any, settings: Any) -> Result:
    """Run scenario a; return its result."""
    result = Result("a", "kill -9 each worker in turn, mid-stream")
    r = Run("a", settings, keep=options.keep)
    ok = False
    try:
        alerts = make_alerts(options.alerts)
        result.injected = len(alerts)
        rate = options.rate or max(10.0, len(alerts) / FEED_SECONDS)
        say(f"a: prefix {r.prefix}; {len(alerts)} alerts upstream at {rate:.0f}/s")
        r.create_upstream()
        messages = r.upstream_messages(alerts, r.register_upstream_lsst())
        r.create_databases()
        for name in ORDER:
            r.worker(name)
        r.start(*ORDER)
        feeder = Feeder(settings.upstream_feed_bootstrap, messages, rate, name="upstream")
        feeder.start()
        kills: list[str] = []
        interrupted: set[str] = set()
        for name in ORDER:  # every worker once, whatever happens
            if kill_and_restart(r, name, feeder, result, interrupted):
                kills.append(name)
        while feeder.is_alive():  # more rounds while the input is still coming
            for name in ORDER:
                if not feeder.is_alive():
                    break
                if kill_and_restart(r, name, feeder, result, interrupted):
                    kills.append(name)
        feeder.finish()
        result.check(
            set(kills) == set(ORDER),
            f"{len(kills)} kill -9 mid-stream: "
            + ", ".join(f"{n} x{kills.count(n)}" for n in ORDER),
        )
        result.check(
            interrupted == set(ORDER),
            "every worker killed at least once with uncommitted input in hand"
            + (f"; never: {sorted(set(ORDER) - interrupted)}" if interrupted != set(ORDER) else ""),
        )
        say("a: input all delivered upstream; waiting for every group to commit everything")
        last: dict[str, int] = {}

        def drained() -> bool:
            last.update(lags(r))
            return not any(last.values())

        try:
            wait_until(drained, timeout=600, what="zero lag", poll=2.0, check=r.alive)
        except TimeoutError:
            result.check(False, f"every group committed everything (lags {last})")
        time.sleep(3.0)  # the sinks' last batches are stored before their offsets commit
        reports: list[TopicReport] = []
        check_chain(r, alerts, result, reports=reports)
        say(
            f"a: duplicates per topic (branch_transactions {settings.branch_transactions}, "
            f"gateway_batch {settings.gateway_batch}, gateway killed {kills.count('gateway')}x)"
        )
        for line in judge_duplicates(
            reports,
            result,
            transactions=settings.branch_transactions,
            gateway_batch=settings.gateway_batch,
            gateway_kills=kills.count("gateway"),
        ):
            result.note(line)
        result.deadlettered, dead = count_deadletters(
            r,
            [r.topics["gateway-deadletter"]]
            + [r.deadletter(n) for n in ("ssfilter", "candidates", "objects")]
            + [r.deadletter(n) for n in ("mariadb-sink", "cassandra-sink")],
        )
        result.check(not result.deadlettered, f"dead letters: {dead}")
        statuses = r.statuses()
        result.check(
            all(statuses.values()),
            "every worker answers at the end: "
            + ", ".join(f"{n} {'up' if s else 'DOWN'}" for n, s in statuses.items()),
        )
        ok = result.verdict != "FAIL"
    except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure
        result.failures.append(f"{type(exc).__name__}: {exc}")
        say(f"a: error: {exc}")
    finally:
        r.cleanup(ok)
    return result
