"""Large watchlists on the control topic: chunks staged under a version, then a commit.

One :class:`~brokerapp.domain.watchlists.commands.WatchlistCommand` carries a whole
watchlist in one Kafka message, about 80 bytes an entry, so a 1 MB message limit ends near
12,000 entries. A larger watchlist is sent as ``chunks`` chunk messages and one commit:

Chunk (:class:`WatchlistChunk`), key ``<watchlist ID>@<version>#<seq>``::

    {"op": "chunk", "watchlist_id": "w1", "version": "v1a2b", "seq": 0, "chunks": 3,
     "kind": "watchlist", "items": [{"name": "M31", "ra": 10.68, "dec": 41.27,
                                     "radius_arcsec": 5.0}, ...]}

    (``kind`` ``"solar_system"``: ``items`` are object names, ``["2830", "2018VB12"]``.)

Commit (:class:`WatchlistCommit`), key ``<watchlist ID>``::

    {"op": "commit", "watchlist_id": "w1", "version": "v1a2b", "chunks": 3, "count": 12000,
     "kind": "watchlist", "name": "my list", "owner": "me"}

- ``version`` is chosen by the sender, 1 to 32 of ``A-Z a-z 0-9 _ -``, new for each upload
  (:func:`new_version`); ``seq`` runs ``0 .. chunks - 1``; ``count`` is the number of items
  in all chunks together.
- Every chunk has a key of its own, so a compacted control topic keeps all of them; the
  commit has the watchlist's own key, like a put or a delete, so compaction keeps only the
  last of those. A chunk arrives before its commit (one partition, sent in that order), so
  a replay from the start of the compacted topic rebuilds the same state. The worker
  deletes the chunks of superseded versions (and sends their tombstones).
- Chunks may arrive in any order and more than once (the last copy of a ``seq`` is kept).
  The worker only stages them; nothing a reader sees changes until the commit, which
  :func:`assemble` checks against the staged chunks: all of ``0 .. chunks - 1`` present,
  none beyond, every chunk agreeing on ``chunks``, ``count`` items in all, names unique
  across chunks. A commit that fails the check changes nothing (the version in force
  stays), and so does an upload that stops before its commit (a crashed client).

Each chunk is validated on its own like a watchlist (every entry, names unique within it);
errors name JSON paths (``items[3].dec``). Chunks are ``chunk_entries`` items long
(``Settings.watchlist_chunk_entries``, 5000 by default: about 400 kB).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from brokerapp.domain.watchlists.commands import WatchlistCommand
from brokerapp.domain.watchlists.model import (
    _ENTRY_FIELDS,
    MAX_RADIUS_ARCSEC,
    SOLAR_SYSTEM_KIND,
    WATCHLIST_KIND,
    SolarSystemWatchlist,
    Watchlist,
    _check_id,
    _check_text,
    _entry_values,
    _fields_problems,
)
from brokerapp.domain.watchlists.names import _normalise_object
from brokerapp.domain.watchlists.problems import Problem, WatchlistError, _InvalidValueError

__all__ = [
    "CHUNK_OP",
    "ControlMessage",
    "COMMIT_OP",
    "VERSION_PATTERN",
    "WatchlistChunk",
    "WatchlistCommit",
    "assemble",
    "chunk_commands",
    "new_version",
    "parse_control",
    "watchlist_items",
]

CHUNK_OP = "chunk"
"""``op`` of a :class:`WatchlistChunk`."""
COMMIT_OP = "commit"
"""``op`` of a :class:`WatchlistCommit`."""
VERSION_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""What a version must match (whole string)."""

_KINDS = (WATCHLIST_KIND, SOLAR_SYSTEM_KIND)
_ENTRY_KEYS = frozenset(_ENTRY_FIELDS)
_CHUNK_FIELDS = ("op", "watchlist_id", "version", "seq", "chunks", "kind", "items")
_COMMIT_FIELDS = ("op", "watchlist_id", "version", "chunks", "count", "kind", "name", "owner")
_SOURCE = "watchlist chunk"
_COMMIT_SOURCE = "watchlist commit"


def new_version() -> str:
    """Return a fresh version for an upload (16 hex digits, random)."""
    return uuid.uuid4().hex[:16]


def _check_version(value: Any) -> str:
    if not isinstance(value, str) or not VERSION_PATTERN.fullmatch(value):
        raise _InvalidValueError(f"{value!r} is not a valid version (1 to 32 of A-Z a-z 0-9 _ -)")
    return value


def _check_count(value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _InvalidValueError(f"expected an integer >= {least}, got {value!r}")
    return value


def _problems(checks: Sequence[tuple[str, Any, Any]]) -> list[Problem]:
    problems = []
    for name, value, check in checks:
        try:
            check(value)
        except _InvalidValueError as exc:
            problems.append(Problem(str(exc), column=name, where=name))
    return problems


def _kind_check(value: Any) -> str:
    if value not in _KINDS:
        raise _InvalidValueError(
            f"unknown kind {value!r} (expected {' or '.join(map(repr, _KINDS))})"
        )
    return value


def _fast_entry(item: Mapping) -> dict | None:
    """Return a checked entry item if it is plainly valid (as JSON writes one), else None.

    The common case, checked without building problems: exactly the four fields, a
    printable stripped name, floats in range. Anything else takes the full checks.
    """
    if item.keys() != _ENTRY_KEYS:
        return None
    name, ra, dec, radius = item["name"], item["ra"], item["dec"], item["radius_arcsec"]
    if (
        type(name) is str
        and type(ra) is float
        and type(dec) is float
        and type(radius) is float
        and 0.0 <= ra < 360.0
        and -90.0 <= dec <= 90.0
        and 0.0 < radius <= MAX_RADIUS_ARCSEC
        and name
        and name.isprintable()
        and name.strip() == name
    ):
        return {"name": name, "ra": ra + 0.0, "dec": dec + 0.0, "radius_arcsec": radius}
    return None


def _slow_entry(item: Mapping, path: str, problems: list[Problem]) -> dict | None:
    """Return a checked entry item, or None after adding its problems to ``problems``."""
    item_problems = (
        [] if item.keys() == _ENTRY_KEYS else _fields_problems(item, _ENTRY_FIELDS, path + ".")
    )
    values, value_problems = _entry_values(*(item.get(name) for name in _ENTRY_FIELDS))
    item_problems.extend(
        Problem(message, column=name, where=f"{path}.{name}")
        for name, message in value_problems
        if name in item
    )
    if item_problems:
        problems.extend(item_problems)
        return None
    return {name: values[name] for name in _ENTRY_FIELDS}


def _check_items(kind: str, items: Any) -> tuple[list, list[Problem]]:
    """Check the items of a chunk; return (normalised items, problems named ``items[i]``)."""
    if not isinstance(items, list | tuple):
        return [], [Problem(f"items must be a list, got {type(items).__name__}", where="items")]
    if not items:
        return [], [Problem("a chunk needs at least one item", where="items")]
    problems: list[Problem] = []
    checked: list = []
    first: dict[str, int] = {}
    value: Any
    for index, item in enumerate(items):
        path = f"items[{index}]"
        if kind == WATCHLIST_KIND:
            if not isinstance(item, Mapping):
                problems.append(
                    Problem(f"expected a JSON object, got {type(item).__name__}", where=path)
                )
                continue
            value = _fast_entry(item) or _slow_entry(item, path, problems)
            if value is None:
                continue
            key = value["name"]
        else:
            try:
                key = value = _normalise_object(item)
            except _InvalidValueError as exc:
                problems.append(Problem(str(exc), where=path))
                continue
        if key in first:
            problems.append(
                Problem(f"duplicate {key!r} (also items[{first[key]}])", where=f"{path}")
            )
            continue
        first[key] = index
        checked.append(value)
    return checked, problems


@dataclass(frozen=True)
class WatchlistChunk:
    """One chunk of a large watchlist upload.

    Attributes
    ----------
    watchlist_id : str
        The watchlist.
    version : str
        The upload it belongs to.
    seq : int
        Its place, ``0 .. chunks - 1``.
    chunks : int
        How many chunks the upload has.
    kind : str
        ``"watchlist"`` (items are entry dicts) or ``"solar_system"`` (object names).
    items : tuple
        JSON-ready entries (``name``, ``ra``, ``dec``, ``radius_arcsec``) or normalised
        object names, validated.

    Raises
    ------
    WatchlistError
        For an invalid field or item (items named ``items[i]``).
    """

    watchlist_id: str
    version: str
    seq: int
    chunks: int
    kind: str
    items: tuple

    def __post_init__(self) -> None:
        problems = _problems(
            (
                ("watchlist_id", self.watchlist_id, _check_id),
                ("version", self.version, _check_version),
                ("seq", self.seq, lambda v: _check_count(v, 0)),
                ("chunks", self.chunks, lambda v: _check_count(v, 1)),
                ("kind", self.kind, _kind_check),
            )
        )
        if not problems and self.seq >= self.chunks:
            problems.append(
                Problem(f"seq {self.seq} is not below chunks {self.chunks}", where="seq")
            )
        if not problems:
            items, item_problems = _check_items(self.kind, self.items)
            problems.extend(item_problems)
            object.__setattr__(self, "items", tuple(items))
        if problems:
            raise WatchlistError(problems, source=_SOURCE)

    @property
    def key(self) -> bytes:
        """The Kafka message key, ``<watchlist ID>@<version>#<seq>`` in UTF-8."""
        return f"{self.watchlist_id}@{self.version}#{self.seq}".encode()

    def to_json(self) -> dict:
        """Return the JSON form (see the module docstring)."""
        return {
            "op": CHUNK_OP,
            "watchlist_id": self.watchlist_id,
            "version": self.version,
            "seq": self.seq,
            "chunks": self.chunks,
            "kind": self.kind,
            "items": list(self.items),
        }

    def to_bytes(self) -> bytes:
        """Return the compact UTF-8 JSON, the control-topic value."""
        return _dumps(self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WatchlistChunk:
        """Return the chunk a JSON dict describes (strict: no unknown or missing fields)."""
        problems = _fields_problems(data, _CHUNK_FIELDS, "")
        if problems:
            raise WatchlistError(problems, source=_SOURCE)
        items = data["items"]
        if not isinstance(items, list):
            raise WatchlistError(
                Problem(f"items must be a list, got {type(items).__name__}", where="items"),
                source=_SOURCE,
            )
        return cls(
            data["watchlist_id"],
            data["version"],
            data["seq"],
            data["chunks"],
            data["kind"],
            tuple(items),
        )


@dataclass(frozen=True)
class WatchlistCommit:
    """The command that puts a staged upload in force (see the module docstring).

    Attributes
    ----------
    watchlist_id, version : str
        The watchlist and the upload.
    chunks : int
        Chunks of the upload, ``>= 1``.
    count : int
        Items in all its chunks, ``>= 1``.
    kind : str
        ``"watchlist"`` or ``"solar_system"``.
    name, owner : str
        The watchlist's name and owner.

    Raises
    ------
    WatchlistError
        For an invalid field.
    """

    watchlist_id: str
    version: str
    chunks: int
    count: int
    kind: str
    name: str
    owner: str

    def __post_init__(self) -> None:
        problems = _problems(
            (
                ("watchlist_id", self.watchlist_id, _check_id),
                ("version", self.version, _check_version),
                ("chunks", self.chunks, lambda v: _check_count(v, 1)),
                ("count", self.count, lambda v: _check_count(v, 1)),
                ("kind", self.kind, _kind_check),
                ("name", self.name, _check_text),
                ("owner", self.owner, _check_text),
            )
        )
        if problems:
            raise WatchlistError(problems, source=_COMMIT_SOURCE)
        object.__setattr__(self, "name", self.name.strip())
        object.__setattr__(self, "owner", self.owner.strip())

    @property
    def key(self) -> bytes:
        """The Kafka message key: the watchlist ID (like a put or a delete)."""
        return self.watchlist_id.encode()

    def to_json(self) -> dict:
        """Return the JSON form (see the module docstring)."""
        return {
            "op": COMMIT_OP,
            "watchlist_id": self.watchlist_id,
            "version": self.version,
            "chunks": self.chunks,
            "count": self.count,
            "kind": self.kind,
            "name": self.name,
            "owner": self.owner,
        }

    def to_bytes(self) -> bytes:
        """Return the compact UTF-8 JSON, the control-topic value."""
        return _dumps(self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WatchlistCommit:
        """Return the commit a JSON dict describes (strict: no unknown or missing fields)."""
        problems = _fields_problems(data, _COMMIT_FIELDS, "")
        if problems:
            raise WatchlistError(problems, source=_COMMIT_SOURCE)
        return cls(*(data[name] for name in _COMMIT_FIELDS[1:]))


def _dumps(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def watchlist_items(watchlist: Watchlist | SolarSystemWatchlist) -> list:
    """Return a watchlist's entries as JSON dicts, or its objects as names."""
    if isinstance(watchlist, Watchlist):
        return [
            {"name": e.name, "ra": e.ra, "dec": e.dec, "radius_arcsec": e.radius_arcsec}
            for e in watchlist.entries
        ]
    return list(watchlist.objects)


def chunk_commands(
    watchlist: Watchlist | SolarSystemWatchlist, chunk_entries: int, version: str | None = None
) -> tuple[list[WatchlistChunk], WatchlistCommit]:
    """Split a watchlist into chunks of ``chunk_entries`` items and their commit.

    Parameters
    ----------
    watchlist : Watchlist or SolarSystemWatchlist
        A validated watchlist.
    chunk_entries : int
        Items per chunk (the last may have fewer), ``>= 1``.
    version : str, optional
        The upload's version (default: :func:`new_version`).

    Returns
    -------
    tuple of (list of WatchlistChunk, WatchlistCommit)
        Send the chunks, then the commit.
    """
    if chunk_entries < 1:
        raise ValueError(f"chunk_entries must be >= 1, got {chunk_entries}")
    version = new_version() if version is None else version
    kind = WATCHLIST_KIND if isinstance(watchlist, Watchlist) else SOLAR_SYSTEM_KIND
    items = watchlist_items(watchlist)
    count = -(-len(items) // chunk_entries)
    chunks = [
        _trusted_chunk(
            watchlist.id, version, seq, count, kind, items[start : start + chunk_entries]
        )
        for seq, start in enumerate(range(0, len(items), chunk_entries))
    ]
    commit = WatchlistCommit(
        watchlist.id, version, count, len(items), kind, watchlist.name, watchlist.owner
    )
    return chunks, commit


def _trusted_chunk(
    watchlist_id: str, version: str, seq: int, chunks: int, kind: str, items: list
) -> WatchlistChunk:
    """Return a chunk of items taken from a validated watchlist, without checking them again."""
    chunk = object.__new__(WatchlistChunk)
    for name, value in zip(
        ("watchlist_id", "version", "seq", "chunks", "kind", "items"),
        (watchlist_id, version, seq, chunks, kind, tuple(items)),
        strict=True,
    ):
        object.__setattr__(chunk, name, value)
    return chunk


def assemble(commit: WatchlistCommit, staged: Mapping[int, Mapping[str, Any]]) -> list:
    """Return the items of a committed upload, in ``seq`` order, after checking its chunks.

    Parameters
    ----------
    commit : WatchlistCommit
        The commit.
    staged : mapping of int to mapping
        ``seq`` -> ``{"chunks": <chunks>, "items": [...]}`` of every chunk staged for the
        commit's watchlist and version (any order; one per ``seq``, the last copy).

    Returns
    -------
    list
        Entry dicts or object names.

    Raises
    ------
    WatchlistError
        Listing missing chunks, chunks beyond ``chunks``, chunks announcing another count,
        a wrong total and names repeated across chunks. Nothing is to be applied then.
    """
    problems: list[Problem] = []
    missing = [seq for seq in range(commit.chunks) if seq not in staged]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        problems.append(
            Problem(f"missing chunk{'s' if len(missing) > 1 else ''} {shown} of {commit.chunks}")
        )
    extra = sorted(seq for seq in staged if not 0 <= seq < commit.chunks)
    if extra:
        problems.append(Problem(f"chunks {extra} beyond the {commit.chunks} committed"))
    for seq in sorted(staged):
        announced = staged[seq].get("chunks")
        if announced != commit.chunks:
            problems.append(
                Problem(f"chunk {seq} belongs to an upload of {announced} chunks", where="chunks")
            )
    if problems:
        raise WatchlistError(problems, source=_COMMIT_SOURCE)
    items: list = []
    first: dict[str, int] = {}
    what = "entry name" if commit.kind == WATCHLIST_KIND else "object"
    for seq in range(commit.chunks):
        for item in staged[seq]["items"]:
            name = item["name"] if commit.kind == WATCHLIST_KIND else item
            if name in first:
                if len(problems) < 20:
                    problems.append(
                        Problem(f"duplicate {what} {name!r} (chunks {first[name]} and {seq})")
                    )
                continue
            first[name] = seq
            items.append(item)
    if not problems and len(items) != commit.count:
        problems.append(Problem(f"{len(items)} items staged, the commit announces {commit.count}"))
    if problems:
        raise WatchlistError(problems, source=_COMMIT_SOURCE)
    return items


ControlMessage = WatchlistCommand | WatchlistChunk | WatchlistCommit
"""Any message of the control topic."""


def parse_control(data: bytes | str) -> ControlMessage:
    """Return the command, chunk or commit in a control-topic value.

    Parameters
    ----------
    data : bytes or str
        UTF-8 JSON; ``op`` says which (``put``/``delete``: :class:`WatchlistCommand`).

    Returns
    -------
    WatchlistCommand, WatchlistChunk or WatchlistCommit
        Validated.

    Raises
    ------
    WatchlistError
        If it is not UTF-8 JSON or not a valid message.
    """
    try:
        decoded = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WatchlistError(f"not JSON: {exc}", source="watchlist command") from None
    op = decoded.get("op") if isinstance(decoded, Mapping) else None
    if op == CHUNK_OP:
        return WatchlistChunk.from_json(decoded)
    if op == COMMIT_OP:
        return WatchlistCommit.from_json(decoded)
    return WatchlistCommand.from_json(decoded)
