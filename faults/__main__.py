"""``python -m faults [--only a,b,...] [--alerts N] [--outage-seconds S]``: the fault scenarios.

Runs the chosen scenarios in order against the services ``make services`` starts (local and
upstream Kafka and registries, MariaDB, Cassandra), prints progress as it goes and one table
at the end, and exits 1 if any scenario lost anything or failed a check (2 if the services
are not up). Scenario letters are those of :mod:`faults`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from brokerapp.model.settings import load_settings
from brokerapp.tools.services import ServiceError, Services
from faults.common import Result, say

SCENARIOS = {
    "a": "faults.kill_workers",
    "b": "faults.broker_loss",
    "c": "faults.registry_outage",
    "d": "faults.mutated",
    "e": "faults.database_outage",
}
NEEDED = ("kafka-local-1", "registry-local", "kafka-upstream-1", "registry-upstream")


def parse(argv: list[str]) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help="scenarios to run, comma-separated (default: all, a to e)",
    )
    parser.add_argument(
        "--alerts",
        type=int,
        default=3000,
        help="distinct real alerts each scenario injects (default 3000)",
    )
    parser.add_argument(
        "--mutated",
        type=int,
        default=10_000,
        help="mutated messages scenario d mixes into the stream (default 10000)",
    )
    parser.add_argument(
        "--outage-seconds",
        type=float,
        default=30.0,
        help="how long the registry (c) and each database (e) stay down (default 30)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="alerts per second fed upstream (default: the input spread over the scenario)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep each scenario's topics, database, keyspace and worker logs",
    )
    options = parser.parse_args(argv)
    options.only = [s.strip() for s in options.only.split(",") if s.strip()]
    unknown = [s for s in options.only if s not in SCENARIOS]
    if unknown:
        known = ", ".join(SCENARIOS)
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {known}")
    return options


def table(results: list[Result]) -> str:
    """Return the results as a text table, then each scenario's failures and notes."""
    header = ("scenario", "injected", "processed", "dead-lettered", "lost", "duplicated", "verdict")
    rows = [
        (
            f"{r.scenario}: {r.title}",
            str(r.injected),
            str(r.processed),
            str(r.deadlettered),
            str(r.lost),
            str(r.duplicated),
            r.verdict,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in rows]
    for r in results:
        details = [f"  FAILED: {f}" for f in r.failures] + [f"  {n}" for n in r.notes]
        if details:
            out.append(f"\n{r.scenario} ({r.seconds:.0f} s):")
            out += details
        else:
            out.append(f"\n{r.scenario} ({r.seconds:.0f} s): no failures")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios; return the exit status."""
    options = parse(sys.argv[1:] if argv is None else argv)
    settings = load_settings()
    svc = Services(settings)
    states = {s.name: s for s in svc.status()}
    needed = list(NEEDED) + (["mariadb", "cassandra"] if set(options.only) & {"a", "e"} else [])
    down = [n for n in needed if n not in states or not states[n].answering]
    if down:
        print(f"not up: {', '.join(down)}; run `make services` first", file=sys.stderr)
        return 2
    try:
        svc.wait_ready([s for s in svc.planned() if s.name in needed])
    except ServiceError as exc:
        print(f"services not answering: {exc}", file=sys.stderr)
        return 2
    results = []
    for letter in options.only:
        module = importlib.import_module(SCENARIOS[letter])
        say(f"=== scenario {letter}: {module.__doc__.splitlines()[0]}")
        started = time.monotonic()
        result = module.run(options, settings)
        result.seconds = time.monotonic() - started
        say(f"=== scenario {letter}: {result.verdict} in {result.seconds:.0f} s")
        results.append(result)
    print()
    print(table(results))
    return 1 if any(r.verdict == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
