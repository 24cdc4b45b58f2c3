"""Declination-zone index for the watchlist and catalogue-crossmatch branches (pure code).

Entries are small circles on the sky, ``(name, ra, dec, radius_arcsec)`` in ICRS degrees and
arc seconds, with an optional JSON-ready ``payload``. A watchlist entry matches an alert when
the alert lies inside the entry's own circle; a catalogue source (radius 0) is found by a cone
search around the alert with the crossmatcher's radius (:func:`cone_in`, :func:`nearest_in`).
Nothing here touches Kafka, Faust or asyncio: a Faust agent keeps the zones in a table (key =
zone number, value = the JSON-ready list of rows of that zone) and calls these functions on
whatever ``.get(zone)`` returns (a plain dict of zones, :func:`build_zones`, serves as well).
A static catalogue can instead be loaded into a :class:`CatalogueIndex`: the same zones and
results, in numpy arrays (40 bytes a source instead of about 270, and vectorised distances).

Zones
    The sphere is cut into :func:`zone_count` bands of declination of height ``H``
    (``height_deg``, default :data:`DEFAULT_HEIGHT_DEG` = 0.25 deg, so 720 zones). Zone
    ``floor((dec + 90) / H)``, clamped to the last zone so that dec = +90 has one
    (:func:`zone_of`). The height is a parameter of every function and must be the same for
    writer and reader.

    A watchlist entry of radius ``r`` is stored in *every* zone its circle overlaps: the zones
    of ``dec - r .. dec + r`` clamped to [-90, 90] (:func:`entry_zones`; every point of a
    circle has a declination in that range, whether or not it covers a pole). A lookup
    therefore reads exactly one zone, the alert's, whatever the radii: one table read per
    alert, at the price of storing an entry of radius ``r`` about ``1 + 2 r / H`` times (1.01
    times for 5 arcsec, 9 times for 1 deg at ``H`` = 0.25 deg). The declination range is
    widened by :data:`DEC_PAD_DEG` (0.36 mas) so that rounding can never leave a matching alert
    outside the stored zones. A cone search (the catalogue case, radius 0 sources stored in
    their one zone) reads the zones of ``dec - R .. dec + R`` instead, ``R`` being the search
    radius.

Rows, RA tiers and the wrap at 0/360
    A zone value is a JSON-ready ``list`` of rows, each row a list
    ``[name, ra, dec, radius_arcsec, ra_halfwidth_deg]`` plus ``payload`` when there is one
    (:func:`entry_to_json`; row fields at :data:`NAME`, :data:`RA`, :data:`DEC`,
    :data:`RADIUS`, :data:`HALFWIDTH`, :data:`PAYLOAD`). ``ra`` is normalised to [0, 360)
    (an input of exactly 360 becomes 0). ``ra_halfwidth_deg`` is the largest RA difference a
    point of the circle can have from its centre (:func:`ra_halfwidth_deg`),
    ``asin(sin r / cos dec)``, or 180 when the circle reaches a pole, padded outwards so that
    it never cuts a match; it is exact, unlike ``r / cos(dec)`` at a zone edge.

    Rows are grouped in tiers by that half width, :data:`RA_TIERS_DEG` = (4 deg, 0.25 deg,
    1 arcmin): tier 0 holds the rows wider than 4 deg (large circles, circles reaching a
    pole), tier 1 those of at most 4 deg, tier 2 at most 0.25 deg, tier 3 at most 1 arcmin
    (a 5 arcsec circle up to dec +/-85, every catalogue source). A zone value lists its rows
    by tier, then by RA (:func:`zone_insert`, :func:`build_zones` keep that order). A lookup
    scans tier 0 and bisects each other tier to the RA window ``ra +/- bound``, so that a
    few wide circles do not widen the window of a million small ones; the tier boundaries
    are themselves found by bisection, skipped when the whole zone is one tier. A window
    crossing 0/360 is read as its two pieces, ``[ra - w + 360, 360)`` and
    ``[0, ra + w - 360]``, and each difference in RA is wrapped into [0, 180] before it is
    compared. A cone search bisects every tier, tier 0 included, to the RA half width of the
    search circle. The tier bounds are part of the stored format: zones written with other
    bounds must be rebuilt.

Poles
    A circle that reaches a pole has an RA half width of 180 deg (no RA prefilter, tier 0),
    and its zone range runs to the last (or first) zone. An alert at dec = +/-90 (any RA)
    falls in that zone like any other, and its separations are exact, RA being irrelevant
    there. A cone search whose circle reaches a pole reads the whole RA range of its zones.

Exact distance and the on-radius rule
    Prefilters only discard rows that cannot match (RA half width, and ``|dec - dec_e| > r``,
    both padded); the decision is the great-circle distance by the Vincenty formula in float64
    (:func:`angular_separation_arcsec`), the formula and operation order of astropy's
    ``SkyCoord.separation``, stable at the poles and antipodes; it agrees with astropy to
    about 1e-10 arcsec. A row matches when ``separation <= radius + ON_RADIUS_TOLERANCE_ARCSEC``,
    the tolerance being 1e-6 arcsec (1 micro-arcsecond). A point placed exactly on a circle
    by float64 vector arithmetic is found a few 1e-10 arcsec off the radius, on either side,
    by this formula and by astropy's (measured up to 3e-10 arcsec for radii up to 10 deg,
    poles and RA wrap included): the tolerance makes such points match whatever the last
    bits of the sine (numpy's and libm's may differ), and is far below any astrometric
    error. Tests apply the same rule to astropy's separations. (astropy's
    ``directional_offset_by`` is a poor source of on-radius points near a pole: it takes the
    latitude from an arcsine, and its points within 0.001 deg of a pole lie up to 1e-4
    arcsec off the circle; they are judged, here and by astropy, by where they actually are.)

Use from a Faust agent
    To add or replace an entry, for each zone of :func:`entry_zones` set
    ``table[zone] = zone_insert(table.get(zone), entry)``; to remove one,
    ``table[zone] = zone_remove(table.get(zone), name)`` over the zones of its last version.
    An alert is matched by :func:`lookup_in` ``(table, ra, dec)`` (one read), a catalogue
    source by :func:`nearest_in` ``(table, ra, dec, radius_arcsec)`` (``1 + 2 R / H`` reads
    at most). A table whose keys went through JSON has string keys: pass ``key=str``. The
    lookup itself costs a few microseconds (5 us with 10^6 entries); decoding the zone's JSON
    on every read, as a RocksDB store does, costs about 0.7 ms per 1000 rows (1.5 ms a lookup
    with 10^6 entries at ``H`` = 0.25 deg), so a hot path should read decoded zones: a
    memory store holds its values decoded (``bench/bench_zones.py`` has the numbers).

Input validation
    Coordinates must be real numbers, ``0 <= ra <= 360`` and ``-90 <= dec <= 90``; radii
    finite and ``>= 0``; names a ``str`` or an ``int``. Anything else (NaN, infinities,
    strings, out of range) raises :class:`ValueError` with a message naming the value, so an
    agent can dead-letter the alert or the watchlist update.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from heapq import nsmallest
from operator import itemgetter
from typing import Any, NamedTuple, Protocol

import numpy as np

__all__ = [
    "DEC_PAD_DEG",
    "DEFAULT_HEIGHT_DEG",
    "DEC",
    "HALFWIDTH",
    "MIN_HEIGHT_DEG",
    "NAME",
    "RA_TIERS_DEG",
    "ON_RADIUS_TOLERANCE_ARCSEC",
    "PAYLOAD",
    "RA",
    "RADIUS",
    "CatalogueIndex",
    "Entry",
    "Match",
    "ZoneMapping",
    "angular_separation_arcsec",
    "build_zones",
    "check_height",
    "check_position",
    "check_radius",
    "cone_in",
    "entry_from_json",
    "entry_to_json",
    "entry_zones",
    "lookup_in",
    "match_in",
    "nearest_in",
    "ra_halfwidth_deg",
    "zone_count",
    "zone_insert",
    "zone_of",
    "zone_remove",
]

DEFAULT_HEIGHT_DEG = 0.25
"""Default zone height [deg]: 720 zones (see the module docstring and ``bench/bench_zones.py``)."""

RA_TIERS_DEG = (4.0, 0.25, 1.0 / 60.0)
"""Upper bounds [deg] on the RA half width of the rows of tiers 1, 2, 3 (tier 0: the rest)."""

ON_RADIUS_TOLERANCE_ARCSEC = 1e-6
"""A row matches when ``separation <= radius + ON_RADIUS_TOLERANCE_ARCSEC`` [arcsec]."""

DEC_PAD_DEG = 1e-7
"""Declination margin [deg] added to zone ranges and declination prefilters against rounding."""

MIN_HEIGHT_DEG = 1.0 / 3600.0
"""Smallest zone height accepted [deg] (1 arcsec, 648,000 zones)."""

NAME, RA, DEC, RADIUS, HALFWIDTH, PAYLOAD = range(6)
"""Positions of the fields in a row (a zone value's element)."""

_RA_PAD_DEG = 1e-9
_RA_PAD_FACTOR = 1.0 + 1e-9
_POLE_MARGIN = 1e-9
_TIER_WINDOWS = (180.0, *(limit + 1e-7 for limit in RA_TIERS_DEG))
_row_ra = itemgetter(RA)
_first = itemgetter(0)
_sin = math.sin
_cos = math.cos
_atan2 = math.atan2
_hypot = math.hypot
_radians = math.radians
_degrees = math.degrees

Row = list
"""A zone value's element: ``[name, ra, dec, radius_arcsec, ra_halfwidth_deg(, payload)]``."""


class ZoneMapping(Protocol):
    """Anything with ``get(zone)``: a dict of zones, a Faust table."""

    def get(self, key: Any, /) -> Any:
        """Return the zone's rows, or None (or an empty list) for an empty zone."""


class Entry(NamedTuple):
    """One circle on the sky: a watchlist entry or a catalogue source (radius 0).

    Construction does not validate; every function that stores or serialises an entry does
    (:func:`entry_to_json`), raising :class:`ValueError`.

    Attributes
    ----------
    name : str or int
        Unique identifier within an index; adding an entry of an existing name replaces it.
    ra, dec : float
        ICRS position [deg].
    radius_arcsec : float
        Match radius [arcsec]; 0 for catalogue sources searched with a cone.
    payload : Any
        Optional JSON-ready data carried along (e.g. a dict of magnitudes), or None.
    """

    name: str | int
    ra: float
    dec: float
    radius_arcsec: float = 0.0
    payload: Any = None


class Match(NamedTuple):
    """An entry found by a lookup or a cone search, with its exact distance.

    Attributes
    ----------
    entry : Entry
        The entry, rebuilt from its row.
    separation_arcsec : float
        Great-circle distance between the alert and the entry's centre [arcsec].
    """

    entry: Entry
    separation_arcsec: float


# --- validation


def _real(value: Any, what: str) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{what} must be a real number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a real number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return number


def check_position(ra: Any, dec: Any) -> tuple[float, float]:
    """Validate a position and normalise its RA to [0, 360).

    Parameters
    ----------
    ra, dec : float
        ICRS right ascension in [0, 360] and declination in [-90, 90] [deg].

    Returns
    -------
    tuple of float
        ``(ra, dec)`` as floats, an RA of 360 becoming 0.

    Raises
    ------
    ValueError
        For NaN, infinities, non-numbers, or values out of range.
    """
    ra_f = _real(ra, "ra")
    dec_f = _real(dec, "dec")
    if not 0.0 <= ra_f <= 360.0:
        raise ValueError(f"ra must be in [0, 360] deg, got {ra!r}")
    if not -90.0 <= dec_f <= 90.0:
        raise ValueError(f"dec must be in [-90, 90] deg, got {dec!r}")
    if ra_f == 360.0:
        ra_f = 0.0
    return ra_f, dec_f


def check_radius(radius_arcsec: Any) -> float:
    """Validate a radius.

    Parameters
    ----------
    radius_arcsec : float
        Finite radius >= 0 [arcsec]. Anything from 180 deg (648,000 arcsec) up covers the sky.

    Returns
    -------
    float
        The radius as a float.

    Raises
    ------
    ValueError
        For NaN, infinities, non-numbers or negative values.
    """
    radius = _real(radius_arcsec, "radius_arcsec")
    if radius < 0.0:
        raise ValueError(f"radius_arcsec must be >= 0, got {radius_arcsec!r}")
    return radius


def check_height(height_deg: Any) -> float:
    """Validate a zone height.

    Parameters
    ----------
    height_deg : float
        Zone height in [1 arcsec, 180 deg] [deg].

    Returns
    -------
    float
        The height as a float.

    Raises
    ------
    ValueError
        For non-numbers or heights out of range.
    """
    height = _real(height_deg, "height_deg")
    if not MIN_HEIGHT_DEG <= height <= 180.0:
        raise ValueError(f"height_deg must be in [{MIN_HEIGHT_DEG}, 180], got {height_deg!r}")
    return height


def _check_name(name: Any) -> str | int:
    if isinstance(name, bool) or not isinstance(name, (str, int)):
        raise ValueError(f"name must be a str or an int, got {name!r}")
    return name


# --- geometry


def zone_count(height_deg: float = DEFAULT_HEIGHT_DEG) -> int:
    """Return the number of zones for a zone height.

    Parameters
    ----------
    height_deg : float
        Zone height [deg].

    Returns
    -------
    int
        ``ceil(180 / height_deg)``; zones are numbered from 0 (south pole) to this minus 1.
    """
    return math.ceil(180.0 / check_height(height_deg))


def _zone(dec: float, height: float, last: int) -> int:
    zone = math.floor((dec + 90.0) / height)
    return last if zone > last else (0 if zone < 0 else zone)


def zone_of(dec: Any, height_deg: float = DEFAULT_HEIGHT_DEG) -> int:
    """Return the zone of a declination.

    Parameters
    ----------
    dec : float
        Declination in [-90, 90] [deg].
    height_deg : float
        Zone height [deg].

    Returns
    -------
    int
        ``floor((dec + 90) / height_deg)``, dec = +90 falling in the last zone. Monotonic in
        ``dec``.

    Raises
    ------
    ValueError
        For an invalid declination or height.
    """
    dec_f = check_position(0.0, dec)[1]
    return _zone(dec_f, height_deg, zone_count(height_deg) - 1)


def _zone_span(lo: float, hi: float, height: float) -> range:
    last = math.ceil(180.0 / height) - 1
    return range(_zone(max(lo, -90.0), height, last), _zone(min(hi, 90.0), height, last) + 1)


def entry_zones(dec: Any, radius_arcsec: Any, height_deg: float = DEFAULT_HEIGHT_DEG) -> list[int]:
    """Return the zones a circle overlaps, i.e. those its row is stored in.

    Parameters
    ----------
    dec : float
        Declination of the centre [deg].
    radius_arcsec : float
        Radius [arcsec].
    height_deg : float
        Zone height [deg].

    Returns
    -------
    list of int
        Consecutive zone numbers covering ``dec - r .. dec + r`` (widened by
        :data:`DEC_PAD_DEG`), clamped at the poles.

    Raises
    ------
    ValueError
        For an invalid declination, radius or height.
    """
    dec_f = check_position(0.0, dec)[1]
    reach = check_radius(radius_arcsec) / 3600.0 + DEC_PAD_DEG
    return list(_zone_span(dec_f - reach, dec_f + reach, check_height(height_deg)))


def ra_halfwidth_deg(dec: float, radius_arcsec: float) -> float:
    """Return the largest RA difference between a circle's centre and any of its points.

    Parameters
    ----------
    dec : float
        Declination of the centre [deg].
    radius_arcsec : float
        Radius [arcsec].

    Returns
    -------
    float
        ``asin(sin r / cos dec)`` [deg], widened (by a relative 1e-9, 1e-9 deg, and the radius
        by the on-radius tolerance and :data:`DEC_PAD_DEG`) so that it is an upper bound
        despite rounding; 180 when the circle reaches or nearly reaches a pole (no bound).
    """
    radius = (radius_arcsec + ON_RADIUS_TOLERANCE_ARCSEC) / 3600.0 + DEC_PAD_DEG
    if radius >= 90.0:
        return 180.0
    sin_r = math.sin(math.radians(radius))
    cos_dec = math.cos(math.radians(dec))
    if sin_r >= cos_dec * (1.0 - _POLE_MARGIN):
        return 180.0
    return min(180.0, math.degrees(math.asin(sin_r / cos_dec)) * _RA_PAD_FACTOR + _RA_PAD_DEG)


def angular_separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Return the great-circle distance between two points by the Vincenty formula.

    Same formula and operation order as astropy's ``angular_separation`` (and so
    ``SkyCoord.separation``), with point 1 the alert, in float64.

    Parameters
    ----------
    ra1, dec1, ra2, dec2 : float
        Positions [deg]; not validated.

    Returns
    -------
    float
        Distance [arcsec], in [0, 648000].
    """
    lat1 = _radians(dec1)
    return _separation(ra1, _sin(lat1), _cos(lat1), ra2, dec2)


def _separation(ra1: float, slat1: float, clat1: float, ra2: float, dec2: float) -> float:
    dlon = _radians(ra2 - ra1)
    sdlon = _sin(dlon)
    cdlon = _cos(dlon)
    lat2 = _radians(dec2)
    slat2 = _sin(lat2)
    clat2 = _cos(lat2)
    num1 = clat2 * sdlon
    num2 = clat1 * slat2 - slat1 * clat2 * cdlon
    denominator = slat1 * slat2 + clat1 * clat2 * cdlon
    return _degrees(_atan2(_hypot(num1, num2), denominator)) * 3600.0


# --- rows and serialisation


def entry_to_json(entry: Entry | Sequence[Any]) -> Row:
    """Validate an entry and return its row, the JSON-ready element of a zone value.

    Parameters
    ----------
    entry : Entry
        The entry (or any 4- or 5-sequence ``name, ra, dec, radius_arcsec[, payload]``).

    Returns
    -------
    list
        ``[name, ra, dec, radius_arcsec, ra_halfwidth_deg]``, plus ``payload`` if not None,
        RA normalised to [0, 360).

    Raises
    ------
    ValueError
        For an invalid name, position or radius.
    """
    name, ra, dec, radius, *rest = entry
    payload = rest[0] if rest else None
    name = _check_name(name)
    ra_f, dec_f = check_position(ra, dec)
    radius_f = check_radius(radius)
    row = [name, ra_f, dec_f, radius_f, ra_halfwidth_deg(dec_f, radius_f)]
    if payload is not None:
        row.append(payload)
    return row


def entry_from_json(value: Any) -> Entry:
    """Rebuild an entry from a row, or from a dict with the :class:`Entry` field names.

    Parameters
    ----------
    value : list or dict
        A row as written by :func:`entry_to_json` (the stored half width is ignored), or
        ``{"name", "ra", "dec", "radius_arcsec"[, "payload"]}`` (``radius_arcsec`` defaults
        to 0), e.g. a watchlist upload.

    Returns
    -------
    Entry
        The validated entry, RA normalised to [0, 360).

    Raises
    ------
    ValueError
        For a malformed value or invalid fields.
    """
    if isinstance(value, Mapping):
        try:
            fields = (
                value["name"],
                value["ra"],
                value["dec"],
                value.get("radius_arcsec", 0.0),
                value.get("payload"),
            )
        except KeyError as missing:
            raise ValueError(f"entry lacks field {missing}: {value!r}") from None
    elif isinstance(value, (list, tuple)) and len(value) in (4, 5, 6):
        fields = (*value[:4], value[PAYLOAD] if len(value) > PAYLOAD else None)
    else:
        raise ValueError(f"not an entry row or dict: {value!r}")
    row = entry_to_json(fields)
    return _entry(row)


def _entry(row: Row) -> Entry:
    return Entry(row[0], row[1], row[2], row[3], row[5] if len(row) > PAYLOAD else None)


def _tier(row: Row) -> int:
    halfwidth = row[HALFWIDTH]
    tier = 0
    for limit in RA_TIERS_DEG:
        if halfwidth > limit:
            break
        tier += 1
    return tier


def _sort_key(row: Row) -> tuple[int, float]:
    return (_tier(row), row[RA])


def _as_row(entry: Entry | Row) -> Row:
    """Validate an entry, or a row (a list: its stored half width is recomputed), into a row."""
    if isinstance(entry, list) and len(entry) > HALFWIDTH:
        return entry_to_json((*entry[:4], entry[PAYLOAD] if len(entry) > PAYLOAD else None))
    return entry_to_json(entry)


def zone_insert(rows: Iterable[Row] | None, entry: Entry | Row) -> list[Row]:
    """Return a zone value with an entry added, replacing any row of the same name.

    Parameters
    ----------
    rows : list of rows or None
        The zone's current value (not modified); None for an empty zone.
    entry : Entry or row
        What to add; validated.

    Returns
    -------
    list
        A new zone value, its rows in the stored order (by tier, then by RA).

    Raises
    ------
    ValueError
        For an invalid entry.

    Notes
    -----
    Call it for every zone of :func:`entry_zones` ``(entry.dec, entry.radius_arcsec,
    height)`` and write each result back to the table. Replacing by name makes a replayed
    update harmless.
    """
    row = _as_row(entry)
    new = [old for old in rows or () if old[NAME] != row[NAME]]
    insort(new, row, key=_sort_key)
    return new


def zone_remove(rows: Iterable[Row] | None, name: str | int) -> list[Row]:
    """Return a zone value without the rows of a name.

    Parameters
    ----------
    rows : list of rows or None
        The zone's current value (not modified).
    name : str or int
        The entry to drop.

    Returns
    -------
    list
        A new zone value (the order of the rest is kept).
    """
    return [row for row in rows or () if row[NAME] != name]


def build_zones(
    entries: Iterable[Entry | Row], height_deg: float = DEFAULT_HEIGHT_DEG
) -> dict[int, list[Row]]:
    """Build every zone value at once from entries (the last of a repeated name wins).

    Parameters
    ----------
    entries : iterable of Entry or rows
        The entries; validated.
    height_deg : float
        Zone height [deg].

    Returns
    -------
    dict
        ``{zone: rows}`` for every non-empty zone, JSON-ready (``json.dumps`` gives string
        keys; use ``key=str`` when reading such a mapping). A row stored in several zones is
        the same list object in each.

    Raises
    ------
    ValueError
        For an invalid entry or height.
    """
    height = check_height(height_deg)
    latest: dict[str | int, Row] = {}
    for entry in entries:
        row = _as_row(entry)
        latest.pop(row[NAME], None)
        latest[row[NAME]] = row
    zones: dict[int, list[Row]] = {}
    for row in latest.values():
        reach = row[RADIUS] / 3600.0 + DEC_PAD_DEG
        for zone in _zone_span(row[DEC] - reach, row[DEC] + reach, height):
            zones.setdefault(zone, []).append(row)
    for rows in zones.values():
        rows.sort(key=_sort_key)
    return zones


# --- matching


def _segments(rows: list[Row]) -> list[tuple[int, int, int]]:
    """Return ``(start, end, tier)`` for each non-empty tier of a zone value, in order."""
    end = len(rows)
    first = _tier(rows[0])
    if first == len(RA_TIERS_DEG):
        return [(0, end, first)]
    last = _tier(rows[-1])
    bounds = [0]
    for tier in range(first + 1, last + 1):
        bounds.append(bisect_left(rows, tier, bounds[-1], end, key=_tier))
    bounds.append(end)
    return [
        (bounds[i], bounds[i + 1], first + i)
        for i in range(len(bounds) - 1)
        if bounds[i] < bounds[i + 1]
    ]


def _window(rows: list[Row], start: int, end: int, ra: float, half: float) -> tuple[range, ...]:
    """Index ranges of ``rows[start:end]`` (sorted by RA) within ``half`` of ``ra``, over 0/360."""
    if half >= 180.0:
        return (range(start, end),)
    lo = ra - half
    hi = ra + half
    if lo < 0.0:
        return (
            range(bisect_left(rows, lo + 360.0, start, end, key=_row_ra), end),
            range(start, bisect_right(rows, hi, start, end, key=_row_ra)),
        )
    if hi >= 360.0:
        return (
            range(bisect_left(rows, lo, start, end, key=_row_ra), end),
            range(start, bisect_right(rows, hi - 360.0, start, end, key=_row_ra)),
        )
    return (
        range(
            bisect_left(rows, lo, start, end, key=_row_ra),
            bisect_right(rows, hi, start, end, key=_row_ra),
        ),
    )


def _own_matches(rows: list[Row], ra: float, dec: float, out: list[Match]) -> None:
    """Append the rows whose own circle holds (ra, dec)."""
    lat = _radians(dec)
    slat = _sin(lat)
    clat = _cos(lat)
    pad = DEC_PAD_DEG * 3600.0 + ON_RADIUS_TOLERANCE_ARCSEC
    for start, end, tier in _segments(rows):
        for span in _window(rows, start, end, ra, _TIER_WINDOWS[tier]):
            for i in span:
                row = rows[i]
                dra = abs(ra - row[1])
                if dra > 180.0:
                    dra = 360.0 - dra
                if dra > row[4]:
                    continue
                radius = row[3]
                if abs(dec - row[2]) * 3600.0 > radius + pad:
                    continue
                sep = _separation(ra, slat, clat, row[1], row[2])
                if sep <= radius + ON_RADIUS_TOLERANCE_ARCSEC:
                    out.append(Match(_entry(row), sep))


def _cone_matches(
    rows: list[Row], ra: float, dec: float, radius: float, half: float, out: list[tuple]
) -> None:
    """Append ``(separation, row)`` for the rows whose centre lies within ``radius``."""
    lat = _radians(dec)
    slat = _sin(lat)
    clat = _cos(lat)
    limit = radius + ON_RADIUS_TOLERANCE_ARCSEC
    dec_limit = limit + DEC_PAD_DEG * 3600.0
    for start, end, _ in _segments(rows):
        for span in _window(rows, start, end, ra, half):
            for i in span:
                row = rows[i]
                dra = abs(ra - row[1])
                if dra > 180.0:
                    dra = 360.0 - dra
                if dra > half or abs(dec - row[2]) * 3600.0 > dec_limit:
                    continue
                sep = _separation(ra, slat, clat, row[1], row[2])
                if sep <= limit:
                    out.append((sep, row))


def _by_separation(match: Match) -> float:
    return match.separation_arcsec


def match_in(rows: list[Row] | None, ra: Any, dec: Any) -> list[Match]:
    """Return the rows of one zone whose circle holds a position.

    Parameters
    ----------
    rows : list of rows or None
        A zone value in the stored order (wide rows first, then narrow ones by RA), e.g. the
        value of the alert's zone, JSON-decoded.
    ra, dec : float
        The alert's position [deg].

    Returns
    -------
    list of Match
        Every row with ``separation <= radius + ON_RADIUS_TOLERANCE_ARCSEC``, nearest first.

    Raises
    ------
    ValueError
        For an invalid position.
    """
    ra_f, dec_f = check_position(ra, dec)
    out: list[Match] = []
    if rows:
        _own_matches(rows, ra_f, dec_f, out)
        out.sort(key=_by_separation)
    return out


def lookup_in(
    zones: ZoneMapping,
    ra: Any,
    dec: Any,
    *,
    height_deg: float = DEFAULT_HEIGHT_DEG,
    key: Callable[[int], Hashable] = int,
) -> list[Match]:
    """Return the entries whose circle holds an alert, reading only the alert's zone.

    Parameters
    ----------
    zones : mapping-like
        Anything with ``get(zone)`` returning a zone value or None: a Faust table, a dict of
        JSON-decoded lists. Its zones must have been written with ``height_deg``.
    ra, dec : float
        The alert's position [deg].
    height_deg : float
        Zone height [deg].
    key : callable
        Turns a zone number into the mapping's key: ``int`` (default) or ``str``.

    Returns
    -------
    list of Match
        Nearest first.

    Raises
    ------
    ValueError
        For an invalid position or height.
    """
    ra_f, dec_f = check_position(ra, dec)
    height = check_height(height_deg)
    rows = zones.get(key(_zone(dec_f, height, math.ceil(180.0 / height) - 1)))
    out: list[Match] = []
    if rows:
        _own_matches(rows, ra_f, dec_f, out)
        out.sort(key=_by_separation)
    return out


def cone_in(
    zones: ZoneMapping,
    ra: Any,
    dec: Any,
    radius_arcsec: Any,
    *,
    height_deg: float = DEFAULT_HEIGHT_DEG,
    key: Callable[[int], Hashable] = int,
) -> list[Match]:
    """Return every entry whose centre lies within a radius of a position (cone search).

    The entries' own radii play no part: this is the catalogue crossmatch, sources being
    points. It reads the zones of ``dec - R .. dec + R``.

    Parameters
    ----------
    zones : mapping-like
        Anything with ``get(zone)``, as for :func:`lookup_in`.
    ra, dec : float
        The alert's position [deg].
    radius_arcsec : float
        Search radius [arcsec].
    height_deg : float
        Zone height [deg].
    key : callable
        Turns a zone number into the mapping's key: ``int`` (default) or ``str``.

    Returns
    -------
    list of Match
        Every entry with ``separation <= radius_arcsec + ON_RADIUS_TOLERANCE_ARCSEC``, once
        each, nearest first.

    Raises
    ------
    ValueError
        For an invalid position, radius or height.
    """
    return _cone(zones, ra, dec, radius_arcsec, None, height_deg, key)


def _cone(
    zones: ZoneMapping,
    ra: Any,
    dec: Any,
    radius_arcsec: Any,
    k: int | None,
    height_deg: float,
    key: Callable[[int], Hashable],
) -> list[Match]:
    ra_f, dec_f = check_position(ra, dec)
    radius = check_radius(radius_arcsec)
    height = check_height(height_deg)
    half = ra_halfwidth_deg(dec_f, radius)
    reach = (radius + ON_RADIUS_TOLERANCE_ARCSEC) / 3600.0 + DEC_PAD_DEG
    span = _zone_span(dec_f - reach, dec_f + reach, height)
    found: list[tuple[float, Row]] = []
    for zone in span:
        rows = zones.get(key(zone))
        if rows:
            _cone_matches(rows, ra_f, dec_f, radius, half, found)
    if len(span) > 1 and len(found) > 1:
        # A row of several zones is met once per zone (equal rows, maybe not the same object).
        unique = {row[NAME]: (sep, row) for sep, row in found}
        if len(unique) < len(found):
            found = list(unique.values())
    if k is not None and k < len(found):
        found = nsmallest(k, found, key=_first)
    else:
        found.sort(key=_first)
    return [Match(_entry(row), sep) for sep, row in found]


def nearest_in(
    zones: ZoneMapping,
    ra: Any,
    dec: Any,
    radius_arcsec: Any,
    k: int = 1,
    *,
    height_deg: float = DEFAULT_HEIGHT_DEG,
    key: Callable[[int], Hashable] = int,
) -> list[Match]:
    """Return the ``k`` entries nearest to a position within a radius.

    Parameters
    ----------
    zones : mapping-like
        Anything with ``get(zone)``, as for :func:`lookup_in`.
    ra, dec : float
        The alert's position [deg].
    radius_arcsec : float
        Search radius [arcsec].
    k : int
        How many at most (>= 1).
    height_deg : float
        Zone height [deg].
    key : callable
        Turns a zone number into the mapping's key: ``int`` (default) or ``str``.

    Returns
    -------
    list of Match
        At most ``k`` matches of :func:`cone_in`, nearest first.

    Raises
    ------
    ValueError
        For invalid arguments.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    return _cone(zones, ra, dec, radius_arcsec, k, height_deg, key)


class CatalogueIndex:
    """A static catalogue of points in numpy arrays, for the crossmatcher's cone searches.

    Same zones, same decision rule and same results as :func:`cone_in` and
    :func:`nearest_in` over the same sources (radius 0) in zone rows, but the sources are held
    in four float64 arrays sorted by zone then RA (about 40 bytes a source instead of about
    270 for rows), and the candidates of a search are measured by one vectorised Vincenty
    formula (``bench/bench_zones.py``: 1.6 times faster than rows in memory for radii up to
    an arc minute, 2 times at 1 deg). It cannot be changed once built, nor be a table
    value: rebuild it when the catalogue changes.

    Parameters
    ----------
    names : array-like of int or str
        Source identifiers (not checked for uniqueness).
    ra, dec : array-like of float
        ICRS positions [deg], ``0 <= ra <= 360`` (360 is stored as 0), ``-90 <= dec <= 90``.
    payloads : sequence, optional
        One JSON-ready value per source, returned in the matches' entries.
    height_deg : float
        Zone height [deg].

    Raises
    ------
    ValueError
        For arrays of different lengths, names neither integers nor strings, coordinates not
        finite or out of range (the message names the first bad source), or a bad height.
    """

    def __init__(
        self,
        names: Any,
        ra: Any,
        dec: Any,
        *,
        payloads: Any = None,
        height_deg: float = DEFAULT_HEIGHT_DEG,
    ) -> None:
        self.height_deg = check_height(height_deg)
        count = zone_count(self.height_deg)
        try:
            ra_a = np.asarray(ra, dtype=np.float64)
            dec_a = np.asarray(dec, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"ra and dec must be arrays of numbers: {error}") from None
        names_a = np.asarray(names)
        if not ra_a.ndim == dec_a.ndim == names_a.ndim == 1 or not (
            len(ra_a) == len(dec_a) == len(names_a)
        ):
            raise ValueError("names, ra and dec must be one-dimensional and of one length")
        if len(names_a) and names_a.dtype.kind not in "iuU":
            raise ValueError(f"names must be integers or strings, got dtype {names_a.dtype}")
        if payloads is not None and len(payloads) != len(names_a):
            raise ValueError("payloads must have one value per source")
        with np.errstate(invalid="ignore"):
            good = (ra_a >= 0.0) & (ra_a <= 360.0) & (dec_a >= -90.0) & (dec_a <= 90.0)
        if not good.all():
            i = int(np.flatnonzero(~good)[0])
            raise ValueError(
                f"source {i} ({names_a[i]!r}): ra must be in [0, 360] and dec in [-90, 90] "
                f"deg, got ra={ra_a[i]!r}, dec={dec_a[i]!r}"
            )
        ra_a = np.where(ra_a == 360.0, 0.0, ra_a)
        zone = np.clip(np.floor((dec_a + 90.0) / self.height_deg).astype(np.int64), 0, count - 1)
        order = np.lexsort((ra_a, zone))
        self._ra = ra_a[order]
        self._dec = dec_a[order]
        lat = np.radians(self._dec)
        self._sin = np.sin(lat)
        self._cos = np.cos(lat)
        self._names = names_a[order]
        self._payloads = None if payloads is None else [payloads[i] for i in order.tolist()]
        self._bounds = np.searchsorted(zone[order], np.arange(count + 1)).tolist()

    @classmethod
    def from_entries(
        cls, entries: Iterable[Entry], *, height_deg: float = DEFAULT_HEIGHT_DEG
    ) -> CatalogueIndex:
        """Build a catalogue from entries (their radii are ignored).

        Parameters
        ----------
        entries : iterable of Entry
            The sources.
        height_deg : float
            Zone height [deg].

        Returns
        -------
        CatalogueIndex
            The catalogue.

        Raises
        ------
        ValueError
            As the constructor.
        """
        rows = [entry_to_json(entry) for entry in entries]
        payloads = [row[PAYLOAD] if len(row) > PAYLOAD else None for row in rows]
        return cls(
            [row[NAME] for row in rows],
            [row[RA] for row in rows],
            [row[DEC] for row in rows],
            payloads=payloads if any(p is not None for p in payloads) else None,
            height_deg=height_deg,
        )

    def __len__(self) -> int:
        return len(self._ra)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (payloads not counted).

        Returns
        -------
        int
            The total.
        """
        arrays = (self._ra, self._dec, self._sin, self._cos, self._names)
        return sum(array.nbytes for array in arrays) + 8 * len(self._bounds)

    def _slices(self, ra: float, half: float, span: range) -> list[tuple[int, int]]:
        bounds = self._bounds
        out = []
        for zone in span:
            start, end = bounds[zone], bounds[zone + 1]
            if start == end:
                continue
            if half >= 180.0:
                out.append((start, end))
                continue
            view = self._ra[start:end]
            lo = ra - half
            hi = ra + half
            pieces: tuple[tuple[float, float], ...]
            if lo < 0.0:
                pieces = ((lo + 360.0, 360.0), (0.0, hi))
            elif hi >= 360.0:
                pieces = ((lo, 360.0), (0.0, hi - 360.0))
            else:
                pieces = ((lo, hi),)
            for low, high in pieces:
                a = start + int(np.searchsorted(view, low, "left"))
                b = start + int(np.searchsorted(view, high, "right"))
                if b > a:
                    out.append((a, b))
        return out

    def _search(self, ra: Any, dec: Any, radius_arcsec: Any, k: int | None) -> list[Match]:
        ra_f, dec_f = check_position(ra, dec)
        radius = check_radius(radius_arcsec)
        half = ra_halfwidth_deg(dec_f, radius)
        reach = (radius + ON_RADIUS_TOLERANCE_ARCSEC) / 3600.0 + DEC_PAD_DEG
        slices = self._slices(ra_f, half, _zone_span(dec_f - reach, dec_f + reach, self.height_deg))
        if not slices:
            return []
        if len(slices) == 1:
            at: Any = slice(*slices[0])
            first = slices[0][0]
        else:
            at = np.concatenate([np.arange(a, b) for a, b in slices])
            first = None
        lat = _radians(dec_f)
        slat1 = _sin(lat)
        clat1 = _cos(lat)
        slat2 = self._sin[at]
        clat2 = self._cos[at]
        dlon = np.radians(self._ra[at] - ra_f)
        cdlon = np.cos(dlon)
        num1 = clat2 * np.sin(dlon)
        num2 = clat1 * slat2 - slat1 * clat2 * cdlon
        denominator = slat1 * slat2 + clat1 * clat2 * cdlon
        sep = np.degrees(np.arctan2(np.hypot(num1, num2), denominator)) * 3600.0
        hits = np.flatnonzero(sep <= radius + ON_RADIUS_TOLERANCE_ARCSEC)
        if not len(hits):
            return []
        hits = hits[np.argsort(sep[hits], kind="stable")]
        if k is not None:
            hits = hits[:k]
        where = hits + first if first is not None else at[hits]
        names = self._names[where].tolist()
        ras = self._ra[where].tolist()
        decs = self._dec[where].tolist()
        payloads = self._payloads
        return [
            Match(
                Entry(name, r, d, 0.0, None if payloads is None else payloads[i]),
                s,
            )
            for name, r, d, i, s in zip(
                names, ras, decs, where.tolist(), sep[hits].tolist(), strict=True
            )
        ]

    def cone(self, ra: Any, dec: Any, radius_arcsec: Any) -> list[Match]:
        """Return every source within a radius of a position, nearest first.

        Parameters
        ----------
        ra, dec : float
            The alert's position [deg].
        radius_arcsec : float
            Search radius [arcsec].

        Returns
        -------
        list of Match
            Sources with ``separation <= radius_arcsec + ON_RADIUS_TOLERANCE_ARCSEC``, as
            entries of radius 0.

        Raises
        ------
        ValueError
            For invalid arguments.
        """
        return self._search(ra, dec, radius_arcsec, None)

    def nearest(self, ra: Any, dec: Any, radius_arcsec: Any, k: int = 1) -> list[Match]:
        """Return the ``k`` sources nearest to a position within a radius.

        Parameters
        ----------
        ra, dec : float
            The alert's position [deg].
        radius_arcsec : float
            Search radius [arcsec].
        k : int
            How many at most (>= 1).

        Returns
        -------
        list of Match
            At most ``k`` matches of :meth:`cone`, nearest first.

        Raises
        ------
        ValueError
            For invalid arguments.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        return self._search(ra, dec, radius_arcsec, k)
