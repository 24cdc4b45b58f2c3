"""Watchlists and static catalogues: the pure model, file loaders and control-topic JSON.

Nothing here touches Kafka, Faust or asyncio. An agent publishes control commands (JSON) to
a control topic and indexes the entries; a crossmatcher loads a :class:`Catalogue`. This
package only models, validates, reads and writes them, one module per seam:

:mod:`~brokerapp.domain.watchlists.problems`
    :class:`Problem`, :class:`WatchlistError` and :class:`CatalogueError`: every error names
    its row and column (or JSON path).
:mod:`~brokerapp.domain.watchlists.model`
    :class:`WatchlistEntry`, :class:`Watchlist`, :class:`SolarSystemWatchlist`, validated on
    construction, and their JSON form (:func:`watchlist_to_json`, :func:`watchlist_from_json`).
:mod:`~brokerapp.domain.watchlists.names`
    Solar-system object names (:func:`normalise_object_name`, :func:`object_key`).
:mod:`~brokerapp.domain.watchlists.files`
    CSV, VOTable and FITS files (:func:`load_entries`, :func:`load_watchlist`,
    :func:`load_objects`).
:mod:`~brokerapp.domain.watchlists.commands`
    :class:`WatchlistCommand`, one whole watchlist (or a delete) in one control message.
:mod:`~brokerapp.domain.watchlists.chunks`
    Large watchlists as chunked control messages staged under a version and swapped in by a
    commit (:func:`chunk_commands`, :func:`assemble`).
:mod:`~brokerapp.domain.watchlists.zonetable`
    The watchlist worker's table edits (staging, commit, delete) on plain mappings.
:mod:`~brokerapp.domain.watchlists.annotated`
    Annotations and the AnnotatedAlert Avro encoding.
:mod:`~brokerapp.domain.watchlists.catalogues`
    :class:`Catalogue` (:func:`load_catalogue`, :func:`synthetic_catalogue`,
    :func:`write_catalogue`).

This module re-exports the public API; code inside the package imports the submodules.
"""

from __future__ import annotations

from brokerapp.domain.watchlists.catalogues import (
    Catalogue,
    load_catalogue,
    synthetic_catalogue,
    write_catalogue,
)
from brokerapp.domain.watchlists.chunks import (
    WatchlistChunk,
    WatchlistCommit,
    assemble,
    chunk_commands,
    parse_control,
)
from brokerapp.domain.watchlists.commands import COMMAND_OPS, WatchlistCommand
from brokerapp.domain.watchlists.files import (
    CATALOGUE_FORMATS,
    ENTRY_COLUMNS,
    EXTENSIONS,
    OBJECT_COLUMN,
    WATCHLIST_FORMATS,
    load_entries,
    load_objects,
    load_watchlist,
)
from brokerapp.domain.watchlists.model import (
    MAX_RADIUS_ARCSEC,
    SOLAR_SYSTEM_KIND,
    WATCHLIST_ID_PATTERN,
    WATCHLIST_KIND,
    SolarSystemWatchlist,
    Watchlist,
    WatchlistEntry,
    watchlist_from_json,
    watchlist_to_json,
)
from brokerapp.domain.watchlists.names import normalise_object_name, object_key
from brokerapp.domain.watchlists.problems import (
    MAX_PROBLEMS_SHOWN,
    CatalogueError,
    Problem,
    WatchlistError,
)

__all__ = [
    "CATALOGUE_FORMATS",
    "COMMAND_OPS",
    "ENTRY_COLUMNS",
    "EXTENSIONS",
    "MAX_PROBLEMS_SHOWN",
    "MAX_RADIUS_ARCSEC",
    "OBJECT_COLUMN",
    "SOLAR_SYSTEM_KIND",
    "WATCHLIST_FORMATS",
    "WATCHLIST_ID_PATTERN",
    "WATCHLIST_KIND",
    "Catalogue",
    "CatalogueError",
    "Problem",
    "SolarSystemWatchlist",
    "Watchlist",
    "WatchlistChunk",
    "WatchlistCommand",
    "WatchlistCommit",
    "WatchlistEntry",
    "WatchlistError",
    "assemble",
    "chunk_commands",
    "load_catalogue",
    "load_entries",
    "load_objects",
    "load_watchlist",
    "normalise_object_name",
    "object_key",
    "parse_control",
    "synthetic_catalogue",
    "watchlist_from_json",
    "watchlist_to_json",
    "write_catalogue",
]
