"""Two steps of ``deploy/demo.sh`` that are easier in Python than in shell.

``python deploy/demo_checks.py stored N CANDIDATES_PORT OBJECTS_PORT MARIADB_PORT CASSANDRA_PORT``
    Waits (up to 3 minutes) until the candidates worker has turned N alerts into
    CandidateUpdates and both sinks have stored every record the candidates and objects
    workers sent (nothing pending), then prints the rows each sink wrote per table.
``python deploy/demo_checks.py longest``
    Prints the ID of the object with the most detections in MariaDB's ``objects`` table.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request

from brokerapp.adapters.stores import open_store
from brokerapp.model.settings import load_settings

WORKERS = ("candidates", "objects", "mariadb-sink", "cassandra-sink")


def status(name: str, port: str) -> dict:
    """Return a worker's status JSON."""
    url = f"http://127.0.0.1:{port}/{name}/status.json"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def stored(alerts: int, ports: list[str]) -> None:
    """Wait until every record of ``alerts`` alerts is stored by both sinks."""
    port = dict(zip(WORKERS, ports, strict=True))
    sinks: list[dict] = []
    for _ in range(180):
        candidates, objects = (
            status("candidates", port["candidates"]),
            status("objects", port["objects"]),
        )
        updates = sum(candidates["updates"].get(k, 0) for k in ("solar", "nonsolar"))
        sent = updates + objects["updates"]
        sinks = [status(name, port[name]) for name in WORKERS[2:]]
        if updates == alerts and all(
            s["received"] == sent and all(t["pending"] == 0 for t in s["tables"].values())
            for s in sinks
        ):
            break
        time.sleep(1)
    else:
        sys.exit(f"the sinks did not store everything: {[s.get('tables') for s in sinks]}")
    for name, sink in zip(WORKERS[2:], sinks, strict=True):
        written = {table: t["rows_written"] for table, t in sink["tables"].items()}
        print(f"{name}: rows written {json.dumps(written)}")


async def longest() -> str:
    """Return the ID of the object with the most detections (MariaDB)."""
    store = await open_store(load_settings(), "mariadb")
    try:
        rows = await store.dump("objects")
    finally:
        await store.close()
    return max(rows, key=lambda r: (r["n_detections"], r["object_id"]))["object_id"]


if __name__ == "__main__":
    if sys.argv[1:2] == ["stored"]:
        stored(int(sys.argv[2]), sys.argv[3:])
    elif sys.argv[1:2] == ["longest"]:
        print(asyncio.run(longest()))
    else:
        sys.exit(__doc__)
