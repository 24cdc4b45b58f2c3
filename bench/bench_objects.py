"""The object updater's cost per alert, and the candidates worker's, without Kafka.

Usage: ``python -m bench.bench_objects [--alerts 20000]``

Prints, and asserts nothing:

1. candidates: per sample alert (ZTF and LSST, decoded once beforehand), building its
   CandidateUpdate (:func:`brokerapp.domain.candidates.candidate_update`) and encoding it as JSON.
2. objects: per CandidateUpdate, what the ``update`` agent does besides Kafka and the table
   store: decode the JSON, merge into a history already holding N detections
   (:func:`brokerapp.domain.history.merge_history`), compute the statistics
   (:func:`brokerapp.domain.history.object_statistics`) and encode the two outputs, for N = 1, 10,
   30, 100 (``history_length``); and the JSON size of the stored history (what a RocksDB
   table rewrites per alert).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from pathlib import Path

import fastavro

from brokerapp.domain.candidates import candidate_update, object_update
from brokerapp.domain.history import merge_history, object_statistics
from brokerapp.model.alert import Alert

DATA = Path(__file__).parents[1] / "tests" / "data"


def sample_alerts() -> list[Alert]:
    out = []
    for path in sorted(DATA.glob("*/*.avro")):
        for record in fastavro.reader(io.BytesIO(path.read_bytes())):
            out.append(Alert.of(record))
    return out


def rate(count: int, fn) -> float:
    started = time.perf_counter()
    for i in range(count):
        fn(i)
    return (time.perf_counter() - started) / count * 1e6


def synthetic_history(n: int, rng: random.Random) -> list[dict]:
    return [
        {
            "candidate_id": 1000 + i,
            "object_id": "ZTF20bench",
            "survey": "ztf",
            "mjd": 60000.0 + i * 0.7,
            "band": "gri"[i % 3],
            "ra": 150.0 + rng.gauss(0, 1e-4),
            "dec": 2.0 + rng.gauss(0, 1e-4),
            "mag": 18.0 + rng.gauss(0, 0.2),
            "mag_err": 0.05,
            "flux": None,
            "flux_err": None,
            "visit_id": 5000 + i,
        }
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20000)
    args = parser.parse_args()

    alerts = [a for a in sample_alerts() if a.view.object_id is not None or a.view.ss_name]
    print(f"1. candidates: CandidateUpdate + JSON per alert ({len(alerts)} samples, looped)")
    per = rate(
        args.alerts,
        lambda i: json.dumps(candidate_update(alerts[i % len(alerts)], 0.0)).encode(),
    )
    print(f"   {per:8.1f} us per alert  ({1e6 / per:9.0f} alerts/s on one core)")

    print("2. objects: decode + merge + statistics + encode per CandidateUpdate")
    print("   history   us/alert   alerts/s   history JSON bytes")
    rng = random.Random(1)
    for n in (1, 10, 30, 100):
        history = synthetic_history(n, rng)
        newest = dict(history[-1], candidate_id=10**9, mjd=history[-1]["mjd"] + 1.0)
        update = {
            "alert_id": 10**9,
            "object_id": "ZTF20bench",
            "survey": "ztf",
            "candidate": newest,
            "previous": history[-30:],
        }
        value = json.dumps(update).encode()

        def step(_i: int, history=history, value=value, n=n) -> None:
            received = json.loads(value)
            merged = merge_history(
                history, [received["candidate"], *received["previous"]], max(n, 1) + 1
            )
            statistics = object_statistics(merged, rate_window_days=10.0, colour_window_days=1.0)
            obj = object_update(statistics, received["alert_id"])
            json.dumps({"candidate": received, "object": obj})
            json.dumps(obj)
            json.dumps(merged)

        per = rate(max(args.alerts // max(n // 10, 1), 1000), step)
        size = len(json.dumps(merge_history(history, [newest], n + 1)))
        print(f"   {n:7d}   {per:8.1f}   {1e6 / per:8.0f}   {size:8d}")


if __name__ == "__main__":
    main()
