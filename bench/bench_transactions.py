"""What Kafka transactions cost a batch-loop branch, per batch size (issue 14, item 2).

Needs the services (``make services``). One 4-partition buffer topic is filled with
``--count`` small alerts (simulated LSST 9.0 without cutouts: the per-message cost without
the bytes) or the real samples (``--survey ztf|lsst``); then, for each batch size and with
``BROKER_BRANCH_TRANSACTIONS`` false and true, a fresh ssfilter worker (its own consumer
group) reads all of it. Printed per run, nothing asserted: alerts/s (received over time, from
its status page), the mean time to send and commit one batch (``batch.send_commit_ms_mean``
on the status page: the acknowledged sends and the offset commit, or the whole transaction),
and that time per alert.

Usage: ``python -m bench.bench_transactions [--count N] [--batches 100,500,2000] [--survey S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

from bench.bench_branches import fill, framed_samples, measure, worker
from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics
from brokerapp.model.settings import load_settings
from brokerapp.runtime.topic_config import alerts_topic_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="alerts per run")
    parser.add_argument("--batches", default="100,500,2000", help="batch sizes to try")
    parser.add_argument("--survey", default="small", help="small, ztf or lsst")
    options = parser.parse_args()
    settings = load_settings()
    prefix = f"btx{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}-alerts"
    ensure_topics(
        settings.kafka_bootstrap, [topic], 4, alerts_topic_config(-1, settings.max_message_bytes)
    )
    values, _bodies, _schemas = asyncio.run(framed_samples(settings, topic, options.survey))
    fill(settings, topic, values, options.count)
    print(f"{options.count} {options.survey} alerts, ssfilter, 4 partitions")
    print(f"{'batch':>6} {'transactions':>12} {'alerts/s':>9} {'ms/batch':>9} {'us/alert':>9}")
    created = [topic]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for batch in [int(b) for b in options.batches.split(",")]:
                for transactions in ("false", "true"):
                    run_prefix = f"{prefix}-{batch}-{transactions[0]}"
                    run = worker(
                        Path(tmp),
                        run_prefix,
                        "agents.ssfilter",
                        "ssfilter",
                        "BROKER_SSFILTER_WEB_PORT",
                        1,
                        BROKER_ALERTS_TOPIC=topic,
                        BROKER_SOLAR_TOPIC=f"{run_prefix}-solar",
                        BROKER_NONSOLAR_TOPIC=f"{run_prefix}-nonsolar",
                        BROKER_CUTOUTS_TOPIC=f"{run_prefix}-cutouts",
                        BROKER_BRANCH_BATCH=str(batch),
                        BROKER_BRANCH_TRANSACTIONS=transactions,
                    )
                    created += [f"{run_prefix}-{t}" for t in ("solar", "nonsolar", "cutouts")]
                    created.append(f"{run_prefix}-ssfilter-deadletter")
                    rate, status = measure([run], options.count)
                    loop = status["batch"]
                    per_batch = loop["send_commit_ms_mean"] or 0.0
                    per_alert = per_batch * loop["batches"] / max(status["received"], 1) * 1000
                    print(
                        f"{batch:>6} {transactions:>12} {rate:>9.0f} {per_batch:>9.2f} "
                        f"{per_alert:>9.1f}"
                    )
    finally:
        delete_topics(settings.kafka_bootstrap, created)


if __name__ == "__main__":
    main()
