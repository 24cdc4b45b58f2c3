"""Watchlists and static catalogues: the pure model, file loaders and control-topic JSON.

Nothing here touches Kafka, Faust or asyncio. An agent publishes :class:`WatchlistCommand`
messages (JSON) to a control topic and indexes the entries; a crossmatcher loads a
:class:`Catalogue`. This module only models, validates, reads and writes them.

The model
    A :class:`Watchlist` has an ``id``, a ``name``, an ``owner`` and ``entries``, a non-empty
    tuple of :class:`WatchlistEntry` (``name``, ``ra`` and ``dec`` in degrees,
    ``radius_arcsec``). A :class:`SolarSystemWatchlist` has the same ``id``, ``name`` and
    ``owner`` and ``objects``, a non-empty tuple of solar-system object names or IDs,
    normalised by :func:`normalise_object_name`. All of these are frozen dataclasses,
    validated on construction:

    - ``id``: 1 to 64 characters from ``A-Z a-z 0-9 _ . -``, starting with a letter or digit
      (it keys Kafka messages and tables and appears in REST paths).
    - ``name``, ``owner`` and entry names: text, stripped of surrounding whitespace, not
      empty, no control characters.
    - ``ra``: a finite number of degrees, ``0 <= ra < 360`` (no wrapping: -10 is an error).
    - ``dec``: a finite number of degrees, ``-90 <= dec <= 90``.
    - ``radius_arcsec``: a finite number of arcseconds, ``0 < radius <=``
      :data:`MAX_RADIUS_ARCSEC` (3600, one degree).
    - Entry names are unique within a watchlist (exact comparison after stripping), and a
      watchlist has at least one entry (to empty one, delete it). Object names likewise.

Files (:func:`load_entries`, :func:`load_watchlist`, :func:`load_objects`)
    Formats: CSV (``.csv``), VOTable (``.vot``, ``.votable``, ``.xml``) and FITS binary tables
    (``.fits``, ``.fit``), taken from the file extension or given as ``format`` (``"csv"``,
    ``"votable"``, ``"fits"``). Bytes (e.g. a REST upload) are accepted too: the format is
    then ``format``, else the extension of ``source``, else sniffed from the content
    (``SIMPLE  =`` is FITS, ``<`` is VOTable, anything else CSV).

    Columns ``name``, ``ra``, ``dec`` and ``radius`` (``object`` for :func:`load_objects`),
    matched case-insensitively (an exact match wins if two differ only by case); other
    columns are ignored. ``radius`` may be left out, and single cells of it left empty, when
    ``default_radius`` is given.

    CSV: UTF-8 (a byte-order mark is fine), comma-separated, double quotes, header row
    required. Rows whose fields are all empty (blank lines, lines of bare commas as
    spreadsheets export them) are skipped and not counted. Cells are stripped of surrounding
    whitespace. There are no units: ``ra`` and ``dec`` are degrees, ``radius`` arcseconds.

    VOTable and FITS are read with ``astropy.table.Table.read`` (the first table in the file;
    for FITS the first table HDU). A column with an angular unit is converted with
    ``astropy.units``: ``ra``/``dec`` to degrees, ``radius`` to arcseconds (``rad``,
    ``arcmin``, ``mas`` ... all work). A column without a unit (or a dimensionless one) is
    taken as degrees/degrees/arcseconds. A column whose unit is not an angle (``m``,
    ``mag``) or that astropy cannot parse is an error rather than a guess.

Errors
    Every problem is a :class:`WatchlistError` (a ``ValueError``; :class:`CatalogueError` for
    catalogues), whose text has one line per :class:`Problem`::

        watchlist.csv: row 17, column 'dec': 95.2 is outside -90..90 (CSV line 18)

    - The source is the file name (not the directory), or ``source`` for bytes.
    - **Rows are 1-based data rows**: row 1 is the first row after the header (CSV) or the
      first row of the table (VOTable, FITS, Parquet); skipped blank CSV rows are not
      counted. For CSV the physical line (1-based, counting the header and blank lines) is
      added in parentheses, for editors.
    - The column is named as spelled in the file. A missing or ambiguous column is reported
      at ``header``; an unreadable or empty file without a row; duplicates name both rows
      (``rows 3 and 9, column 'name': duplicate entry name 'M31'``).
    - Loading is all-or-nothing: every row is parsed and checked first, and entries are
      returned only if every row is valid. Otherwise the error lists every problem (the first
      :data:`MAX_PROBLEMS_SHOWN` in its text; all in :attr:`WatchlistError.problems`, except
      for catalogues, where ``omitted`` counts those beyond the first
      :data:`MAX_PROBLEMS_SHOWN` per column). The first problem's ``row`` and ``column``
      are also attributes of the error.
    - Errors from constructing the model or from JSON name a JSON-style path with 0-based
      indices (``entries[3].dec``, ``payload.objects[0]``).

Control-topic JSON
    :func:`watchlist_to_json` gives plain dicts (``json.dumps`` them; floats round-trip
    exactly)::

        {"kind": "watchlist", "id": "...", "name": "...", "owner": "...",
         "entries": [{"name": "...", "ra": 1.5, "dec": -2.0, "radius_arcsec": 3.0}, ...]}
        {"kind": "solar_system", "id": "...", "name": "...", "owner": "...",
         "objects": ["2830", "21164719644750924", "2018VB12"]}

    :func:`watchlist_from_json` reads either (``kind`` defaults to ``"watchlist"``) and is
    strict: unknown or missing fields and wrong types are errors. A :class:`WatchlistCommand`
    is ``{"op": "put", "watchlist_id": ..., "payload": {...}}`` or ``{"op": "delete",
    "watchlist_id": ..., "payload": null}``; any other ``op`` is an error, and a put's payload
    must carry the same ID. Key the message by :attr:`WatchlistCommand.key` (the ID), so a
    compacted control topic keeps the last command per watchlist. A watchlist JSON costs
    about 80 bytes an entry: Kafka's default 1 MB message limit holds some 12,000 entries.

Solar-system object names (:func:`normalise_object_name`)
    Alerts name a solar-system object as ZTF ``candidate.ssnamenr`` (a string: ``"2830"``
    for a numbered asteroid, a designation such as ``"2018VB12"`` otherwise) or LSST
    ``ssObjectId`` (a 64-bit integer) or MPC designation. Watchlists and alerts are
    compared on one normal form, a string:

    - integers (Python or numpy, not bool): their decimal form, ``2830 -> "2830"``; must be
      > 0 (0 is Rubin's "no object");
    - strings: all whitespace removed (``"2018 VB12"`` and ZTF's ``"2018VB12"`` agree); a
      string of ASCII digits loses leading zeros (``"002830" -> "2830"``, so an integer and
      its string agree); case is kept; empty, ``"0"`` and ZTF's ``"null"`` are errors;
    - floats are refused: a 64-bit ``ssObjectId`` does not survive a float.

    Packed and unpacked MPC designations (``K12J69D`` and ``2012 JD69``) are not converted
    into each other. :func:`object_key` is the forgiving form for the alert side (None for
    no object).

Catalogues (:func:`load_catalogue`, :func:`synthetic_catalogue`, :func:`write_catalogue`)
    A :class:`Catalogue` holds numpy arrays ``ids`` (int64 or str), ``ra`` and ``dec``
    (float64, degrees) and a dict of chosen extra columns. :func:`load_catalogue` reads CSV
    (via ``pyarrow.csv``: fast enough for millions of rows), FITS, VOTable and Parquet, with
    the same column matching, units, row numbering and errors as watchlists; a missing ID,
    a duplicate ID (both rows named), and a NaN, missing or out-of-range coordinate are
    errors naming the row. (CSV catalogues skip only empty lines, so a line of bare commas
    is a row with missing values, and their errors give no CSV line numbers except for a
    row with the wrong number of fields.) Extra columns may hold missing values: NaN in
    float columns, a masked array otherwise. :func:`synthetic_catalogue` draws sources
    uniformly on the sphere for benchmarks and :func:`write_catalogue` writes Parquet, CSV,
    FITS or VOTable.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
    "WatchlistCommand",
    "WatchlistEntry",
    "WatchlistError",
    "load_catalogue",
    "load_entries",
    "load_objects",
    "load_watchlist",
    "normalise_object_name",
    "object_key",
    "synthetic_catalogue",
    "watchlist_from_json",
    "watchlist_to_json",
    "write_catalogue",
]

MAX_RADIUS_ARCSEC = 3600.0
"""Largest allowed entry radius [arcsec] (one degree)."""
MAX_PROBLEMS_SHOWN = 20
"""Problems listed in the text of a :class:`WatchlistError`; the rest are counted."""
ENTRY_COLUMNS = ("name", "ra", "dec", "radius")
"""Watchlist file columns, matched case-insensitively."""
OBJECT_COLUMN = "object"
"""Default column of a solar-system watchlist file (:func:`load_objects`)."""
WATCHLIST_FORMATS = ("csv", "votable", "fits")
"""Formats of :func:`load_entries`."""
CATALOGUE_FORMATS = ("csv", "votable", "fits", "parquet")
"""Formats of :func:`load_catalogue` and :func:`write_catalogue`."""
EXTENSIONS: Mapping[str, str] = {
    ".csv": "csv",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
    ".fits": "fits",
    ".fit": "fits",
    ".parquet": "parquet",
    ".pq": "parquet",
}
"""File extension (lower case) to format."""
WATCHLIST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""What a watchlist ID must match (whole string)."""
WATCHLIST_KIND = "watchlist"
"""``kind`` of a positional watchlist in JSON."""
SOLAR_SYSTEM_KIND = "solar_system"
"""``kind`` of a solar-system watchlist in JSON."""
COMMAND_OPS = ("put", "delete")
"""Operations of a :class:`WatchlistCommand`."""

_FORMAT_NAMES = {
    "csv": "csv",
    "votable": "votable",
    "vot": "votable",
    "xml": "votable",
    "fits": "fits",
    "fit": "fits",
    "parquet": "parquet",
    "pq": "parquet",
}
_FORMAT_TITLES = {"csv": "CSV", "votable": "VOTable", "fits": "FITS", "parquet": "Parquet"}
_ENTRY_FIELDS = ("name", "ra", "dec", "radius_arcsec")
_HEADER_FIELDS = ("id", "name", "owner")
_ABSENT = object()  # a CSV cell beyond the end of a short row
_MISSING = "missing value (empty, null or NaN)"  # a masked table cell
_JSON_SOURCE = "watchlist JSON"
_COMMAND_SOURCE = "watchlist command"


# ------------------------------------------------------------------------------------ errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a watchlist, catalogue or message, and where it is.

    Attributes
    ----------
    message : str
        What is wrong, e.g. ``"95.2 is outside -90..90"``.
    row : int or None
        1-based data row (see the module docstring), if the problem is in one row.
    column : str or None
        The column (as spelled in the file) or field concerned.
    other_row : int or None
        For a duplicate, the earlier row holding the same value.
    line : int or None
        CSV only: the 1-based physical line of ``row``.
    other_line : int or None
        CSV only: the physical line of ``other_row``.
    where : str or None
        A location used instead of row and column, e.g. ``"header"`` or ``"entries[3].dec"``.
    """

    message: str
    row: int | None = None
    column: str | None = None
    other_row: int | None = None
    line: int | None = None
    other_line: int | None = None
    where: str | None = None

    def location(self) -> str:
        """Return where the problem is, e.g. ``"row 17, column 'dec'"`` (may be empty)."""
        if self.where is not None:
            return self.where
        parts = []
        if self.row is not None:
            if self.other_row is not None:
                parts.append(f"rows {self.other_row} and {self.row}")
            else:
                parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def describe(self, source: str | None = None) -> str:
        """Return the one-line text of the problem.

        Parameters
        ----------
        source : str, optional
            The file or message the problem is in, put first.

        Returns
        -------
        str
            E.g. ``"watchlist.csv: row 17, column 'dec': 95.2 is outside -90..90 (CSV line
            18)"``.
        """
        text = self.message
        if self.line is not None:
            if self.other_line is not None:
                text += f" (CSV lines {self.other_line} and {self.line})"
            else:
                text += f" (CSV line {self.line})"
        prefix = ": ".join(part for part in (source, self.location()) if part)
        return f"{prefix}: {text}" if prefix else text


class WatchlistError(ValueError):
    """A watchlist, its file or a control message is invalid.

    Parameters
    ----------
    problems : str, Problem or sequence of Problem
        What is wrong; a string is one problem without a location.
    source : str, optional
        The file name or message kind, put before each problem.
    omitted : int, optional
        Further problems found but not listed in ``problems``.

    Attributes
    ----------
    problems : tuple of Problem
        The problems listed (the text shows the first :data:`MAX_PROBLEMS_SHOWN`).
    source : str or None
        As given.
    omitted : int
        As given.
    """

    def __init__(
        self,
        problems: str | Problem | Sequence[Problem],
        source: str | None = None,
        omitted: int = 0,
    ) -> None:
        if isinstance(problems, str):
            problems = (Problem(problems),)
        elif isinstance(problems, Problem):
            problems = (problems,)
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        self.omitted = omitted
        super().__init__(self._text())

    @property
    def row(self) -> int | None:
        """Row of the first problem, if any."""
        return self.problems[0].row if self.problems else None

    @property
    def column(self) -> str | None:
        """Column of the first problem, if any."""
        return self.problems[0].column if self.problems else None

    @property
    def line(self) -> int | None:
        """CSV line of the first problem, if any."""
        return self.problems[0].line if self.problems else None

    def _text(self) -> str:
        shown = [problem.describe(self.source) for problem in self.problems[:MAX_PROBLEMS_SHOWN]]
        rest = len(self.problems) - len(shown) + self.omitted
        if rest > 0:
            shown.append(f"... and {rest} more problem{'s' if rest > 1 else ''}")
        return "\n".join(shown) if shown else (self.source or "invalid watchlist")


class CatalogueError(WatchlistError):
    """A catalogue file or :class:`Catalogue` is invalid (rows and columns as for watchlists)."""


class _InvalidValueError(Exception):
    """Internal: one value is invalid; the caller adds where."""


# ---------------------------------------------------------------------------- value checks


def _fmt(value: float) -> str:
    """Return a float as Python writes it (``95.2``, ``nan``)."""
    return repr(float(value))


def _check_range(kind: str, value: float, shown: str) -> float:
    """Return ``value`` (with -0.0 as 0.0) if valid for ``kind`` (ra, dec, radius)."""
    if not math.isfinite(value):
        raise _InvalidValueError(f"{shown} is not a finite number")
    if kind == "ra":
        if not 0.0 <= value < 360.0:
            raise _InvalidValueError(f"{shown} is outside 0..360 (ra must be >= 0 and < 360 deg)")
    elif kind == "dec":
        if not -90.0 <= value <= 90.0:
            raise _InvalidValueError(f"{shown} is outside -90..90")
    elif value <= 0.0:
        raise _InvalidValueError(f"{shown} is not > 0 (the radius must be positive, in arcsec)")
    elif value > MAX_RADIUS_ARCSEC:
        raise _InvalidValueError(
            f"{shown} is above the largest radius, {MAX_RADIUS_ARCSEC:g} arcsec"
        )
    return value + 0.0


def _check_number(value: Any, kind: str) -> float:
    """Check a model field: a real number (not bool, not str) in range for ``kind``."""
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise _InvalidValueError(f"expected a number, got {type(value).__name__} {value!r}")
    number = float(value)
    return _check_range(kind, number, _fmt(number))


def _check_text(value: Any) -> str:
    """Check a text field: str, stripped, not empty, no control characters."""
    if not isinstance(value, str):
        raise _InvalidValueError(f"expected a string, got {type(value).__name__} {value!r}")
    text = value.strip()
    if not text:
        raise _InvalidValueError("empty value")
    if any(ord(char) < 32 or 127 <= ord(char) < 160 for char in text):
        raise _InvalidValueError(f"{text!r} contains a control character")
    return text


def _check_id(value: Any) -> str:
    """Check a watchlist ID against :data:`WATCHLIST_ID_PATTERN`."""
    if not isinstance(value, str):
        raise _InvalidValueError(f"expected a string, got {type(value).__name__} {value!r}")
    if not WATCHLIST_ID_PATTERN.fullmatch(value):
        raise _InvalidValueError(
            f"{value!r} is not a valid watchlist ID (1 to 64 of A-Z a-z 0-9 _ . -, "
            "starting with a letter or digit)"
        )
    return value


def _normalise_object(value: Any) -> str:
    """Return the normal form of an object name or ID (raises :class:`_InvalidValueError`)."""
    if isinstance(value, bool | np.bool_):
        raise _InvalidValueError(f"{value!r} is not an object name or ID")
    if isinstance(value, int | np.integer):
        if value <= 0:
            raise _InvalidValueError(
                f"{value} is not an object ID (IDs are > 0; 0 means no object)"
            )
        return str(int(value))
    if isinstance(value, float | np.floating):
        raise _InvalidValueError(
            f"{value!r} is a float: give IDs as integers or strings (a 64-bit ssObjectId "
            "does not survive a float)"
        )
    if not isinstance(value, str):
        raise _InvalidValueError(f"expected a string or an integer, got {type(value).__name__}")
    text = "".join(value.split())
    if not text:
        raise _InvalidValueError("empty value")
    if text.lower() == "null":
        raise _InvalidValueError("'null' is ZTF's marker for no object")
    if any(ord(char) < 32 or 127 <= ord(char) < 160 for char in text):
        raise _InvalidValueError(f"{text!r} contains a control character")
    if text.isascii() and text.isdigit():
        number = int(text)
        if number == 0:
            raise _InvalidValueError(f"{value!r} is not an object ID (0 means no object)")
        return str(number)
    return text


def normalise_object_name(value: Any) -> str:
    """Return the normal form of a solar-system object name or ID.

    Parameters
    ----------
    value : str or int
        A ZTF ``ssnamenr`` (``"2830"``, ``"2018VB12"``), an LSST ``ssObjectId``
        (``21164719644750924``) or an MPC designation.

    Returns
    -------
    str
        The normal form (see the module docstring): ``2830``, ``"2830"`` and ``"002830"``
        give ``"2830"``; ``"2018 VB12"`` gives ``"2018VB12"``.

    Raises
    ------
    WatchlistError
        For a float, a bool, 0, an empty string or ``"null"``.
    """
    try:
        return _normalise_object(value)
    except _InvalidValueError as exc:
        raise WatchlistError(str(exc), source="object name") from None


def object_key(value: Any) -> str | None:
    """Return :func:`normalise_object_name` of ``value``, or None if it names no object.

    For the alert side: ``None``, ``0``, ``""``, ``"null"`` and anything else that is not a
    valid name or ID give None instead of an error.

    Parameters
    ----------
    value : Any
        An alert's ``ssnamenr``, ``ssObjectId`` or designation.

    Returns
    -------
    str or None
        The normal form, or None.
    """
    if value is None:
        return None
    try:
        return _normalise_object(value)
    except _InvalidValueError:
        return None


# ------------------------------------------------------------------------------------- model


def _entry_values(name: Any, ra: Any, dec: Any, radius: Any) -> tuple[dict, list]:
    """Check entry fields; return (checked values, [(field, message)])."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    checks = (
        ("name", name, _check_text),
        ("ra", ra, lambda v: _check_number(v, "ra")),
        ("dec", dec, lambda v: _check_number(v, "dec")),
        ("radius_arcsec", radius, lambda v: _check_number(v, "radius")),
    )
    for field_name, value, check in checks:
        try:
            values[field_name] = check(value)
        except _InvalidValueError as exc:
            problems.append((field_name, str(exc)))
    return values, problems


def _header_values(watchlist_id: Any, name: Any, owner: Any) -> tuple[dict, list]:
    """Check the ``id``, ``name`` and ``owner`` of a watchlist."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for field_name, value, check in (
        ("id", watchlist_id, _check_id),
        ("name", name, _check_text),
        ("owner", owner, _check_text),
    ):
        try:
            values[field_name] = check(value)
        except _InvalidValueError as exc:
            problems.append((field_name, str(exc)))
    return values, problems


def _as_sequence(value: Any, what: str) -> tuple:
    """Return a tuple of the items of a list/tuple-like ``value``."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise _InvalidValueError(f"{what} must be a list, got {type(value).__name__}")
    return tuple(value)


@dataclass(frozen=True)
class WatchlistEntry:
    """One position to watch.

    Attributes
    ----------
    name : str
        The entry's name, unique in its watchlist (stripped; not empty).
    ra : float
        Right ascension [deg], ``0 <= ra < 360``.
    dec : float
        Declination [deg], ``-90 <= dec <= 90``.
    radius_arcsec : float
        Match radius [arcsec], ``0 < radius <= MAX_RADIUS_ARCSEC``.

    Raises
    ------
    WatchlistError
        If a field is invalid; each problem names the field.
    """

    name: str
    ra: float
    dec: float
    radius_arcsec: float

    def __post_init__(self) -> None:
        values, problems = _entry_values(self.name, self.ra, self.dec, self.radius_arcsec)
        if problems:
            raise WatchlistError(
                [Problem(message, column=name, where=name) for name, message in problems],
                source="watchlist entry",
            )
        for field_name, value in values.items():
            object.__setattr__(self, field_name, value)


@dataclass(frozen=True)
class Watchlist:
    """A named, owned list of positions to watch.

    Attributes
    ----------
    id : str
        Unique ID (:data:`WATCHLIST_ID_PATTERN`), the key in the control topic and tables.
    name : str
        Human-readable name.
    owner : str
        Who owns it (a user name or e-mail address; not checked further).
    entries : tuple of WatchlistEntry
        At least one entry, names unique. A list is accepted and stored as a tuple.

    Raises
    ------
    WatchlistError
        If a field is invalid or two entries share a name (``entries[i].name``, 0-based).
    """

    id: str
    name: str
    owner: str
    entries: tuple[WatchlistEntry, ...]

    def __post_init__(self) -> None:
        values, header_problems = _header_values(self.id, self.name, self.owner)
        problems = [Problem(message, column=name, where=name) for name, message in header_problems]
        try:
            entries = _as_sequence(self.entries, "entries")
        except _InvalidValueError as exc:
            problems.append(Problem(str(exc), column="entries", where="entries"))
            entries = ()
        else:
            if not entries:
                problems.append(Problem("a watchlist needs at least one entry", where="entries"))
            first: dict[str, int] = {}
            for index, entry in enumerate(entries):
                if not isinstance(entry, WatchlistEntry):
                    problems.append(
                        Problem(
                            f"expected a WatchlistEntry, got {type(entry).__name__}",
                            where=f"entries[{index}]",
                        )
                    )
                elif entry.name in first:
                    problems.append(
                        Problem(
                            f"duplicate entry name {entry.name!r} (also entries"
                            f"[{first[entry.name]}])",
                            column="name",
                            where=f"entries[{index}].name",
                        )
                    )
                else:
                    first[entry.name] = index
        if problems:
            raise WatchlistError(problems, source="watchlist")
        for field_name, value in values.items():
            object.__setattr__(self, field_name, value)
        object.__setattr__(self, "entries", entries)

    @property
    def max_radius_arcsec(self) -> float:
        """Largest entry radius [arcsec] (what an index must search out to)."""
        return max(entry.radius_arcsec for entry in self.entries)

    def to_json(self) -> dict:
        """Return :func:`watchlist_to_json` of this watchlist."""
        return watchlist_to_json(self)


@dataclass(frozen=True)
class SolarSystemWatchlist:
    """A named, owned list of solar-system objects to follow on the solar stream.

    Attributes
    ----------
    id : str
        Unique ID, as for :class:`Watchlist` (the two kinds share one ID space).
    name : str
        Human-readable name.
    owner : str
        Who owns it.
    objects : tuple of str
        At least one object name or ID, normalised by :func:`normalise_object_name`
        (integers are accepted and stored as strings), unique after normalisation.

    Raises
    ------
    WatchlistError
        If a field is invalid or two objects have the same normal form (``objects[i]``).
    """

    id: str
    name: str
    owner: str
    objects: tuple[str, ...]

    def __post_init__(self) -> None:
        values, header_problems = _header_values(self.id, self.name, self.owner)
        problems = [Problem(message, column=name, where=name) for name, message in header_problems]
        normalised: list[str] = []
        try:
            objects = _as_sequence(self.objects, "objects")
        except _InvalidValueError as exc:
            problems.append(Problem(str(exc), column="objects", where="objects"))
        else:
            if not objects:
                problems.append(Problem("a watchlist needs at least one object", where="objects"))
            first: dict[str, int] = {}
            for index, value in enumerate(objects):
                try:
                    key = _normalise_object(value)
                except _InvalidValueError as exc:
                    problems.append(Problem(str(exc), where=f"objects[{index}]"))
                    continue
                if key in first:
                    problems.append(
                        Problem(
                            f"duplicate object {key!r} (also objects[{first[key]}], after "
                            "normalisation)",
                            where=f"objects[{index}]",
                        )
                    )
                else:
                    first[key] = index
                    normalised.append(key)
        if problems:
            raise WatchlistError(problems, source="solar-system watchlist")
        for field_name, value in values.items():
            object.__setattr__(self, field_name, value)
        object.__setattr__(self, "objects", tuple(normalised))

    def to_json(self) -> dict:
        """Return :func:`watchlist_to_json` of this watchlist."""
        return watchlist_to_json(self)


# -------------------------------------------------------------------------------------- JSON


def watchlist_to_json(watchlist: Watchlist | SolarSystemWatchlist) -> dict:
    """Return a watchlist as a JSON-ready dict (shapes in the module docstring).

    Parameters
    ----------
    watchlist : Watchlist or SolarSystemWatchlist
        The watchlist.

    Returns
    -------
    dict
        ``kind``, ``id``, ``name``, ``owner`` and ``entries`` (a list of dicts) or
        ``objects`` (a list of strings).

    Raises
    ------
    TypeError
        For anything else.
    """
    if isinstance(watchlist, Watchlist):
        return {
            "kind": WATCHLIST_KIND,
            "id": watchlist.id,
            "name": watchlist.name,
            "owner": watchlist.owner,
            "entries": [
                {
                    "name": entry.name,
                    "ra": entry.ra,
                    "dec": entry.dec,
                    "radius_arcsec": entry.radius_arcsec,
                }
                for entry in watchlist.entries
            ],
        }
    if isinstance(watchlist, SolarSystemWatchlist):
        return {
            "kind": SOLAR_SYSTEM_KIND,
            "id": watchlist.id,
            "name": watchlist.name,
            "owner": watchlist.owner,
            "objects": list(watchlist.objects),
        }
    raise TypeError(f"not a watchlist: {type(watchlist).__name__}")


def _fields_problems(data: Mapping, required: Iterable[str], where: str) -> list[Problem]:
    """Report keys of ``data`` that are unknown or missing (``where`` prefixes the path)."""
    required = tuple(required)
    problems = [
        Problem(
            f"unknown field {key!r} (expected {', '.join(map(repr, required))})",
            where=f"{where}{key}",
        )
        for key in data
        if key not in required
    ]
    problems.extend(
        Problem("missing field", where=f"{where}{key}") for key in required if key not in data
    )
    return problems


def _watchlist_problems(data: Any) -> tuple[Watchlist | SolarSystemWatchlist | None, list]:
    """Build a watchlist from JSON; return (watchlist or None, problems with JSON paths)."""
    if not isinstance(data, Mapping):
        return None, [Problem(f"expected a JSON object, got {type(data).__name__}")]
    kind = data.get("kind", WATCHLIST_KIND)
    if kind == WATCHLIST_KIND:
        items_field = "entries"
    elif kind == SOLAR_SYSTEM_KIND:
        items_field = "objects"
    else:
        return None, [
            Problem(
                f"unknown kind {kind!r} (expected {WATCHLIST_KIND!r} or {SOLAR_SYSTEM_KIND!r})",
                where="kind",
            )
        ]
    problems = _fields_problems(data, ("kind", *_HEADER_FIELDS, items_field), "")
    problems = [p for p in problems if p.where != "kind"]  # kind may be left out
    header, header_problems = _header_values(data.get("id"), data.get("name"), data.get("owner"))
    problems.extend(
        Problem(message, column=name, where=name)
        for name, message in header_problems
        if name in data
    )
    if items_field not in data:
        return None, problems
    try:
        items = _as_sequence(data[items_field], items_field)
    except _InvalidValueError as exc:
        return None, [*problems, Problem(str(exc), where=items_field)]
    checked: list[Any] = []
    if kind == WATCHLIST_KIND:
        for index, item in enumerate(items):
            path = f"entries[{index}]"
            if not isinstance(item, Mapping):
                problems.append(
                    Problem(f"expected a JSON object, got {type(item).__name__}", where=path)
                )
                continue
            item_problems = _fields_problems(item, _ENTRY_FIELDS, path + ".")
            values, value_problems = _entry_values(*(item.get(name) for name in _ENTRY_FIELDS))
            item_problems.extend(
                Problem(message, column=name, where=f"{path}.{name}")
                for name, message in value_problems
                if name in item
            )
            problems.extend(item_problems)
            if not item_problems:
                checked.append(WatchlistEntry(**values))
    else:
        for index, item in enumerate(items):
            try:
                checked.append(_normalise_object(item))
            except _InvalidValueError as exc:
                problems.append(Problem(str(exc), where=f"objects[{index}]"))
    if problems:
        return None, problems
    try:
        if kind == WATCHLIST_KIND:
            return Watchlist(header["id"], header["name"], header["owner"], tuple(checked)), []
        return SolarSystemWatchlist(header["id"], header["name"], header["owner"], checked), []
    except WatchlistError as exc:
        return None, list(exc.problems)


def watchlist_from_json(data: Mapping[str, Any]) -> Watchlist | SolarSystemWatchlist:
    """Return the watchlist a JSON dict describes (strict).

    Parameters
    ----------
    data : Mapping
        As made by :func:`watchlist_to_json`: ``kind`` (``"watchlist"``, the default, or
        ``"solar_system"``), ``id``, ``name``, ``owner`` and ``entries`` or ``objects``.

    Returns
    -------
    Watchlist or SolarSystemWatchlist
        According to ``kind``.

    Raises
    ------
    WatchlistError
        Listing every unknown or missing field, wrong type and invalid value by its JSON path
        (``entries[3].dec``, 0-based).
    """
    watchlist, problems = _watchlist_problems(data)
    if problems or watchlist is None:
        raise WatchlistError(problems, source=_JSON_SOURCE)
    return watchlist


@dataclass(frozen=True)
class WatchlistCommand:
    """A change to the set of watchlists, as sent on the control topic.

    Attributes
    ----------
    op : str
        ``"put"`` (add or replace the whole watchlist) or ``"delete"``.
    watchlist_id : str
        The watchlist concerned.
    payload : Watchlist or SolarSystemWatchlist or None
        The new watchlist for ``put`` (its ``id`` must be ``watchlist_id``); None for
        ``delete``.

    Raises
    ------
    WatchlistError
        For an unknown op, an invalid ID, a missing or mismatched payload, or a payload on
        a delete.
    """

    op: str
    watchlist_id: str
    payload: Watchlist | SolarSystemWatchlist | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.op not in COMMAND_OPS:
            problems.append(
                Problem(
                    f"unknown op {self.op!r} (expected {' or '.join(map(repr, COMMAND_OPS))})",
                    column="op",
                    where="op",
                )
            )
        try:
            _check_id(self.watchlist_id)
        except _InvalidValueError as exc:
            problems.append(Problem(str(exc), column="watchlist_id", where="watchlist_id"))
        if self.op == "put":
            if not isinstance(self.payload, Watchlist | SolarSystemWatchlist):
                problems.append(
                    Problem(
                        f"a put needs a watchlist, got {type(self.payload).__name__}",
                        column="payload",
                        where="payload",
                    )
                )
            elif self.payload.id != self.watchlist_id:
                problems.append(
                    Problem(
                        f"the payload's id {self.payload.id!r} is not the command's "
                        f"watchlist_id {self.watchlist_id!r}",
                        column="payload",
                        where="payload.id",
                    )
                )
        elif self.op == "delete" and self.payload is not None:
            problems.append(Problem("a delete takes no payload", column="payload", where="payload"))
        if problems:
            raise WatchlistError(problems, source=_COMMAND_SOURCE)

    @classmethod
    def put(cls, watchlist: Watchlist | SolarSystemWatchlist) -> WatchlistCommand:
        """Return the command adding or replacing ``watchlist``."""
        return cls("put", watchlist.id, watchlist)

    @classmethod
    def delete(cls, watchlist_id: str) -> WatchlistCommand:
        """Return the command deleting the watchlist ``watchlist_id``."""
        return cls("delete", watchlist_id)

    @property
    def key(self) -> bytes:
        """The Kafka message key: the watchlist ID in UTF-8."""
        return self.watchlist_id.encode()

    def to_json(self) -> dict:
        """Return ``{"op", "watchlist_id", "payload"}`` (payload None for a delete)."""
        return {
            "op": self.op,
            "watchlist_id": self.watchlist_id,
            "payload": None if self.payload is None else watchlist_to_json(self.payload),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WatchlistCommand:
        """Return the command a JSON dict describes (strict).

        Parameters
        ----------
        data : Mapping
            ``op``, ``watchlist_id`` and, for a put, ``payload`` (for a delete ``payload``
            may be left out or null). No other fields.

        Returns
        -------
        WatchlistCommand
            The validated command.

        Raises
        ------
        WatchlistError
            Naming each bad field (``op``, ``payload.entries[2].ra``).
        """
        if not isinstance(data, Mapping):
            raise WatchlistError(
                f"expected a JSON object, got {type(data).__name__}", source=_COMMAND_SOURCE
            )
        problems = _fields_problems(data, ("op", "watchlist_id", "payload"), "")
        problems = [
            p for p in problems if not (p.where == "payload" and data.get("op") == "delete")
        ]
        op = data.get("op")
        if "op" in data and op not in COMMAND_OPS:
            problems.append(
                Problem(
                    f"unknown op {op!r} (expected {' or '.join(map(repr, COMMAND_OPS))})",
                    column="op",
                    where="op",
                )
            )
        payload = None
        if op == "put" and "payload" in data:
            payload, payload_problems = _watchlist_problems(data["payload"])
            problems.extend(
                dataclasses.replace(
                    p, where="payload" + ("." + p.location() if p.location() else "")
                )
                for p in payload_problems
            )
        elif op == "delete" and data.get("payload") is not None:
            problems.append(Problem("a delete takes no payload", where="payload"))
        if problems:
            raise WatchlistError(problems, source=_COMMAND_SOURCE)
        return cls(op, data["watchlist_id"], payload)

    def to_bytes(self) -> bytes:
        """Return the compact UTF-8 JSON of :meth:`to_json`, the control-topic value."""
        return json.dumps(
            self.to_json(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> WatchlistCommand:
        """Return the command in a control-topic value.

        Parameters
        ----------
        data : bytes or str
            UTF-8 JSON.

        Returns
        -------
        WatchlistCommand
            The validated command.

        Raises
        ------
        WatchlistError
            If it is not UTF-8 JSON or not a valid command.
        """
        try:
            decoded = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WatchlistError(f"not JSON: {exc}", source=_COMMAND_SOURCE) from None
        return cls.from_json(decoded)


# ----------------------------------------------------------------------------- file formats


def _format_name(format: str, allowed: Sequence[str], label: str, error: type) -> str:
    """Return the canonical name of an explicit format."""
    name = _FORMAT_NAMES.get(str(format).lower().lstrip("."))
    if name not in allowed:
        raise error(
            f"unknown format {format!r} (expected one of {', '.join(allowed)})", source=label
        )
    return name


def _sniff(data: bytes) -> str:
    """Guess the format of bytes: FITS, Parquet, VOTable (XML) or else CSV."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"<"):
        return "votable"
    return "csv"


def _input(
    path_or_bytes: str | os.PathLike | bytes,
    format: str | None,
    allowed: Sequence[str],
    source: str | None,
    error: type,
) -> tuple[str, bytes | Path, str]:
    """Return (format, bytes or path, label for errors) of a loader's input."""
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        data: bytes | Path = bytes(path_or_bytes)
        label = source or "<data>"
        if format is not None:
            return _format_name(format, allowed, label, error), data, label
        suffix = Path(source).suffix.lower() if source else ""
        if suffix in EXTENSIONS and EXTENSIONS[suffix] in allowed:
            return EXTENSIONS[suffix], data, label
        sniffed = _sniff(data)
        if sniffed not in allowed:
            raise error(f"looks like {_FORMAT_TITLES[sniffed]}, which is not read here", label)
        return sniffed, data, label
    if not isinstance(path_or_bytes, str | os.PathLike):
        raise TypeError(f"expected a path or bytes, got {type(path_or_bytes).__name__}")
    path = Path(path_or_bytes)
    label = source or path.name
    if format is not None:
        name = _format_name(format, allowed, label, error)
    else:
        name = EXTENSIONS.get(path.suffix.lower())
        if name not in allowed:
            known = sorted(ext for ext, fmt in EXTENSIONS.items() if fmt in allowed)
            raise error(
                f"cannot tell the format from the extension {path.suffix!r} (known: "
                f"{', '.join(known)}); give format=",
                source=label,
            )
    if not path.is_file():
        raise error(f"no such file: {path}", source=label)
    if path.stat().st_size == 0:
        raise error("empty file", source=label)
    return name, path, label


def _read_bytes(data: bytes | Path, label: str, error: type) -> bytes:
    """Return the bytes of the input."""
    if isinstance(data, bytes):
        return data
    try:
        return data.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {data}: {exc.strerror or exc}", source=label) from None


def _find_column(
    names: Sequence[str], wanted: str, problems: list[Problem], line: int | None = None
) -> int | None:
    """Return the index of ``wanted`` in ``names`` (case-insensitive), or None (missing).

    An exact match wins over matches differing only by case; two exact matches, or two
    case-insensitive ones and no exact one, are reported as ambiguous.
    """
    exact = [i for i, name in enumerate(names) if name == wanted]
    folded = [i for i, name in enumerate(names) if name.casefold() == wanted.casefold()]
    candidates = exact or folded
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        spelled = " and ".join(f"{names[i]!r} (column {i + 1})" for i in candidates[:2])
        problems.append(
            Problem(
                f"column {wanted!r} is ambiguous: {spelled}",
                column=wanted,
                where="header",
                line=line,
            )
        )
    return None


def _missing_column(
    wanted: str, names: Sequence[str], line: int | None = None, hint: str = ""
) -> Problem:
    """Return the problem of a missing column, listing those present."""
    present = ", ".join(repr(name) for name in names) or "none"
    return Problem(
        f"missing column {wanted!r}{hint} (columns: {present})",
        column=wanted,
        where="header",
        line=line,
    )


@dataclass
class _Column:
    """Internal: one column of a small table, as cells (str, number, None, or _ABSENT)."""

    name: str
    cells: Sequence[Any]
    unit: Any = None
    scale: float = 1.0


@dataclass
class _Cells:
    """Internal: a small table read from a file, cells per column and CSV line numbers."""

    names: list[str]
    columns: dict[str, Sequence[Any]]
    units: dict[str, Any]
    rows: int
    lines: list[int] | None
    header_line: int | None


def _decode_text(raw: bytes, label: str, error: type) -> str:
    """Return UTF-8 text (BOM dropped)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})", label
        ) from None


def _read_csv_cells(raw: bytes, label: str, error: type) -> _Cells:
    """Read a small CSV file with the csv module, keeping line numbers."""
    text = _decode_text(raw, label, error)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = None
    records: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header, header_line = [cell.strip() for cell in record], line
            else:
                records.append(record)
                lines.append(line)
    except csv.Error as exc:
        raise error(Problem(f"not valid CSV: {exc}", line=reader.line_num), label) from None
    if header is None:
        raise error("empty file (no header row)", source=label)
    columns: dict[str, list[Any]] = {}
    for index, name in enumerate(header):
        if name not in columns:
            columns[name] = [
                record[index].strip() if index < len(record) else _ABSENT for record in records
            ]
    problems = []
    for row, (record, line) in enumerate(zip(records, lines, strict=True), start=1):
        if len(record) > len(header) and any(cell.strip() for cell in record[len(header) :]):
            problems.append(
                Problem(
                    f"{len(record)} fields, but the header has {len(header)} columns",
                    row=row,
                    line=line,
                )
            )
    if problems:
        raise error(problems, source=label)
    return _Cells(header, columns, {}, len(records), lines, header_line)


def _read_astropy(data: bytes | Path, fmt: str, label: str, error: type) -> Any:
    """Return an ``astropy.table.Table`` read from FITS or VOTable data."""
    from astropy.table import Table

    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "fits":
                return Table.read(source, format="fits", mask_invalid=False)
            return Table.read(source, format="votable")
    except Exception as exc:  # astropy raises many kinds; all mean "not a readable table"
        message = str(exc).strip() or type(exc).__name__
        raise error(f"cannot read as {_FORMAT_TITLES[fmt]}: {message}", source=label) from None


def _astropy_cells(table: Any, names: Iterable[str], label: str, error: type) -> _Cells:
    """Return the columns ``names`` (as spelled in ``table``) of a small astropy table."""
    columns: dict[str, Sequence[Any]] = {}
    units: dict[str, Any] = {}
    problems = []
    for name in names:
        column = table[name]
        if column.ndim > 1:
            problems.append(
                Problem(
                    f"holds arrays of shape {column.shape[1:]}, not single values",
                    column=name,
                )
            )
            continue
        cells = column.tolist()  # masked values become None
        if column.dtype.kind == "S":
            cells = [
                cell.decode("utf-8", "replace") if isinstance(cell, bytes) else cell
                for cell in cells
            ]
        columns[name] = cells
        units[name] = column.unit
    if problems:
        raise error(problems, source=label)
    return _Cells(list(table.colnames), columns, units, len(table), None, None)


def _read_cells(
    data: bytes | Path, fmt: str, wanted: Iterable[str], label: str, error: type
) -> _Cells:
    """Read a small CSV, VOTable or FITS table, all columns (CSV) or those wanted."""
    if fmt == "csv":
        raw = _read_bytes(data, label, error)
        if not raw.strip(b"\xef\xbb\xbf \t\r\n"):
            raise error("empty file", source=label)
        return _read_csv_cells(raw, label, error)
    table = _read_astropy(data, fmt, label, error)
    names = list(table.colnames)
    chosen = []
    for wanted_name in wanted:
        index = _find_column(names, wanted_name, [])
        if index is not None:
            chosen.append(names[index])
    return _astropy_cells(table, dict.fromkeys(chosen), label, error)


def _angle_scale(unit: Any, target: str) -> float:
    """Return the factor from a unit to ``target`` (1 if none); raise _InvalidValueError."""
    if unit is None:
        return 1.0
    import astropy.units as u

    # astropy's VOTable reader defines a new unit for a string it does not know: parse again.
    if isinstance(unit, u.UnrecognizedUnit) or isinstance(
        u.Unit(unit.to_string(), parse_strict="silent"), u.UnrecognizedUnit
    ):
        raise _InvalidValueError(
            f"unit {unit.to_string()!r} is not one astropy understands (use deg, arcmin, "
            "arcsec, mas or rad, or no unit)"
        )
    if unit == u.dimensionless_unscaled:
        return 1.0
    if unit.physical_type != "angle":
        raise _InvalidValueError(
            f"unit {unit.to_string()!r} is not an angle (use deg, arcmin, arcsec, mas or rad, "
            "or no unit)"
        )
    return float(unit.to(target))


def _number_cell(cell: Any, kind: str, unit: Any, scale: float) -> float:
    """Return a valid value from a file cell (str or number), in deg or arcsec."""
    if cell is _ABSENT:
        raise _InvalidValueError("missing (the row is shorter than the header)")
    if cell is None:
        raise _InvalidValueError(_MISSING)
    if isinstance(cell, str):
        shown = cell.strip()
        if not shown:
            raise _InvalidValueError("empty value")
        try:
            value = float(shown)
        except ValueError:
            raise _InvalidValueError(f"{shown!r} is not a number") from None
    elif isinstance(cell, bool | np.bool_) or not isinstance(
        cell, int | float | np.integer | np.floating
    ):
        raise _InvalidValueError(f"{cell!r} is not a number")
    else:
        value = float(cell)
        shown = _fmt(value)
    if not math.isfinite(value):
        raise _InvalidValueError(f"{shown} is not a finite number")
    if unit is not None and scale != 1.0:
        target = "arcsec" if kind == "radius" else "deg"
        converted = value * scale
        shown = f"{shown} {unit.to_string()} (= {_fmt(converted)} {target})"
        value = converted
    return _check_range(kind, value, shown)


def _text_cell(cell: Any) -> str:
    """Return a valid entry name from a file cell (text or integer)."""
    if cell is _ABSENT:
        raise _InvalidValueError("missing (the row is shorter than the header)")
    if cell is None:
        raise _InvalidValueError(_MISSING)
    if isinstance(cell, int | np.integer) and not isinstance(cell, bool | np.bool_):
        return str(int(cell))
    if not isinstance(cell, str):
        raise _InvalidValueError(f"{cell!r} is not text")
    return _check_text(cell)


def _locate(
    cells: _Cells, wanted: Sequence[str], label: str, error: type, hints: Mapping[str, str]
) -> dict[str, str | None]:
    """Map each wanted column to its name in the file; report missing and ambiguous ones."""
    problems: list[Problem] = []
    found: dict[str, str | None] = {}
    for name in wanted:
        index = _find_column(cells.names, name, problems, cells.header_line)
        if index is None:
            found[name] = None
            if name in hints and hints[name] == "":
                continue  # optional and absent
            if not any(p.column == name for p in problems):
                problems.append(
                    _missing_column(name, cells.names, cells.header_line, hints.get(name, ""))
                )
        else:
            found[name] = cells.names[index]
    if problems:
        raise error(problems, source=label)
    if cells.rows == 0:
        raise error("no rows (only a header)" if cells.lines is not None else "no rows", label)
    return found


def _row_problem(
    cells: _Cells, index: int, column: str | None, message: str, other: int | None = None
) -> Problem:
    """Return a problem at 0-based data row ``index`` (``other``: an earlier row index)."""
    lines = cells.lines
    return Problem(
        message,
        row=index + 1,
        column=column,
        other_row=None if other is None else other + 1,
        line=None if lines is None else lines[index],
        other_line=None if lines is None or other is None else lines[other],
    )


def _check_default_radius(default_radius: Any) -> float | None:
    """Return a valid ``default_radius`` or None."""
    if default_radius is None:
        return None
    try:
        return _check_number(default_radius, "radius")
    except _InvalidValueError as exc:
        raise WatchlistError(f"default_radius: {exc}") from None


def load_entries(
    path_or_bytes: str | os.PathLike | bytes,
    format: str | None = None,
    default_radius: float | None = None,
    *,
    source: str | None = None,
) -> tuple[WatchlistEntry, ...]:
    """Read and validate the entries of a watchlist file, all or nothing.

    Parameters
    ----------
    path_or_bytes : str, os.PathLike or bytes
        A CSV, VOTable or FITS file, or its content.
    format : {"csv", "votable", "fits"}, optional
        The format; by default from the extension (of ``source`` for bytes) or, for bytes,
        from the content.
    default_radius : float, optional
        Radius [arcsec] for a file without a ``radius`` column, or for its empty cells.
    source : str, optional
        Name used in error messages (default: the file name, or ``<data>``).

    Returns
    -------
    tuple of WatchlistEntry
        One per data row, in file order.

    Raises
    ------
    WatchlistError
        Listing every bad value by row and column, every missing column, an empty file,
        duplicate names (both rows) or an unreadable file. Nothing is returned unless every
        row is valid.
    """
    default = _check_default_radius(default_radius)
    fmt, data, label = _input(path_or_bytes, format, WATCHLIST_FORMATS, source, WatchlistError)
    cells = _read_cells(data, fmt, ENTRY_COLUMNS, label, WatchlistError)
    hints = {"radius": "" if default is not None else " (or give a default radius)"}
    found = _locate(cells, ENTRY_COLUMNS, label, WatchlistError, hints)
    problems: list[Problem] = []
    columns: dict[str, _Column | None] = {}
    for name in ENTRY_COLUMNS:
        file_name = found[name]
        if file_name is None:
            columns[name] = None
            continue
        unit = cells.units.get(file_name)
        scale = 1.0
        if name != "name":
            try:
                scale = _angle_scale(unit, "arcsec" if name == "radius" else "deg")
            except _InvalidValueError as exc:
                problems.append(Problem(str(exc), column=file_name))
        columns[name] = _Column(file_name, cells.columns[file_name], unit, scale)
    if problems:
        raise WatchlistError(problems, source=label)

    entries: list[WatchlistEntry] = []
    first: dict[str, int] = {}
    for index in range(cells.rows):
        values: dict[str, Any] = {}
        for name, column in columns.items():
            if column is None:
                values[name] = default
                continue
            cell = column.cells[index]
            if (
                name == "radius"
                and default is not None
                and (cell is None or cell is _ABSENT or (isinstance(cell, str) and not cell))
            ):
                values[name] = default
                continue
            try:
                if name == "name":
                    values[name] = _text_cell(cell)
                else:
                    values[name] = _number_cell(cell, name, column.unit, column.scale)
            except _InvalidValueError as exc:
                problems.append(_row_problem(cells, index, column.name, str(exc)))
        if len(values) < len(ENTRY_COLUMNS):
            continue
        name_column = columns["name"]
        assert name_column is not None
        if values["name"] in first:
            problems.append(
                _row_problem(
                    cells,
                    index,
                    name_column.name,
                    f"duplicate entry name {values['name']!r}",
                    other=first[values["name"]],
                )
            )
            continue
        first[values["name"]] = index
        entries.append(
            WatchlistEntry(values["name"], values["ra"], values["dec"], values["radius"])
        )
    if problems:
        raise WatchlistError(problems, source=label)
    return tuple(entries)


def load_watchlist(
    path_or_bytes: str | os.PathLike | bytes,
    watchlist_id: str,
    name: str,
    owner: str,
    *,
    format: str | None = None,
    default_radius: float | None = None,
    source: str | None = None,
) -> Watchlist:
    """Return a :class:`Watchlist` with the entries of a file (:func:`load_entries`).

    Parameters
    ----------
    path_or_bytes : str, os.PathLike or bytes
        A CSV, VOTable or FITS file, or its content.
    watchlist_id, name, owner : str
        The watchlist's ID, name and owner.
    format : str, optional
        As for :func:`load_entries`.
    default_radius : float, optional
        As for :func:`load_entries`.
    source : str, optional
        As for :func:`load_entries`.

    Returns
    -------
    Watchlist
        The validated watchlist.

    Raises
    ------
    WatchlistError
        For a bad file or a bad ID, name or owner.
    """
    entries = load_entries(path_or_bytes, format, default_radius, source=source)
    return Watchlist(watchlist_id, name, owner, entries)


def load_objects(
    path_or_bytes: str | os.PathLike | bytes,
    format: str | None = None,
    *,
    column: str = OBJECT_COLUMN,
    source: str | None = None,
) -> tuple[str, ...]:
    """Read the objects of a solar-system watchlist file, normalised, all or nothing.

    Parameters
    ----------
    path_or_bytes : str, os.PathLike or bytes
        A CSV, VOTable or FITS file with a column ``column``, or its content.
    format : {"csv", "votable", "fits"}, optional
        As for :func:`load_entries`.
    column : str, optional
        The column of names or IDs (default ``object``; case-insensitive).
    source : str, optional
        Name used in error messages.

    Returns
    -------
    tuple of str
        :func:`normalise_object_name` of each row, in file order.

    Raises
    ------
    WatchlistError
        Naming row and column of every bad value and both rows of a duplicate (compared
        after normalisation).
    """
    fmt, data, label = _input(path_or_bytes, format, WATCHLIST_FORMATS, source, WatchlistError)
    cells = _read_cells(data, fmt, (column,), label, WatchlistError)
    file_name = _locate(cells, (column,), label, WatchlistError, {})[column]
    assert file_name is not None
    problems: list[Problem] = []
    objects: list[str] = []
    first: dict[str, int] = {}
    for index, cell in enumerate(cells.columns[file_name]):
        try:
            if cell is _ABSENT:
                raise _InvalidValueError("missing (the row is shorter than the header)")
            if cell is None:
                raise _InvalidValueError(_MISSING)
            key = _normalise_object(cell)
        except _InvalidValueError as exc:
            problems.append(_row_problem(cells, index, file_name, str(exc)))
            continue
        if key in first:
            problems.append(
                _row_problem(
                    cells,
                    index,
                    file_name,
                    f"duplicate object {key!r} (after normalisation)",
                    other=first[key],
                )
            )
            continue
        first[key] = index
        objects.append(key)
    if problems:
        raise WatchlistError(problems, source=label)
    return tuple(objects)


# ------------------------------------------------------------------------------- catalogues


@dataclass(frozen=True, eq=False)
class Catalogue:
    """A static catalogue of sources, as numpy arrays of equal length.

    Attributes
    ----------
    ids : numpy.ndarray
        Source IDs, int64 (or uint64) or str (numpy unicode); unique when loaded from a file.
    ra : numpy.ndarray
        Right ascension [deg], float64, ``0 <= ra < 360``.
    dec : numpy.ndarray
        Declination [deg], float64, ``-90 <= dec <= 90``.
    columns : dict of str to numpy.ndarray
        Chosen extra columns by name (NaN or a masked array where values are missing).
    id_column : str
        Name of the ID column (used by :func:`write_catalogue`).
    name : str
        Name for messages and annotations (default: the file name without extension).

    Raises
    ------
    CatalogueError
        If the arrays are not 1-D and of one length, a column name clashes, or a coordinate
        is NaN or out of range (naming the 1-based row).
    """

    ids: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)
    id_column: str = "id"
    name: str = "catalogue"

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids)
        ra = np.asarray(self.ra, dtype=np.float64)
        dec = np.asarray(self.dec, dtype=np.float64)
        columns = {
            str(key): value if isinstance(value, np.ndarray) else np.asarray(value)
            for key, value in dict(self.columns).items()
        }
        problems = []
        for label, array in (("ids", ids), ("ra", ra), ("dec", dec), *columns.items()):
            if array.ndim != 1 or len(array) != len(ids):
                problems.append(
                    Problem(
                        f"shape {array.shape}, expected ({len(ids)},) like ids",
                        column=label,
                        where=label,
                    )
                )
        for clash in {self.id_column, "ra", "dec"} & set(columns):
            problems.append(Problem(f"extra column {clash!r} clashes with ids/ra/dec", where=clash))
        if problems:
            raise CatalogueError(problems, source=self.name)
        listed: list[Problem] = []
        omitted = 0
        for kind, array in (("ra", ra), ("dec", dec)):
            found, total = _range_problems(array, kind, kind, None, 1.0)
            listed.extend(found)
            omitted += total - len(found)
        if listed:
            raise CatalogueError(listed, source=self.name, omitted=omitted)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "ra", ra)
        object.__setattr__(self, "dec", dec)
        object.__setattr__(self, "columns", columns)

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def _range_problems(
    values: np.ndarray, kind: str, column: str, unit: Any, scale: float, original=None
) -> tuple[list[Problem], int]:
    """Return (the first problems, how many) of out-of-range values, vectorised."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values)
        if kind == "ra":
            bad |= (values < 0.0) | (values >= 360.0)
        else:
            bad |= (values < -90.0) | (values > 90.0)
    total = int(np.count_nonzero(bad))
    problems = []
    for index in np.flatnonzero(bad)[:MAX_PROBLEMS_SHOWN]:
        raw = float(values[index] if original is None else original[index])
        shown = _fmt(raw)
        if unit is not None and scale != 1.0 and math.isfinite(raw):
            shown = f"{shown} {unit.to_string()} (= {_fmt(values[index])} deg)"
        try:
            _check_range(kind, float(values[index]), shown)
        except _InvalidValueError as exc:
            problems.append(Problem(str(exc), row=int(index) + 1, column=column))
    return problems, total


@dataclass
class _Array:
    """Internal: one catalogue column read from a file."""

    name: str
    values: np.ndarray
    mask: np.ndarray | None = None
    unit: Any = None


def _native(values: np.ndarray) -> np.ndarray:
    """Return ``values`` in native byte order, bytes decoded, objects as str where text."""
    if values.dtype.kind == "S":
        return np.char.decode(values, "utf-8", "replace")
    if values.dtype.kind == "O":
        if all(isinstance(item, str) for item in values[:1000]):
            return values.astype(str)
        return values
    if values.dtype.byteorder not in ("=", "|"):
        return values.astype(values.dtype.newbyteorder("="))
    return values


def _from_arrow(chunked: Any, name: str) -> _Array:
    """Return a pyarrow ChunkedArray as numpy values and a null mask."""
    import pyarrow as pa

    if pa.types.is_dictionary(chunked.type):
        chunked = chunked.cast(chunked.type.value_type)
    mask = chunked.is_null().to_numpy(zero_copy_only=False) if chunked.null_count else None
    kind = chunked.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        values = chunked.fill_null("").to_numpy(zero_copy_only=False).astype(str)
    elif pa.types.is_floating(kind):
        values = chunked.to_numpy()
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        filled = (
            chunked.fill_null(False if pa.types.is_boolean(kind) else 0)
            if mask is not None
            else chunked
        )
        values = filled.to_numpy(zero_copy_only=False)
    else:
        values = np.asarray(chunked.to_numpy(zero_copy_only=False))
    return _Array(name, _native(values), mask)


def _resolve_names(names: Sequence[str], wanted: Mapping[str, str], label: str) -> dict[str, str]:
    """Map requested column names to the file's spelling; raise for missing/ambiguous."""
    problems: list[Problem] = []
    found: dict[str, str] = {}
    for requested in wanted.values():
        index = _find_column(names, requested, problems)
        if index is None:
            if not any(p.column == requested for p in problems):
                problems.append(_missing_column(requested, names))
        else:
            found[requested] = names[index]
    if problems:
        raise CatalogueError(problems, source=label)
    return found


def _csv_header(raw_start: bytes, label: str) -> list[str]:
    """Return the header of a CSV file from its first bytes."""
    text = raw_start.decode("utf-8-sig", "replace")
    for record in csv.reader(io.StringIO(text, newline="")):
        if record:
            return [cell.strip() for cell in record]
    raise CatalogueError("empty file (no header row)", source=label)


def _csv_locate_problems(
    raw: bytes, found: Mapping[str, str], numeric: Iterable[str], label: str
) -> list[Problem]:
    """Find the rows pyarrow refused, with the csv module (error path only)."""
    text = raw.decode("utf-8-sig", "replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    problems: list[Problem] = []
    positions: dict[str, int] = {}
    row = 0
    for record in reader:
        if not record:
            continue
        if header is None:
            header = [cell.strip() for cell in record]
            positions = {
                actual: header.index(actual) for actual in found.values() if actual in header
            }
            continue
        row += 1
        if len(record) != len(header):
            problems.append(
                Problem(
                    f"{len(record)} fields, but the header has {len(header)} columns",
                    row=row,
                    line=reader.line_num,
                )
            )
            continue
        for actual in numeric:
            cell = record[positions[actual]].strip()
            if cell:
                try:
                    float(cell)
                except ValueError:
                    problems.append(Problem(f"{cell!r} is not a number", row=row, column=actual))
        if len(problems) > MAX_PROBLEMS_SHOWN:
            break
    return problems


def _read_catalogue_columns(
    fmt: str, data: bytes | Path, wanted: Mapping[str, str], label: str
) -> dict[str, _Array]:
    """Return the wanted columns (keyed by requested name) of a catalogue file."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = pa.BufferReader(data) if isinstance(data, bytes) else str(data)
        try:
            names = list(pq.read_schema(source).names)
            found = _resolve_names(names, wanted, label)
            table = pq.read_table(source, columns=list(dict.fromkeys(found.values())))
        except (pa.ArrowException, OSError) as exc:
            raise CatalogueError(f"cannot read as Parquet: {exc}", source=label) from None
        return {req: _from_arrow(table.column(act), act) for req, act in found.items()}
    if fmt == "csv":
        import pyarrow as pa
        import pyarrow.csv as pacsv

        raw = _read_bytes(data, label, CatalogueError)
        if not raw.strip(b"\xef\xbb\xbf \t\r\n"):
            raise CatalogueError("empty file", source=label)
        names = _csv_header(raw[: 1 << 20], label)
        problems: list[Problem] = []
        for index, name in enumerate(names):
            if name in names[:index] and name in wanted.values():
                problems.append(
                    Problem(
                        f"column {name!r} appears twice (columns {names.index(name) + 1} and "
                        f"{index + 1})",
                        column=name,
                        where="header",
                    )
                )
        if problems:
            raise CatalogueError(problems, source=label)
        found = _resolve_names(names, wanted, label)
        numeric = [found[wanted["ra"]], found[wanted["dec"]]]
        convert = pacsv.ConvertOptions(
            include_columns=list(dict.fromkeys(found.values())),
            column_types={actual: pa.float64() for actual in numeric},
            null_values=[""],
            strings_can_be_null=False,
        )
        try:
            table = pacsv.read_csv(io.BytesIO(raw), convert_options=convert)
        except pa.ArrowInvalid as exc:
            located = _csv_locate_problems(raw, found, numeric, label)
            raise CatalogueError(located or f"cannot read as CSV: {exc}", source=label) from None
        return {req: _from_arrow(table.column(act), act) for req, act in found.items()}
    table = _read_astropy(data, fmt, label, CatalogueError)
    found = _resolve_names(list(table.colnames), wanted, label)
    arrays = {}
    problems = []
    for requested, actual in found.items():
        column = table[actual]
        if column.ndim > 1:
            problems.append(
                Problem(
                    f"holds arrays of shape {column.shape[1:]}, not single values", column=actual
                )
            )
            continue
        mask = np.ma.getmaskarray(column) if getattr(column, "mask", None) is not None else None
        if mask is not None and not mask.any():
            mask = None
        arrays[requested] = _Array(
            actual, _native(np.asarray(np.ma.getdata(column))), mask, column.unit
        )
    if problems:
        raise CatalogueError(problems, source=label)
    return arrays


def _catalogue_ids(array: _Array) -> tuple[np.ndarray | None, list[Problem], int]:
    """Check the ID column: no missing, integer or text, unique."""
    values = array.values
    problems: list[Problem] = []
    omitted = 0
    if values.dtype.kind not in "iuU":
        return (
            None,
            [
                Problem(
                    f"IDs must be integers or text, not {values.dtype}",
                    column=array.name,
                )
            ],
            0,
        )
    bad = array.mask.copy() if array.mask is not None else np.zeros(len(values), bool)
    if values.dtype.kind == "U":
        bad |= np.char.str_len(np.char.strip(values)) == 0
    else:
        values = values.astype(np.int64 if values.dtype.kind == "i" else np.uint64)
    rows = np.flatnonzero(bad)
    problems.extend(
        Problem("missing ID", row=int(i) + 1, column=array.name) for i in rows[:MAX_PROBLEMS_SHOWN]
    )
    omitted += max(0, len(rows) - MAX_PROBLEMS_SHOWN)
    if problems:
        return None, problems, omitted
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    for position in same[:MAX_PROBLEMS_SHOWN]:
        first, second = int(order[position]), int(order[position + 1])
        problems.append(
            Problem(
                f"duplicate ID {values[second].item()!r}",
                row=second + 1,
                other_row=first + 1,
                column=array.name,
            )
        )
    omitted += max(0, len(same) - MAX_PROBLEMS_SHOWN)
    return values, problems, omitted


def _catalogue_coordinates(array: _Array, kind: str) -> tuple[np.ndarray | None, list, int]:
    """Check and convert ra or dec to float64 degrees."""
    values = array.values
    try:
        scale = _angle_scale(array.unit, "deg")
    except _InvalidValueError as exc:
        return None, [Problem(str(exc), column=array.name)], 0
    problems: list[Problem] = []
    if values.dtype.kind in "iuf":
        original = values.astype(np.float64)
    elif values.dtype.kind == "U":
        original = np.empty(len(values), np.float64)
        for index, cell in enumerate(values):
            text = cell.strip()
            try:
                original[index] = float(text) if text else math.nan
            except ValueError:
                if len(problems) < MAX_PROBLEMS_SHOWN:
                    problems.append(
                        Problem(f"{text!r} is not a number", row=index + 1, column=array.name)
                    )
                original[index] = 0.0
        if problems:
            return None, problems, 0
        missing = np.char.str_len(np.char.strip(values)) == 0
        array.mask = missing if array.mask is None else (array.mask | missing)
    else:
        return None, [Problem(f"expected numbers, not {values.dtype}", column=array.name)], 0
    if array.mask is not None and array.mask.any():
        rows = np.flatnonzero(array.mask)
        problems = [
            Problem(_MISSING, row=int(i) + 1, column=array.name) for i in rows[:MAX_PROBLEMS_SHOWN]
        ]
        return None, problems, max(0, len(rows) - MAX_PROBLEMS_SHOWN)
    degrees = original * scale if scale != 1.0 else original
    found, total = _range_problems(degrees, kind, array.name, array.unit, scale, original)
    if found:
        return None, found, total - len(found)
    return degrees + 0.0, [], 0


def _extra_column(array: _Array) -> np.ndarray:
    """Return an extra column: NaN for missing floats, else a masked array if any missing."""
    values = array.values
    if array.mask is None:
        return values
    if values.dtype.kind == "f":
        values = values.copy()
        values[array.mask] = np.nan
        return values
    return np.ma.MaskedArray(values, mask=array.mask)


def load_catalogue(
    path: str | os.PathLike | bytes,
    id_column: str,
    ra_column: str = "ra",
    dec_column: str = "dec",
    columns: Sequence[str] = (),
    *,
    format: str | None = None,
    name: str | None = None,
) -> Catalogue:
    """Read a static catalogue (CSV, FITS, VOTable or Parquet), all or nothing.

    Parameters
    ----------
    path : str, os.PathLike or bytes
        The file (format from its extension, see :data:`EXTENSIONS`), or its content.
    id_column : str
        Column of source IDs (integers or text; unique, none missing).
    ra_column, dec_column : str, optional
        Coordinate columns [deg; FITS/VOTable angular units are converted].
    columns : sequence of str, optional
        Extra columns to keep (missing values allowed).
    format : {"csv", "fits", "votable", "parquet"}, optional
        The format, if not that of the extension.
    name : str, optional
        The catalogue's name (default: the file name without extension).

    Returns
    -------
    Catalogue
        IDs, ra, dec and the extra columns keyed as requested. Column names are matched
        case-insensitively.

    Raises
    ------
    CatalogueError
        For a missing or ambiguous column, a missing or duplicate ID, a missing, NaN,
        non-numeric or out-of-range coordinate (row and column named), or an unreadable file.
    """
    fmt, data, label = _input(path, format, CATALOGUE_FORMATS, None, CatalogueError)
    columns = tuple(columns)
    requested = {"id": id_column, "ra": ra_column, "dec": dec_column}
    problems: list[Problem] = []
    for extra in columns:
        if extra in requested.values() or columns.count(extra) > 1:
            problems.append(Problem(f"column {extra!r} is requested twice", where="columns"))
    if problems:
        raise CatalogueError(problems, source=label)
    wanted = {**requested, **{extra: extra for extra in columns}}
    arrays = _read_catalogue_columns(fmt, data, wanted, label)
    # Keyed by requested name: map the roles back.
    by_role = {role: arrays[requested_name] for role, requested_name in requested.items()}
    if len(by_role["id"].values) == 0:
        raise CatalogueError("no rows", source=label)
    omitted = 0
    ids, id_problems, count = _catalogue_ids(by_role["id"])
    problems.extend(id_problems)
    omitted += count
    coordinates = {}
    for kind in ("ra", "dec"):
        values, found, count = _catalogue_coordinates(by_role[kind], kind)
        problems.extend(found)
        omitted += count
        coordinates[kind] = values
    if problems:
        raise CatalogueError(problems, source=label, omitted=omitted)
    if name is None:
        name = Path(label).stem if not isinstance(path, bytes) else label
    return Catalogue(
        ids,
        coordinates["ra"],
        coordinates["dec"],
        {extra: _extra_column(arrays[extra]) for extra in columns},
        id_column=by_role["id"].name,
        name=name,
    )


def synthetic_catalogue(n: int, seed: int = 0) -> Catalogue:
    """Return ``n`` random sources uniform on the sphere, for benchmarks and tests.

    ``ra`` is uniform in [0, 360) and ``dec = degrees(arcsin(u))`` with ``u`` uniform in
    [-1, 1), which is uniform in area. IDs are ``1..n`` (int64). Extra columns: ``mag``
    (float64, uniform in [14, 24)) and ``kind`` (``"star"`` 60 %, ``"galaxy"`` 35 %,
    ``"qso"`` 5 %). The same ``n`` and ``seed`` always give the same catalogue.

    Parameters
    ----------
    n : int
        Number of sources (10^6 take about 0.15 s).
    seed : int, optional
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Catalogue
        Named ``synthetic-<n>-<seed>``, ID column ``id``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    mag = rng.uniform(14.0, 24.0, n)
    kind = rng.choice(np.array(["star", "galaxy", "qso"]), size=n, p=[0.6, 0.35, 0.05])
    return Catalogue(
        np.arange(1, n + 1, dtype=np.int64),
        ra,
        dec,
        {"mag": mag, "kind": kind},
        id_column="id",
        name=f"synthetic-{n}-{seed}",
    )


def write_catalogue(
    catalogue: Catalogue, path: str | os.PathLike, format: str | None = None
) -> Path:
    """Write a catalogue so that :func:`load_catalogue` reads it back unchanged.

    Columns: ``catalogue.id_column``, ``ra``, ``dec`` (FITS/VOTable: unit ``deg``), then the
    extra columns. Parquet and CSV go through pyarrow (10^6 sources: about 0.3 s to Parquet
    or CSV); FITS and VOTable through astropy (VOTable is slow for millions of rows).
    Floats are written so they read back exactly.

    Parameters
    ----------
    catalogue : Catalogue
        What to write.
    path : str or os.PathLike
        Destination, overwritten.
    format : {"parquet", "csv", "fits", "votable"}, optional
        Default: from the extension.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    if format is not None:
        fmt = _format_name(format, CATALOGUE_FORMATS, path.name, CatalogueError)
    else:
        fmt = EXTENSIONS.get(path.suffix.lower(), "")
        if fmt not in CATALOGUE_FORMATS:
            raise CatalogueError(
                f"cannot tell the format from the extension {path.suffix!r}; give format=",
                source=path.name,
            )
    names = [catalogue.id_column, "ra", "dec", *catalogue.columns]
    arrays = [catalogue.ids, catalogue.ra, catalogue.dec, *catalogue.columns.values()]
    units = [None, "deg", "deg", *(None for _ in catalogue.columns)]
    if fmt in ("parquet", "csv"):
        import pyarrow as pa

        table = pa.table(
            {
                name: pa.array(
                    np.ma.getdata(values),
                    mask=np.ma.getmask(values) if np.ma.is_masked(values) else None,
                )
                for name, values in zip(names, arrays, strict=True)
            }
        )
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, path)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, path)
        return path
    from astropy.table import MaskedColumn, Table

    table = Table()
    for name, values, unit in zip(names, arrays, units, strict=True):
        if np.ma.is_masked(values):
            table[name] = MaskedColumn(np.ma.getdata(values), mask=np.ma.getmask(values), unit=unit)
        else:
            table[name] = values
            table[name].unit = unit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table.write(path, format="fits" if fmt == "fits" else "votable", overwrite=True)
    return path
