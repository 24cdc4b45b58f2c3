"""``brokerapp produce``: publish sample, simulated or stored alerts to Kafka."""

from __future__ import annotations

import time

import click

from brokerapp.model.settings import Settings
from brokerapp.tools.cli.common import cluster, cluster_registry, store_where
from brokerapp.tools.cli.errors import needs_kafka, store_unavailable


@click.command()
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
@needs_kafka
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

    from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics
    from brokerapp.adapters.registry import open_registry
    from brokerapp.tools import produce as prod

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
    bootstrap, _url = cluster(settings, upstream)
    registry_side = cluster_registry(settings, upstream)
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
            async with open_registry(registry_side) as registry:
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

    from brokerapp.adapters.kafka_admin import delete_topics, ensure_topics
    from brokerapp.adapters.stores import StoreUnavailable, open_store, store_class
    from brokerapp.tools import produce as prod

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
                    f"{kind}: tables not migrated ({store_where(settings, kind)}); "
                    "run `brokerapp db migrate`"
                )
            if object_id is None:
                return await opened.dump(table)
            if opened.can_fetch_by(table, ("object_id",)):
                return await opened.fetch(table, object_id=object_id)
            # Not a lookup this store can make (e.g. ss_candidates): filter the table.
            return [r for r in await opened.dump(table) if r.get("object_id") == object_id]
        finally:
            await opened.close()

    try:
        rows = asyncio.run(read())
    except StoreUnavailable as exc:
        raise click.ClickException(
            store_unavailable(settings, kind, exc),
        ) from exc
    except store_class(kind).setup_errors as exc:  # left through by the store: account, database
        raise click.ClickException(
            f"{kind}: cannot read ({store_where(settings, kind)}): {exc}"
        ) from exc
    bootstrap, _registry = cluster(settings, upstream)
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
