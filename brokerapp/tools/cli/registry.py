"""``brokerapp registry export`` and ``brokerapp registry import``: registry federation.

``export`` prints (or writes with ``-o``) this site's upstream-to-local schema ID map with
every schema and its fingerprint as one JSON document; ``import FILE`` loads such a document
into this site's registry and gateway ID table, so this site's gateway can follow the other
site's ``alerts`` topic without calling its registry (see :mod:`brokerapp.tools.federation`).
A malformed document or a conflict (an ID already mapped to a different schema) is one line
on stderr, exit status 1, nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from brokerapp.model.settings import Settings
from brokerapp.tools.cli.errors import needs_kafka


@click.group()
def registry() -> None:
    """Export this site's schema ID map, or import another site's."""


@registry.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the document to this file (default: standard output).",
)
@click.pass_obj
@needs_kafka
def registry_export(settings: Settings, output: Path | None) -> None:
    """Write the gateway's schema ID map, schemas and fingerprints as one JSON document."""
    import asyncio

    from brokerapp.domain.federation import FederationError, dumps
    from brokerapp.tools.federation import export_document

    try:
        document = asyncio.run(export_document(settings))
    except FederationError as exc:
        raise click.ClickException(str(exc)) from exc
    text = dumps(document) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(
            f"{output}: {len(document['ids'])} ID(s), {len(document['schemas'])} schema(s)",
            err=True,
        )


@registry.command("import")
@click.argument("document", type=click.File("r"))
@click.option(
    "--subject",
    default=None,
    help="Subject of the imported schemas (default: <alerts_topic>-value, the gateway's).",
)
@click.pass_obj
@needs_kafka
def registry_import(
    settings: Settings, document: click.utils.LazyFile, subject: str | None
) -> None:
    """Load an export DOCUMENT (a file, - for standard input) into this site."""
    import asyncio

    from brokerapp.domain.federation import FederationError
    from brokerapp.tools.federation import import_document

    try:
        parsed = json.load(document)
    except ValueError as exc:
        raise click.ClickException(f"{document.name}: not JSON: {exc}") from exc
    try:
        report = asyncio.run(import_document(settings, parsed, subject))
    except FederationError as exc:
        raise click.ClickException(f"{document.name}: {exc}") from exc
    for line in report.lines():
        click.echo(line)
