"""``brokerapp db`` and ``brokerapp object``: migrations, row counts, one object's light curve."""

from __future__ import annotations

import json
import sys

import click

from brokerapp.model.settings import Settings
from brokerapp.tools.cli.common import store_where
from brokerapp.tools.cli.errors import store_unavailable


@click.group()
def db() -> None:
    """Create and inspect the sinks' tables in MariaDB and Cassandra."""


_STORE_KINDS = {
    "mariadb": ("mariadb",),
    "cassandra": ("cassandra",),
    "both": ("mariadb", "cassandra"),
}
"""What each ``--store`` choice names (the stores of :mod:`brokerapp.adapters.stores`)."""


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
    answer or refuses the account.
    """
    import asyncio

    from brokerapp.adapters.stores import StoreUnavailable, open_store, store_class

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
                click.echo(store_unavailable(settings, kind, exc), err=True)
                ok = False
                continue
            except store_class(kind).setup_errors as exc:  # account, database
                click.echo(
                    f"{kind}: cannot connect ({store_where(settings, kind)}): {exc}", err=True
                )
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
    production-sized keyspace. Exits 1 if a store does not answer or refuses the account.
    """
    import asyncio

    from brokerapp.adapters.dbschema import TABLES
    from brokerapp.adapters.stores import StoreUnavailable, open_store, store_class

    where = {kind: store_where(settings, kind) for kind in _STORE_KINDS["both"]}

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
                click.echo(store_unavailable(settings, kind, exc), err=True)
                ok = False
                continue
            except store_class(kind).setup_errors as exc:  # account, database
                click.echo(f"{kind}: cannot connect ({where[kind]}): {exc}", err=True)
                ok = False
                continue
            state = f"schema version {version}" if version else "not migrated (schema version 0)"
            click.echo(f"{kind}: {state} ({where[kind]})")
            for name, rows in counts.items():
                click.echo(f"  {name:<16} {rows:>12,} rows")
        return ok

    if not asyncio.run(run()):
        sys.exit(1)


@click.command("object")
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

    from brokerapp.adapters.stores import StoreUnavailable, open_store, store_class
    from brokerapp.domain import lightcurve

    async def read() -> tuple[dict | None, list[dict]]:
        opened = await open_store(settings, store)
        try:
            if not await opened.schema_version():
                raise click.ClickException(
                    f"{store}: tables not migrated ({store_where(settings, store)}); "
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
        click.echo(store_unavailable(settings, store, exc), err=True)
        sys.exit(1)
    except store_class(store).setup_errors as exc:  # left through by the store: account, database
        click.echo(f"{store}: cannot read ({store_where(settings, store)}): {exc}", err=True)
        sys.exit(1)
    if obj is None and not rows:
        click.echo(
            f"no object {object_id!r} in {store} ({store_where(settings, store)}): "
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
