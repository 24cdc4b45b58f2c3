"""``brokerapp tail``: read and summarise alerts from topics."""

from __future__ import annotations

import click

from brokerapp.model.settings import Settings
from brokerapp.tools.cli.common import cluster, cluster_registry
from brokerapp.tools.cli.errors import needs_kafka


@click.command()
@click.option("--topic", "-t", "topics", multiple=True, help="Topic to read (repeatable).")
@click.option("--pattern", default=None, help="Regular expression of topics to read.")
@click.option("--count", "-n", type=int, default=None, help="Stop after this many alerts.")
@click.option(
    "--idle",
    type=float,
    default=10.0,
    show_default=True,
    help="Stop after this many seconds without a message.",
)
@click.option("--upstream", is_flag=True, help="Read the upstream cluster and registry.")
@click.option("--quiet", "-q", is_flag=True, help="Only print the summary.")
@click.pass_obj
@needs_kafka
def tail(settings: Settings, topics, pattern, count, idle, upstream, quiet) -> None:
    """Print one line per alert arriving on topics (from the earliest offset)."""
    import asyncio

    from brokerapp.tools.tail import alert_line
    from brokerapp.tools.tail import tail as run_tail

    if bool(topics) == bool(pattern):
        raise click.UsageError("give --topic or --pattern")
    bootstrap, _url = cluster(settings, upstream)
    report = asyncio.run(
        run_tail(
            bootstrap,
            cluster_registry(settings, upstream),
            topics=list(topics),
            pattern=pattern,
            count=count,
            idle_seconds=idle,
            max_fetch_bytes=settings.max_message_bytes,
            on_alert=None if quiet else (lambda t, a: click.echo(alert_line(t, a))),
        )
    )
    for reason, n in report.errors.items():
        click.echo(f"undecodable: {n} x {reason}", err=True)
    click.echo(report.line())
