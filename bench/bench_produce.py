"""Produce rate into the local Kafka (services must be up: `make services`).

Prints alerts/s and MB/s for ZTF and LSST samples in each schema mode, as fast as possible,
through brokerapp.tools.produce (confluent-kafka, acks=all, idempotent). Asserts nothing.

    python bench/bench_produce.py [--count N]
"""

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics
from brokerapp.adapters.registry import RegistryClient
from brokerapp.model.settings import load_settings
from brokerapp.tools import produce as prod

DATA = Path(__file__).parents[1] / "tests" / "data"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    settings = load_settings()
    print(f"{'survey':<6} {'mode':<11} {'alerts':>7} {'alerts/s':>9} {'MB/s':>7}")
    print("(send only: values are pre-encoded)")
    for survey in ("ztf", "lsst"):
        sources = prod.load_files(str(DATA / survey))
        for mode in prod.MODES:
            topic = f"bench-produce-{survey}-{mode}-{uuid.uuid4().hex[:6]}"
            ensure_topics(settings.kafka_bootstrap, [topic], 12)
            ids = {}
            if mode == "confluent":

                async def register(sources=sources, topic=topic, ids=ids):
                    async with RegistryClient(settings.registry_url) as registry:
                        for s in sources:
                            ids[s.schema.fingerprint] = await registry.register(
                                f"{topic}-value", s.schema.raw
                            )

                asyncio.run(register())
            encoder = prod.Encoder(mode, ids)
            # Pre-encode so the figure is the Kafka produce rate, then time the whole send.
            values = [encoder.encode(r, s.schema) for _, s, r in prod.stream(sources, args.count)]
            start = time.perf_counter()
            report = prod.produce(
                {
                    "bootstrap.servers": settings.kafka_bootstrap,
                    "message.max.bytes": settings.max_message_bytes,
                    "linger.ms": 20,
                    "batch.size": 4 * 1024 * 1024,
                },
                ((topic, None, v) for v in values),
            )
            elapsed = time.perf_counter() - start
            print(
                f"{survey:<6} {mode:<11} {report.count:>7} {report.count / elapsed:>9,.0f} "
                f"{report.bytes / 1e6 / elapsed:>7.1f}"
            )
            delete_topics(settings.kafka_bootstrap, [topic])


if __name__ == "__main__":
    main()
