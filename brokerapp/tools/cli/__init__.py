"""The ``brokerapp`` command line: one module per command group, registered on :func:`main`.

Settings are built once from ``BROKER_`` environment variables when the command starts and
passed to every sub-command through the click context. A command whose server does not
answer says so in one line (:mod:`brokerapp.tools.cli.errors`); ``-v`` shows the client
libraries' own warnings.
"""

from __future__ import annotations

import json

import click

from brokerapp.model.settings import Settings, load_settings
from brokerapp.tools.cli.errors import configure_client_logging


@click.group()
@click.option(
    "-v", "--verbose", is_flag=True, help="Show the client libraries' warnings and errors."
)
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """LSST:UK alert broker."""
    configure_client_logging(verbose)
    ctx.obj = load_settings()


@main.command()
@click.pass_obj
def config(settings: Settings) -> None:
    """Print the effective settings as JSON, secrets masked."""
    click.echo(json.dumps(settings.masked(), indent=2, sort_keys=True))


def _register() -> None:
    """Add every command group to :func:`main`, explicitly (a test lists them)."""
    from brokerapp.tools.cli import (
        cutouts,
        db,
        filters,
        overview,
        produce,
        registry,
        services,
        streams,
        tail,
        topics,
        watchlist,
    )

    for command in (
        services.services,
        produce.produce,
        tail.tail,
        topics.topics,
        topics.replay,
        filters.filter_worker,
        watchlist.watchlist,
        watchlist.catalogue,
        overview.overview,
        db.db,
        db.object_command,
        cutouts.cutouts_command,
        registry.registry,
        streams.streams,
    ):
        main.add_command(command)


_register()
