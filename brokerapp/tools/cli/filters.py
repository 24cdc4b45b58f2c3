"""``brokerapp filter``: run one generated DMTN-028 filter as a worker."""

from __future__ import annotations

import os
import sys

import click

from brokerapp.model.settings import Settings
from brokerapp.tools.cli.errors import needs_kafka


@click.command("filter")
@click.argument("bootstrap")
@click.argument("topic")
@click.argument("number", type=click.IntRange(min=1))
@click.option("--web-port", type=int, default=None, help="Web view port (default: base + N).")
@click.option("--loglevel", "-l", default="info", show_default=True, help="Worker log level.")
@click.pass_obj
@needs_kafka
def filter_worker(
    settings: Settings, bootstrap: str, topic: str, number: int, web_port: int | None, loglevel: str
) -> None:
    """Run filter NUMBER (7 = Filter007) on TOPIC of the cluster at BOOTSTRAP.

    The DMTN-028 usage (``filterStream.py kafka:9092 full-stream 7``): a filters worker
    (``faust -A agents.filters worker``) with only that filter, as its own consumer group
    (``<app_prefix>-filterNNN``), writing passing alerts, at most 20 per visit, to the topic
    named after the filter.
    """
    from brokerapp.domain.filters import filter_class

    try:
        name = filter_class(number).__name__
    except (IndexError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    env = dict(os.environ)
    env.update(
        {
            "BROKER_KAFKA_BOOTSTRAP": bootstrap,
            "BROKER_ALERTS_TOPIC": topic,
            "BROKER_FILTERS": f"[{number}]",
            "BROKER_FILTERS_BRANCH": f"filter{number:03d}",
            "BROKER_FILTERS_WEB_PORT": str(web_port or settings.filters_web_port + number),
        }
    )
    click.echo(f"running {name} on {topic} at {bootstrap}", err=True)
    command = [sys.executable, "-m", "faust", "-A", "agents.filters", "worker", "-l", loglevel]
    os.execvpe(sys.executable, command, env)
