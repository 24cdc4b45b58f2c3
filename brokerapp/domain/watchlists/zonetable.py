"""The watchlist worker's table edits: stage chunks, commit a version, delete, match.

Pure functions on three mutable mappings, which the worker passes as its Faust tables and
tests as plain dicts (string keys, JSON-ready values):

``watchlists``
    ``<watchlist ID>`` -> the header of the version in force::

        {"kind": "watchlist", "id": "w1", "name": "my list", "owner": "me",
         "version": "v1a2b", "chunks": 3, "count": 12000, "zones": [12, 13, 400]}

    (``zones``: the zone numbers its rows are in; a solar-system watchlist has none), and
    ``<watchlist ID>@<version>#<seq>`` -> a chunk, staged or in force,
    ``{"chunks": 3, "items": [...]}`` (:mod:`~brokerapp.domain.watchlists.chunks`). No
    watchlist ID contains ``@``, so the two kinds of key never meet. (A header written before
    chunked uploads existed is the whole watchlist JSON; it is read and replaced alike.)
``zones``
    ``<zone number>`` -> the zone's rows (:mod:`brokerapp.domain.zones`, zone height
    :data:`~brokerapp.domain.zones.DEFAULT_HEIGHT_DEG`); each entry of a watchlist version
    is a row named ``<watchlist ID>@<version>/<entry name>`` with payload
    ``{"watchlist": <ID>, "version": <version>, "entry": <entry name>}``, in every zone its
    circle overlaps. ``@<watchlist ID>`` -> the version in force.
``ss_objects``
    normalised object name -> sorted IDs of the solar-system watchlists following it.

A commit (:func:`commit_steps`; :func:`commit` runs it at once) first writes the new
version's rows beside the old ones, then swaps ``zones["@<ID>"]`` to the new version and
writes the header, then removes the old version's rows and chunks. A match counts only rows
of the version in force (:func:`in_force`), so a reader that sees these writes in their
order (the worker itself between two steps, or another worker reading the changelog of
``zones``, one ordered partition) sees the old version or the new one, never a mix. A
commit that fails its checks, or an upload that never commits, changes nothing. The steps
are :data:`STEP_ITEMS` items or one zone each, so a worker can let its other agents run
between two. Rows without a version (written before chunked uploads) match while their
watchlist has no ``@`` key. Solar-system watchlists have no versioned rows: their objects
are swapped in one step, atomic for the worker applying it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from brokerapp.domain.watchlists.chunks import (
    ControlMessage,
    WatchlistChunk,
    WatchlistCommit,
    assemble,
    chunk_commands,
)
from brokerapp.domain.watchlists.commands import WatchlistCommand
from brokerapp.domain.watchlists.model import SOLAR_SYSTEM_KIND
from brokerapp.domain.zones import (
    DEFAULT_HEIGHT_DEG,
    PAYLOAD,
    Entry,
    Match,
    build_zones,
    entry_zones,
)

__all__ = [
    "STEP_ITEMS",
    "Applied",
    "Steps",
    "Table",
    "apply",
    "apply_put",
    "apply_steps",
    "chunk_key",
    "commit",
    "commit_steps",
    "delete",
    "delete_steps",
    "entries_json",
    "headers",
    "in_force",
    "marker_key",
    "stage",
    "summary",
    "watchlist_ids",
    "zone_keys",
]

Table = MutableMapping[str, Any]
"""A table as these functions use it: ``get``, ``[key] = value``, ``del``, ``keys()``."""


@dataclass
class Applied:
    """What one control message changed.

    Attributes
    ----------
    op : str
        ``"chunk"``, ``"commit"``, ``"put"`` or ``"delete"``.
    watchlist_id : str
        The watchlist.
    version : str or None
        The version staged or put in force (None for a delete).
    count : int
        Items staged or put in force.
    removed_chunks : list of str
        Chunk keys deleted from ``watchlists`` (superseded or orphaned versions): the
        worker sends their tombstones to the control topic, so compaction drops them.
    """

    op: str
    watchlist_id: str
    version: str | None = None
    count: int = 0
    removed_chunks: list[str] = field(default_factory=list)


def chunk_key(watchlist_id: str, version: str, seq: int) -> str:
    """Return the ``watchlists`` key of a chunk, ``<ID>@<version>#<seq>``."""
    return f"{watchlist_id}@{version}#{seq}"


def marker_key(watchlist_id: str) -> str:
    """Return the ``zones`` key holding the version in force, ``@<ID>``."""
    return f"@{watchlist_id}"


def headers(watchlists: Table) -> dict[str, dict]:
    """Return ``{ID: header}`` of every watchlist in force (chunk keys left out)."""
    return {key: watchlists[key] for key in list(watchlists.keys()) if "@" not in key}


def watchlist_ids(watchlists: Table) -> list[str]:
    """Return the IDs of the watchlists in force (chunk keys left out), without their values."""
    return [key for key in watchlists.keys() if "@" not in key]


def zone_keys(zones: Table) -> list[str]:
    """Return the keys of ``zones`` that are zones (version markers left out)."""
    return [key for key in zones.keys() if not key.startswith("@")]


def summary(header: dict) -> dict:
    """Return ``{"name", "owner", "entries"}`` of a header (the REST list's shape)."""
    if "count" in header:
        count = header["count"]
    else:  # a header written before chunked uploads: the whole watchlist
        count = len(header.get("entries") or header.get("objects") or ())
    return {"name": header["name"], "owner": header["owner"], "entries": count}


def stage(watchlists: Table, chunk: WatchlistChunk) -> Applied:
    """Stage one chunk (a copy of the same ``seq`` replaces the earlier one).

    Parameters
    ----------
    watchlists : Table
        The ``watchlists`` table.
    chunk : WatchlistChunk
        A validated chunk.

    Returns
    -------
    Applied
        ``op`` ``"chunk"``, the chunk's item count.
    """
    key = chunk_key(chunk.watchlist_id, chunk.version, chunk.seq)
    watchlists[key] = {"chunks": chunk.chunks, "items": list(chunk.items)}
    return Applied("chunk", chunk.watchlist_id, chunk.version, len(chunk.items))


def _staged(watchlists: Table, watchlist_id: str, version: str) -> dict[int, dict]:
    prefix = f"{watchlist_id}@{version}#"
    return {
        int(key[len(prefix) :]): watchlists[key]
        for key in watchlists.keys()
        if key.startswith(prefix)
    }


STEP_ITEMS = 20_000
"""Items handled between two steps of :func:`apply_steps` (and the zones are one each)."""

Steps = Generator[None, None, Applied]
"""What :func:`apply_steps` returns: ``next()`` it until ``StopIteration.value``."""


def _version_entry(watchlist_id: str, version: str, item: dict) -> Entry:
    return Entry(
        f"{watchlist_id}@{version}/{item['name']}",
        item["ra"],
        item["dec"],
        item["radius_arcsec"],
        {"watchlist": watchlist_id, "version": version, "entry": item["name"]},
    )


def _add_rows(
    zones: Table, watchlist_id: str, version: str, items: list[dict]
) -> Generator[None, None, list[int]]:
    """Write the rows of a version beside the rows in force; return the zones used."""
    by_zone: dict[int, list[Entry]] = {}
    for index, item in enumerate(items, start=1):
        entry = _version_entry(watchlist_id, version, item)
        for zone in entry_zones(entry.dec, entry.radius_arcsec, DEFAULT_HEIGHT_DEG):
            by_zone.setdefault(zone, []).append(entry)
        if index % STEP_ITEMS == 0:
            yield
    for zone, entries in sorted(by_zone.items()):
        key = str(zone)
        # build_zones sorts the zone in the stored order; a row of the same name is replaced.
        zones[key] = build_zones([*(zones.get(key) or ()), *entries], DEFAULT_HEIGHT_DEG)[zone]
        yield
    return sorted(by_zone)


def _drop_rows(
    zones: Table, watchlist_id: str, keys: Iterable[str], keep: str | None = None
) -> Generator[None, None, None]:
    """Remove the rows of a watchlist from zones ``keys``, but those of version ``keep``.

    One zone a step. With ``keep`` None every row of the watchlist goes (a delete).
    """
    for key in keys:
        rows = zones.get(key)
        if not rows:
            continue
        kept = [
            row
            for row in rows
            if not (
                len(row) > PAYLOAD
                and isinstance(row[PAYLOAD], dict)
                and row[PAYLOAD].get("watchlist") == watchlist_id
                and (keep is None or row[PAYLOAD].get("version") != keep)
            )
        ]
        if len(kept) != len(rows):
            if kept:
                zones[key] = kept
            else:
                del zones[key]
            yield


def _zones_of(zones: Table, header: dict) -> list[str]:
    """Return the zone keys a header's rows are in (all zones if the header has no list)."""
    return [str(zone) for zone in header["zones"]] if "zones" in header else zone_keys(zones)


def _objects_of(watchlists: Table, watchlist_id: str, header: dict) -> list[str]:
    if "objects" in header:  # a header written before chunked uploads
        return list(header["objects"])
    staged = _staged(watchlists, watchlist_id, header["version"])
    return [name for seq in sorted(staged) for name in staged[seq]["items"]]


def _follow(ss_objects: Table, watchlist_id: str, add: Iterable[str], drop: Iterable[str]) -> None:
    """Add a watchlist to the followers of ``add`` and remove it from those of ``drop``.

    One step, with no pause: a solar-system watchlist is swapped atomically for the worker
    applying it (its objects have no versions).
    """
    for name in add:
        ss_objects[name] = sorted({*(ss_objects.get(name) or []), watchlist_id})
    for name in drop:
        left = [w for w in ss_objects.get(name) or [] if w != watchlist_id]
        if left:
            ss_objects[name] = left
        elif name in ss_objects:
            del ss_objects[name]


def _remove_chunks(watchlists: Table, watchlist_id: str, keep: str | None) -> list[str]:
    """Delete the chunks of every version of a watchlist but ``keep``; return their keys."""
    prefix = f"{watchlist_id}@"
    kept = None if keep is None else f"{prefix}{keep}#"
    removed = [
        key
        for key in list(watchlists.keys())
        if key.startswith(prefix) and (kept is None or not key.startswith(kept))
    ]
    for key in removed:
        del watchlists[key]
    return removed


def _run(steps: Steps) -> Applied:
    """Run every step at once; return what changed."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def commit_steps(
    watchlists: Table, zones: Table, ss_objects: Table, command: WatchlistCommit
) -> Steps:
    """Put a staged upload in force, in steps, atomically for readers using :func:`in_force`.

    Parameters
    ----------
    watchlists, zones, ss_objects : Table
        The three tables (layouts in the module docstring).
    command : WatchlistCommit
        The commit.

    Returns
    -------
    generator
        Each ``next()`` does one step (:data:`STEP_ITEMS` items, or one zone); a reader may
        look between any two. Its ``StopIteration.value`` is the :class:`Applied`: ``op``
        ``"commit"``, the item count and the chunk keys removed (superseded versions and
        orphaned uploads of this watchlist).

    Raises
    ------
    WatchlistError
        At the first step, if the staged chunks do not match the commit (:func:`assemble`);
        nothing changed.
    """
    watchlist_id, version = command.watchlist_id, command.version
    items = assemble(command, _staged(watchlists, watchlist_id, version))
    old = watchlists.get(watchlist_id)
    header: dict[str, Any] = {
        "kind": command.kind,
        "id": watchlist_id,
        "name": command.name,
        "owner": command.owner,
        "version": version,
        "chunks": command.chunks,
        "count": command.count,
    }
    if command.kind == SOLAR_SYSTEM_KIND:
        previous = [] if old is None else _objects_of(watchlists, watchlist_id, old)
        _follow(ss_objects, watchlist_id, items, set(previous) - set(items))
        if old is not None and old.get("kind") != SOLAR_SYSTEM_KIND:
            if marker_key(watchlist_id) in zones:
                del zones[marker_key(watchlist_id)]
            yield from _drop_rows(zones, watchlist_id, _zones_of(zones, old))
        watchlists[watchlist_id] = header
    else:
        header["zones"] = yield from _add_rows(zones, watchlist_id, version, items)
        zones[marker_key(watchlist_id)] = version  # the swap
        watchlists[watchlist_id] = header
        yield
        if old is not None and old.get("kind") == SOLAR_SYSTEM_KIND:
            objects = _objects_of(watchlists, watchlist_id, old)
            _follow(ss_objects, watchlist_id, (), objects)
        elif old is not None and old.get("version") != version:
            yield from _drop_rows(zones, watchlist_id, _zones_of(zones, old), keep=version)
        elif old is not None:
            # A replayed commit (the worker stopped after the swap, before the old rows went):
            # the old version's zones are no longer known, so every zone is looked at.
            yield from _drop_rows(zones, watchlist_id, zone_keys(zones), keep=version)
    removed = _remove_chunks(watchlists, watchlist_id, keep=version)
    return Applied("commit", watchlist_id, version, len(items), removed)


def commit(watchlists: Table, zones: Table, ss_objects: Table, command: WatchlistCommit) -> Applied:
    """Run :func:`commit_steps` at once (same arguments, result and errors)."""
    return _run(commit_steps(watchlists, zones, ss_objects, command))


def delete_steps(watchlists: Table, zones: Table, ss_objects: Table, watchlist_id: str) -> Steps:
    """Delete a watchlist in steps: nothing of it matches from the first write on.

    Parameters
    ----------
    watchlists, zones, ss_objects : Table
        The three tables.
    watchlist_id : str
        The watchlist (unknown IDs are fine: nothing changes but staged chunks go).

    Returns
    -------
    generator
        As for :func:`commit_steps`; the :class:`Applied` has ``op`` ``"delete"`` and the
        chunk keys removed.
    """
    old = watchlists.get(watchlist_id)
    if old is not None:
        if old.get("kind") == SOLAR_SYSTEM_KIND:
            _follow(ss_objects, watchlist_id, (), _objects_of(watchlists, watchlist_id, old))
        else:
            if marker_key(watchlist_id) in zones:
                del zones[marker_key(watchlist_id)]  # no versioned row matches from here on
            yield from _drop_rows(zones, watchlist_id, _zones_of(zones, old))
        del watchlists[watchlist_id]
    return Applied(
        "delete",
        "delete_steps",
        watchlist_id,
        removed_chunks=_remove_chunks(watchlists, watchlist_id, None),
    )


def delete(watchlists: Table, zones: Table, ss_objects: Table, watchlist_id: str) -> Applied:
    """Run :func:`delete_steps` at once (same arguments and result)."""
    return _run(delete_steps(watchlists, zones, ss_objects, watchlist_id))


def _put_steps(
    watchlists: Table,
    zones: Table,
    ss_objects: Table,
    command: WatchlistCommand,
    version: str,
    chunk_entries: int,
) -> Steps:
    if command.op == "delete" or command.payload is None:
        return (yield from delete_steps(watchlists, zones, ss_objects, command.watchlist_id))
    chunks, last = chunk_commands(command.payload, chunk_entries, version)
    for chunk in chunks:
        stage(watchlists, chunk)
    applied = yield from commit_steps(watchlists, zones, ss_objects, last)
    applied.op = "put"
    return applied


def apply_put(
    watchlists: Table,
    zones: Table,
    ss_objects: Table,
    command: WatchlistCommand,
    version: str,
    chunk_entries: int,
) -> Applied:
    """Apply a whole-watchlist command: a put is staged as chunks and committed at once.

    Parameters
    ----------
    watchlists, zones, ss_objects : Table
        The three tables.
    command : WatchlistCommand
        A put or a delete.
    version : str
        The version to give a put (the worker uses its message offset, so a replay gives
        the same one).
    chunk_entries : int
        Items per staged chunk.

    Returns
    -------
    Applied
        ``op`` ``"put"`` or ``"delete"``.
    """
    return _run(_put_steps(watchlists, zones, ss_objects, command, version, chunk_entries))


def apply_steps(
    watchlists: Table,
    zones: Table,
    ss_objects: Table,
    message: ControlMessage,
    version: str,
    chunk_entries: int,
) -> Steps:
    """Apply any control message in steps: stage a chunk, commit an upload, put or delete.

    A worker runs the steps with a pause for its event loop between two, so that a
    10^6-entry commit (tens of seconds) does not stop its other agents and web view; the
    tables are consistent for :func:`in_force` between any two steps.

    Parameters
    ----------
    watchlists, zones, ss_objects : Table
        The three tables.
    message : WatchlistCommand, WatchlistChunk or WatchlistCommit
        From :func:`~brokerapp.domain.watchlists.chunks.parse_control`.
    version : str
        The version a whole-watchlist put gets (see :func:`apply_put`).
    chunk_entries : int
        Items per chunk a put is staged in.

    Returns
    -------
    generator
        As for :func:`commit_steps`: its ``StopIteration.value`` is the :class:`Applied`.

    Raises
    ------
    WatchlistError
        At the first step, for a commit that does not match its staged chunks (nothing
        changed).
    """
    if isinstance(message, WatchlistChunk):
        return stage(watchlists, message)
    if isinstance(message, WatchlistCommit):
        return (yield from commit_steps(watchlists, zones, ss_objects, message))
    return (yield from _put_steps(watchlists, zones, ss_objects, message, version, chunk_entries))


def apply(
    watchlists: Table,
    zones: Table,
    ss_objects: Table,
    message: ControlMessage,
    version: str,
    chunk_entries: int,
) -> Applied:
    """Run :func:`apply_steps` at once (same arguments, result and errors)."""
    return _run(apply_steps(watchlists, zones, ss_objects, message, version, chunk_entries))


def in_force(zones: Table, matches: Iterable[Match]) -> list[Match]:
    """Keep the matches whose row belongs to the version in force of its watchlist.

    Parameters
    ----------
    zones : Table
        The ``zones`` table (its ``@<ID>`` markers are read, once per watchlist).
    matches : iterable of Match
        From :func:`brokerapp.domain.zones.lookup_in` on ``zones``.

    Returns
    -------
    list of Match
        In the order given.
    """
    versions: dict[str, Any] = {}
    kept = []
    for match in matches:
        payload = match.entry.payload
        watchlist_id = payload["watchlist"]
        if watchlist_id not in versions:
            versions[watchlist_id] = zones.get(marker_key(watchlist_id))
        if payload.get("version") == versions[watchlist_id]:
            kept.append(match)
    return kept


def entries_json(watchlists: Table, watchlist_id: str) -> dict | None:
    """Return the watchlist in force in its JSON form, or None if there is none.

    Parameters
    ----------
    watchlists : Table
        The ``watchlists`` table.
    watchlist_id : str
        The watchlist.

    Returns
    -------
    dict or None
        As :func:`~brokerapp.domain.watchlists.model.watchlist_to_json` gives it, the
        entries or objects read from the chunks in force.
    """
    header = watchlists.get(watchlist_id)
    if header is None:
        return None
    if "version" not in header:  # written before chunked uploads: already the whole JSON
        return dict(header)
    staged = _staged(watchlists, watchlist_id, header["version"])
    items = [item for seq in sorted(staged) for item in staged[seq]["items"]]
    field_name = "objects" if header["kind"] == SOLAR_SYSTEM_KIND else "entries"
    return {
        "kind": header["kind"],
        "id": header["id"],
        "name": header["name"],
        "owner": header["owner"],
        field_name: items,
    }
