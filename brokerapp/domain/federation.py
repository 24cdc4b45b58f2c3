"""Registry federation: the gateway's schema ID map as one portable JSON document.

A site's gateway learns, per upstream schema, the ID its *local* registry gave that schema,
and records the pair in its ID table (:mod:`tables.gateway`): keys ``confluent:<upstream ID>``
or ``inline:<fingerprint>``, values ``{"local": <local ID>, "schema": <text>}`` (the text only
for the Confluent case). ``brokerapp registry export`` writes that map, with every schema it
names and the schema's fingerprint, as one *export document*::

    {
      "format": "brokerapp.registry-export/1",
      "site": {"alerts_topic": "alerts", "subject": "alerts-value",
               "registry_url": "http://...", "bootstrap": "..."},
      "ids": {"confluent:701": 12, "inline:3fa4...": 13},
      "schemas": {"12": {"fingerprint": "<hex SHA-256>", "schema": "<Avro JSON text>"},
                  "13": {...}}
    }

``ids`` maps the upstream schema (as the table's keys) to the exporting site's local ID;
``schemas`` holds each local ID's schema text and fingerprint (hex SHA-256 of its Avro
Parsing Canonical Form, :attr:`brokerapp.wire.codecs.ParsedSchema.fingerprint`).

A second site *following* the first reads the first site's local ``alerts`` topic, framed with
the first site's local IDs: those are the second site's upstream IDs. ``brokerapp registry
import`` therefore registers each exported schema in the second site's registry and records
``confluent:<exported local ID> -> {"local": <its own ID>, "schema": <text>}`` in the second
site's ID table, so its gateway maps every message without calling the first site's registry.

Conflicts (:func:`plan_import`, all found before anything is written):

* an exported ID already in the importing table with the same fingerprint is reused (nothing
  registered or written for it);
* an exported ID already in the table with a *different* schema is an error naming the ID and
  both fingerprints (:class:`FederationError`); so is a document whose fingerprint does not
  match its schema text, or whose ``ids`` name a schema it does not hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brokerapp.wire.codecs import MAX_SCHEMA_ID, DecodeError, parse_schema

__all__ = [
    "EXPORT_FORMAT",
    "ExportedSchema",
    "FederationError",
    "ImportPlan",
    "build_export",
    "dumps",
    "fingerprint_of",
    "follower_key",
    "plan_import",
    "read_export",
    "table_value",
]

EXPORT_FORMAT = "brokerapp.registry-export/1"
"""Value of the document's ``format`` field (bumped on an incompatible change)."""


class FederationError(ValueError):
    """An export document that cannot be imported, or a conflict with the importing site."""


@dataclass(frozen=True)
class ExportedSchema:
    """One schema of an export document.

    Attributes
    ----------
    local_id : int
        Its ID at the exporting site.
    fingerprint : str
        Hex SHA-256 of its Parsing Canonical Form.
    schema : str
        Avro schema JSON text.
    """

    local_id: int
    fingerprint: str
    schema: str


def fingerprint_of(schema: str | Mapping) -> str:
    """Return the fingerprint of a schema given as JSON text or parsed JSON.

    Raises
    ------
    FederationError
        If the text is not a valid Avro schema.
    """
    try:
        return parse_schema(schema if isinstance(schema, str) else dict(schema)).fingerprint
    except DecodeError as exc:
        raise FederationError(f"not a valid Avro schema: {exc}") from exc


def follower_key(exported_id: int) -> str:
    """Return the ID table key a following site stores an exported local ID under."""
    return f"confluent:{exported_id}"


def build_export(
    table: Mapping[str, Mapping[str, Any]],
    schemas: Mapping[int, str],
    site: Mapping[str, Any],
) -> dict[str, Any]:
    """Build the export document of a site.

    Parameters
    ----------
    table : mapping
        The site's ID table: ``confluent:<id>`` / ``inline:<fingerprint>`` keys, values with
        ``local`` (and perhaps ``schema``).
    schemas : mapping of int to str
        Schema text by local ID for the IDs whose table value holds no ``schema`` (fetched
        from the site's registry by the caller).
    site : mapping
        Where the document comes from (free-form, JSON-ready), stored as ``site``.

    Returns
    -------
    dict
        The document (see the module docstring), JSON-ready.

    Raises
    ------
    FederationError
        If a local ID has no schema text, or two texts of different schemas claim one ID.
    """
    ids: dict[str, int] = {}
    texts: dict[int, str] = {}
    for key in sorted(table):
        value = table[key]
        local_id = int(value["local"])
        ids[key] = local_id
        text = value.get("schema") or schemas.get(local_id)
        if text is None:
            raise FederationError(f"{key}: no schema text for local ID {local_id}")
        if local_id in texts and fingerprint_of(texts[local_id]) != fingerprint_of(text):
            raise FederationError(f"local ID {local_id} names two different schemas")
        texts.setdefault(local_id, text)
    return {
        "format": EXPORT_FORMAT,
        "site": dict(site),
        "ids": ids,
        "schemas": {
            str(local_id): {"fingerprint": fingerprint_of(text), "schema": text}
            for local_id, text in sorted(texts.items())
        },
    }


def _schema_id(text: Any, where: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError) as exc:
        raise FederationError(f"{where}: schema ID {text!r} is not an integer") from exc
    if not 0 <= value <= MAX_SCHEMA_ID or isinstance(text, bool):
        raise FederationError(f"{where}: schema ID {text!r} outside 0..{MAX_SCHEMA_ID}")
    return value


def read_export(document: Any) -> dict[int, ExportedSchema]:
    """Check an export document and return its schemas by exported local ID.

    Parameters
    ----------
    document : Any
        The parsed JSON document.

    Returns
    -------
    dict of int to ExportedSchema
        Every schema of ``schemas``, its fingerprint checked against its text.

    Raises
    ------
    FederationError
        Naming the field at fault: wrong ``format``, missing or malformed ``ids`` or
        ``schemas``, a fingerprint that does not match its schema, an ID in ``ids`` with no
        schema.
    """
    if not isinstance(document, Mapping):
        raise FederationError("export document: not a JSON object")
    if document.get("format") != EXPORT_FORMAT:
        raise FederationError(f"format: {document.get('format')!r} is not {EXPORT_FORMAT!r}")
    ids, schemas = document.get("ids"), document.get("schemas")
    if not isinstance(ids, Mapping):
        raise FederationError("ids: missing or not an object")
    if not isinstance(schemas, Mapping):
        raise FederationError("schemas: missing or not an object")
    out: dict[int, ExportedSchema] = {}
    for text_id, entry in schemas.items():
        local_id = _schema_id(text_id, f"schemas.{text_id}")
        if not isinstance(entry, Mapping) or not isinstance(entry.get("schema"), str):
            raise FederationError(f"schemas.{text_id}.schema: missing or not a string")
        declared = entry.get("fingerprint")
        actual = fingerprint_of(entry["schema"])
        if declared != actual:
            raise FederationError(
                f"schemas.{text_id}.fingerprint: {declared!r} does not match its schema ({actual})"
            )
        out[local_id] = ExportedSchema(local_id, actual, entry["schema"])
    for key, local in ids.items():
        local_id = _schema_id(local, f"ids.{key}")
        if local_id not in out:
            raise FederationError(f"ids.{key}: local ID {local_id} has no entry in schemas")
    return out


@dataclass
class ImportPlan:
    """What an import does at the importing site.

    Attributes
    ----------
    register : list of ExportedSchema
        Schemas to register in the importing registry and record in its ID table.
    reused : dict of int to int
        Exported ID -> importing site's local ID, already in its table with the same schema.
    """

    register: list[ExportedSchema] = field(default_factory=list)
    reused: dict[int, int] = field(default_factory=dict)


def plan_import(
    exported: Mapping[int, ExportedSchema], table: Mapping[str, Mapping[str, Any]]
) -> ImportPlan:
    """Decide, for each exported schema, whether to reuse, register, or refuse.

    Parameters
    ----------
    exported : mapping of int to ExportedSchema
        From :func:`read_export`.
    table : mapping
        The importing site's ID table as it stands.

    Returns
    -------
    ImportPlan
        The schemas to register and the IDs reused.

    Raises
    ------
    FederationError
        If any exported ID is already in the table with a different schema (every such ID is
        named; nothing is to be written then).
    """
    plan = ImportPlan()
    conflicts = []
    for local_id in sorted(exported):
        entry = exported[local_id]
        existing = table.get(follower_key(local_id))
        if existing is None:
            plan.register.append(entry)
            continue
        text = existing.get("schema")
        have = fingerprint_of(text) if isinstance(text, str) else None
        if have == entry.fingerprint:
            plan.reused[local_id] = int(existing["local"])
        else:
            conflicts.append(
                f"schema ID {local_id}: the ID table already maps it to local ID "
                f"{existing.get('local')} with a different schema (fingerprint {have}, "
                f"the document's {entry.fingerprint})"
            )
    if conflicts:
        raise FederationError("; ".join(conflicts))
    return plan


def table_value(entry: ExportedSchema, local_id: int) -> dict[str, Any]:
    """Return the ID table value recording an imported schema under its new local ID."""
    return {"local": int(local_id), "schema": entry.schema}


def dumps(document: Mapping[str, Any]) -> str:
    """Return the document as indented JSON text (stable key order)."""
    return json.dumps(document, indent=2, sort_keys=True)
