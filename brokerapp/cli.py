"""The ``brokerapp`` command line: services, configuration, test-stream producer and demo.

Settings are built once from ``BROKER_`` environment variables when the command starts and
passed to every sub-command through the click context.
"""

from __future__ import annotations

import json
import sys

import click

from brokerapp.settings import Settings, load_settings


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """LSST:UK alert broker."""
    ctx.obj = load_settings()


@main.command()
@click.pass_obj
def config(settings: Settings) -> None:
    """Print the effective settings as JSON, secrets masked."""
    click.echo(json.dumps(settings.masked(), indent=2, sort_keys=True))


@main.group()
def services() -> None:
    """Install, start, stop and inspect the local Kafka and schema registry."""


@services.command("install")
@click.pass_obj
def services_install(settings: Settings) -> None:
    """Resolve the Kafka jars and the Apicurio archive from Maven Central."""
    from brokerapp.services import Services

    Services(settings).install()
    click.echo(f"installed under {settings.data_dir / 'lib'}")


@services.command("up")
@click.option(
    "--brokers",
    type=click.IntRange(1, 3),
    default=1,
    show_default=True,
    help="Brokers in the local cluster: 1, or 3 for fault tests.",
)
@click.option(
    "--upstream",
    is_flag=True,
    help="Also start an upstream cluster and registry (the Rubin/ZTF side).",
)
@click.option("--no-registry", is_flag=True, help="Start Kafka only.")
@click.pass_obj
def services_up(settings: Settings, brokers: int, upstream: bool, no_registry: bool) -> None:
    """Start the services and wait until each answers."""
    from brokerapp.services import ServiceError, Services

    svc = Services(settings)
    try:
        started = svc.up(brokers=brokers, upstream=upstream, registry=not no_registry)
    except ServiceError as exc:
        click.echo(f"services up failed: {exc}", err=True)
        sys.exit(1)
    for service in started:
        click.echo(f"{service.name:<22} up on 127.0.0.1:{service.port}")


@services.command("down")
@click.pass_obj
def services_down(settings: Settings) -> None:
    """Stop every service started from this services home."""
    from brokerapp.services import Services

    stopped = Services(settings).down()
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@services.command("reset")
@click.confirmation_option(prompt="Stop the services and delete all their data?")
@click.pass_obj
def services_reset(settings: Settings) -> None:
    """Stop the services and delete their data (downloaded jars are kept)."""
    from brokerapp.services import Services

    Services(settings).reset()
    click.echo("services stopped and data deleted")


@services.command("status")
@click.pass_obj
def services_status(settings: Settings) -> None:
    """Report each service: up, starting or down."""
    from brokerapp.services import Services

    states = Services(settings).status()
    if not states:
        click.echo("no services set up under " + str(settings.data_dir))
    for state in states:
        click.echo(state.line())


def _cluster(settings: Settings, upstream: bool) -> tuple[str, str]:
    """Return (bootstrap, registry URL) of the local or the upstream side."""
    if upstream:
        return settings.upstream_bootstrap, settings.upstream_registry_url
    return settings.kafka_bootstrap, settings.registry_url


@main.command()
@click.option(
    "--files", "-f", "files", default=None, help="Avro container files: a folder, a file or a glob."
)
@click.option(
    "--simulate",
    type=int,
    default=0,
    help="Instead of files, this many alerts from lsst-alert-packet's simulator.",
)
@click.option(
    "--lsst-version", default="9.0", show_default=True, help="LSST schema version for --simulate."
)
@click.option("--topic", "-t", default=None, help="One target topic.")
@click.option(
    "--daily",
    is_flag=True,
    help="Send each alert to its survey's daily topic (patterns from the settings).",
)
@click.option("--date", default=None, help="YYYYMMDD for --daily instead of each alert's night.")
@click.option(
    "--mode",
    type=click.Choice(["confluent", "inline", "schemafile"]),
    default="confluent",
    show_default=True,
    help="Schema mode of the messages.",
)
@click.option("--rate", type=float, default=0.0, help="Alerts per second; 0 = as fast as possible.")
@click.option(
    "--count",
    "-n",
    type=int,
    default=None,
    help="Alerts to send (default: each source once); loops with fresh IDs.",
)
@click.option(
    "--schema-id",
    type=int,
    default=None,
    help="Ask the registry for this schema ID (Rubin style, 9.0 -> 900).",
)
@click.option(
    "--partitions",
    type=int,
    default=1,
    show_default=True,
    help="Partitions of target topics that do not exist yet.",
)
@click.option("--upstream", is_flag=True, help="Send to the upstream cluster and registry.")
@click.option(
    "--replace",
    is_flag=True,
    help="Delete the target topics first (a clean slate for demos and tests).",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.pass_obj
def produce(
    settings: Settings,
    files,
    simulate,
    lsst_version,
    topic,
    daily,
    date,
    mode,
    rate,
    count,
    schema_id,
    partitions,
    upstream,
    replace,
    progress,
) -> None:
    """Publish test alerts to Kafka in any schema mode, at a given rate."""
    import asyncio

    from tqdm import tqdm

    from brokerapp import produce as prod
    from brokerapp.kafka_admin import delete_topics, ensure_topics
    from brokerapp.registry import RegistryClient

    if bool(topic) == daily:
        raise click.UsageError("give exactly one of --topic and --daily")
    if bool(files) == bool(simulate):
        raise click.UsageError("give exactly one of --files and --simulate")
    sources = prod.load_files(files) if files else prod.simulate(simulate, lsst_version)
    count = count if count is not None else len(sources)
    bootstrap, registry_url = _cluster(settings, upstream)
    patterns = {"ztf": settings.ztf_topic_pattern, "lsst": settings.lsst_topic_pattern}
    source_topics = [prod.topic_for(s.record, topic, patterns, date) for s in sources]
    if replace:
        delete_topics(bootstrap, sorted(set(source_topics)))
    ensure_topics(bootstrap, sorted(set(source_topics)), partitions)

    schema_ids: dict[str, int] = {}
    if mode == "confluent":

        async def register() -> None:
            wanted = {
                (f"{t}-value", s.schema.fingerprint): s.schema
                for s, t in zip(sources, source_topics, strict=True)
            }
            async with RegistryClient(registry_url) as registry:
                for (subject, fingerprint), schema in wanted.items():
                    got = await registry.register(subject, schema.raw, schema_id)
                    if schema_id is not None and got != schema_id:
                        click.echo(
                            f"{subject}: registry gave schema ID {got}, not {schema_id} "
                            "(it has no Confluent IMPORT mode)",
                            err=True,
                        )
                    schema_ids[fingerprint] = got

        asyncio.run(register())
    encoder = prod.Encoder(mode, schema_ids)
    topic_of = {id(s): t for s, t in zip(sources, source_topics, strict=True)}

    def messages():
        for _loop, source, record in prod.stream(sources, count):
            key = str(prod.profile_for(record).object_id(record)).encode()
            yield topic_of[id(source)], key, encoder.encode(record, source.schema)

    bar = tqdm(total=count, unit="alert", disable=not progress, leave=False)
    report = prod.produce(
        {"bootstrap.servers": bootstrap, "message.max.bytes": settings.max_message_bytes},
        messages(),
        rate=rate,
        on_sent=lambda _n: bar.update(1),
    )
    bar.close()
    click.echo(report.line())


@main.command()
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
def tail(settings: Settings, topics, pattern, count, idle, upstream, quiet) -> None:
    """Print one line per alert arriving on topics (from the earliest offset)."""
    import asyncio

    from brokerapp.tail import alert_line
    from brokerapp.tail import tail as run_tail

    if bool(topics) == bool(pattern):
        raise click.UsageError("give --topic or --pattern")
    bootstrap, registry_url = _cluster(settings, upstream)
    report = asyncio.run(
        run_tail(
            bootstrap,
            registry_url,
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
