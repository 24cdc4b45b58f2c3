"""brokerapp.domain.zones: the declination-zone index of the watchlist and crossmatch branches.

The oracle is a brute force over every entry with astropy's ``SkyCoord.separation``, under
the module's documented decision rule: a match is ``separation <= radius + tolerance``
(``ON_RADIUS_TOLERANCE_ARCSEC``, 1e-6 arcsec). Points meant to lie exactly on a circle are
built here independently, by float64 vector arithmetic (``offset``), and lie within a few
1e-10 arcsec of it, well inside the tolerance. The only pairs left out of a comparison are
those whose astropy separation is within 1e-9 arcsec of ``radius + tolerance`` itself, a
band 1e-6 arcsec outside the circle where two correct float64 computations may round either
way; no generated pair is expected there (none is in practice), and a bug that drops or adds
matches would not confine itself to it.
"""

from __future__ import annotations

import json
import math

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokerapp.domain import zones
from brokerapp.domain.zones import (
    DEFAULT_HEIGHT_DEG,
    HALFWIDTH,
    ON_RADIUS_TOLERANCE_ARCSEC,
    CatalogueIndex,
    Entry,
    Match,
    angular_separation_arcsec,
    build_zones,
    check_position,
    cone_in,
    entry_from_json,
    entry_to_json,
    entry_zones,
    lookup_in,
    match_in,
    nearest_in,
    ra_halfwidth_deg,
    zone_count,
    zone_insert,
    zone_of,
    zone_remove,
)

TOL = ON_RADIUS_TOLERANCE_ARCSEC
AMBIGUOUS = 1e-9  # arcsec either side of radius + TOL: left out of comparisons
# Per region for the parametrised tests (400 skies each), single tests get 300.
PER_REGION = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROPERTY = settings(PER_REGION, max_examples=300)

# --- independent helpers (numpy and astropy only)


def offset(ra, dec, pa_deg, dist_arcsec):
    """Point at ``dist_arcsec`` from (ra, dec) at position angle ``pa_deg`` (east of north).

    Float64 vector arithmetic: p = cos(d) c + sin(d) t, t the unit tangent towards the
    position angle, then atan2 for both angles (accurate at the poles, unlike an arcsine).
    """
    a, d, p, s = (np.radians(np.asarray(x, float)) for x in (ra, dec, pa_deg, dist_arcsec / 3600))
    centre = np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    east = np.array([-np.sin(a), np.cos(a), np.zeros_like(a)])
    north = np.array([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)])
    v = np.cos(s) * centre + np.sin(s) * (np.cos(p) * north + np.sin(p) * east)
    out_ra = np.degrees(np.arctan2(v[1], v[0])) % 360.0
    out_dec = np.degrees(np.arctan2(v[2], np.hypot(v[0], v[1])))
    out_ra = np.where(out_ra >= 360.0, 0.0, out_ra)
    return out_ra, np.clip(out_dec, -90.0, 90.0)


def astropy_separations(ra, dec, ras, decs):
    """Separations [arcsec] from one alert to many points, by SkyCoord.separation."""
    alert = SkyCoord(ra * u.deg, dec * u.deg)
    points = SkyCoord(np.asarray(ras, float) * u.deg, np.asarray(decs, float) * u.deg)
    return np.atleast_1d(alert.separation(points).arcsec)


def brute_force(ra, dec, entries, radius=None):
    """(matching names, ambiguous names) by astropy over every entry.

    ``radius`` None: each entry's own radius (watchlist); else a cone of that radius.
    """
    if not entries:
        return set(), set()
    seps = astropy_separations(ra, dec, [e.ra for e in entries], [e.dec for e in entries])
    radii = np.array([e.radius_arcsec if radius is None else radius for e in entries])
    limit = radii + TOL
    names = np.array([e.name for e in entries], dtype=object)
    matched = set(names[seps <= limit])
    ambiguous = set(names[np.abs(seps - limit) <= AMBIGUOUS])
    return matched, ambiguous


def names(matches):
    return [m.entry.name for m in matches]


def assert_same(got, expected, ambiguous):
    got_set = set(got)
    assert len(got) == len(got_set), "a match reported twice"
    assert got_set - ambiguous == expected - ambiguous


# --- strategies

unit_interval = st.floats(0.0, 1.0)
radii = st.one_of(
    st.floats(math.log10(0.1), math.log10(3600.0)).map(lambda x: 10.0**x),
    st.sampled_from([0.1, 1.0, 5.0, 3600.0]),
    st.sampled_from([7200.0, 36000.0, 324000.0]),  # 2 deg, 10 deg, 90 deg
)
factors = st.one_of(  # entry distance from the alert, in units of the entry's radius
    st.floats(0.0, 2.0),
    st.sampled_from([0.0, 0.5, 1.0, 1.0 - 1e-12, 1.0 + 1e-12, 1.0 + 1e-6]),
)
heights = st.sampled_from([0.1, 0.25, 0.5, 1.0, 7.0])


@st.composite
def positions(draw, region):
    """An (ra, dec) uniform on the sphere, or concentrated near a pole or the RA wrap."""
    if region == "sphere":
        ra = draw(st.floats(0.0, 360.0))
        dec = math.degrees(math.asin(draw(st.floats(-1.0, 1.0))))
    elif region in ("north", "south"):
        ra = draw(st.floats(0.0, 360.0))
        depth = draw(st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1e-9, 1e-5, 0.25])))
        dec = 90.0 - depth if region == "north" else -90.0 + depth
    else:  # RA wrap
        side = draw(st.floats(0.0, 0.01))
        ra = side if draw(st.booleans()) else 360.0 - side
        dec = math.degrees(math.asin(draw(st.floats(-1.0, 1.0))))
    return ra, dec


@st.composite
def skies(draw, region):
    """Alerts and entries: background entries anywhere, and entries around the alerts."""
    alerts = draw(st.lists(positions(region), min_size=1, max_size=3))
    entries = []
    for ra, dec in alerts:
        for radius, factor, pa in draw(
            st.lists(st.tuples(radii, factors, st.floats(0.0, 360.0)), max_size=8)
        ):
            e_ra, e_dec = offset(ra, dec, pa, factor * radius)
            entries.append((float(e_ra), float(e_dec), radius))
    for _ in range(draw(st.integers(0, 12))):
        ra, dec = draw(positions(draw(st.sampled_from(["sphere", region]))))
        entries.append((ra, dec, draw(radii)))
    return alerts, [Entry(i, ra, dec, r) for i, (ra, dec, r) in enumerate(entries)]


def table_from_inserts(entries, height):
    """Zones as an agent would write them: zone_insert per zone, then a JSON round trip."""
    table = {}
    for entry in entries:
        for zone in entry_zones(entry.dec, entry.radius_arcsec, height):
            table[zone] = zone_insert(table.get(zone), entry)
    return json.loads(json.dumps(table))  # keys become str


class Zones:
    """Zones of build_zones, searched by lookup_in, cone_in and nearest_in at one height."""

    def __init__(self, entries=(), height_deg=DEFAULT_HEIGHT_DEG):
        self.height = height_deg
        self.table = build_zones(entries, height_deg)

    def get(self, zone):
        return self.table.get(zone)

    def lookup(self, ra, dec):
        return lookup_in(self.table, ra, dec, height_deg=self.height)

    def cone(self, ra, dec, radius):
        return cone_in(self.table, ra, dec, radius, height_deg=self.height)

    def nearest(self, ra, dec, radius, k=1):
        return nearest_in(self.table, ra, dec, radius, k, height_deg=self.height)


# --- property tests against the brute force


@pytest.mark.parametrize("region", ["sphere", "north", "south", "wrap"])
@PER_REGION
@given(data=st.data())
def test_lookup_equals_brute_force(region, data):
    alerts, entries = data.draw(skies(region))
    height = data.draw(heights)
    index = Zones(entries, height_deg=height)
    table = table_from_inserts(entries, height)
    assert table == json.loads(json.dumps(index.table))
    # Catalogue entries are canonical after validation: RA 360 -> 0.
    entries = [Entry(e.name, *check_position(e.ra, e.dec), e.radius_arcsec) for e in entries]
    for ra, dec in alerts:
        expected, ambiguous = brute_force(ra, dec, entries)
        got = index.lookup(ra, dec)
        assert_same(names(got), expected, ambiguous)
        assert [m.separation_arcsec for m in got] == sorted(m.separation_arcsec for m in got)
        from_table = lookup_in(table, ra, dec, height_deg=height, key=str)
        assert names(from_table) == names(got)


@pytest.mark.parametrize("region", ["sphere", "north", "south", "wrap"])
@PER_REGION
@given(data=st.data())
def test_cone_and_nearest_equal_brute_force(region, data):
    alerts, entries = data.draw(skies(region))
    height = data.draw(heights)
    radius = data.draw(radii)
    k = data.draw(st.integers(1, 4))
    # Sources of a catalogue have no radius; some entries keep theirs (replicated rows).
    entries = [e._replace(radius_arcsec=0.0) if e.name % 2 else e for e in entries]
    index = Zones(entries, height_deg=height)
    table = json.loads(json.dumps(build_zones(entries, height)))
    for ra, dec in alerts:
        expected, ambiguous = brute_force(ra, dec, entries, radius=radius)
        cone = index.cone(ra, dec, radius)
        assert_same(names(cone), expected, ambiguous)
        assert names(cone_in(table, ra, dec, radius, height_deg=height, key=str)) == names(cone)
        nearest = nearest_in(table, ra, dec, radius, k, height_deg=height, key=str)
        assert names(nearest) == names(index.nearest(ra, dec, radius, k))
        assert len(nearest) == min(k, len(cone))
        # The k returned are the k closest by astropy's measure (up to rounding ties).
        if cone:
            by_name = {e.name: e for e in entries}
            seps = dict(
                zip(
                    names(cone),
                    astropy_separations(
                        ra,
                        dec,
                        [by_name[n].ra for n in names(cone)],
                        [by_name[n].dec for n in names(cone)],
                    ),
                    strict=True,
                )
            )
            worst_kept = max(seps[n] for n in names(nearest))
            rest = [seps[n] for n in names(cone) if n not in set(names(nearest))]
            assert all(worst_kept <= s + 1e-9 for s in rest)


@pytest.mark.parametrize("region", ["sphere", "north", "south", "wrap"])
@PER_REGION
@given(data=st.data())
def test_catalogue_index_equals_brute_force_and_cone_in(region, data):
    alerts, entries = data.draw(skies(region))
    height = data.draw(heights)
    radius = data.draw(radii)
    k = data.draw(st.integers(1, 4))
    catalogue = CatalogueIndex.from_entries(entries, height_deg=height)
    index = Zones([e._replace(radius_arcsec=0.0) for e in entries], height_deg=height)
    entries = [Entry(e.name, *check_position(e.ra, e.dec), 0.0) for e in entries]
    for ra, dec in alerts:
        expected, ambiguous = brute_force(ra, dec, entries, radius=radius)
        cone = catalogue.cone(ra, dec, radius)
        assert_same(names(cone), expected, ambiguous)
        assert [m.separation_arcsec for m in cone] == sorted(m.separation_arcsec for m in cone)
        reference = {m.entry.name: m.separation_arcsec for m in index.cone(ra, dec, radius)}
        assert set(reference) - ambiguous == set(names(cone)) - ambiguous
        for match in cone:
            if match.entry.name in reference:
                assert match.separation_arcsec == pytest.approx(
                    reference[match.entry.name], abs=1e-9
                )
        assert catalogue.nearest(ra, dec, radius, k) == cone[:k]


def test_catalogue_index_arrays_payloads_and_wrap():
    catalogue = CatalogueIndex(
        np.array([7, 8, 9]),
        [360.0, 359.9999, 180.0],
        np.array([0.0, 0.0, 90.0]),
        payloads=[{"g": 17.0}, None, {"g": 12.0}],
    )
    assert len(catalogue) == 3
    assert catalogue.nbytes > 0
    first, second = catalogue.cone(0.00005, 0.0, 1.0)
    assert first.entry == Entry(7, 0.0, 0.0, 0.0, {"g": 17.0})
    assert type(first.entry.name) is int and type(first.separation_arcsec) is float
    assert second.entry == Entry(8, 359.9999, 0.0, 0.0, None)
    assert first.separation_arcsec == pytest.approx(0.18)
    assert names(catalogue.nearest(42.0, 90.0, 0.1)) == [9]
    assert names(catalogue.nearest(42.0, 89.9, 36000.0, k=5)) == [9]
    assert names(catalogue.cone(0.0, 0.0, 648000.0)) == [7, 8, 9]
    strings = CatalogueIndex(["a", "b"], [1.0, 2.0], [3.0, 4.0])
    assert names(strings.nearest(1.0, 3.0, 1.0)) == ["a"]
    assert CatalogueIndex([], [], []).cone(1.0, 2.0, 3.0) == []


@pytest.mark.parametrize(
    ("names_", "ra", "dec", "message"),
    [
        ([1, 2], [1.0], [2.0, 3.0], "one length"),
        ([1.5], [1.0], [2.0], "names"),
        ([1], [float("nan")], [2.0], "source 0"),
        ([1, 2], [1.0, 361.0], [2.0, 3.0], "source 1"),
        ([1], [1.0], [-90.5], "source 0"),
        ([1], ["x"], [2.0], "numbers"),
        ([[1]], [[1.0]], [[2.0]], "one-dimensional"),
    ],
)
def test_catalogue_index_rejects(names_, ra, dec, message):
    with pytest.raises(ValueError, match=message):
        CatalogueIndex(names_, ra, dec)


def test_catalogue_index_rejects_bad_searches():
    catalogue = CatalogueIndex([1], [1.0], [2.0])
    with pytest.raises(ValueError, match="dec"):
        catalogue.cone(1.0, 91.0, 1.0)
    with pytest.raises(ValueError, match="radius"):
        catalogue.cone(1.0, 2.0, -1.0)
    with pytest.raises(ValueError, match="k"):
        catalogue.nearest(1.0, 2.0, 1.0, 0)
    with pytest.raises(ValueError, match="payloads"):
        CatalogueIndex([1], [1.0], [2.0], payloads=[])


@PROPERTY
@given(
    centre=st.one_of(
        positions("sphere"), positions("north"), positions("south"), positions("wrap")
    ),
    radius=radii,
    pa=st.floats(0.0, 360.0),
    height=heights,
)
def test_points_exactly_on_the_radius_match(centre, radius, pa, height):
    ra, dec = centre
    entry = Entry("on", ra, dec, radius)
    index = Zones([entry], height_deg=height)
    a_ra, a_dec = (float(x) for x in offset(ra, dec, pa, radius))
    sep = astropy_separations(a_ra, a_dec, [ra], [dec])[0]
    assert abs(sep - radius) < 1e-8  # the construction is exact to rounding
    assert abs(angular_separation_arcsec(a_ra, a_dec, ra, dec) - sep) < 1e-9
    assert names(index.lookup(a_ra, a_dec)) == ["on"]
    # Just outside: 1e-4 arcsec beyond the radius is no match, for astropy and the index.
    o_ra, o_dec = (float(x) for x in offset(ra, dec, pa, radius + 1e-4))
    if radius + 1e-4 < 648000.0 - 1e-3:
        assert astropy_separations(o_ra, o_dec, [ra], [dec])[0] > radius + TOL
        assert index.lookup(o_ra, o_dec) == []


@PROPERTY
@given(
    centre=st.one_of(
        positions("sphere"), positions("north"), positions("south"), positions("wrap")
    ),
    radius=radii,
    pa=st.floats(0.0, 360.0),
)
def test_directional_offset_by_points_agree_with_astropy(centre, radius, pa):
    """astropy's own on-radius construction: index and astropy judge its points alike."""
    ra, dec = centre
    entry = Entry("e", ra, dec, radius)
    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(pa * u.deg, radius * u.arcsec)
    a_ra, a_dec = float(moved.ra.deg), float(moved.dec.deg)
    expected, ambiguous = brute_force(a_ra, a_dec, [Entry("e", *check_position(ra, dec), radius)])
    assert_same(names(Zones([entry]).lookup(a_ra, a_dec)), expected, ambiguous)
    if 90.0 - abs(dec) > 0.01 and 90.0 - abs(dec) > radius / 3600.0 + 0.01:
        assert expected == {"e"}  # away from the poles it is on the circle to 1e-9 arcsec


@settings(max_examples=300, deadline=None)
@given(
    a=st.one_of(positions("sphere"), positions("north"), positions("south"), positions("wrap")),
    b=st.one_of(positions("sphere"), positions("north"), positions("south"), positions("wrap")),
)
def test_separation_agrees_with_astropy(a, b):
    expected = astropy_separations(a[0], a[1], [b[0]], [b[1]])[0]
    assert angular_separation_arcsec(*a, *b) == pytest.approx(expected, abs=1e-9, rel=1e-14)


def test_separation_of_antipodes_and_poles():
    assert angular_separation_arcsec(10.0, 20.0, 190.0, -20.0) == pytest.approx(648000.0)
    assert angular_separation_arcsec(0.0, 90.0, 123.0, 90.0) == pytest.approx(0.0, abs=1e-9)
    assert angular_separation_arcsec(0.0, 90.0, 0.0, -90.0) == pytest.approx(648000.0)
    assert angular_separation_arcsec(359.5, 0.0, 0.5, 0.0) == pytest.approx(3600.0)


# --- zones


@pytest.mark.parametrize(
    ("dec", "height", "zone"),
    [
        (-90.0, 0.25, 0),
        (-89.76, 0.25, 0),
        (-89.75, 0.25, 1),
        (0.0, 0.25, 360),
        (-1e-12, 0.25, 359),
        (89.75, 0.25, 719),
        (90.0, 0.25, 719),
        (90.0, 0.5, 359),
        (90.0, 7.0, 25),  # 180 / 7 = 25.7: 26 zones, the last one partial
        (83.9, 7.0, 24),
        (0.0, 180.0, 0),
        (90.0, 180.0, 0),
    ],
)
def test_zone_of(dec, height, zone):
    assert zone_of(dec, height) == zone


@pytest.mark.parametrize(("height", "count"), [(0.25, 720), (0.1, 1800), (0.5, 360), (7.0, 26)])
def test_zone_count(height, count):
    assert zone_count(height) == count
    assert zone_of(90.0, height) == count - 1


@pytest.mark.parametrize(
    ("dec", "radius", "zones_expected"),
    [
        (0.1, 5.0, [360]),  # well inside zone 360 = [0, 0.25)
        (0.0, 5.0, [359, 360]),  # on a boundary: both sides
        (0.249, 5.0, [360, 361]),  # 5 arcsec reaches over 0.25
        (0.125, 3600.0, list(range(356, 365))),  # 1 deg: 9 zones
        (89.9, 3600.0, list(range(715, 720))),  # clamped at the north pole
        (-89.9, 3600.0, list(range(0, 5))),  # and at the south pole
        (45.0, 648000.0, list(range(720))),  # 180 deg: the whole sky
        (12.3, 0.0, [409]),  # a catalogue source: one zone
    ],
)
def test_entry_zones(dec, radius, zones_expected):
    assert entry_zones(dec, radius) == zones_expected


def test_default_height_is_a_quarter_degree():
    assert DEFAULT_HEIGHT_DEG == 0.25
    assert zone_count() == 720


@pytest.mark.parametrize(
    ("dec", "radius", "expected"),
    [
        (0.0, 3600.0, 1.0),
        (60.0, 3600.0, math.degrees(math.asin(math.sin(math.radians(1.0)) / 0.5))),
        (89.0, 3600.0, 180.0),  # reaches the pole
        (-89.5, 3600.0, 180.0),
        (30.0, 648000.0, 180.0),
        (45.0, 0.0, 0.0),
    ],
)
def test_ra_halfwidth(dec, radius, expected):
    got = ra_halfwidth_deg(dec, radius)
    assert got >= expected
    assert got == pytest.approx(expected, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(dec=st.floats(-89.99, 89.99), radius=radii, pa=st.floats(0.0, 360.0))
def test_ra_halfwidth_bounds_every_point_of_the_circle(dec, radius, pa):
    ra, _ = offset(100.0, dec, pa, radius)
    dra = abs(float(ra) - 100.0)
    dra = min(dra, 360.0 - dra)
    assert dra <= ra_halfwidth_deg(dec, radius)


# --- wrap, poles, tiers


@pytest.mark.parametrize(
    ("e_ra", "a_ra"),
    [(359.9999, 0.0001), (0.0001, 359.9999), (0.0, 360.0), (360.0, 0.0), (359.99995, 359.99999)],
)
def test_ra_wrap(e_ra, a_ra):
    index = Zones([Entry("w", e_ra, 10.0, 1.0)])
    assert names(index.lookup(a_ra, 10.0)) == ["w"]
    assert names(index.nearest(a_ra, 10.0, 1.0)) == ["w"]


def test_window_across_the_wrap_in_every_tier():
    # One entry per tier a little west of 0h, the alert a little east: each tier's window wraps.
    entries = [
        Entry("tier3", 359.999, 0.1, 10.0),
        Entry("tier2", 359.9, 0.1, 600.0),
        Entry("tier1", 359.0, 0.1, 7200.0),
        Entry("tier0", 355.0, 0.1, 36000.0),
    ]
    index = Zones(entries)
    rows = index.get(zone_of(0.1))
    assert [row[0] for row in rows] == ["tier0", "tier1", "tier2", "tier3"]
    assert sorted(names(index.lookup(0.001, 0.1))) == sorted(e.name for e in entries)
    assert names(index.lookup(0.001, 0.1)) == ["tier3", "tier2", "tier1", "tier0"]


def test_circle_over_the_north_pole():
    index = Zones([Entry("cap", 30.0, 89.9, 3600.0)])
    # Across the pole: 0.1 + 0.5 deg from the centre.
    (match,) = index.lookup(210.0, 89.5)
    assert match.separation_arcsec == pytest.approx(0.6 * 3600.0)
    assert index.lookup(210.0, 88.9) == []  # 0.1 + 1.1 = 1.2 deg
    for ra in (0.0, 90.0, 359.0):
        assert names(index.lookup(ra, 90.0)) == ["cap"]


def test_alert_at_the_south_pole():
    index = Zones([Entry("s", 123.0, -89.999, 4.0), Entry("t", 0.0, -90.0, 0.0)])
    assert names(index.lookup(0.0, -90.0)) == ["t", "s"]
    assert names(index.nearest(300.0, -90.0, 10.0, k=5)) == ["t", "s"]


def test_big_radius_everywhere():
    index = Zones([Entry("sky", 0.0, 0.0, 648000.0)])
    for ra, dec in [(180.0, 0.0), (0.0, 90.0), (0.0, -90.0), (271.0, 45.0)]:
        assert names(index.lookup(ra, dec)) == ["sky"]


# --- zone values for a table


def test_zone_insert_keeps_tier_and_ra_order_and_replaces():
    rows = None
    for entry in [
        Entry("c", 300.0, 0.1, 1.0),
        Entry("a", 5.0, 0.1, 1.0),
        Entry("wide", 100.0, 0.1, 36000.0),
        Entry("b", 150.0, 0.1, 1.0),
    ]:
        new = zone_insert(rows, entry)
        assert new is not rows
        rows = new
    assert [row[0] for row in rows] == ["wide", "a", "b", "c"]
    before = list(rows)
    replaced = zone_insert(rows, Entry("a", 200.0, 0.1, 1.0))
    assert rows == before  # input untouched
    assert [row[0] for row in replaced] == ["wide", "b", "a", "c"]
    assert [row[0] for row in zone_remove(replaced, "b")] == ["wide", "a", "c"]
    assert zone_remove(None, "x") == [] and zone_remove(replaced, "x") == replaced


def test_match_in_one_zone_value():
    rows = zone_insert(None, Entry("x", 10.0, 0.1, 2.0))
    assert names(match_in(rows, 10.0, 0.1)) == ["x"]
    assert match_in(rows, 10.1, 0.1) == []
    assert match_in(None, 10.0, 0.1) == [] and match_in([], 10.0, 0.1) == []


def test_payload_survives_the_table_and_the_lookup():
    payload = {"mag": 18.2, "tags": ["agn"]}
    table = json.loads(json.dumps(build_zones([Entry("p", 1.0, 2.0, 3.0, payload)])))
    (match,) = lookup_in(table, 1.0, 2.0, key=str)
    assert match == Match(Entry("p", 1.0, 2.0, 3.0, payload), 0.0)


def test_lookup_in_keys_and_missing_zones():
    table = build_zones([Entry("x", 10.0, 45.0, 2.0)], 0.5)
    assert names(lookup_in(table, 10.0, 45.0, height_deg=0.5)) == ["x"]
    as_str = json.loads(json.dumps(table))
    assert names(lookup_in(as_str, 10.0, 45.0, height_deg=0.5, key=str)) == ["x"]
    assert lookup_in(as_str, 10.0, 45.0, height_deg=0.5) == []  # int keys miss str ones
    assert lookup_in({}, 10.0, 45.0) == []


# --- serialisation


@pytest.mark.parametrize(
    "entry",
    [
        Entry("plain", 12.5, -45.0, 2.0),
        Entry(123456789012345678, 0.0, 90.0, 0.0),
        Entry("payload", 359.999999, -90.0, 3600.0, {"mag": 18.5, "tags": ["agn", "x"]}),
    ],
)
def test_entry_json_round_trip(entry):
    row = entry_to_json(entry)
    assert row[:4] == [entry.name, entry.ra, entry.dec, entry.radius_arcsec]
    assert row[HALFWIDTH] == ra_halfwidth_deg(entry.dec, entry.radius_arcsec)
    assert entry_from_json(json.loads(json.dumps(row))) == entry
    as_dict = {"name": entry.name, "ra": entry.ra, "dec": entry.dec}
    as_dict |= {"radius_arcsec": entry.radius_arcsec, "payload": entry.payload}
    assert entry_from_json(as_dict) == entry


def test_entry_json_normalises_and_defaults():
    assert entry_to_json(Entry("z", 360.0, 0.0, 1.0))[1] == 0.0
    assert entry_from_json({"name": "n", "ra": 1, "dec": 2}) == Entry("n", 1.0, 2.0, 0.0)
    assert entry_from_json(["n", 1.0, 2.0, 3.0]) == Entry("n", 1.0, 2.0, 3.0)


@pytest.mark.parametrize(
    "value",
    [{"name": "n", "ra": 1.0}, ["n", 1.0], "n,1,2,3", 42, None, ["n", 1.0, 2.0, -3.0]],
)
def test_entry_from_json_rejects(value):
    with pytest.raises(ValueError):
        entry_from_json(value)


# --- validation


BAD_RA = [float("nan"), float("inf"), -1e-9, 360.0000001, "12", None, True, [1.0]]
BAD_DEC = [float("nan"), -float("inf"), -90.0000001, 90.5, "0", None, False]


@pytest.mark.parametrize("ra", BAD_RA)
def test_bad_ra_raises(ra):
    index = Zones([Entry("a", 1.0, 2.0, 3.0)])
    with pytest.raises(ValueError, match="ra"):
        index.lookup(ra, 2.0)
    with pytest.raises(ValueError, match="ra"):
        index.nearest(ra, 2.0, 5.0)
    with pytest.raises(ValueError, match="ra"):
        lookup_in({}, ra, 2.0)
    with pytest.raises(ValueError, match="ra"):
        build_zones([Entry("b", ra, 2.0, 3.0)])


@pytest.mark.parametrize("dec", BAD_DEC)
def test_bad_dec_raises(dec):
    index = Zones()
    with pytest.raises(ValueError, match="dec"):
        index.lookup(1.0, dec)
    with pytest.raises(ValueError, match="dec"):
        zone_of(dec)
    with pytest.raises(ValueError, match="dec"):
        match_in([], 1.0, dec)
    with pytest.raises(ValueError, match="dec"):
        entry_zones(dec, 1.0)


@pytest.mark.parametrize("radius", [-1.0, float("nan"), float("inf"), "1", None])
def test_bad_radius_raises(radius):
    with pytest.raises(ValueError, match="radius"):
        build_zones([Entry("a", 1.0, 2.0, radius)])
    with pytest.raises(ValueError, match="radius"):
        cone_in({}, 1.0, 2.0, radius)
    with pytest.raises(ValueError, match="radius"):
        entry_zones(0.0, radius)


@pytest.mark.parametrize("name", [None, 1.5, True, ("a",), b"a"])
def test_bad_name_raises(name):
    with pytest.raises(ValueError, match="name"):
        entry_to_json(Entry(name, 1.0, 2.0, 3.0))


@pytest.mark.parametrize("height", [0.0, -0.25, 181.0, 1e-5, float("nan"), "0.25"])
def test_bad_height_raises(height):
    with pytest.raises(ValueError, match="height"):
        build_zones([], height)
    with pytest.raises(ValueError, match="height"):
        zone_of(0.0, height)


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "1"])
def test_bad_k_raises(k):
    with pytest.raises(ValueError, match="k"):
        nearest_in({}, 1.0, 2.0, 3.0, k)


def test_module_constants_are_consistent():
    assert list(zones.RA_TIERS_DEG) == sorted(zones.RA_TIERS_DEG, reverse=True)
    assert zones.DEC_PAD_DEG * 3600.0 > 100 * TOL
