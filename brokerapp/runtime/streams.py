"""The broker's own stream descriptions: one per output topic, as the workers create them.

Output topics are declared by the agents that write them, with names from the settings; this
module is their catalogue (:func:`output_streams`), and :func:`describe_streams` turns it into
one stream description each (format: :mod:`brokerapp.model.streams`), every one validated
against the JSON Schema before it is returned. Topic configurations come from the functions
the workers create the topics with (:func:`brokerapp.runtime.branch.output_config`,
:func:`brokerapp.runtime.topic_config.alerts_topic_config`), so retention and cleanup are
what Kafka holds for a topic the broker created. Partition counts are those at creation
(``brokerapp topics grow`` can raise them later). Keys are hashed by the Kafka clients'
default partitioner (murmur2 of the key bytes, as Java clients and aiokafka do).

Streams:

``alerts``, ``alerts-solar``, ``alerts-nonsolar``, ``Filter<NNN>``
    Confluent-framed Avro alerts; schema IDs of the local registry, subject
    ``<alerts_topic>-value``.
``annotated-alerts``
    Confluent-framed Avro, subject ``<annotated_alerts_topic>-value``.
``annotations``, ``candidates``, ``ss-candidates``, ``candidate-object-updates``, ``objects``
    JSON records (``other``).
``cutouts``
    Bare Avro bodies of ``brokerapp.cutouts_v1``, whose schema file the overview serves
    (``json-file``, :data:`CUTOUTS_SCHEMA_FILE`).
``voevents``
    VOEvent 2.0 XML, also broadcast over VTP.
``watchlist-topics`` (only with ``watchlist_topics`` on)
    The annotated alerts again, one topic per watchlist: described by a ``topic_pattern``.

Not described: dead-letter and repartitioning topics (internal), and the outputs a generic
node's chain file names (``agents.node``), which only that file knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from brokerapp.adapters.registry import split_user_info
from brokerapp.domain.filters import filter_classes
from brokerapp.model.settings import Settings
from brokerapp.model.streams import DESCRIPTION_FORMAT, validate_description
from brokerapp.runtime.branch import output_config
from brokerapp.runtime.topic_config import alerts_topic_config

__all__ = ["CUTOUTS_SCHEMA_FILE", "OutputStream", "describe_streams", "output_streams"]

CUTOUTS_SCHEMA_FILE = "cutouts_v1.avsc"
"""File name the overview serves the cutouts schema under, in ``/streams/schemas/``."""
PARTITIONER = "murmur2"


@dataclass(frozen=True)
class OutputStream:
    """One output topic of the broker, as the catalogue knows it.

    Attributes
    ----------
    name : str
        Stream name (stable, e.g. ``alerts``).
    topic : str
        Topic name (from the settings).
    description : str
        One sentence for readers.
    key : str
        What the UTF-8 key holds.
    encoding : str
        Value encoding (``avro-confluent``, ``avro-bare``, ``json``, ``xml``).
    schema : dict
        The ``value.schema`` object of the description.
    config : dict
        Kafka topic configuration the broker creates the topic with.
    partitions : int or None
        Partition count at creation.
    pattern : str or None
        Regular expression of the topic names, for a family of topics (then ``topic`` is
        empty).
    """

    name: str
    topic: str
    description: str
    key: str
    encoding: str
    schema: dict[str, Any]
    config: dict[str, str]
    partitions: int | None
    pattern: str | None = None


def _registry(settings: Settings, subject: str) -> dict[str, Any]:
    url = split_user_info(settings.streams_registry_url or settings.registry_url)[0]
    return {"type": "registry", "registry": url, "subject": subject}


def _other(text: str) -> dict[str, Any]:
    return {"type": "other", "description": text}


def public_url(settings: Settings) -> str:
    """Return the overview's base URL as readers reach it (no trailing slash)."""
    base = settings.streams_public_url or f"http://{settings.web_bind}:{settings.overview_port}"
    return base.rstrip("/")


def output_streams(settings: Settings) -> list[OutputStream]:
    """Return every output topic of the broker (see the module docstring).

    Parameters
    ----------
    settings : Settings
        Topic names, partitions and retention.

    Returns
    -------
    list of OutputStream
        In pipeline order, filters last.
    """
    alerts_subject = f"{settings.alerts_topic}-value"
    parts = settings.alerts_partitions

    def branch_out(name: str, topic: str, text: str, key: str, enc: str, schema: dict) -> Any:
        return OutputStream(
            name, topic, text, key, enc, schema, output_config(settings, topic), parts
        )

    alert_schema = _registry(settings, alerts_subject)
    streams = [
        OutputStream(
            "alerts",
            settings.alerts_topic,
            "Every alert mirrored from the surveys, whole (with cutouts).",
            "object ID (ZTF objectId; LSST diaObjectId, else ssObjectId, else diaSourceId)",
            "avro-confluent",
            alert_schema,
            alerts_topic_config(settings.alerts_retention_ms, settings.max_message_bytes),
            parts,
        ),
        branch_out(
            "alerts-solar",
            settings.solar_topic,
            "Alerts of known solar-system objects (cutouts null when lean_streams is on).",
            "object ID",
            "avro-confluent",
            alert_schema,
        ),
        branch_out(
            "alerts-nonsolar",
            settings.nonsolar_topic,
            "Every other alert (cutouts null when lean_streams is on).",
            "object ID",
            "avro-confluent",
            alert_schema,
        ),
        branch_out(
            "annotations",
            settings.annotations_topic,
            "One Annotation per watchlist or catalogue match.",
            "object ID",
            "json",
            _other("JSON Annotation records (brokerapp.domain.watchlists.annotated)"),
        ),
        branch_out(
            "annotated-alerts",
            settings.annotated_alerts_topic,
            "Each matched alert with all its annotations.",
            "object ID",
            "avro-confluent",
            _registry(settings, f"{settings.annotated_alerts_topic}-value"),
        ),
        branch_out(
            "candidates",
            settings.candidates_topic,
            "One CandidateUpdate per non-solar alert.",
            "object ID",
            "json",
            _other("JSON CandidateUpdate records (brokerapp.domain.candidates)"),
        ),
        branch_out(
            "ss-candidates",
            settings.ss_candidates_topic,
            "One CandidateUpdate per solar-system alert.",
            "solar-system object name",
            "json",
            _other("JSON CandidateUpdate records (brokerapp.domain.candidates)"),
        ),
        branch_out(
            "candidate-object-updates",
            settings.candidate_object_updates_topic,
            "Each candidate with its object's statistics after it.",
            "object ID",
            "json",
            _other("JSON records: candidate and ObjectUpdate (brokerapp.domain.history)"),
        ),
        branch_out(
            "objects",
            settings.objects_topic,
            "The latest ObjectUpdate of each object (compacted).",
            "object ID",
            "json",
            _other("JSON ObjectUpdate records (brokerapp.domain.history)"),
        ),
        branch_out(
            "cutouts",
            settings.cutouts_topic,
            "The image cutouts of each alert, kept once (compacted).",
            "alert ID in decimal (ZTF candid, LSST diaSourceId)",
            "avro-bare",
            {
                "type": "json-file",
                "url": f"{public_url(settings)}/streams/schemas/{CUTOUTS_SCHEMA_FILE}",
            },
        ),
        branch_out(
            "voevents",
            settings.voevents_topic,
            "VOEvent 2.0 packets of the annotated alerts, also broadcast over VTP.",
            "object ID",
            "xml",
            _other("VOEvent 2.0 XML (IVOA)"),
        ),
    ]
    if settings.watchlist_topics:
        streams.append(
            OutputStream(
                "watchlist-topics",
                "",
                "Each annotated alert again in a topic of each watchlist it matched.",
                "object ID",
                "avro-confluent",
                _registry(settings, f"{settings.annotated_alerts_topic}-value"),
                output_config(settings, f"{settings.topic_prefix}watchlist-"),
                parts,
                pattern=f"^{re.escape(settings.topic_prefix)}watchlist-.+$",
            )
        )
    for cls in filter_classes(settings.filters):
        topic = f"{settings.topic_prefix}{cls.name}"
        streams.append(
            branch_out(
                cls.name,
                topic,
                f"Alerts passing {cls.name}, at most its limit per visit.",
                "visit ID",
                "avro-confluent",
                alert_schema,
            )
        )
    return streams


def _retention(config: dict[str, str]) -> dict[str, Any]:
    policy = config.get("cleanup.policy", "delete")
    ms = config.get("retention.ms")
    return {"cleanup_policy": policy, "ms": int(ms) if ms is not None else None}


def describe(settings: Settings, stream: OutputStream) -> dict[str, Any]:
    """Return the (validated) description of one output stream.

    Raises
    ------
    DescriptionError
        If the description does not follow the JSON Schema (e.g. a setting gives a
        malformed bootstrap or URL).
    """
    document: dict[str, Any] = {
        "format": DESCRIPTION_FORMAT,
        "name": stream.name,
        "description": stream.description,
        "kafka": {
            "bootstrap": settings.streams_bootstrap or settings.kafka_bootstrap,
            **({"topic_pattern": stream.pattern} if stream.pattern else {"topic": stream.topic}),
            "auth": settings.streams_auth,
        },
        "key": {"encoding": "utf-8", "content": stream.key},
        "partitioning": {"by": "key", "partitioner": PARTITIONER, "partitions": stream.partitions},
        "retention": _retention(stream.config),
        "value": {"encoding": stream.encoding, "schema": stream.schema},
    }
    if stream.encoding == "xml":
        document["voevent"] = {
            "vtp": settings.streams_vtp_endpoint
            or f"tcp://{settings.vtp_host}:{settings.vtp_port}",
            "template": f"ivo://{settings.voevent_authority}/{settings.voevent_stream}"
            "#{kind}-{alert_id}",
        }
    validate_description(document)
    return document


def describe_streams(settings: Settings, name: str | None = None) -> list[dict[str, Any]]:
    """Return the descriptions of every output stream, or of one by stream or topic name.

    Parameters
    ----------
    settings : Settings
        The one settings object.
    name : str, optional
        A stream name (``alerts``) or topic name; None for all.

    Returns
    -------
    list of dict
        Validated descriptions.

    Raises
    ------
    KeyError
        If ``name`` names no output stream.
    DescriptionError
        If a description does not validate.
    """
    streams = output_streams(settings)
    if name is not None:
        streams = [s for s in streams if name in (s.name, s.topic)]
        if not streams:
            raise KeyError(name)
    return [describe(settings, stream) for stream in streams]
