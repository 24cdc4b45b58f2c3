"""``brokerapp registry export`` and ``import``: one site's schema ID map, carried to another.

The document and the conflict rules are :mod:`brokerapp.domain.federation`'s. Here is the I/O:

Export (at the site followed)
    Read the site's ID table (its gateway's ``<app_prefix>-gateway-schema-ids`` topic on the
    local cluster, :mod:`brokerapp.adapters.idtable`), fetch every local ID from the local
    registry (``GET /schemas/ids/{id}``) and check that it still names the schema the table
    recorded (a rebuilt registry would not), then build the document.
Import (at the following site)
    Check the document, read this site's ID table, plan (reuse / register / refuse), register
    each new schema in this site's registry under ``subject`` (default
    ``<alerts_topic>-value``, the subject its gateway uses; ``POST /subjects/{s}/versions``),
    and only then write every new pair to the ID table in one go. A refused plan writes
    nothing.

Only the Confluent REST API of each registry is used (Apicurio serves it under
``/apis/ccompat/v7``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from brokerapp.adapters.idtable import read_id_table, schema_ids_topic, write_id_table
from brokerapp.adapters.registry import RegistryError, registry_access, registry_client
from brokerapp.domain.federation import (
    FederationError,
    build_export,
    fingerprint_of,
    follower_key,
    plan_import,
    read_export,
    table_value,
)
from brokerapp.model.settings import Settings

__all__ = ["ImportReport", "export_document", "import_document"]

#: Compatibility level given to the import subject: it may hold ZTF and LSST schemas at once.
SUBJECT_COMPATIBILITY = "NONE"

logger = logging.getLogger(__name__)


def _site(settings: Settings) -> dict[str, Any]:
    return {
        "app_prefix": settings.app_prefix,
        "alerts_topic": settings.alerts_topic,
        "subject": f"{settings.alerts_topic}-value",
        "bootstrap": settings.kafka_bootstrap,
        "registry_url": registry_access(settings).url,
    }


async def export_document(settings: Settings) -> dict[str, Any]:
    """Return this site's export document.

    Parameters
    ----------
    settings : Settings
        ``kafka_bootstrap``, ``app_prefix`` (which ID table) and ``registry_url`` are used.

    Returns
    -------
    dict
        The document (:func:`brokerapp.domain.federation.build_export`).

    Raises
    ------
    FederationError
        If the local registry lacks a local ID of the table, or holds a different schema
        under it.
    """
    topic = schema_ids_topic(settings.app_prefix)
    table = await asyncio.to_thread(read_id_table, settings.kafka_bootstrap, topic)
    schemas: dict[int, str] = {}
    async with registry_client(settings) as registry:
        for local_id in sorted({int(value["local"]) for value in table.values()}):
            try:
                schemas[local_id] = await registry.get_schema(local_id)
            except KeyError as exc:
                raise FederationError(
                    f"local ID {local_id} of {topic} is unknown to {registry.url}"
                ) from exc
    for key, value in table.items():
        recorded = value.get("schema")
        local_id = int(value["local"])
        if recorded and fingerprint_of(recorded) != fingerprint_of(schemas[local_id]):
            raise FederationError(
                f"{key}: {registry.url} holds a different schema under local ID "
                f"{local_id} than {topic} recorded (registry rebuilt?)"
            )
    return build_export(table, schemas, _site(settings))


@dataclass
class ImportReport:
    """What an import did.

    Attributes
    ----------
    subject : str
        Subject the new schemas were registered under.
    topic : str
        The ID table topic written.
    registered : dict of int to int
        Exported ID -> new local ID, registered and recorded now.
    reused : dict of int to int
        Exported ID -> local ID already recorded with the same schema.
    """

    subject: str
    topic: str
    registered: dict[int, int] = field(default_factory=dict)
    reused: dict[int, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One line per exported ID, then a summary."""
        out = [f"schema ID {e} -> local ID {i} (registered)" for e, i in self.registered.items()]
        out += [f"schema ID {e} -> local ID {i} (already known)" for e, i in self.reused.items()]
        out.append(
            f"{len(self.registered)} registered under {self.subject}, {len(self.reused)} "
            f"reused; ID table {self.topic}"
        )
        return out


async def import_document(
    settings: Settings, document: Any, subject: str | None = None
) -> ImportReport:
    """Load an export document into this site's registry and ID table.

    Parameters
    ----------
    settings : Settings
        This (the following) site's settings.
    document : Any
        The parsed export document.
    subject : str, optional
        Registry subject of the new schemas (default ``<alerts_topic>-value``).

    Returns
    -------
    ImportReport
        IDs registered and reused.

    Raises
    ------
    FederationError
        For a malformed document or a conflict with the ID table (nothing written), or when
        the registry refuses a schema (pairs registered before it are not recorded).
    """
    exported = read_export(document)
    topic = schema_ids_topic(settings.app_prefix)
    table = await asyncio.to_thread(read_id_table, settings.kafka_bootstrap, topic)
    plan = plan_import(exported, table)
    report = ImportReport(subject or f"{settings.alerts_topic}-value", topic, reused=plan.reused)
    if not plan.register:
        return report
    async with registry_client(settings) as registry:
        for n, entry in enumerate(plan.register):
            try:
                local_id = await registry.register(report.subject, entry.schema)
            except RegistryError as exc:
                if exc.status >= 500:
                    raise
                raise FederationError(
                    f"schema ID {entry.local_id}: {registry.url} refuses it under "
                    f"{report.subject}: {exc}"
                ) from exc
            report.registered[entry.local_id] = local_id
            if n == 0:
                try:
                    await registry.set_compatibility(report.subject, SUBJECT_COMPATIBILITY)
                except (RegistryError, httpx.TransportError) as exc:
                    # The registry's default stands; a schema it refuses names itself.
                    logger.warning("could not set %s compatibility: %s", report.subject, exc)
    pairs = {
        follower_key(exported_id): table_value(exported[exported_id], local_id)
        for exported_id, local_id in report.registered.items()
    }
    await asyncio.to_thread(write_id_table, settings.kafka_bootstrap, topic, pairs)
    return report
