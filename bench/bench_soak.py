"""The whole chain under Rubin's average rate for a long time: memory growth and lag.

Usage: ``python -m bench.bench_soak [--minutes 60] [--rate 260] [--sample-seconds 60]
[--retention-minutes 5] [--drain 300] [--no-cutouts]`` (issue 14, item 8).

Needs the services with the databases (``make services``). One chain exactly as
:mod:`bench.bench_e2e` builds it (:class:`bench.bench_e2e.Chain`: gateway, ssfilter,
watchlist, crossmatch, candidates, objects, MariaDB and Cassandra sinks, each a worker
process on topics, consumer groups, database and keyspace of its own; no baselines). After
the workers run and a few warm-up alerts have gone through, real alerts are offered upstream
at ``--rate`` per second (260: Rubin's average) for ``--minutes``: the samples of
``tests/data`` looped with fresh alert IDs, ZTF and LSST alternating, with their cutouts
unless ``--no-cutouts``, encoded while the load runs by a pool of this benchmark (one
process per core; its CPU is taken from the same machine, and the offered rate achieved is
reported: on a saturated machine the encoder falls behind the schedule).

Every ``--sample-seconds`` from the start of the load, and once when it ends, each worker's
RSS (its process and children) and each consumer group's lag (end offsets minus the
group's committed offsets on its input topics, through the admin API, so any runtime works)
are read; the servers' RSS too. Printed and written to ``bench/results/soak.md``, nothing
asserted: per worker the memory growth per hour (the slope of a least-squares line through
RSS against time, MB/h), RSS at the start and the end, the worst and the final lag; then
how long the chain took to drain after the load stopped (up to ``--drain`` s).

Disk: the upstream topic, ``alerts`` and ``solar``/``nonsolar`` each hold a full copy of
every alert (at 260 alerts/s with cutouts, about 27 MB/s each), more than a disk keeps for
an hour. Every topic of the run therefore gets ``retention.ms`` of ``--retention-minutes``
and one-minute segments; the brokers delete old segments at their
``log.retention.check.interval.ms``. The benchmark estimates the peak disk use from these
and refuses to start when it exceeds most of the free space. A group whose lag exceeds
``rate x retention`` may have lost messages to retention; the report says so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import psutil
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from bench.bench_backlog import find_servers
from bench.bench_e2e import (
    RESULTS,
    WARMUP,
    Chain,
    Sampler,
    _encode_slice,
    encode_alerts,
    is_ztf,
    publish,
    register_lsst_schema,
    wait_drained,
)
from brokerapp.model.settings import load_settings
from brokerapp.tools.services import Services

FULL_COPIES = 3
"""Topics holding every alert in full: upstream, ``alerts``, ``solar`` + ``nonsolar``."""
SEGMENT_MS = 60_000
"""``segment.ms`` of the run's topics: old data becomes deletable after about a minute."""
DISK_SHARE = 0.7
"""Largest share of the free disk the run may expect to fill."""
ENCODE_AHEAD = 2 * (os.cpu_count() or 1)
"""Chunks (one second of load each) encoded ahead of the producer, on every core."""


# ------------------------------------------------------------------------------ the load


class Load(threading.Thread):
    """Offer alerts upstream at ``rate`` per second for ``seconds``, encoding them meanwhile.

    Alert IDs start at ``first``; the schedule is absolute (alert ``n`` is due at
    ``start + n / rate``), so a slow chunk is caught up.
    """

    def __init__(self, chain: Chain, rate: float, seconds: float, small: bool, lsst_id: int):
        super().__init__(daemon=True)
        self.chain, self.rate, self.seconds = chain, rate, seconds
        self.small, self.lsst_id = small, lsst_id
        self.count = int(rate * seconds)
        self.sent = 0
        self.took = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.chain.settings.upstream_feed_bootstrap,
                "message.max.bytes": self.chain.settings.max_message_bytes,
                "linger.ms": 5,
                "queue.buffering.max.kbytes": 1048576,
            }
        )
        step = max(int(self.rate), 1)
        jobs = deque(
            (WARMUP + s, WARMUP + min(s + step, self.count), self.small, self.lsst_id)
            for s in range(0, self.count, step)
        )
        started = time.monotonic()
        try:
            with ProcessPoolExecutor(os.cpu_count()) as pool:
                pending: deque[Future] = deque()
                while jobs or pending:
                    while jobs and len(pending) < ENCODE_AHEAD:
                        pending.append(pool.submit(_encode_slice, jobs.popleft()))
                    for value in pending.popleft().result():
                        delay = started + self.sent / self.rate - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        topic = self.chain.upstream["ztf" if is_ztf(value) else "lsst"]
                        while True:
                            try:
                                producer.produce(topic, value)
                                break
                            except BufferError:
                                producer.poll(0.05)
                        producer.poll(0)
                        self.sent += 1
            producer.flush(300)
        finally:
            self.took = time.monotonic() - started
            self.done.set()


# ------------------------------------------------------------------------------ helpers


def retention_check_ms(bootstrap: str) -> int:
    """The brokers' ``log.retention.check.interval.ms`` (of the first broker)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    broker = next(iter(admin.list_topics(timeout=10).brokers))
    resource = ConfigResource(ResourceType.BROKER, str(broker))
    config = admin.describe_configs([resource])[resource].result()
    return int(config["log.retention.check.interval.ms"].value)


def set_retention(chain: Chain, retention_ms: int) -> list[str]:
    """Give every topic of the run ``retention_ms`` and short segments; return the topics."""
    changed = []
    entries = [
        ConfigEntry("retention.ms", str(retention_ms), incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.ms", str(SEGMENT_MS), incremental_operation=AlterConfigOpType.SET),
    ]
    for bootstrap in (chain.settings.kafka_bootstrap, chain.settings.upstream_feed_bootstrap):
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(chain.prefix)]
        resources = [
            ConfigResource(ResourceType.TOPIC, t, incremental_configs=entries) for t in topics
        ]
        if resources:
            for future in admin.incremental_alter_configs(resources).values():
                future.result()
        changed += topics
    return changed


def rss(process: psutil.Process) -> int | None:
    """Resident set size of a process and its children, bytes (None once it is gone)."""
    try:
        return sum(p.memory_info().rss for p in (process, *process.children(recursive=True)))
    except psutil.Error:
        return None


def growth_mb_per_hour(points: list[tuple[float, int]]) -> float | None:
    """Slope of the least-squares line through (seconds, bytes), in MB per hour."""
    if len(points) < 2 or len({t for t, _ in points}) < 2:
        return None
    times, sizes = zip(*points, strict=True)
    fit = statistics.linear_regression(times, sizes)
    return fit.slope * 3600 / 2**20


# ------------------------------------------------------------------------------ the run


def run(settings, services: Services, args: argparse.Namespace, workdir: Path) -> dict:
    chain = Chain(settings, workdir, "soak")
    del chain.groups["baseline split"]  # no baselines here
    seconds = args.minutes * 60
    small = args.no_cutouts
    print(
        f"== soak: {args.rate:g} alerts/s for {args.minutes:g} min "
        f"({'without' if small else 'with'} cutouts); prefix {chain.prefix}",
        flush=True,
    )
    result: dict = {"rate": args.rate, "minutes": args.minutes, "small": small}
    try:
        lsst_id = register_lsst_schema(chain)
        warmup = encode_alerts(WARMUP, small, lsst_id)
        size = sum(len(v) for v in warmup) / len(warmup)
        check_ms = max(
            retention_check_ms(settings.kafka_bootstrap),
            retention_check_ms(settings.upstream_feed_bootstrap),
        )
        retention_ms = int(args.retention_minutes * 60_000)
        kept_s = min(seconds, (retention_ms + SEGMENT_MS + check_ms) / 1000)
        peak = FULL_COPIES * args.rate * size * kept_s
        free = shutil.disk_usage(settings.home).free
        result.update(bytes_per_alert=size, retention_ms=retention_ms, disk_peak=peak)
        print(
            f"   {size / 1024:.1f} kB per alert; expected peak disk use {peak / 1e9:.1f} GB "
            f"(free {free / 1e9:.1f} GB)",
            flush=True,
        )
        if peak > DISK_SHARE * free:
            raise SystemExit(
                f"expected peak disk use {peak / 1e9:.1f} GB is more than {DISK_SHARE:.0%} of "
                "the free space: use --no-cutouts, a lower --retention-minutes or --rate"
            )
        chain.prepare(services)
        chain.launch()
        workers = {name: psutil.Process(r.process.pid) for name, r in chain.runs.items()}
        chain.wait_ready()
        set_retention(chain, retention_ms)
        sampler = Sampler(chain)
        sampler.start()
        publish(chain, warmup, 20.0)
        warmed = wait_drained(sampler, 180.0)
        sampler.stop_event.set()
        sampler.join()
        if not warmed:
            print("   warm-up not drained in 180 s; going on", flush=True)
        servers, _missing = find_servers(settings)
        processes = {**workers, **{f"[{k}]": p for k, p in servers.items()}}
        load = Load(chain, args.rate, seconds, small, lsst_id)
        samples: list[dict] = []
        t0 = time.monotonic()
        load.start()

        def sample() -> dict:
            row = {
                "t": time.monotonic() - t0,
                "rss": {name: rss(p) for name, p in processes.items()},
                "lag": {
                    name: sampler.lag(group, topics, cluster)
                    for name, (group, topics, cluster) in chain.groups.items()
                },
            }
            samples.append(row)
            lags = " ".join(f"{k}={v}" for k, v in row["lag"].items())
            print(f"   t={row['t']:5.0f} s sent {load.sent}: lag {lags}", flush=True)
            return row

        sample()
        while not load.done.wait(
            max(t0 + len(samples) * args.sample_seconds - time.monotonic(), 0)
        ):
            sample()
        sample()
        result.update(sent=load.sent, offered_rate=load.sent / load.took if load.took else 0.0)
        # Drain: how long after the load the chain has committed everything.
        stopped = time.monotonic()
        drained_after = None
        while time.monotonic() - stopped < args.drain:
            lags = [sampler.lag(g, t, c) for g, t, c in chain.groups.values()]
            if all(v == 0 for v in lags):
                drained_after = time.monotonic() - stopped
                break
            time.sleep(5)
        result.update(samples=samples, drained_after=drained_after, workers=list(workers))
    finally:
        chain.stop()
        try:
            chain.cleanup(services)
        except Exception as exc:  # noqa: BLE001 - report, keep the numbers
            print(f"   cleanup failed: {exc}", flush=True)
    return result


# ------------------------------------------------------------------------------ reports


def fmt(value, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def markdown(result: dict, command: str) -> str:
    samples = result["samples"]
    limit = result["rate"] * result["retention_ms"] / 1000
    lines = [
        "# Soak benchmark",
        "",
        f"`{command}` on {os.cpu_count()} cores, every service and worker on this one machine: "
        f"{result['sent']} alerts offered at {result['offered_rate']:.0f} alerts/s "
        f"({'without' if result['small'] else 'with'} cutouts, "
        f"{result['bytes_per_alert'] / 1024:.1f} kB per alert) over "
        f"{samples[-1]['t'] / 60:.1f} min, {len(samples)} samples; topics kept "
        f"{result['retention_ms'] / 60_000:g} min.",
        "",
        "| process | RSS start MB | RSS end MB | growth MB/h | worst lag | lag at load end |",
        "|---|---|---|---|---|---|",
    ]
    names = [n for n in samples[0]["rss"]]
    for name in names:
        points = [(s["t"], s["rss"][name]) for s in samples if s["rss"].get(name) is not None]
        lags = [s["lag"][name] for s in samples if s["lag"].get(name) is not None]
        first = points[0][1] / 2**20 if points else None
        last = points[-1][1] / 2**20 if points else None
        worst = max(lags) if lags else None
        flag = " (over the retention)" if worst is not None and worst > limit else ""
        lines.append(
            f"| {name} | {fmt(first)} | {fmt(last)} | {fmt(growth_mb_per_hour(points), '+.1f')} "
            f"| {fmt(worst)}{flag} | {fmt(lags[-1] if lags else None)} |"
        )
    drained = result["drained_after"]
    lines += [
        "",
        f"Drained {drained:.0f} s after the load stopped."
        if drained is not None
        else "NOT drained within --drain after the load stopped.",
        "",
        "Lag (messages) per sample:",
        "",
        "| t s | " + " | ".join(samples[0]["lag"]) + " |",
        "|---" * (len(samples[0]["lag"]) + 1) + "|",
    ]
    for s in samples:
        lines.append(f"| {s['t']:.0f} | " + " | ".join(fmt(v) for v in s["lag"].values()) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the load")
    parser.add_argument("--rate", type=float, default=260.0, help="offered alerts per second")
    parser.add_argument("--sample-seconds", type=float, default=60.0, help="sampling interval")
    parser.add_argument(
        "--retention-minutes", type=float, default=5.0, help="retention.ms of the run's topics"
    )
    parser.add_argument(
        "--drain", type=float, default=300.0, help="longest wait for lag 0 after the load (s)"
    )
    parser.add_argument("--no-cutouts", action="store_true", help="alerts without cutouts")
    args = parser.parse_args()
    settings = load_settings()
    services = Services(settings)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        result = run(settings, services, args, Path(tmp))
    command = ("python -m bench.bench_soak " + " ".join(sys.argv[1:])).strip()
    text = markdown(result, command)
    (RESULTS / "soak.md").write_text(text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
