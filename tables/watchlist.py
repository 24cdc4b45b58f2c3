"""The watchlist worker's tables: watchlists, their zone rows and followed solar-system objects.

All three are global tables of one partition (the control topic has one): alerts are
partitioned by object, so every worker needs every zone, and each worker reads the
changelogs (``<app id>-<table>-changelog``), so a change reaches all workers within seconds.
Keys are strings; values JSON (the app's default serializer). The layouts are those of
:mod:`brokerapp.domain.watchlists.zonetable`:

``watchlists`` (:data:`WATCHLISTS`)
    ``<watchlist ID>`` -> the header of the version in force (kind, name, owner, version,
    chunk and item counts, zones used); ``<watchlist ID>@<version>#<seq>`` -> one staged or
    committed chunk of its entries or objects (no ID can contain ``@``).
``watchlist_zones`` (:data:`WATCHLIST_ZONES`)
    ``<zone number>`` -> rows of :mod:`brokerapp.domain.zones` (one per entry per zone its
    circle overlaps); ``@<watchlist ID>`` -> the version whose rows match.
``ss_watchlist_objects`` (:data:`SS_WATCHLIST_OBJECTS`)
    normalised object name -> IDs of the solar-system watchlists following it.
"""

from __future__ import annotations

import faust

__all__ = [
    "SS_WATCHLIST_OBJECTS",
    "WATCHLISTS",
    "WATCHLIST_ZONES",
    "ss_objects_table",
    "watchlists_table",
    "zones_table",
]

WATCHLISTS = "watchlists"
"""Table name (part of its changelog topic name: do not rename)."""
WATCHLIST_ZONES = "watchlist_zones"
"""Table name (part of its changelog topic name: do not rename)."""
SS_WATCHLIST_OBJECTS = "ss_watchlist_objects"
"""Table name (part of its changelog topic name: do not rename)."""


def watchlists_table(app: faust.App) -> faust.GlobalTable:
    """Declare the global table of watchlist headers and chunks on the watchlist app.

    Parameters
    ----------
    app : faust.App
        The watchlist app.

    Returns
    -------
    faust.GlobalTable
        ``str`` keys, JSON values, one partition.
    """
    return app.GlobalTable(
        WATCHLISTS,
        partitions=1,
        key_type=str,
        help="Watchlist ID -> header in force; ID@version#seq -> chunk of entries.",
    )


def zones_table(app: faust.App) -> faust.GlobalTable:
    """Declare the global table of declination zones on the watchlist app.

    Parameters
    ----------
    app : faust.App
        The watchlist app.

    Returns
    -------
    faust.GlobalTable
        ``str`` keys, JSON values, one partition.
    """
    return app.GlobalTable(
        WATCHLIST_ZONES,
        partitions=1,
        key_type=str,
        help="Zone number -> entry rows; @ID -> version in force.",
    )


def ss_objects_table(app: faust.App) -> faust.GlobalTable:
    """Declare the global table of followed solar-system objects on the watchlist app.

    Parameters
    ----------
    app : faust.App
        The watchlist app.

    Returns
    -------
    faust.GlobalTable
        ``str`` keys, JSON list values, one partition.
    """
    return app.GlobalTable(
        SS_WATCHLIST_OBJECTS,
        partitions=1,
        key_type=str,
        help="Normalised solar-system object name -> IDs of watchlists following it.",
    )
