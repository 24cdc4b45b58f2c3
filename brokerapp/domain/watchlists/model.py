"""The watchlist model: entries, positional and solar-system watchlists, their JSON form.

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

JSON
    :func:`watchlist_to_json` gives plain dicts (``json.dumps`` them; floats round-trip
    exactly)::

        {"kind": "watchlist", "id": "...", "name": "...", "owner": "...",
         "entries": [{"name": "...", "ra": 1.5, "dec": -2.0, "radius_arcsec": 3.0}, ...]}
        {"kind": "solar_system", "id": "...", "name": "...", "owner": "...",
         "objects": ["2830", "21164719644750924", "2018VB12"]}

    :func:`watchlist_from_json` reads either (``kind`` defaults to ``"watchlist"``) and is
    strict: unknown or missing fields and wrong types are errors, named by a JSON-style path
    with 0-based indices (``entries[3].dec``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from brokerapp.domain.watchlists.names import _normalise_object
from brokerapp.domain.watchlists.problems import Problem, WatchlistError, _InvalidValueError

__all__ = [
    "MAX_RADIUS_ARCSEC",
    "SOLAR_SYSTEM_KIND",
    "WATCHLIST_ID_PATTERN",
    "WATCHLIST_KIND",
    "SolarSystemWatchlist",
    "Watchlist",
    "WatchlistEntry",
    "watchlist_from_json",
    "watchlist_to_json",
]

MAX_RADIUS_ARCSEC = 3600.0
"""Largest allowed entry radius [arcsec] (one degree)."""
WATCHLIST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""What a watchlist ID must match (whole string)."""
WATCHLIST_KIND = "watchlist"
"""``kind`` of a positional watchlist in JSON."""
SOLAR_SYSTEM_KIND = "solar_system"
"""``kind`` of a solar-system watchlist in JSON."""

_ENTRY_FIELDS = ("name", "ra", "dec", "radius_arcsec")
_HEADER_FIELDS = ("id", "name", "owner")
_JSON_SOURCE = "watchlist JSON"


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
    # Printable text has no control character (C0, DEL and C1 are not printable); only
    # other text needs the scan.
    if not text.isprintable() and any(ord(char) < 32 or 127 <= ord(char) < 160 for char in text):
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


def _trusted_entry(name: str, ra: float, dec: float, radius_arcsec: float) -> WatchlistEntry:
    """Return an entry of values already checked as :class:`WatchlistEntry` checks them."""
    entry = object.__new__(WatchlistEntry)
    object.__setattr__(entry, "name", name)
    object.__setattr__(entry, "ra", ra)
    object.__setattr__(entry, "dec", dec)
    object.__setattr__(entry, "radius_arcsec", radius_arcsec)
    return entry


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
        return (
            SolarSystemWatchlist(header["id"], header["name"], header["owner"], tuple(checked)),
            [],
        )
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
