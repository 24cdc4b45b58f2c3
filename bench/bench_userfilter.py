"""User filters: alerts/s through a sandboxed filter vs in-process, and sandbox start-up time.

Usage: ``python -m bench.bench_userfilter [--alerts N] [--starts N] [--paced N]``

Uses the 18 ZTF sample alerts (with cutouts, about 65 KB each), repeated, and the example
filter ``examples/userfilters/python/bright.py`` (passes ``candidate.magpsf < 18``). Rows:

* ``in-process``: ``Bright().filter(alert)`` on decoded dicts, as a built-in processor would
  call it (no pipe, no sandbox);
* ``sandbox, Python SDK, json``: the same class in its bubblewrap sandbox, fed by
  :class:`~brokerapp.runtime.userfilter.supervisor.FilterSupervisor` (JSON encoding of the
  alert, base64 cutouts, the pipe, the SDK's decoding and answer);
* ``sandbox, Python SDK, avro``: an Avro-mode filter (``tests/userfilter/filters/avroinfo.py``)
  given the bare bodies, without decoding them (the transport's own cost);
* ``sandbox, Java, line protocol``: ``examples/userfilters/java/BrightFilter.java`` (needs
  ``javac``), the same logic over the raw protocol.

For each row it prints alerts/s, the runner's CPU per alert (this process) and the
filter's CPU per alert (its sandbox, from ``/proc``), and from their sum how many such filters
two cores could run at 1,000 alerts/s each. It then prints the time from start to the
filter's ``hello``, the mean over ``--starts`` runs, and, for 1 to ``--paced`` Python filters
run together from this one process, each offered 1,000 alerts/s for 3 s, the rate the slowest
of them achieved (the machine runs N filters at 1 kHz while that stays at 1,000). It prints
numbers and asserts nothing. It needs ``bwrap`` and runs from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from brokerapp.runtime.userfilter.process import AlertItem
from brokerapp.runtime.userfilter.sandbox import SandboxLimits, SandboxPlan, python_plan
from brokerapp.runtime.userfilter.supervisor import FilterSupervisor, SupervisorConfig
from brokerapp.wire.codecs import InlineCodec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "userfilters"
HOSTILE = ROOT / "tests" / "userfilter" / "filters"
CONFIG = SupervisorConfig(answer_timeout=30, start_timeout=60, max_restarts=0)
JAVA_COMMAND = (
    "/usr/bin/java", "-Xmx64m", "-Xss512k", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
    "-XX:CompressedClassSpaceSize=64m", "-XX:ReservedCodeCacheSize=32m", "-Xshare:off",
    "-cp", "/code", "BrightFilter",
)  # fmt: skip
JAVA_LIMITS = SandboxLimits(memory_mb=2048, processes=128, open_files=256)


def samples() -> list[AlertItem]:
    codec = InlineCodec()
    items = []
    for offset, path in enumerate(sorted((ROOT / "tests" / "data" / "ztf").glob("*.avro"))):
        data = path.read_bytes()
        schema, bodies = codec.record_bodies(data)
        items.append(
            AlertItem(
                topic="bench",
                partition=0,
                offset=offset,
                record=codec.decode_one(data),
                body=bodies[0],
                schema_id=1,
                schema=schema.raw,
            )
        )
    return items


def in_process(items: list[AlertItem], count: int) -> tuple[float, float]:
    # The example is a file, not a package: load it by path.
    spec = importlib.util.spec_from_file_location("bright", EXAMPLES / "python" / "bright.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bright = module.Bright()
    bright.setup({})
    records = [item.record for item in items]
    started, cpu = time.perf_counter(), time.process_time()
    passed = 0
    for n in range(count):
        if bright.filter(records[n % len(records)]).__class__.__name__ == "Pass":
            passed += 1
    return time.perf_counter() - started, time.process_time() - cpu


async def sandboxed(plan: SandboxPlan, items: list[AlertItem], count: int, batch: int = 100):
    sup = FilterSupervisor("bench", plan, CONFIG)
    await sup.start()
    work = [items[n % len(items)] for n in range(count)]
    try:
        await sup.process(work[:batch])  # warm-up
        cpu_before = sup.status()["cpu_ms"]
        started, cpu = time.perf_counter(), time.process_time()
        for first in range(0, count, batch):
            await sup.process(work[first : first + batch])
        wall, runner_cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await sup.stop()
    status = sup.status()
    assert status["errors"] == 0, status
    return wall, runner_cpu, (status["cpu_ms"] - cpu_before) / 1000.0


async def paced(plans: list[SandboxPlan], items: list[AlertItem], seconds: float) -> list[float]:
    """Offer 1,000 alerts/s (batches of 100 every 0.1 s) to each filter; return rates achieved."""
    sups = [FilterSupervisor(f"bench-{n}", plan, CONFIG) for n, plan in enumerate(plans)]
    for sup in sups:
        await sup.start()
    batch = [items[n % len(items)] for n in range(100)]

    async def feed(sup: FilterSupervisor) -> float:
        started = time.perf_counter()
        done = 0
        for tick in range(int(seconds * 10)):
            delay = started + tick * 0.1 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            done += len(await sup.process(batch))
        return done / (time.perf_counter() - started)

    try:
        return list(await asyncio.gather(*(feed(sup) for sup in sups)))
    finally:
        for sup in sups:
            await sup.stop()


async def start_time(plan: SandboxPlan, starts: int) -> float:
    total = 0.0
    for _ in range(starts):
        sup = FilterSupervisor("bench-start", plan, CONFIG)
        started = time.perf_counter()
        await sup.start()
        total += time.perf_counter() - started
        await sup.stop()
    return total / starts


def row(name: str, count: int, wall: float, runner_cpu: float, filter_cpu: float | None) -> None:
    per_alert = (runner_cpu + (filter_cpu or 0.0)) / count * 1000.0
    at_1khz = 2000.0 / (1000.0 * per_alert) if per_alert else float("inf")
    filter_ms = "-" if filter_cpu is None else f"{filter_cpu / count * 1000:.3f}"
    print(
        f"| {name:32} | {count / wall:10.0f} | {runner_cpu / count * 1000:9.3f} | "
        f"{filter_ms:>9} | {at_1khz:8.1f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=3000)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument(
        "--paced", type=int, default=6, help="up to this many Python filters at 1 kHz each"
    )
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("bwrap is not installed (make install)")
    items = samples()
    java_dir = None
    if shutil.which("javac"):
        java_dir = Path(tempfile.mkdtemp(prefix="bench-userfilter-java-"))
        subprocess.run(
            ["javac", "-d", str(java_dir), str(EXAMPLES / "java" / "BrightFilter.java")],
            check=True,
        )
    python = python_plan(EXAMPLES / "python", "bright:Bright")
    avro = python_plan(HOSTILE, "avroinfo:info")
    java = SandboxPlan(JAVA_COMMAND, java_dir, JAVA_LIMITS) if java_dir else None
    print(f"{args.alerts} ZTF alerts (18 samples repeated), batches of 100, {os.cpu_count()} cores")
    print()
    print("| path                             |   alerts/s | runner ms | filter ms | at 1 kHz |")
    print("| --- | ---: | ---: | ---: | ---: |")
    wall, cpu = in_process(items, args.alerts * 10)
    row("in-process (built-in)", args.alerts * 10, wall, cpu, None)
    row("sandbox, Python SDK, json", args.alerts, *await sandboxed(python, items, args.alerts))
    row("sandbox, Python SDK, avro", args.alerts, *await sandboxed(avro, items, args.alerts))
    if java is not None:
        row("sandbox, Java, line protocol", args.alerts, *await sandboxed(java, items, args.alerts))
    print()
    print("runner ms / filter ms: CPU per alert in this process / in the sandbox;")
    print("at 1 kHz: how many such filters 2 cores could run at 1,000 alerts/s each")
    print()
    print(f"sandbox start to hello, Python: {await start_time(python, args.starts) * 1000:.0f} ms")
    if java is not None:
        print(
            f"sandbox start to hello, Java:   {await start_time(java, args.starts) * 1000:.0f} ms"
        )
    if java_dir is not None:
        shutil.rmtree(java_dir, ignore_errors=True)
    if args.paced:
        print()
        print("Python SDK filters (json) offered 1,000 alerts/s each, one runner process, 3 s:")
        print("| filters | slowest alerts/s | total alerts/s |")
        print("| ---: | ---: | ---: |")
        for count in range(1, args.paced + 1):
            rates = await paced([python] * count, items, 3.0)
            print(f"| {count} | {min(rates):.0f} | {sum(rates):.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
