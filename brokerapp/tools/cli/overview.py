"""``brokerapp overview``: serve the page over every worker's status."""

from __future__ import annotations

import click

from brokerapp.model.settings import Settings


@click.command()
@click.option("--port", type=int, default=None, help="Port (default: overview_port).")
@click.pass_obj
def overview(settings: Settings, port: int | None) -> None:
    """Serve one page over every worker (/), its JSON (/status.json) and /metrics."""
    from aiohttp import web

    from brokerapp.tools.overview import serve

    port = port or settings.overview_port
    click.echo(f"overview on http://{settings.web_bind}:{port}/", err=True)
    web.run_app(serve(settings, port), host=settings.web_bind, port=port, print=None)
