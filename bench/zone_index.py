"""An in-memory zone index, the pure-Python baseline of ``bench/bench_zones.py``.

:class:`ZoneIndex` holds the zones of :mod:`brokerapp.domain.zones` in a dict, with the same
rows in the same order as a zone table (:meth:`ZoneIndex.to_table`), a row of several zones
being one shared list; it adds and removes entries in place and answers lookups, cone and
nearest searches with the module's own matching code. No branch uses it (the watchlist agent
keeps its zones in a Faust table, the catalogue crossmatcher a
:class:`~brokerapp.domain.zones.CatalogueIndex`): it lives here, beside the benchmark that
measures it against those, and ``tests/unit/test_zone_index.py`` checks that it agrees with
them.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from brokerapp.domain.zones import (  # its private row helpers too: these are its rows
    DEC,
    DEC_PAD_DEG,
    DEFAULT_HEIGHT_DEG,
    NAME,
    RADIUS,
    Entry,
    Match,
    Row,
    _as_row,
    _by_separation,
    _entry,
    _own_matches,
    _sort_key,
    _zone,
    _zone_span,
    check_height,
    check_position,
    cone_in,
    entry_zones,
    nearest_in,
    zone_count,
)

__all__ = ["ZoneIndex"]


class ZoneIndex:
    """Zones held in memory: add, remove, look up, cone and nearest searches.

    It stores the same rows in the same order as a zone table (:meth:`to_table` gives that
    table), a row of several zones being one shared list. It has ``get(zone)``, so the
    functions of this module accept it as their zone mapping.

    Parameters
    ----------
    entries : iterable of Entry, optional
        Initial entries (bulk-loaded).
    height_deg : float
        Zone height [deg].

    Raises
    ------
    ValueError
        For an invalid height or entry.
    """

    def __init__(
        self, entries: Iterable[Entry] = (), *, height_deg: float = DEFAULT_HEIGHT_DEG
    ) -> None:
        self.height_deg = check_height(height_deg)
        self._last = zone_count(self.height_deg) - 1
        self._zones: dict[int, list[Row]] = {}
        self._rows: dict[str | int, Row] = {}
        self.update(entries)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def get(self, zone: Any, default: Any = None) -> Any:
        """Return a zone's rows (the live list: do not modify), or ``default``.

        Parameters
        ----------
        zone : int or str
            Zone number.
        default : Any
            Returned for an empty zone.

        Returns
        -------
        list or Any
            The rows.
        """
        try:
            return self._zones.get(int(zone), default)
        except (TypeError, ValueError):
            return default

    def zones_for(self, entry: Entry) -> list[int]:
        """Return the zones an entry is stored in.

        Parameters
        ----------
        entry : Entry
            The entry.

        Returns
        -------
        list of int
            As :func:`entry_zones`.
        """
        return entry_zones(entry.dec, entry.radius_arcsec, self.height_deg)

    def _span(self, row: Row) -> range:
        reach = row[RADIUS] / 3600.0 + DEC_PAD_DEG
        return _zone_span(row[DEC] - reach, row[DEC] + reach, self.height_deg)

    def add(self, entry: Entry) -> None:
        """Add an entry, replacing one of the same name.

        Parameters
        ----------
        entry : Entry
            The entry; validated.

        Raises
        ------
        ValueError
            For an invalid entry (the index is unchanged).
        """
        row = _as_row(entry)
        self.remove(row[NAME])
        self._rows[row[NAME]] = row
        for zone in self._span(row):
            insort(self._zones.setdefault(zone, []), row, key=_sort_key)

    def update(self, entries: Iterable[Entry]) -> None:
        """Add many entries, sorting each touched zone once.

        Parameters
        ----------
        entries : iterable of Entry
            The entries; validated first, the last of a repeated name winning.

        Raises
        ------
        ValueError
            For an invalid entry (the index is unchanged).
        """
        latest: dict[str | int, Row] = {}
        for entry in entries:
            row = _as_row(entry)
            latest.pop(row[NAME], None)
            latest[row[NAME]] = row
        touched: set[int] = set()
        for name, row in latest.items():
            self.remove(name)
            self._rows[name] = row
            for zone in self._span(row):
                self._zones.setdefault(zone, []).append(row)
                touched.add(zone)
        for zone in touched:
            self._zones[zone].sort(key=_sort_key)

    def remove(self, name: str | int) -> bool:
        """Remove an entry by name.

        Parameters
        ----------
        name : str or int
            The entry's name.

        Returns
        -------
        bool
            Whether it was there.
        """
        row = self._rows.pop(name, None)
        if row is None:
            return False
        for zone in self._span(row):
            rows = self._zones[zone]
            at = bisect_left(rows, _sort_key(row), key=_sort_key)
            while rows[at] is not row:
                at += 1
            del rows[at]
            if not rows:
                del self._zones[zone]
        return True

    def entries(self) -> list[Entry]:
        """Return every entry, in insertion order.

        Returns
        -------
        list of Entry
            The entries.
        """
        return [_entry(row) for row in self._rows.values()]

    def lookup(self, ra: Any, dec: Any) -> list[Match]:
        """Return the entries whose circle holds a position, nearest first.

        Parameters
        ----------
        ra, dec : float
            The alert's position [deg].

        Returns
        -------
        list of Match
            As :func:`lookup_in`.

        Raises
        ------
        ValueError
            For an invalid position.
        """
        ra_f, dec_f = check_position(ra, dec)
        rows = self._zones.get(_zone(dec_f, self.height_deg, self._last))
        out: list[Match] = []
        if rows:
            _own_matches(rows, ra_f, dec_f, out)
            out.sort(key=_by_separation)
        return out

    def cone(self, ra: Any, dec: Any, radius_arcsec: Any) -> list[Match]:
        """Return the entries whose centre lies within a radius, nearest first.

        Parameters
        ----------
        ra, dec : float
            The alert's position [deg].
        radius_arcsec : float
            Search radius [arcsec].

        Returns
        -------
        list of Match
            As :func:`cone_in`.

        Raises
        ------
        ValueError
            For invalid arguments.
        """
        return cone_in(self._zones, ra, dec, radius_arcsec, height_deg=self.height_deg)

    def nearest(self, ra: Any, dec: Any, radius_arcsec: Any, k: int = 1) -> list[Match]:
        """Return the ``k`` entries nearest to a position within a radius.

        Parameters
        ----------
        ra, dec : float
            The alert's position [deg].
        radius_arcsec : float
            Search radius [arcsec] (the crossmatcher's; entries' own radii are ignored).
        k : int
            How many at most.

        Returns
        -------
        list of Match
            As :func:`nearest_in`.

        Raises
        ------
        ValueError
            For invalid arguments.
        """
        return nearest_in(self._zones, ra, dec, radius_arcsec, k, height_deg=self.height_deg)

    def to_table(self, key: Callable[[int], Hashable] = int) -> dict[Hashable, list[Row]]:
        """Return the zones as a table would hold them.

        Parameters
        ----------
        key : callable
            Turns a zone number into a key: ``int`` (default) or ``str``.

        Returns
        -------
        dict
            ``{key(zone): rows}`` (copies of the zone lists, sharing the rows).
        """
        return {key(zone): list(rows) for zone, rows in sorted(self._zones.items())}
