"""``brokerapp watchlist`` and ``brokerapp catalogue``: send watchlists, make catalogues."""

from __future__ import annotations

from pathlib import Path

import click

from brokerapp.model.settings import Settings
from brokerapp.tools.cli.errors import needs_kafka


@click.group()
def watchlist() -> None:
    """Add, replace, delete and list sky watchlists (through the control topic)."""


def _send_command(settings: Settings, command) -> None:
    _send_messages(settings, [[(command.key, command.to_bytes())]])


def _send_messages(settings: Settings, batches: list[list[tuple[bytes, bytes]]]) -> None:
    """Send batches of control messages in order, each delivered before the next is sent."""
    from confluent_kafka import Producer

    from brokerapp.adapters.kafka_admin import ensure_topics

    topic = settings.watchlist_control_topic
    ensure_topics(settings.kafka_bootstrap, [topic], 1, {"cleanup.policy": "compact"})
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.max.bytes": settings.max_message_bytes,
            "linger.ms": 20,
        }
    )
    errors: list[str] = []
    for batch in batches:
        for key, value in batch:
            producer.produce(
                topic,
                value,
                key=key,
                on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
            )
            producer.poll(0)
        if producer.flush(120) or errors:
            raise click.ClickException(f"not sent: {errors[0] if errors else 'timed out'}")


def _send_chunked(settings: Settings, loaded) -> int:
    """Send a watchlist as chunks, then (once all are delivered) its commit; return chunks."""
    from brokerapp.domain.watchlists.chunks import chunk_commands

    chunks, commit = chunk_commands(loaded, settings.watchlist_chunk_entries)
    _send_messages(
        settings,
        [[(c.key, c.to_bytes()) for c in chunks], [(commit.key, commit.to_bytes())]],
    )
    return commit.chunks


@watchlist.command("put")
@click.argument("watchlist_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Watchlist name (default: its ID).")
@click.option("--owner", default="unknown", show_default=True, help="Who owns it.")
@click.option("--radius", type=float, default=None, help="Radius [arcsec] for rows without one.")
@click.pass_obj
@needs_kafka
def watchlist_put(settings: Settings, watchlist_id, path, name, owner, radius) -> None:
    """Add or replace watchlist WATCHLIST_ID from a CSV, VOTable or FITS file at PATH.

    The file needs columns name, ra, dec [deg] and radius [arcsec] (or --radius). A bad row
    is reported with its row and column and nothing is sent. The entries go as chunks of
    watchlist_chunk_entries and a commit: the workers switch to the new version at once
    when the commit arrives, and keep the old one if the upload stops before it.
    """
    from brokerapp.domain.watchlists import WatchlistError, load_watchlist

    try:
        loaded = load_watchlist(
            path, watchlist_id, name or watchlist_id, owner, default_radius=radius
        )
    except WatchlistError as exc:
        raise click.ClickException(str(exc)) from exc
    chunks = _send_chunked(settings, loaded)
    click.echo(
        f"{watchlist_id}: {len(loaded.entries)} entries sent to {settings.watchlist_control_topic}"
        f" ({chunks} chunk{'s' if chunks > 1 else ''} and a commit)"
    )


@watchlist.command("delete")
@click.argument("watchlist_id")
@click.pass_obj
@needs_kafka
def watchlist_delete(settings: Settings, watchlist_id) -> None:
    """Delete watchlist WATCHLIST_ID."""
    from brokerapp.domain.watchlists import WatchlistCommand

    _send_command(settings, WatchlistCommand.delete(watchlist_id))
    click.echo(f"{watchlist_id}: delete sent to {settings.watchlist_control_topic}")


@watchlist.command("put-objects")
@click.argument("watchlist_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Watchlist name (default: its ID).")
@click.option("--owner", default="unknown", show_default=True, help="Who owns it.")
@click.option("--column", default="object", show_default=True, help="Column of object names.")
@click.pass_obj
@needs_kafka
def watchlist_put_objects(settings: Settings, watchlist_id, path, name, owner, column) -> None:
    """Add or replace solar-system watchlist WATCHLIST_ID from a file of object names or IDs.

    Names are ZTF ``ssnamenr`` values, LSST ``ssObjectId`` numbers or MPC designations; the
    watchlist branch follows them on the solar stream.
    """
    from brokerapp.domain.watchlists import SolarSystemWatchlist, WatchlistError, load_objects

    try:
        objects = load_objects(path, column=column)
        loaded = SolarSystemWatchlist(watchlist_id, name or watchlist_id, owner, objects)
    except WatchlistError as exc:
        raise click.ClickException(str(exc)) from exc
    _send_chunked(settings, loaded)
    click.echo(f"{watchlist_id}: {len(objects)} objects sent to {settings.watchlist_control_topic}")


@click.group()
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
    from brokerapp.domain.watchlists import synthetic_catalogue, write_catalogue

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_catalogue(synthetic_catalogue(count, seed=seed), out)
    click.echo(f"{out}: {count} sources")
