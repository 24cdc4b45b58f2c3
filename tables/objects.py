"""The objects worker's table: object ID to its recent detections.

Keys are object IDs (ZTF ``objectId``; LSST ``diaObjectId`` as a decimal string); values are
JSON lists of detections (:mod:`brokerapp.domain.candidates`), sorted by time, at most
``history_length`` long (:func:`brokerapp.domain.history.merge_history`). The table has as many
partitions as ``candidates_topic``, which the candidates worker keys by object ID, so each
object's history lives in the partition its candidates arrive on. It is changelogged in
Kafka as ``<app id>-object_history-changelog`` and stored in RocksDB by deployed workers.
"""

from __future__ import annotations

import faust

__all__ = ["OBJECT_HISTORY", "object_history_table"]

OBJECT_HISTORY = "object_history"
"""Table name (part of its changelog topic name: do not rename)."""


def object_history_table(app: faust.App, partitions: int) -> faust.Table:
    """Declare the object history table on the objects app.

    Parameters
    ----------
    app : faust.App
        The objects app.
    partitions : int
        Partition count of its source topic, ``candidates_topic``.

    Returns
    -------
    faust.Table
        ``str`` keys, JSON list values.
    """
    return app.Table(
        OBJECT_HISTORY,
        partitions=partitions,
        key_type=str,
        help="Object ID -> its recent detections, oldest first.",
    )
