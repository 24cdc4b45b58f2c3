"""``brokerapp overview``: serve the page over every worker's status."""

from __future__ import annotations

import click

from brokerapp.model.settings import Settings


@click.command()
@click.option("--port", type=int, default=None, help="Port (default: overview_port).")
@click.pass_obj
def overview(settings: Settings, port: int | None) -> None:
    """Serve one page over every worker (/), its JSON (/status.json) and /metrics.

    Needs no server: a worker that does not answer is shown as down. Exits 1 with one line
    if the port cannot be bound (e.g. already in use).
    """
    from aiohttp import web

    from brokerapp.tools.overview import serve

    port = port or settings.overview_port
    serving = f"overview on http://{settings.web_bind}:{port}/"
    try:  # aiohttp binds inside run_app, then calls print
        web.run_app(
            serve(settings, port),
            host=settings.web_bind,
            port=port,
            print=lambda _aiohttp_line: click.echo(serving, err=True),
        )
    except OSError as exc:
        raise click.ClickException(
            f"overview cannot listen on {settings.web_bind}:{port}: {exc.strerror or exc}"
        ) from exc
