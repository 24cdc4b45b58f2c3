"""Stream descriptions: one JSON document per output topic, checked against a JSON Schema.

A *stream description* tells a reader everything needed to consume one topic without asking:
the Kafka bootstrap servers, the authentication method (a URN), the topic (or a pattern of
daily topic names), what the key holds and how messages are partitioned, the retention, and
the value's encoding and schema -- ``registry`` (a Confluent-compatible registry URL and
subject), ``json-file`` (the URL of an Avro schema file) or ``other`` (a description) -- and,
for VOEvent streams, the VTP endpoint and IVORN template. Example::

    {"format": "brokerapp.stream-description/1", "name": "alerts",
     "kafka": {"bootstrap": "127.0.0.1:9092", "topic": "alerts",
               "auth": "urn:brokerapp:auth:none"},
     "key": {"encoding": "utf-8", "content": "object ID"},
     "partitioning": {"by": "key", "partitioner": "murmur2", "partitions": 12},
     "retention": {"cleanup_policy": "delete", "ms": 604800000},
     "value": {"encoding": "avro-confluent",
               "schema": {"type": "registry", "registry": "http://...", "subject": "alerts-value"}}}

The JSON Schema ships next to this module (``stream_description.schema.json``, draft
2020-12); :func:`validate_description` checks a document against it and names the field at
fault. The broker publishes its own descriptions (``brokerapp streams describe``, the
overview's ``/streams/``); an upstream's description file configures the gateway
(``upstream_description`` setting, :func:`upstream_settings`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "DESCRIPTION_FORMAT",
    "DescriptionError",
    "description_schema",
    "load_descriptions",
    "upstream_settings",
    "validate_description",
]

DESCRIPTION_FORMAT = "brokerapp.stream-description/1"
"""Value of every description's ``format`` field."""
SCHEMA_FILE = "stream_description.schema.json"
"""The JSON Schema's file name in this package."""


class DescriptionError(ValueError):
    """A stream description that does not follow the schema (or cannot be used as asked)."""


@cache
def description_schema() -> dict[str, Any]:
    """Return the JSON Schema of a stream description (read once from the package)."""
    import jsonschema  # here, not at import: it costs ~0.1 s and settings import this module

    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _field(error: Any) -> str:
    """Return the dotted path of the field an error is about (``$`` for the document)."""
    path = ".".join(str(part) for part in error.absolute_path)
    missing = re.match(r"'([^']+)' is a required property", error.message)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    return path or "$"


def validate_description(document: Any) -> None:
    """Check one stream description against the JSON Schema.

    Parameters
    ----------
    document : Any
        The parsed JSON document.

    Raises
    ------
    DescriptionError
        ``"<field>: <what is wrong>"`` for the most relevant error (dotted field path, e.g.
        ``value.schema.subject``), with the stream's name when it has one.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(description_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return
    name = document.get("name") if isinstance(document, Mapping) else None
    where = f"stream {name!r}: " if isinstance(name, str) else ""
    raise DescriptionError(f"{where}{_field(error)}: {error.message}")


def load_descriptions(path: Path) -> list[dict[str, Any]]:
    """Read a description file: one description, or a JSON list of them; validate each.

    Parameters
    ----------
    path : Path
        The file (e.g. saved from another broker's ``/streams/``).

    Returns
    -------
    list of dict
        The descriptions, each valid.

    Raises
    ------
    DescriptionError
        If the file cannot be read, is not JSON, is empty, or a description is invalid.
    """
    try:
        parsed = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DescriptionError(f"{path}: cannot read a JSON description: {exc}") from exc
    documents = parsed if isinstance(parsed, list) else [parsed]
    if not documents:
        raise DescriptionError(f"{path}: no description in the file")
    for document in documents:
        try:
            validate_description(document)
        except DescriptionError as exc:
            raise DescriptionError(f"{path}: {exc}") from exc
    return documents


def upstream_settings(documents: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Return the gateway's upstream settings taken from upstream stream descriptions.

    Parameters
    ----------
    documents : iterable of mapping
        Valid descriptions of the upstream topics to mirror (Confluent-framed: their schema
        is in a registry).

    Returns
    -------
    dict
        ``upstream_bootstrap``, ``gateway_topic_patterns`` (the topic pattern, else the
        exact topic name) and ``upstream_registry_url``.

    Raises
    ------
    DescriptionError
        If the descriptions name different bootstraps or registries, or a stream's values
        are not in a registry (the gateway maps registry IDs).
    """
    bootstraps, registries, patterns, auths = set(), set(), [], set()
    for document in documents:
        kafka, schema = document["kafka"], document["value"]["schema"]
        auths.add(kafka["auth"])
        if schema["type"] != "registry":
            raise DescriptionError(
                f"stream {document['name']!r}: value.schema.type is {schema['type']!r}; the "
                "gateway mirrors only streams whose schemas are in a registry"
            )
        bootstraps.add(kafka["bootstrap"])
        registries.add(schema["registry"])
        pattern = kafka.get("topic_pattern") or f"^{re.escape(kafka['topic'])}$"
        if pattern not in patterns:
            patterns.append(pattern)
    for what, values in (
        ("kafka.bootstrap", bootstraps),
        ("value.schema.registry", registries),
        ("kafka.auth", auths),
    ):
        if len(values) > 1:
            raise DescriptionError(f"{what}: the descriptions disagree ({sorted(values)})")
    if not patterns:
        raise DescriptionError("no upstream stream described")
    return {
        "upstream_bootstrap": bootstraps.pop(),
        "gateway_topic_patterns": patterns,
        "upstream_registry_url": registries.pop(),
        **auth_settings(auths.pop()),
    }


#: Security protocol named by the second part of an auth URN (``urn:brokerapp:auth:<p>[:m]``).
AUTH_PROTOCOLS = {
    "none": "PLAINTEXT",
    "ssl": "SSL",
    "sasl-plaintext": "SASL_PLAINTEXT",
    "sasl-ssl": "SASL_SSL",
}


#: SASL mechanisms an auth URN may name.
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


def auth_settings(urn: str) -> dict[str, Any]:
    """Return the upstream security settings an auth URN names.

    ``urn:brokerapp:auth:none`` is PLAINTEXT with no group prefix;
    ``urn:brokerapp:auth:ssl``; ``urn:brokerapp:auth:sasl-ssl:scram-sha-512`` (Rubin) and
    ``urn:brokerapp:auth:sasl-plaintext:<mechanism>`` name the SASL mechanism too. The user
    name, password and CA are the site's own settings.

    Raises
    ------
    DescriptionError
        If the URN is not one of these.
    """
    parts = urn.split(":")
    known = len(parts) >= 4 and parts[:3] == ["urn", "brokerapp", "auth"]
    protocol = AUTH_PROTOCOLS.get(parts[3]) if known else None
    sasl = protocol is not None and protocol.startswith("SASL_")
    mechanism_ok = not sasl or (len(parts) == 5 and parts[4].upper() in SASL_MECHANISMS)
    if protocol is None or not mechanism_ok or len(parts) != (5 if sasl else 4):
        raise DescriptionError(
            f"kafka.auth: {urn!r} is not urn:brokerapp:auth:none|ssl|sasl-ssl:<mechanism>|"
            "sasl-plaintext:<mechanism>"
        )
    out: dict[str, Any] = {"upstream_security_protocol": protocol}
    if sasl:
        out["upstream_sasl_mechanism"] = parts[4].upper()
    if protocol == "PLAINTEXT":
        out["upstream_group_prefix"] = ""
    return out
