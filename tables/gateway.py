"""The gateway's table: upstream schema to local schema ID.

Keys are ``confluent:<upstream schema ID>`` (a Confluent-framed upstream topic) or
``inline:<schema fingerprint>`` (an Avro container with its schema inline, ZTF); values are
JSON objects ``{"local": <local registry ID>}``, plus ``"schema": <schema text>`` for the
Confluent case, so that a restarted gateway can key alerts by object ID with no registry call.
The table has one partition, like the topic of the agent that fills it
(:func:`agents.gateway.build`); it is changelogged in Kafka as
``<app id>-schema_ids-changelog``.
"""

from __future__ import annotations

import faust

__all__ = ["SCHEMA_IDS", "schema_ids_table"]

SCHEMA_IDS = "schema_ids"
"""Table name (part of its changelog topic name: do not rename)."""


def schema_ids_table(app: faust.App) -> faust.Table:
    """Declare the schema ID table on the gateway app.

    Parameters
    ----------
    app : faust.App
        The gateway app.

    Returns
    -------
    faust.Table
        ``str`` keys, JSON values (the app's default serializer), one partition.
    """
    return app.Table(
        SCHEMA_IDS,
        partitions=1,
        key_type=str,
        help="Upstream schema (confluent:<id> or inline:<fingerprint>) -> local schema ID.",
    )
