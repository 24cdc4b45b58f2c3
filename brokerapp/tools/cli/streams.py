"""``brokerapp streams describe [STREAM]``: the stream descriptions of the output topics.

Prints the JSON description of every output topic (a list), or of one (by stream name, e.g.
``alerts``, or topic name), each validated against the JSON Schema shipped in
``brokerapp/model/stream_description.schema.json`` (the same documents the overview serves at
``/streams/``). ``streams check FILE`` validates a description file (one or a list) and
names the field at fault. Neither needs a server.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from brokerapp.model.settings import Settings


@click.group()
def streams() -> None:
    """Describe the output streams (JSON stream descriptions)."""


@streams.command("describe")
@click.argument("name", required=False)
@click.pass_obj
def streams_describe(settings: Settings, name: str | None) -> None:
    """Print the description of every output stream, or of stream NAME (or topic NAME)."""
    from brokerapp.model.streams import DescriptionError
    from brokerapp.runtime.streams import describe_streams

    try:
        documents = describe_streams(settings, name)
    except KeyError as exc:
        raise click.ClickException(f"no output stream or topic {name!r}") from exc
    except DescriptionError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(documents[0] if name else documents, indent=2))


@streams.command("check")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def streams_check(path: Path) -> None:
    """Validate a stream description file (one description or a JSON list)."""
    from brokerapp.model.streams import DescriptionError, load_descriptions

    try:
        documents = load_descriptions(path)
    except DescriptionError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path}: {len(documents)} valid description(s)")
