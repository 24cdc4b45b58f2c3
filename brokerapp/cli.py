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
    """Install, start, stop and inspect the local Kafka, schema registry and databases."""


@services.command("install")
@click.pass_obj
def services_install(settings: Settings) -> None:
    """Resolve the Kafka and Cassandra jars and the Apicurio archive from Maven Central."""
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
@click.option(
    "--databases",
    is_flag=True,
    help="Also start MariaDB (Debian's mariadbd) and Cassandra 5.0, on 127.0.0.1, and create "
    "MariaDB's broker database and account.",
)
@click.pass_obj
def services_up(
    settings: Settings, brokers: int, upstream: bool, no_registry: bool, databases: bool
) -> None:
    """Start the services and wait until each answers."""
    from brokerapp.services import ServiceError, Services

    svc = Services(settings)
    try:
        started = svc.up(
            brokers=brokers, upstream=upstream, registry=not no_registry, databases=databases
        )
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
@click.option(
    "--from-db",
    "from_db",
    type=click.Choice(["candidates", "objects", "ss_candidates", "annotations"]),
    default=None,
    help="Instead of alerts, republish this stored table's rows to --topic as JSON (test "
    "infrastructure): candidates as one CandidateUpdate per row, keyed by object; other "
    "tables row by row.",
)
@click.option(
    "--store",
    type=click.Choice(["mariadb", "cassandra"]),
    default="mariadb",
    show_default=True,
    help="With --from-db: the database to read.",
)
@click.option(
    "--object", "object_id", default=None, help="With --from-db: only this object's rows."
)
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
    from_db=None,
    store="mariadb",
    object_id=None,
) -> None:
    """Publish test alerts to Kafka in any schema mode, at a given rate.

    With --from-db TABLE, republish a stored table's rows instead (see that option).
    """
    import asyncio

    from tqdm import tqdm

    from brokerapp import produce as prod
    from brokerapp.kafka_admin import delete_topics, ensure_topics
    from brokerapp.registry import RegistryClient

    if from_db is not None or _given("store", "object_id"):
        _produce_from_db(
            settings, from_db, store, object_id, topic, rate, partitions, upstream, replace
        )
        return
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


def _given(*names: str) -> list[str]:
    """Return which of the current command's parameters were given (not their defaults)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return [n for n in names if ctx.get_parameter_source(n) not in (None, ParameterSource.DEFAULT)]


def _produce_from_db(
    settings: Settings,
    table: str | None,
    kind: str,
    object_id: str | None,
    topic: str | None,
    rate: float,
    partitions: int,
    upstream: bool,
    replace: bool,
) -> None:
    """``produce --from-db``: send a stored table's rows to one topic and print the count."""
    import asyncio
    import time

    import pymysql

    from brokerapp import dbschema
    from brokerapp import produce as prod
    from brokerapp.kafka_admin import delete_topics, ensure_topics
    from brokerapp.stores import StoreUnavailable, open_store

    if table is None:
        raise click.UsageError("--store and --object go with --from-db")
    alert_options = (
        "files",
        "simulate",
        "lsst_version",
        "daily",
        "date",
        "mode",
        "count",
        "schema_id",
    )
    clashing = _given(*alert_options)
    if clashing:
        names = ", ".join("--" + n.replace("_", "-") for n in clashing)
        raise click.UsageError(f"--from-db republishes stored rows: {names} do not apply")
    if not topic:
        raise click.UsageError("--from-db needs --topic")

    async def read() -> list[dict]:
        opened = await open_store(settings, kind)
        try:
            if not await opened.schema_version():
                raise click.ClickException(
                    f"{kind}: tables not migrated ({_store_where(settings, kind)}); "
                    "run `brokerapp db migrate`"
                )
            if object_id is None:
                return await opened.dump(table)
            tbl = dbschema.table(table)
            if "object_id" in tbl.partition_key or (
                kind == "mariadb" and "object_id" in tbl.lookup_columns
            ):
                return await opened.fetch(table, object_id=object_id)
            # Not a lookup this store can make (e.g. ss_candidates): filter the table.
            return [r for r in await opened.dump(table) if r.get("object_id") == object_id]
        finally:
            await opened.close()

    try:
        rows = asyncio.run(read())
    except StoreUnavailable as exc:
        raise click.ClickException(
            f"{kind}: unavailable ({_store_where(settings, kind)}): {exc}"
        ) from exc
    except pymysql.err.OperationalError as exc:  # left through by the store: account, database
        raise click.ClickException(
            f"{kind}: cannot read ({_store_where(settings, kind)}): {exc}"
        ) from exc
    bootstrap, _registry = _cluster(settings, upstream)
    if replace:
        delete_topics(bootstrap, [topic])
    ensure_topics(bootstrap, [topic], partitions)
    started = time.perf_counter()
    messages = ((topic, key, value) for key, value in prod.stored_messages(table, rows))
    try:
        report = prod.produce(
            {"bootstrap.servers": bootstrap, "message.max.bytes": settings.max_message_bytes},
            messages,
            rate=rate,
        )
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    seconds = time.perf_counter() - started
    which = f" of object {object_id}" if object_id is not None else ""
    click.echo(
        f"produced {report.count} {table} records{which} from {kind}, {report.bytes} bytes "
        f"in {seconds:.2f} s, to {topic}"
    )


def _store_where(settings: Settings, kind: str) -> str:
    """Return where a store's tables are: its database or keyspace and port."""
    if kind == "mariadb":
        return f"database {settings.mariadb_database} on 127.0.0.1:{settings.mariadb_port}"
    return f"keyspace {settings.cassandra_keyspace} on 127.0.0.1:{settings.cassandra_port}"


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


class _ListOrSubcommand(click.Group):
    """A group that lists when called bare or with topic names, and runs a sub-command by name.

    ``brokerapp topics [OPTIONS] [TOPIC...]`` lists; ``brokerapp topics grow ...`` grows. A
    sub-command is recognised only as the first word after the group's name, and then the
    group's own ``TOPIC`` argument is left out of parsing (it would swallow the sub-command's
    words). A topic named like a sub-command is listed with ``--pattern``.
    """

    _META_KEY = "brokerapp.topics.subcommand"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse, leaving a leading sub-command and its words to the sub-command."""
        subcommand = bool(args) and args[0] in self.commands
        ctx.meta[self._META_KEY] = subcommand
        # Listing takes options after topic names too; a sub-command's options are its own.
        ctx.allow_interspersed_args = not subcommand
        return super().parse_args(ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """Drop the positional TOPIC argument when a sub-command follows."""
        params = super().get_params(ctx)
        if ctx.meta.get(self._META_KEY):
            params = [p for p in params if not isinstance(p, click.Argument)]
        return params


def _admin_errors():
    """Errors of ``brokerapp.topics`` that the commands report in one line and exit 1."""
    from confluent_kafka import KafkaException

    from brokerapp.topics import TopicsError

    return TopicsError, KafkaException, OSError


@main.group(cls=_ListOrSubcommand, invoke_without_command=True)
@click.argument("topic_names", metavar="[TOPIC]...", nargs=-1)
@click.option("--upstream", is_flag=True, help="Describe the upstream cluster's topics.")
@click.option("--pattern", default=None, help="Regular expression (search) of topics to show.")
@click.option(
    "--all", "include_internal", is_flag=True, help="Also show internal topics (leading _)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def topics(
    ctx: click.Context,
    upstream: bool,
    pattern: str | None,
    include_internal: bool,
    as_json: bool,
    topic_names: tuple[str, ...] = (),
) -> None:
    """List topics (partitions, retention, disk, offsets, timestamps), or run a sub-command.

    Without TOPIC or --pattern every topic is listed except internal ones. Counts are
    earliest and latest offsets summed over partitions; "disk" sums every replica.
    """
    if ctx.invoked_subcommand is not None:
        return
    from brokerapp.topics import describe_topics, format_json, format_table

    settings: Settings = ctx.obj
    bootstrap = settings.upstream_bootstrap if upstream else settings.kafka_bootstrap
    try:
        infos = describe_topics(bootstrap, topic_names, pattern, include_internal)
    except _admin_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(format_json(infos))
    elif infos:
        click.echo(format_table(infos))
    else:
        click.echo("no topics match", err=True)


@topics.command("grow")
@click.argument("topic")
@click.option(
    "--partitions",
    "-p",
    type=click.IntRange(min=1),
    required=True,
    help="New total partition count (more than now: Kafka cannot shrink a topic).",
)
@click.option("--upstream", is_flag=True, help="Grow a topic of the upstream cluster.")
@click.pass_obj
def topics_grow(settings: Settings, topic: str, partitions: int, upstream: bool) -> None:
    """Raise TOPIC's partition count; keys then hash to new partitions (see README)."""
    from brokerapp.topics import grow_topic

    bootstrap = settings.upstream_bootstrap if upstream else settings.kafka_bootstrap
    try:
        result = grow_topic(bootstrap, topic, partitions)
    except _admin_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{result.topic}: {result.old} -> {result.new} partitions")


@main.command()
@click.argument("group")
@click.option(
    "--to-datetime",
    "to_datetime",
    default=None,
    metavar="ISO8601",
    help="First offset at or after this time (no timezone = UTC); partitions with nothing "
    "that late go to the latest offset.",
)
@click.option("--to-earliest", is_flag=True, help="Earliest offset held of each partition.")
@click.option("--to-latest", is_flag=True, help="Latest offset of each partition (skip all).")
@click.option(
    "--shift-by",
    type=int,
    default=None,
    metavar="N",
    help="Move each committed offset by N (negative = back), clamped to what is held; a "
    "partition without a committed offset counts as at its earliest offset.",
)
@click.option("--topic", "-t", default=None, help="Topic (default: the settings' alerts_topic).")
@click.option("--dry-run", is_flag=True, help="Print the new offsets without setting them.")
@click.pass_obj
def replay(
    settings: Settings,
    group: str,
    to_datetime: str | None,
    to_earliest: bool,
    to_latest: bool,
    shift_by: int | None,
    topic: str | None,
    dry_run: bool,
) -> None:
    """Reset GROUP's committed offsets on every partition of a local topic.

    The group must have no active members (stop its workers first); otherwise nothing is
    changed and the exit status is 1. Prints old -> new offset per partition.
    """
    from brokerapp.topics import ReplayTarget, parse_datetime
    from brokerapp.topics import replay as run_replay

    chosen = [to_datetime is not None, to_earliest, to_latest, shift_by is not None]
    if sum(chosen) != 1:
        raise click.UsageError(
            "give exactly one of --to-datetime, --to-earliest, --to-latest, --shift-by"
        )
    if to_datetime is not None:
        try:
            target = ReplayTarget.at(parse_datetime(to_datetime))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--to-datetime") from exc
    elif to_earliest:
        target = ReplayTarget.earliest()
    elif to_latest:
        target = ReplayTarget.latest()
    else:
        target = ReplayTarget.shift_by(shift_by)
    try:
        result = run_replay(
            settings.kafka_bootstrap, group, topic or settings.alerts_topic, target, dry_run
        )
    except _admin_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    for line in result.lines():
        click.echo(line)


@topics.command("delete")
@click.argument("names", metavar="TOPIC...", nargs=-1, required=True)
@click.option("--upstream", is_flag=True, help="Delete topics of the upstream cluster.")
@click.pass_obj
def topics_delete(settings: Settings, names: tuple[str, ...], upstream: bool) -> None:
    """Delete the named topics that exist (their messages are gone for good)."""
    from brokerapp.kafka_admin import delete_topics

    bootstrap = settings.upstream_bootstrap if upstream else settings.kafka_bootstrap
    try:
        deleted = delete_topics(bootstrap, list(names))
    except _admin_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    for name in names:
        click.echo(f"{name}: {'deleted' if name in deleted else 'did not exist'}")


@main.command("filter")
@click.argument("bootstrap")
@click.argument("topic")
@click.argument("number", type=click.IntRange(min=1))
@click.option("--web-port", type=int, default=None, help="Web view port (default: base + N).")
@click.option("--loglevel", "-l", default="info", show_default=True, help="Worker log level.")
@click.pass_obj
def filter_worker(
    settings: Settings, bootstrap: str, topic: str, number: int, web_port: int | None, loglevel: str
) -> None:
    """Run filter NUMBER (7 = Filter007) on TOPIC of the cluster at BOOTSTRAP.

    The DMTN-028 usage (``filterStream.py kafka:9092 full-stream 7``): a filters worker
    (``faust -A agents.filters worker``) with only that filter, as its own consumer group
    (``<app_prefix>-filterNNN``), writing passing alerts, at most 20 per visit, to the topic
    named after the filter.
    """
    import os
    import sys

    from brokerapp.filters import filter_class

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


@main.group()
def watchlist() -> None:
    """Add, replace, delete and list sky watchlists (through the control topic)."""


def _send_command(settings: Settings, command) -> None:
    from confluent_kafka import Producer

    from brokerapp.kafka_admin import ensure_topics

    topic = settings.watchlist_control_topic
    ensure_topics(settings.kafka_bootstrap, [topic], 1, {"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    errors: list[str] = []
    producer.produce(
        topic,
        command.to_bytes(),
        key=command.key,
        on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
    )
    producer.flush(30)
    if errors:
        raise click.ClickException(f"not sent: {errors[0]}")


@watchlist.command("put")
@click.argument("watchlist_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Watchlist name (default: its ID).")
@click.option("--owner", default="unknown", show_default=True, help="Who owns it.")
@click.option("--radius", type=float, default=None, help="Radius [arcsec] for rows without one.")
@click.pass_obj
def watchlist_put(settings: Settings, watchlist_id, path, name, owner, radius) -> None:
    """Add or replace watchlist WATCHLIST_ID from a CSV, VOTable or FITS file at PATH.

    The file needs columns name, ra, dec [deg] and radius [arcsec] (or --radius). A bad row
    is reported with its row and column and nothing is sent.
    """
    from brokerapp.watchlists import WatchlistCommand, WatchlistError, load_watchlist

    try:
        loaded = load_watchlist(
            path, watchlist_id, name or watchlist_id, owner, default_radius=radius
        )
    except WatchlistError as exc:
        raise click.ClickException(str(exc)) from exc
    _send_command(settings, WatchlistCommand.put(loaded))
    click.echo(
        f"{watchlist_id}: {len(loaded.entries)} entries sent to {settings.watchlist_control_topic}"
    )


@watchlist.command("delete")
@click.argument("watchlist_id")
@click.pass_obj
def watchlist_delete(settings: Settings, watchlist_id) -> None:
    """Delete watchlist WATCHLIST_ID."""
    from brokerapp.watchlists import WatchlistCommand

    _send_command(settings, WatchlistCommand.delete(watchlist_id))
    click.echo(f"{watchlist_id}: delete sent to {settings.watchlist_control_topic}")


@watchlist.command("put-objects")
@click.argument("watchlist_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Watchlist name (default: its ID).")
@click.option("--owner", default="unknown", show_default=True, help="Who owns it.")
@click.option("--column", default="object", show_default=True, help="Column of object names.")
@click.pass_obj
def watchlist_put_objects(settings: Settings, watchlist_id, path, name, owner, column) -> None:
    """Add or replace solar-system watchlist WATCHLIST_ID from a file of object names or IDs.

    Names are ZTF ``ssnamenr`` values, LSST ``ssObjectId`` numbers or MPC designations; the
    watchlist branch follows them on the solar stream.
    """
    from brokerapp.watchlists import (
        SolarSystemWatchlist,
        WatchlistCommand,
        WatchlistError,
        load_objects,
    )

    try:
        objects = load_objects(path, column=column)
        loaded = SolarSystemWatchlist(watchlist_id, name or watchlist_id, owner, objects)
    except WatchlistError as exc:
        raise click.ClickException(str(exc)) from exc
    _send_command(settings, WatchlistCommand.put(loaded))
    click.echo(f"{watchlist_id}: {len(objects)} objects sent to {settings.watchlist_control_topic}")


@main.group()
def catalogue() -> None:
    """Make static catalogues for the crossmatch branch."""


@catalogue.command("synthetic")
@click.option("--count", "-n", type=int, default=1_000_000, show_default=True, help="Sources.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="var/catalogues/synthetic.parquet",
    show_default=True,
    help="File to write (.parquet, .csv, .fits or .vot).",
)
def catalogue_synthetic(count: int, seed: int, out: str) -> None:
    """Write a synthetic catalogue, uniform on the sky, for benchmarks and the demo."""
    from pathlib import Path

    from brokerapp.watchlists import synthetic_catalogue, write_catalogue

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_catalogue(synthetic_catalogue(count, seed=seed), out)
    click.echo(f"{out}: {count} sources")


@main.command()
@click.option("--port", type=int, default=None, help="Port (default: overview_port).")
@click.pass_obj
def overview(settings: Settings, port: int | None) -> None:
    """Serve one page over every worker (/), its JSON (/status.json) and /metrics."""
    from aiohttp import web

    from brokerapp.overview import serve

    port = port or settings.overview_port
    click.echo(f"overview on http://{settings.web_bind}:{port}/", err=True)
    web.run_app(serve(settings, port), host=settings.web_bind, port=port, print=None)


@main.group()
def db() -> None:
    """Create and inspect the sinks' tables in MariaDB and Cassandra."""


_STORE_KINDS = {
    "mariadb": ("mariadb",),
    "cassandra": ("cassandra",),
    "both": ("mariadb", "cassandra"),
}


@db.command("migrate")
@click.option(
    "--store",
    type=click.Choice(["mariadb", "cassandra", "both"]),
    default="both",
    show_default=True,
    help="Which database to migrate.",
)
@click.pass_obj
def db_migrate(settings: Settings, store: str) -> None:
    """Create the keyspace (Cassandra) and apply the pending schema migrations.

    Prints the versions applied, or "up to date", per store; exits 1 if a store does not
    answer.
    """
    import asyncio

    from brokerapp.stores import StoreUnavailable, open_store

    async def run() -> bool:
        ok = True
        for kind in _STORE_KINDS[store]:
            try:
                opened = await open_store(settings, kind)
                try:
                    applied = await opened.migrate()
                    version = await opened.schema_version()
                finally:
                    await opened.close()
            except StoreUnavailable as exc:
                click.echo(f"{kind}: unavailable: {exc}", err=True)
                ok = False
                continue
            if applied:
                done = ", ".join(str(v) for v in applied)
                click.echo(f"{kind}: applied {done} (schema version {version})")
            else:
                click.echo(f"{kind}: up to date (schema version {version})")
        return ok

    if not asyncio.run(run()):
        sys.exit(1)


@db.command("status")
@click.pass_obj
def db_status(settings: Settings) -> None:
    """Print each store's schema version and the row count of each table.

    Counting a Cassandra table scans it: this is for development and tests, not for a
    production-sized keyspace. Exits 1 if a store does not answer.
    """
    import asyncio

    from brokerapp.dbschema import TABLES
    from brokerapp.stores import StoreUnavailable, open_store

    where = {
        "mariadb": f"database {settings.mariadb_database} on 127.0.0.1:{settings.mariadb_port}",
        "cassandra": f"keyspace {settings.cassandra_keyspace} on "
        f"127.0.0.1:{settings.cassandra_port}",
    }

    async def run() -> bool:
        ok = True
        for kind in _STORE_KINDS["both"]:
            try:
                opened = await open_store(settings, kind)
                try:
                    version = await opened.schema_version()
                    counts = {t: await opened.count(t) for t in TABLES} if version else {}
                finally:
                    await opened.close()
            except StoreUnavailable as exc:
                click.echo(f"{kind}: unavailable ({where[kind]}): {exc}", err=True)
                ok = False
                continue
            state = f"schema version {version}" if version else "not migrated (schema version 0)"
            click.echo(f"{kind}: {state} ({where[kind]})")
            for name, rows in counts.items():
                click.echo(f"  {name:<16} {rows:>12,} rows")
        return ok

    if not asyncio.run(run()):
        sys.exit(1)


@main.command("object")
@click.argument("object_id")
@click.option(
    "--store",
    type=click.Choice(["mariadb", "cassandra"]),
    default="mariadb",
    show_default=True,
    help="The database to read.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also draw the light curve to this image file (PNG; the format follows the suffix).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@click.pass_obj
def object_command(
    settings: Settings, object_id: str, store: str, plot: str | None, as_json: bool
) -> None:
    """Print OBJECT_ID's statistics and light curve from the sinks' tables.

    The statistics are the object's `objects` row (with its per-band `stats` and colours),
    the light curve its `candidates` rows in time order. Exits 1 when the store has neither
    for OBJECT_ID, or does not answer, or is not migrated.
    """
    import asyncio

    import pymysql

    from brokerapp import lightcurve
    from brokerapp.stores import StoreUnavailable, open_store

    async def read() -> tuple[dict | None, list[dict]]:
        opened = await open_store(settings, store)
        try:
            if not await opened.schema_version():
                raise click.ClickException(
                    f"{store}: tables not migrated ({_store_where(settings, store)}); "
                    "run `brokerapp db migrate`"
                )
            objects = await opened.fetch("objects", object_id=object_id)
            rows = await opened.fetch("candidates", object_id=object_id)
        finally:
            await opened.close()
        return (objects[0] if objects else None), rows

    try:
        obj, rows = asyncio.run(read())
    except StoreUnavailable as exc:
        click.echo(f"{store}: unavailable ({_store_where(settings, store)}): {exc}", err=True)
        sys.exit(1)
    except pymysql.err.OperationalError as exc:  # left through by the store: account, database
        click.echo(f"{store}: cannot read ({_store_where(settings, store)}): {exc}", err=True)
        sys.exit(1)
    if obj is None and not rows:
        click.echo(
            f"no object {object_id!r} in {store} ({_store_where(settings, store)}): "
            "no objects row and no candidates",
            err=True,
        )
        sys.exit(1)
    if as_json:
        document = lightcurve.object_document(object_id, obj, rows, store)
        click.echo(json.dumps(document, indent=2, default=str))
    else:
        click.echo(lightcurve.format_object(object_id, obj, rows))
    if plot:
        figure = lightcurve.light_curve_figure(
            rows, object_id, survey=obj.get("survey") if obj else None
        )
        try:
            figure.savefig(plot, dpi=100)
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot write the plot {plot}: {exc}") from exc
        points = len(lightcurve.plottable(rows))
        click.echo(f"plot: {plot} ({points} points)", err=as_json)
