"""Scenario b: one broker of a three-broker cluster killed mid-run, then brought back.

A separate cluster (``brokerapp services``' three-broker layout on ports ``BASE_PORT``,
``BASE_PORT + 2``, ``BASE_PORT + 4``, its own home folder with ``lib`` linked to the
services' jars, so the shared single-broker cluster is untouched) plays the local cluster.
The run's topics are created on it beforehand with replication factor 3 and
``min.insync.replicas`` 2 (the cluster's defaults; checked): the buffer, the gateway's dead
letters, schema-ID topic and table changelog, ssfilter's two streams and dead letters.

The gateway mirrors the run's upstream daily topics (the shared upstream cluster) into it and
ssfilter splits the buffer, both ``faust -A agents.<x> worker`` processes with the three
brokers as bootstrap. While the upstream is fed, the broker leading most of the run's
partitions is killed with SIGKILL, left down for ``DOWN_SECONDS``, and started again. Checks:
both workers went on mirroring and splitting while it was down (producers and consumers
carry on), every alert is in the buffer and in exactly its solar/non-solar stream, nothing
dead-lettered, and every partition is back to three in-sync replicas. The kill itself is
checked, not assumed: the broker's process is gone, and while it is down every partition it
holds a replica of has it out of its in-sync replicas (the ISR shrinks once the controller
notices, within the broker session time-out, which ``DOWN_SECONDS`` exceeds). Topics the
workers created themselves are listed with their replication factor.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections import Counter
from typing import Any

from confluent_kafka.admin import AdminClient, ConfigResource

from brokerapp.adapters.kafka_admin import ensure_topics
from brokerapp.model.settings import load_settings
from brokerapp.runtime.branch import OUTPUT_TOPIC_CONFIG
from brokerapp.runtime.topic_config import alerts_topic_config
from brokerapp.tools.services import Services
from faults.common import (
    MAX_BYTES,
    Feeder,
    Result,
    Run,
    group_lag,
    make_alerts,
    say,
    wait_until,
)
from faults.verify import check_chain, count_deadletters

__all__ = ["BASE_PORT", "run"]

#: First broker port of the three-broker cluster (test_cluster.py uses 9392).
BASE_PORT = 9492
#: Seconds the killed broker stays down (longer than KRaft's 9 s broker session time-out,
#: so the controller moves its partitions' leadership while it is away).
DOWN_SECONDS = 25.0
#: Seconds the input is spread over.
FEED_SECONDS = 60.0


def _topics(r: Run) -> dict[str, tuple[int, dict[str, str]]]:
    """Topics made beforehand: name -> (partitions, config)."""
    alerts = alerts_topic_config(-1, MAX_BYTES)
    compact = {"cleanup.policy": "compact"}
    out = {
        r.topics["alerts"]: (4, alerts),
        r.topics["gateway-deadletter"]: (1, alerts),
        r.topics["solar"]: (4, dict(OUTPUT_TOPIC_CONFIG)),
        r.topics["nonsolar"]: (4, dict(OUTPUT_TOPIC_CONFIG)),
        r.deadletter("ssfilter"): (4, dict(OUTPUT_TOPIC_CONFIG)),
        f"{r.prefix}-gateway-schema-ids": (1, compact),
        f"{r.prefix}-gateway-schema_ids-changelog": (1, compact),
    }
    return out


def _leaders(admin: AdminClient, topics: list[str]) -> Counter:
    metadata = admin.list_topics(timeout=30).topics
    return Counter(
        p.leader for t in topics if t in metadata for p in metadata[t].partitions.values()
    )


def _under_replicated(admin: AdminClient, prefix: str) -> list[str]:
    metadata = admin.list_topics(timeout=30).topics
    return [
        f"{name}:{p.id} isr {list(p.isrs)}"
        for name, topic in metadata.items()
        if name.startswith(prefix)
        for p in topic.partitions.values()
        if len(p.isrs) < len(p.replicas) or p.leader < 0
    ]


def _partitions_on(admin: AdminClient, prefix: str, broker: int) -> set[tuple[str, int]]:
    """Return the run's partitions that have a replica on ``broker``."""
    metadata = admin.list_topics(timeout=30).topics
    return {
        (name, p.id)
        for name, topic in metadata.items()
        if name.startswith(prefix)
        for p in topic.partitions.values()
        if broker in p.replicas
    }


def _without(
    admin: AdminClient, partitions: set[tuple[str, int]], broker: int
) -> set[tuple[str, int]]:
    """Return those of ``partitions`` whose in-sync replicas leave ``broker`` out."""
    metadata = admin.list_topics(timeout=30).topics
    return {
        (name, pid)
        for name, pid in partitions
        if name in metadata
        and pid in metadata[name].partitions
        and broker not in metadata[name].partitions[pid].isrs
    }


def _process_alive(pid: int) -> bool:
    """Return whether a process with this pid still runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def run(options: Any, settings: Any) -> Result:
    """Run scenario b; return its result."""
    result = Result("b", "kill one of three brokers mid-run, bring it back")
    r = Run("b", settings, keep=options.keep)
    home = r.workdir / "cluster"
    home.mkdir(parents=True, exist_ok=True)
    (home / "lib").symlink_to(settings.data_dir / "lib")
    three = load_settings(home=home, kafka_bootstrap=f"127.0.0.1:{BASE_PORT}")
    cluster = Services(three)
    r.bootstrap = ",".join(f"127.0.0.1:{BASE_PORT + 2 * i}" for i in range(3))
    ok = False
    try:
        say(f"b: prefix {r.prefix}; starting three brokers on {r.bootstrap}")
        cluster.up(brokers=3, registry=False)
        admin = AdminClient({"bootstrap.servers": r.bootstrap, "log.connection.close": False})
        for name, (partitions, config) in _topics(r).items():
            ensure_topics(r.bootstrap, [name], partitions, config)
        wait_until(
            lambda: all(
                t in admin.list_topics(timeout=30).topics and not _under_replicated(admin, t)
                for t in _topics(r)
            ),
            timeout=60,
            what="the run's topics on every broker",
        )
        metadata = admin.list_topics(timeout=30).topics
        replicas = {len(p.replicas) for t in _topics(r) for p in metadata[t].partitions.values()}
        resource = ConfigResource("topic", r.topics["alerts"])
        (config,) = [f.result() for f in admin.describe_configs([resource]).values()]
        min_isr = config["min.insync.replicas"].value
        result.check(
            replicas == {3} and min_isr == "2",
            f"topics made with replication {sorted(replicas)}, min.insync.replicas {min_isr}",
        )

        alerts = make_alerts(options.alerts)
        result.injected = len(alerts)
        rate = options.rate or max(10.0, len(alerts) / FEED_SECONDS)
        r.create_upstream()
        messages = r.upstream_messages(alerts, r.register_upstream_lsst())
        r.worker("gateway")
        r.worker("ssfilter")
        r.start("gateway", "ssfilter")
        feeder = Feeder(settings.upstream_feed_bootstrap, messages, rate, name="upstream")
        say(f"b: {len(alerts)} alerts upstream at {rate:.0f}/s")
        feeder.start()
        gateway, ssfilter = r.workers["gateway"], r.workers["ssfilter"]
        wait_until(
            lambda: ssfilter.status()["received"] >= len(alerts) // 4,
            timeout=300,
            what="a quarter of the input through ssfilter",
            check=r.alive,
        )
        data_topics = [r.topics[k] for k in ("alerts", "solar", "nonsolar")]
        leaders = _leaders(admin, data_topics)
        victim_id = leaders.most_common(1)[0][0]
        victim = f"kafka-local-{victim_id}"
        before = (gateway.status()["mirrored"], ssfilter.status()["received"])
        victim_pid = cluster.pid(victim)
        victim_partitions = _partitions_on(admin, r.prefix, victim_id)
        cluster.stop(victim, sig=signal.SIGKILL)
        killed_at = time.monotonic()
        gone = victim_pid is not None and not _process_alive(victim_pid)
        result.check(
            gone,
            f"{victim} (pid {victim_pid}) is gone after SIGKILL"
            if gone
            else f"{victim} (pid {victim_pid}) still running after SIGKILL",
        )
        say(
            f"b: killed {victim} (SIGKILL), leader of {leaders[victim_id]} of the run's "
            f"{sum(leaders.values())} partitions; gateway had mirrored {before[0]}, "
            f"ssfilter received {before[1]}"
        )
        time.sleep(DOWN_SECONDS)
        during = (gateway.status()["mirrored"], ssfilter.status()["received"])
        result.check(
            during[0] > before[0] and during[1] > before[1],
            f"with {victim} down for {DOWN_SECONDS:.0f} s the gateway mirrored "
            f"{during[0] - before[0]} and ssfilter received {during[1] - before[1]} more",
        )
        under = _under_replicated(admin, r.prefix)
        missing = _without(admin, victim_partitions, victim_id)
        say(f"b: {len(under)} partition(s) of the run under-replicated while it is down")
        result.check(
            bool(victim_partitions) and missing == victim_partitions,
            f"while {victim} is down, {len(missing)} of the {len(victim_partitions)} partitions "
            f"it holds have it out of their ISR ({len(under)} under-replicated in all)",
        )
        node = next(n for n in cluster.kafka_nodes("local", 3) if n.name == victim)
        cluster.start(node)
        cluster.wait_ready([node])
        say(f"b: {victim} back after {time.monotonic() - killed_at:.0f} s")
        feeder.finish()
        say("b: input all delivered upstream; waiting for both groups to commit everything")
        wait_until(
            lambda: (
                not group_lag(
                    settings.upstream_feed_bootstrap, r.group("gateway"), list(r.upstream.values())
                )
                and not group_lag(r.bootstrap, r.group("ssfilter"), [r.topics["alerts"]])
            ),
            timeout=600,
            what="zero lag",
            poll=2.0,
            check=r.alive,
        )
        check_chain(r, alerts, result, stages=("alerts", "split"))
        result.deadlettered, dead = count_deadletters(
            r, [r.topics["gateway-deadletter"], r.deadletter("ssfilter")], r.bootstrap
        )
        result.check(not result.deadlettered, f"dead letters: {dead}")
        status = gateway.status()
        result.note(
            f"gateway: {status['write_failures']} local write failure(s) retried, "
            f"{status['retries']} registry retries"
        )
        try:
            wait_until(
                lambda: not _under_replicated(admin, r.prefix),
                timeout=120,
                what="every partition back in sync",
            )
            result.check(True, f"every partition of the run back to 3 in-sync replicas on {victim}")
        except TimeoutError:
            result.check(False, f"in sync again: {_under_replicated(admin, r.prefix)[:5]}")
        metadata = admin.list_topics(timeout=30).topics
        made = set(_topics(r))
        own = {
            name: len(next(iter(topic.partitions.values())).replicas)
            for name, topic in metadata.items()
            if name.startswith(r.prefix) and name not in made and topic.partitions
        }
        if own:
            result.note(
                "topics the workers created themselves, with their replication factor: "
                + ", ".join(f"{n} (RF {rf})" for n, rf in sorted(own.items()))
            )
        ok = result.verdict != "FAIL"
    except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure
        result.failures.append(f"{type(exc).__name__}: {exc}")
        say(f"b: error: {exc!r}")
    finally:
        r.stop_workers()
        try:
            cluster.down(grace=10)
        except Exception as exc:  # noqa: BLE001
            say(f"b: stopping the three-broker cluster: {exc!r}")
        r.bootstrap = settings.kafka_bootstrap  # nothing of this run is on the shared cluster
        r.cleanup(ok)
        for sub in ("kafka-local", "faust"):
            shutil.rmtree(home / sub, ignore_errors=True)
    return result
