"""The whole chain working off a backlog: N alerts waiting upstream before anything starts.

Usage: ``python -m bench.bench_backlog [--alerts 40000] [--drain 600]`` (issue 14, item 6).

Needs the services with the databases (``make services``). One chain exactly as
:mod:`bench.bench_e2e` builds it (:class:`bench.bench_e2e.Chain`: gateway, ssfilter,
watchlist, crossmatch, candidates, objects, MariaDB and Cassandra sinks, each a worker
process on topics, consumer groups, database and keyspace of its own; no baselines). First
``--alerts`` real alerts are written to the chain's upstream daily topics: the samples of
``tests/data`` looped with fresh alert IDs, ZTF (Avro containers) and LSST (Confluent
framing) alternating, full size with their cutouts. Only then are the workers started, all at
once, and the clock runs from their start until every consumer group has committed
everything (lag 0 on each group's input topics, read from the committed offsets through the
admin API, so it works whatever runtime the workers use), or ``--drain`` seconds.

Printed and written to ``bench/results/backlog.md``, nothing asserted:

- one summary line, ``backlog: N alerts through the whole chain in S s = R alerts/s, C ms CPU
  per alert (all processes)``: S from the workers' start to the last group's last commit,
  start-up included; C the CPU seconds (user + system) of every worker process and every
  server process (local and upstream Kafka, both registries, MariaDB, Cassandra: found by the
  ports they listen on) in that window, divided by N;
- the same drain without the start-up (from the moment the last worker was running);
- per worker: start-up time (until its status says it runs), CPU seconds and CPU ms per alert,
  peak RSS (the kernel's high-water mark, ``VmHWM``), the time its group reached lag 0 for
  good (lag 0 with all of its input present);
- per server: CPU seconds and CPU ms per alert in the window;
- the messages on each topic of the chain at the end (the backlog is all read: ``alerts``
  holds N).

Worker CPU counts from the process start (start-up included); server CPU is the difference
of two readings, at the workers' start and when the drain was seen (within about a second of
the last commit). Other users of the machine are not counted, but slow everything down.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from bench.bench_e2e import (
    RESULTS,
    Chain,
    Sampler,
    _encode_slice,
    publish,
    register_lsst_schema,
    wait_drained,
)
from brokerapp.model.settings import load_settings
from brokerapp.tools.services import Services

ENCODE_CHUNK = 500
"""Alerts encoded per pool job (about 50 MB with cutouts)."""
ENCODE_AHEAD = 4
"""Pool jobs in flight while the previous chunk is written: bounds the memory used."""


# ----------------------------------------------------------------------------- processes


def server_ports(settings) -> dict[str, int]:
    """Label -> port of every server the chain uses, from the settings."""

    def kafka(bootstrap: str, name: str) -> dict[str, int]:
        ports = [int(entry.rsplit(":", 1)[1]) for entry in bootstrap.split(",")]
        if len(ports) == 1:
            return {name: ports[0]}
        return {f"{name} :{port}": port for port in ports}

    return {
        **kafka(settings.kafka_bootstrap, "kafka-local"),
        **kafka(settings.upstream_feed_bootstrap, "kafka-upstream"),
        "registry-local": urlsplit(settings.registry_url).port or 80,
        "registry-upstream": urlsplit(settings.upstream_registry_url).port or 80,
        "mariadb": settings.mariadb_port,
        "cassandra": settings.cassandra_port,
    }


def find_servers(settings) -> tuple[dict[str, psutil.Process], list[str]]:
    """The server processes, found by the TCP port each listens on.

    Returns
    -------
    tuple
        Label -> process (one process listening on several ports counted once), and the
        labels of the servers with no listening process found.
    """
    listening = {
        c.laddr.port: c.pid
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.pid
    }
    found: dict[str, psutil.Process] = {}
    missing = []
    pids: set[int] = set()
    for label, port in server_ports(settings).items():
        pid = listening.get(port)
        if pid is None:
            missing.append(label)
        elif pid not in pids:
            pids.add(pid)
            found[label] = psutil.Process(pid)
    return found, missing


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of a process and its children (live and reaped)."""
    total = 0.0
    for p in (process, *process.children(recursive=True)):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def peak_rss(process: psutil.Process) -> int | None:
    """The process's peak resident set size in bytes (``VmHWM``; None if unreadable)."""
    try:
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# ------------------------------------------------------------------------------ offsets


def end_offsets(admin: AdminClient, topics: list[str]) -> dict[str, int]:
    """Messages appended to each topic so far (sum of the partitions' end offsets)."""
    metadata = admin.list_topics(timeout=10).topics
    tps = [TopicPartition(t, p) for t in topics if t in metadata for p in metadata[t].partitions]
    out = dict.fromkeys(topics, 0)
    if tps:
        for tp, future in admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in tps}, request_timeout=10
        ).items():
            out[tp.topic] += future.result().offset
    return out


class DrainSampler(Sampler):
    """The e2e sampler, also noting per group when it was at lag 0 with all its input there.

    Every lag reading is logged as ``(time.monotonic(), lag, messages on the inputs)``.
    """

    def __init__(self, chain: Chain):
        super().__init__(chain)
        self.log: dict[str, list[tuple[float, int | None, int]]] = {}

    def lag(self, group: str, topics: list[str], cluster: str) -> int | None:
        lag = super().lag(group, topics, cluster)
        ends = sum(end_offsets(self.admins[cluster], topics).values())
        self.log.setdefault(group, []).append((time.monotonic(), lag, ends))
        return lag

    def done_at(self, group: str) -> float | None:
        """When the group was first at lag 0, with all of its input present, for good."""
        entries = self.log.get(group, [])
        if not entries:
            return None
        final = entries[-1][2]
        done = None
        for t, lag, ends in entries:
            if lag == 0 and ends == final:
                done = t if done is None else done
            else:
                done = None
        return done


# ----------------------------------------------------------------------------- the input


def write_backlog(chain: Chain, count: int, lsst_id: int) -> tuple[float, float]:
    """Write ``count`` full-size alerts upstream, encoded on every core meanwhile.

    Returns
    -------
    tuple of float
        Mean bytes per alert, seconds taken.
    """
    started = time.monotonic()
    jobs = [
        (s, min(s + ENCODE_CHUNK, count), False, lsst_id) for s in range(0, count, ENCODE_CHUNK)
    ]
    total = 0
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        pending: list[Future] = [pool.submit(_encode_slice, job) for job in jobs[:ENCODE_AHEAD]]
        for n in range(len(jobs)):
            values = pending.pop(0).result()
            if n + ENCODE_AHEAD < len(jobs):
                pending.append(pool.submit(_encode_slice, jobs[n + ENCODE_AHEAD]))
            total += sum(len(v) for v in values)
            publish(chain, values, float("inf"))
    return total / count, time.monotonic() - started


# ------------------------------------------------------------------------------ the run


def run(settings, services: Services, count: int, drain: float, workdir: Path) -> dict:
    chain = Chain(settings, workdir, "backlog")
    del chain.groups["baseline split"]  # no baselines here
    print(f"== backlog of {count} alerts (with cutouts); prefix {chain.prefix}", flush=True)
    result: dict = {"count": count, "prefix": chain.prefix}
    try:
        chain.prepare(services)
        lsst_id = register_lsst_schema(chain)
        size, took = write_backlog(chain, count, lsst_id)
        upstream = AdminClient({"bootstrap.servers": settings.upstream_feed_bootstrap})
        written = sum(end_offsets(upstream, list(chain.upstream.values())).values())
        result.update(bytes_per_alert=size, written=written)
        print(
            f"   written upstream: {written} alerts, {size / 1024:.1f} kB each on average, "
            f"in {took:.1f} s; starting the workers",
            flush=True,
        )
        servers, missing = find_servers(settings)
        if missing:
            print(f"   servers not found (not counted): {', '.join(missing)}", flush=True)
        server_cpu0 = {label: cpu_seconds(p) for label, p in servers.items()}
        t0 = time.monotonic()
        chain.launch()
        workers = {name: psutil.Process(r.process.pid) for name, r in chain.runs.items()}
        sampler = DrainSampler(chain)
        sampler.start()
        ready = chain.wait_ready()
        drained = wait_drained(sampler, max(drain - (time.monotonic() - t0), 1.0))
        seen = time.monotonic()
        worker_cpu = {name: cpu_seconds(p) for name, p in workers.items()}
        worker_rss = {name: peak_rss(p) for name, p in workers.items()}
        server_cpu = {label: cpu_seconds(p) - server_cpu0[label] for label, p in servers.items()}
        sampler.stop_event.set()
        sampler.join()
        done = {name: sampler.done_at(chain.groups[name][0]) for name in chain.runs}
        end = max((t for t in done.values() if t is not None), default=seen) if drained else seen
        local = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        result.update(
            drained=drained,
            lags=sampler.rows[-1]["lag"] if sampler.rows else {},
            seconds=end - t0,
            startup=max(ready.values()) - t0,
            workers={
                name: {
                    "ready": ready[name] - t0,
                    "cpu": worker_cpu[name],
                    "rss": worker_rss[name],
                    "done": None if done[name] is None else done[name] - t0,
                }
                for name in chain.runs
            },
            servers=server_cpu,
            missing=missing,
            topics=end_offsets(local, [t for t in chain.topics.values() if "base" not in t]),
            topic_names={v: k for k, v in chain.topics.items()},
        )
    finally:
        chain.stop()
        try:
            chain.cleanup(services)
        except Exception as exc:  # noqa: BLE001 - report, keep the numbers
            print(f"   cleanup failed: {exc}", flush=True)
    return result


# ------------------------------------------------------------------------------ reports


def fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def report(result: dict, command: str) -> tuple[str, str, str]:
    """The summary line, the details (start-up and tables) and the whole markdown report."""
    n, seconds = result["count"], result["seconds"]
    cpu = sum(w["cpu"] for w in result["workers"].values()) + sum(result["servers"].values())
    line = (
        f"backlog: {n} alerts through the whole chain in {seconds:.1f} s = "
        f"{n / seconds:.1f} alerts/s, {1000 * cpu / n:.1f} ms CPU per alert (all processes)"
    )
    if not result["drained"]:
        lags = {k: v for k, v in result["lags"].items() if v != 0}
        line += f" -- NOT drained within --drain; lags at the end {lags}"
    after = seconds - result["startup"]
    details = [
        f"start-up (until the last worker ran): {result['startup']:.1f} s; drain including "
        f"start-up: {seconds:.1f} s, excluding start-up: {after:.1f} s"
        + (f" = {n / after:.1f} alerts/s" if after > 0 else ""),
        "",
        "| worker | ready after s | CPU s | CPU ms/alert | peak RSS MB | lag 0 after s |",
        "|---|---|---|---|---|---|",
    ]
    for name, w in result["workers"].items():
        rss = None if w["rss"] is None else w["rss"] / 2**20
        details.append(
            f"| {name} | {w['ready']:.1f} | {w['cpu']:.1f} | {1000 * w['cpu'] / n:.2f} "
            f"| {fmt(rss, '.0f')} | {fmt(w['done'])} |"
        )
    workers_cpu = sum(w["cpu"] for w in result["workers"].values())
    details += [
        f"| **all workers** | | {workers_cpu:.1f} | {1000 * workers_cpu / n:.2f} | | |",
        "",
        "| server | CPU s | CPU ms/alert |",
        "|---|---|---|",
    ]
    for label, value in result["servers"].items():
        details.append(f"| {label} | {value:.1f} | {1000 * value / n:.2f} |")
    servers_cpu = sum(result["servers"].values())
    details.append(f"| **all servers** | {servers_cpu:.1f} | {1000 * servers_cpu / n:.2f} |")
    if result["missing"]:
        details += ["", f"Not found (not counted): {', '.join(result['missing'])}."]
    details += ["", "Messages on each topic at the end:", ""]
    details += [
        f"- {result['topic_names'].get(t, t)}: {count}" for t, count in result["topics"].items()
    ]
    header = [
        "# Backlog benchmark",
        "",
        f"`{command}` on {os.cpu_count()} cores, every service and worker on this one machine; "
        f"{n} alerts (ZTF and LSST samples alternating, with cutouts, "
        f"{result['bytes_per_alert'] / 1024:.1f} kB per alert on average) waiting upstream "
        "before the workers start.",
        "",
        "```",
        line,
        "```",
        "",
    ]
    text = "\n".join(details)
    return line, text, "\n".join(header) + "\n" + text + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=40_000, help="backlog size")
    parser.add_argument(
        "--drain", type=float, default=600.0, help="longest wait, from the workers' start (s)"
    )
    args = parser.parse_args()
    settings = load_settings()
    services = Services(settings)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-backlog-") as tmp:
        result = run(settings, services, args.alerts, args.drain, Path(tmp))
    command = ("python -m bench.bench_backlog " + " ".join(sys.argv[1:])).strip()
    line, details, text = report(result, command)
    (RESULTS / "backlog.md").write_text(text)
    print(details, flush=True)
    print(line)


if __name__ == "__main__":
    main()
