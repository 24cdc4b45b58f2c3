"""``brokerapp cutouts ALERT_ID``: the image cutouts of one alert, from the cutouts topic.

Prints one line per stamp (kind, size, file name) and, with ``--out DIR``, writes each stamp
to ``DIR``: under the survey's file name when it gives one (ZTF's ``...fits.gz``), else as
``<alert_id>_<kind>.fits``. Exits with status 1 when the topic holds no cutouts for the ID.
"""

from __future__ import annotations

from pathlib import Path

import click

from brokerapp.model.settings import Settings
from brokerapp.tools.cli.errors import needs_kafka


@click.command("cutouts")
@click.argument("alert_id", type=int)
@click.option("--topic", default=None, help="Cutouts topic (default: setting cutouts_topic).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each stamp into this folder (created if missing).",
)
@click.pass_obj
@needs_kafka
def cutouts_command(settings: Settings, alert_id: int, topic: str | None, out: Path | None) -> None:
    """Print (and with --out write) the image cutouts of one alert."""
    import asyncio

    from brokerapp.adapters.cutouts import MissingTopicError, fetch_cutouts

    name = topic or settings.cutouts_topic
    try:
        found = asyncio.run(
            fetch_cutouts(settings.kafka_bootstrap, name, alert_id, settings.max_message_bytes)
        )
    except MissingTopicError as exc:
        raise click.ClickException(str(exc)) from exc
    if found is None:
        raise click.ClickException(f"no cutouts for alert {alert_id} in topic {name!r}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    click.echo(f"{found.survey} alert {found.alert_id}")
    for kind, image in found.images.items():
        if image is None:
            click.echo(f"{kind}: none")
            continue
        file_name = found.file_names.get(kind) or f"{found.alert_id}_{kind}.fits"
        line = f"{kind}: {len(image)} bytes {file_name}"
        if out is not None:
            path = out / Path(file_name).name
            path.write_bytes(image)
            line += f" -> {path}"
        click.echo(line)
