"""Watchlist files: CSV, VOTable and FITS tables read into validated entries or objects.

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

"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brokerapp.domain.watchlists.model import (
    Watchlist,
    WatchlistEntry,
    _check_number,
    _check_range,
    _check_text,
    _fmt,
    _trusted_entry,
)
from brokerapp.domain.watchlists.names import _normalise_object
from brokerapp.domain.watchlists.problems import Problem, WatchlistError, _InvalidValueError

__all__ = [
    "CATALOGUE_FORMATS",
    "ENTRY_COLUMNS",
    "EXTENSIONS",
    "OBJECT_COLUMN",
    "WATCHLIST_FORMATS",
    "load_entries",
    "load_objects",
    "load_watchlist",
]

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
_ABSENT = object()  # a CSV cell beyond the end of a short row
_MISSING = "missing value (empty, null or NaN)"  # a masked table cell


def _format_name(format: str, allowed: Sequence[str], label: str, error: type) -> str:
    """Return the canonical name of an explicit format."""
    name = _FORMAT_NAMES.get(str(format).lower().lstrip("."))
    if name is None or name not in allowed:
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
        raw = bytes(path_or_bytes)
        data: bytes | Path = raw
        label = source or "<data>"
        if format is not None:
            return _format_name(format, allowed, label, error), data, label
        suffix = Path(source).suffix.lower() if source else ""
        if suffix in EXTENSIONS and EXTENSIONS[suffix] in allowed:
            return EXTENSIONS[suffix], data, label
        sniffed = _sniff(raw)
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
        name = EXTENSIONS.get(path.suffix.lower(), "")
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
    columns: Mapping[str, Sequence[Any]]
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
        # Every value passed the checks WatchlistEntry makes (_text_cell, _number_cell).
        entries.append(
            _trusted_entry(values["name"], values["ra"], values["dec"], values["radius"])
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
