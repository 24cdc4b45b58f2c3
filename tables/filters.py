"""The filters worker's table: alerts admitted per filter and visit, in tumbling windows.

Keys are ``<filter>:<visit ID>`` (:func:`brokerapp.domain.filters.limit_key`); values are
counts (int, default 0) per window of ``filters_window_seconds``, kept for two windows and
relative to the stream's event times. The table has as many partitions as the by-visit topic
the ``limit`` agent reads (``alerts_partitions``), which is keyed by visit, so each visit's
counts live on one partition. It is changelogged in Kafka as
``<app id>-visit_counts-changelog``.
"""

from __future__ import annotations

import faust

__all__ = ["VISIT_COUNTS", "visit_counts_table"]

VISIT_COUNTS = "visit_counts"
"""Table name (part of its changelog topic name: do not rename)."""


def visit_counts_table(app: faust.App, partitions: int, window_seconds: float) -> faust.Table:
    """Declare the windowed visit count table on the filters app.

    Parameters
    ----------
    app : faust.App
        The filters app.
    partitions : int
        Partition count of the by-visit topic.
    window_seconds : float
        Tumbling window length [s]; windows expire after two.

    Returns
    -------
    faust.Table
        The windowed table, relative to the stream.
    """
    return (
        app.Table(VISIT_COUNTS, default=int, partitions=partitions, key_type=str)
        .tumbling(window_seconds, expires=2 * window_seconds)
        .relative_to_stream()
    )
