"""Tests of brokerapp.domain.watchlists: model, file loaders, errors, JSON, commands, catalogues.

Pure: no servers. The committed files in tests/data/watchlists are checked against the real
sample alerts (positions read with fastavro, separations with astropy), independently of the
code under test.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import astropy.units as u
import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, Table
from hypothesis import given, settings
from hypothesis import strategies as st

from brokerapp.domain.watchlists import (
    MAX_PROBLEMS_SHOWN,
    MAX_RADIUS_ARCSEC,
    Catalogue,
    CatalogueError,
    SolarSystemWatchlist,
    Watchlist,
    WatchlistCommand,
    WatchlistEntry,
    WatchlistError,
    load_catalogue,
    load_entries,
    load_objects,
    load_watchlist,
    normalise_object_name,
    object_key,
    synthetic_catalogue,
    watchlist_from_json,
    watchlist_to_json,
    write_catalogue,
)

DATA = Path(__file__).parents[1] / "data"
FILES = DATA / "watchlists"
ENTRY_FILES = ("watchlist.csv", "watchlist.vot", "watchlist.fits")
ENTRY_NAMES = (
    "near-ZTF18acsbuxi",
    "near-ZTF17aaacxxf",
    "near-LSST-598474793",
    "miss-LSST-740556850",
    "far-north",
    "far-wrap",
    "far-south",
)
# entry -> (sample alert ID it is near, separation [arcsec], hit?), as README.txt states.
DOCUMENTED = {
    "near-ZTF18acsbuxi": (697252845015010002, 2.0, True),
    "near-ZTF17aaacxxf": (739260766315010006, 4.0, True),
    "near-LSST-598474793": (169298432598474793, 1.0, True),
    "miss-LSST-740556850": (169298432740556850, 8.0, False),
}
HEADER = "name,ra,dec,radius\n"


@functools.cache
def sample_alerts() -> tuple[tuple[str, int, float, float], ...]:
    """(survey, alert ID, ra, dec) of every sample alert, straight from the Avro files."""
    alerts = []
    for path in sorted((DATA / "ztf").glob("*.avro")):
        with path.open("rb") as stream:
            for record in fastavro.reader(stream):
                candidate = record["candidate"]
                alerts.append(("ztf", candidate["candid"], candidate["ra"], candidate["dec"]))
    for path in sorted((DATA / "lsst").glob("*.avro")):
        with path.open("rb") as stream:
            for record in fastavro.reader(stream):
                source = record["diaSource"]
                alerts.append(("lsst", source["diaSourceId"], source["ra"], source["dec"]))
    return tuple(alerts)


def error_of(function, *args, **kwargs) -> WatchlistError:
    with pytest.raises(WatchlistError) as caught:
        function(*args, **kwargs)
    return caught.value


def csv_error(text: str, **kwargs) -> WatchlistError:
    return error_of(load_entries, text.encode(), format="csv", source="w.csv", **kwargs)


# ------------------------------------------------------------------------ committed files


def test_committed_files_give_the_same_entries():
    loaded = [load_entries(FILES / name) for name in ENTRY_FILES]
    assert [entry.name for entry in loaded[0]] == list(ENTRY_NAMES)
    for entries in loaded[1:]:
        assert len(entries) == len(loaded[0])
        for got, expected in zip(entries, loaded[0], strict=True):
            assert got.name == expected.name
            assert got.ra == expected.ra and got.dec == expected.dec
            assert got.radius_arcsec == pytest.approx(expected.radius_arcsec, rel=1e-12)


def test_committed_files_are_small():
    for path in FILES.iterdir():
        assert path.stat().st_size < 9000, path


@pytest.mark.parametrize("name", ENTRY_FILES)
def test_bytes_are_read_like_files(name):
    path = FILES / name
    from_file = load_entries(path)
    data = path.read_bytes()
    assert load_entries(data) == from_file  # sniffed from the content
    assert load_entries(data, format=path.suffix.lstrip(".")) == from_file
    assert load_entries(data, source=name) == from_file
    assert load_entries(str(path)) == from_file


def test_committed_entries_hit_the_documented_sample_alerts():
    alerts = sample_alerts()
    assert len(alerts) == 18 + 50
    positions = SkyCoord([a[2] for a in alerts] * u.deg, [a[3] for a in alerts] * u.deg)
    ids = [a[1] for a in alerts]
    for entry in load_entries(FILES / "watchlist.csv"):
        separations = SkyCoord(entry.ra * u.deg, entry.dec * u.deg).separation(positions).arcsec
        hits = {ids[i] for i in np.flatnonzero(separations <= entry.radius_arcsec)}
        if entry.name in DOCUMENTED:
            alert_id, separation, hit = DOCUMENTED[entry.name]
            nearest = int(np.argmin(separations))
            assert ids[nearest] == alert_id
            assert separations[nearest] == pytest.approx(separation, abs=0.001)
            assert hits == ({alert_id} if hit else set())
        else:
            assert separations.min() > 3600 * 10  # far away: more than 10 degrees
            assert not hits


def test_readme_describes_every_file_and_entry():
    readme = (FILES / "README.txt").read_text()
    for path in FILES.iterdir():
        if path.name != "README.txt":
            assert path.name in readme
    for name in ENTRY_NAMES:
        assert name in readme
    for alert_id, _, _ in DOCUMENTED.values():
        assert str(alert_id) in readme


def test_bad_csv_names_row_and_column():
    error = error_of(load_entries, FILES / "watchlist_bad.csv")
    assert str(error) == (
        "watchlist_bad.csv: row 4, column 'dec': 95.2 is outside -90..90 (CSV line 5)"
    )
    assert (error.row, error.column, error.line) == (4, "dec", 5)
    assert len(error.problems) == 1


def test_load_watchlist():
    watchlist = load_watchlist(FILES / "watchlist.fits", "my-list", "Targets", "alice")
    assert watchlist.id == "my-list" and watchlist.owner == "alice"
    assert watchlist.entries == load_entries(FILES / "watchlist.csv")
    assert watchlist.max_radius_arcsec == 60.0
    error = error_of(load_watchlist, FILES / "watchlist.csv", "bad id", "n", "o")
    assert "not a valid watchlist ID" in str(error)


# --------------------------------------------------------------------------- CSV errors

BAD_VALUES = [
    ("a,10,95.2,5", "dec", "95.2 is outside -90..90"),
    ("a,10,-90.5,5", "dec", "-90.5 is outside -90..90"),
    ("a,360,0,5", "ra", "360 is outside 0..360 (ra must be >= 0 and < 360 deg)"),
    ("a,-0.5,0,5", "ra", "-0.5 is outside 0..360 (ra must be >= 0 and < 360 deg)"),
    ("a,ten,0,5", "ra", "'ten' is not a number"),
    ("a,nan,0,5", "ra", "nan is not a finite number"),
    ("a,1,inf,5", "dec", "inf is not a finite number"),
    ("a,,0,5", "ra", "empty value"),
    ("a,1,0,0", "radius", "0 is not > 0 (the radius must be positive, in arcsec)"),
    ("a,1,0,-2", "radius", "-2 is not > 0 (the radius must be positive, in arcsec)"),
    ("a,1,0,3600.5", "radius", "3600.5 is above the largest radius, 3600 arcsec"),
    (",1,0,5", "name", "empty value"),
    ('"a\tb",1,0,5', "name", "'a\\tb' contains a control character"),
    ("a,1,0", "radius", "missing (the row is shorter than the header)"),
]


@pytest.mark.parametrize(("row", "column", "message"), BAD_VALUES)
def test_bad_value_names_row_and_column(row, column, message):
    good = "ok1,1,1,1\nok2,2,2,2\n"
    error = csv_error(HEADER + good + row + "\n")
    assert str(error) == f"w.csv: row 3, column '{column}': {message} (CSV line 4)"
    assert (error.row, error.column, error.line) == (3, column, 4)


def test_edge_values_are_accepted():
    text = HEADER + f"a,0,-90,{MAX_RADIUS_ARCSEC}\nb,359.999999,90,0.001\nc,-0.0,-0.0,1\n"
    entries = load_entries(text.encode(), format="csv")
    assert [e.radius_arcsec for e in entries] == [3600.0, 0.001, 1.0]
    assert math.copysign(1.0, entries[2].ra) == 1.0  # -0.0 stored as 0.0


def test_duplicate_names_name_both_rows():
    error = csv_error(HEADER + "a,1,1,1\nb,2,2,2\n\na,3,3,3\n")
    assert str(error) == (
        "w.csv: rows 1 and 3, column 'name': duplicate entry name 'a' (CSV lines 2 and 5)"
    )


def test_too_many_fields_names_the_row():
    error = csv_error(HEADER + "a,1,1,1\nb,2,2,2,extra\n")
    assert str(error) == "w.csv: row 2: 5 fields, but the header has 4 columns (CSV line 3)"
    assert error.row == 2
    # A trailing empty field (a trailing comma) is fine.
    assert len(load_entries((HEADER + "a,1,1,1,\n").encode(), format="csv")) == 1


def test_missing_and_ambiguous_columns_are_named():
    error = csv_error("name,ra,radius\na,1,1\n")
    assert str(error) == (
        "w.csv: header: missing column 'dec' (columns: 'name', 'ra', 'radius') (CSV line 1)"
    )
    assert error.column == "dec"
    error = csv_error("name,ra,dec\na,1,1\n")
    assert "missing column 'radius' (or give a default radius)" in str(error)
    error = csv_error("name,Ra,RA,dec,radius\na,1,1,1,1\n")
    assert "header: column 'ra' is ambiguous: 'Ra' (column 2) and 'RA' (column 3)" in str(error)
    error = csv_error("name,ra,ra,dec,radius\na,1,1,1,1\n")
    assert "column 'ra' is ambiguous" in str(error)


def test_exact_column_match_wins_over_case_variant():
    entries = load_entries(b"name,ra,RA,dec,radius\na,1,2,3,4\n", format="csv")
    assert entries == (WatchlistEntry("a", 1.0, 3.0, 4.0),)


def test_header_is_case_insensitive_and_errors_use_the_file_spelling():
    entries = load_entries(b"Name,RA,Dec,RADIUS,notes\n a , 1 , 2 , 3 ,x\n", format="csv")
    assert entries == (WatchlistEntry("a", 1.0, 2.0, 3.0),)
    error = csv_error("Name,RA,Dec,RADIUS\na,1,99,3\n")
    assert "row 1, column 'Dec': 99 is outside -90..90" in str(error)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "w.csv: empty file"),
        (b"  \n\n", "w.csv: empty file"),
        (b"\n,,,\n", "w.csv: empty file (no header row)"),
        (HEADER.encode(), "w.csv: no rows (only a header)"),
        ((HEADER + "\n,,,\n").encode(), "w.csv: no rows (only a header)"),
    ],
)
def test_empty_files_are_errors(data, message):
    assert str(error_of(load_entries, data, format="csv", source="w.csv")) == message


def test_empty_file_on_disk(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert str(error_of(load_entries, path)) == "empty.csv: empty file"


def test_blank_rows_bom_and_crlf():
    text = "\ufeffname,ra,dec,radius\r\n\r\na,1,1,1\r\n,,,\r\nb,2,95,2\r\n"
    error = error_of(load_entries, text.encode(), format="csv", source="w.csv")
    assert str(error) == "w.csv: row 2, column 'dec': 95 is outside -90..90 (CSV line 5)"
    good = text.replace("95", "5").encode()
    assert [e.name for e in load_entries(good, format="csv")] == ["a", "b"]


def test_quoted_fields_and_multiline_records_keep_line_numbers():
    text = HEADER + '"M 31, Andromeda",10.68,41.27,60\n"two\nlines",1,1,1\nz,1,-99,1\n'
    error = csv_error(text)
    assert "row 2, column 'name': 'two\\nlines' contains a control character (CSV line 3)" in str(
        error
    )
    assert "row 3, column 'dec': -99 is outside -90..90 (CSV line 5)" in str(error)


def test_all_or_nothing_lists_every_problem():
    rows = ["good1,1,1,1", "bad1,1,91,1", "good2,2,2,2", "bad2,x,1,1", "bad3,1,1,0"]
    error = csv_error(HEADER + "\n".join(rows) + "\n")
    assert [(p.row, p.column) for p in error.problems] == [(2, "dec"), (4, "ra"), (5, "radius")]
    assert len(str(error).splitlines()) == 3


def test_many_problems_are_summarised():
    rows = "".join(f"e{i},1,100,1\n" for i in range(MAX_PROBLEMS_SHOWN + 5))
    error = csv_error(HEADER + rows)
    lines = str(error).splitlines()
    assert len(error.problems) == MAX_PROBLEMS_SHOWN + 5
    assert len(lines) == MAX_PROBLEMS_SHOWN + 1
    assert lines[-1] == "... and 5 more problems"


def test_default_radius():
    entries = load_entries(b"name,ra,dec\na,1,1\n", format="csv", default_radius=3)
    assert entries == (WatchlistEntry("a", 1.0, 1.0, 3.0),)
    entries = load_entries((HEADER + "a,1,1,\nb,2,2,7\n").encode(), default_radius=2.5)
    assert [e.radius_arcsec for e in entries] == [2.5, 7.0]
    with pytest.raises(WatchlistError, match="default_radius: 0.0 is not > 0"):
        load_entries(b"name,ra,dec\na,1,1\n", default_radius=0)
    with pytest.raises(WatchlistError, match="default_radius: expected a number"):
        load_entries(b"name,ra,dec\na,1,1\n", default_radius="5")


def test_unreadable_inputs(tmp_path):
    assert "not UTF-8 text" in str(error_of(load_entries, b"name\xff,ra\n", format="csv"))
    error = error_of(load_entries, (HEADER + '"a,1,1,1\n').encode(), format="csv")
    assert "not valid CSV" in str(error)
    path = tmp_path / "list.txt"
    path.write_text(HEADER + "a,1,1,1\n")
    error = error_of(load_entries, path)
    assert "list.txt: cannot tell the format from the extension '.txt'" in str(error)
    assert load_entries(path, format="csv") == (WatchlistEntry("a", 1.0, 1.0, 1.0),)
    assert "unknown format 'xlsx'" in str(error_of(load_entries, path, format="xlsx"))
    assert "parquet" in str(error_of(load_entries, path, format="parquet"))
    assert "no such file" in str(error_of(load_entries, tmp_path / "nope.csv"))
    for name, content in (("x.vot", b"<VOTABLE><oops"), ("x.fits", b"SIMPLE  = nope")):
        (tmp_path / name).write_bytes(content)
        assert f"{name}: cannot read as" in str(error_of(load_entries, tmp_path / name))
    with pytest.raises(TypeError):
        load_entries(12)


# ------------------------------------------------------------------- VOTable and FITS


def write_table(table: Table, path: Path) -> Path:
    table.write(path, format="votable" if path.suffix == ".vot" else "fits", overwrite=True)
    return path


@pytest.mark.parametrize("suffix", [".vot", ".fits"])
def test_angular_units_are_converted(tmp_path, suffix):
    table = Table()
    table["name"] = ["a", "b"]
    table["ra"] = [0.1, 1.0] * u.rad
    table["dec"] = [30.0, -90.0] * u.arcmin
    table["radius"] = [1500.0, 2.0] * u.mas
    entries = load_entries(write_table(table, tmp_path / ("units" + suffix)))
    assert [e.ra for e in entries] == pytest.approx([math.degrees(0.1), math.degrees(1.0)])
    assert [e.dec for e in entries] == pytest.approx([0.5, -1.5])
    assert [e.radius_arcsec for e in entries] == pytest.approx([1.5, 0.002])


@pytest.mark.parametrize("suffix", [".vot", ".fits"])
def test_columns_without_units_are_deg_and_arcsec(tmp_path, suffix):
    table = Table({"NAME": ["a"], "RA": [12.5], "DEC": [-3.25], "RADIUS": [4], "x": [1]})
    entries = load_entries(write_table(table, tmp_path / ("plain" + suffix)))
    assert entries == (WatchlistEntry("a", 12.5, -3.25, 4.0),)


@pytest.mark.parametrize("suffix", [".vot", ".fits"])
def test_converted_values_are_checked_and_shown_with_units(tmp_path, suffix):
    table = Table({"name": ["a", "b"], "ra": [1.0, 2.0], "dec": [0.0, 0.0], "radius": [1, 2]})
    table["radius"].unit = u.deg  # 1 deg = 3600 arcsec is the largest radius allowed
    error = error_of(load_entries, write_table(table, tmp_path / ("big" + suffix)))
    assert str(error) == (
        f"big{suffix}: row 2, column 'radius': 2.0 deg (= 7200.0 arcsec) is above "
        "the largest radius, 3600 arcsec"
    )


@pytest.mark.parametrize("suffix", [".vot", ".fits"])
@pytest.mark.parametrize(("column", "unit"), [("ra", "m"), ("radius", "mag"), ("dec", "s")])
def test_non_angular_units_are_errors(tmp_path, suffix, column, unit):
    table = Table({"name": ["a"], "ra": [1.0], "dec": [2.0], "radius": [3.0]})
    table[column].unit = unit
    error = error_of(load_entries, write_table(table, tmp_path / ("u" + suffix)))
    assert f"column '{column}': unit '{unit}' is not an angle" in str(error)
    assert error.column == column


def test_unrecognised_unit_is_an_error(tmp_path):
    text = (FILES / "watchlist.vot").read_text().replace('unit="deg"', 'unit="degreez"', 1)
    path = tmp_path / "odd.vot"
    path.write_text(text)
    error = error_of(load_entries, path)
    assert "column 'ra': unit 'degreez' is not one astropy understands" in str(error)


@pytest.mark.parametrize("suffix", [".vot", ".fits"])
def test_table_rows_are_named(tmp_path, suffix):
    table = Table()
    table["name"] = MaskedColumn(["a", "b", "c"], mask=[False, True, False])
    table["ra"] = MaskedColumn([1.0, 2.0, 3.0], mask=[False, False, True])
    table["dec"] = [10.0, 20.0, 95.0]
    table["radius"] = [1.0, 2.0, 3.0]
    error = error_of(load_entries, write_table(table, tmp_path / ("rows" + suffix)))
    assert [(p.row, p.column) for p in error.problems] == [(2, "name"), (3, "ra"), (3, "dec")]
    assert f"rows{suffix}: row 3, column 'dec': 95.0 is outside -90..90" in str(error)
    assert "CSV line" not in str(error)


@pytest.mark.parametrize("suffix", [".vot", ".fits"])
def test_table_nan_duplicates_and_missing_columns(tmp_path, suffix):
    table = Table({"name": ["a", "a"], "ra": [1.0, math.nan], "dec": [0.0, 0.0]})
    path = write_table(table, tmp_path / ("t" + suffix))
    error = error_of(load_entries, path)
    assert str(error).startswith(f"t{suffix}: header: missing column 'radius'")
    error = error_of(load_entries, path, default_radius=2)
    assert [(p.row, p.column) for p in error.problems] == [(2, "ra")]
    table["ra"][1] = 2.0
    error = error_of(load_entries, write_table(table, path))
    assert "missing column" in str(error)
    error = error_of(load_entries, path, default_radius=2)
    assert str(error) == f"t{suffix}: rows 1 and 2, column 'name': duplicate entry name 'a'"


@pytest.mark.parametrize("suffix", [".vot", ".fits"])
def test_empty_table_is_an_error(tmp_path, suffix):
    table = Table(
        {"name": np.array([], "U3"), "ra": np.array([]), "dec": [], "radius": np.array([])}
    )
    error = error_of(load_entries, write_table(table, tmp_path / ("e" + suffix)))
    assert str(error) == f"e{suffix}: no rows"


# --------------------------------------------------------------------------------- model


def test_entry_validation_names_each_field():
    error = error_of(WatchlistEntry, "", 360, -91, 4000)
    assert [p.column for p in error.problems] == ["name", "ra", "dec", "radius_arcsec"]
    assert "watchlist entry: dec: -91.0 is outside -90..90" in str(error)
    error = error_of(WatchlistEntry, "x", "1", True, math.nan)
    assert "ra: expected a number, got str '1'" in str(error)
    assert "dec: expected a number, got bool True" in str(error)
    assert "radius_arcsec: nan is not a finite number" in str(error)
    entry = WatchlistEntry("  M31 ", np.float32(10.5), 41, np.int64(60))
    assert entry == WatchlistEntry("M31", 10.5, 41.0, 60.0)
    assert type(entry.dec) is float and type(entry.radius_arcsec) is float


def test_watchlist_validation():
    entry = WatchlistEntry("a", 1, 1, 1)
    watchlist = Watchlist("list-1.v2_x", " Name ", "owner", [entry])
    assert watchlist.entries == (entry,) and watchlist.name == "Name"
    assert hash(watchlist) == hash(Watchlist("list-1.v2_x", "Name", "owner", (entry,)))
    for bad_id in ("", "a b", "-start", "x" * 65, 7, "ü"):
        assert "id:" in str(error_of(Watchlist, bad_id, "n", "o", [entry]))
    assert "at least one entry" in str(error_of(Watchlist, "w", "n", "o", []))
    assert "entries must be a list, got str" in str(error_of(Watchlist, "w", "n", "o", "ab"))
    error = error_of(Watchlist, "w", "n", "o", [entry, WatchlistEntry("b", 2, 2, 2), entry])
    assert str(error) == "watchlist: entries[2].name: duplicate entry name 'a' (also entries[0])"
    assert "entries[0]: expected a WatchlistEntry" in str(
        error_of(Watchlist, "w", "n", "o", [{"name": "a"}])
    )
    assert "owner: empty value" in str(error_of(Watchlist, "w", "n", "  ", [entry]))


# ---------------------------------------------------------------- solar-system objects


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2830", "2830"),
        (2830, "2830"),
        (np.int64(119257), "119257"),
        ("002830", "2830"),
        (" 2830 ", "2830"),
        (21164719644750924, "21164719644750924"),
        ("21164719644750924", "21164719644750924"),
        ("2018 VB12", "2018VB12"),
        ("2018VB12", "2018VB12"),
        ("K12J69D", "K12J69D"),
        ("1P/Halley", "1P/Halley"),
    ],
)
def test_normalise_object_name(value, expected):
    assert normalise_object_name(value) == expected
    assert object_key(value) == expected


@pytest.mark.parametrize("value", [0, "0", "000", -5, "", "  ", "null", "NULL", 2830.0, True, None])
def test_invalid_object_names(value):
    with pytest.raises(WatchlistError):
        normalise_object_name(value)
    assert object_key(value) is None


def test_sample_alert_objects_normalise_to_the_committed_watchlist():
    names = set()
    for path in sorted((DATA / "ztf").glob("*.avro")):
        with path.open("rb") as stream:
            for record in fastavro.reader(stream):
                key = object_key(record["candidate"]["ssnamenr"])
                if key is not None:
                    names.add(key)
    assert len(names) == 11  # the 11 solar-system ZTF samples
    for path in sorted((DATA / "lsst").glob("*.avro")):
        with path.open("rb") as stream:
            for record in fastavro.reader(stream):
                key = object_key(record["diaSource"]["ssObjectId"])
                if key is not None:
                    names.add(key)
                    names.add(object_key(record["MPCORB"]["mpcDesignation"]))
    objects = load_objects(FILES / "solar_system.csv")
    assert objects == ("2830", "119257", "21164719644750924", "K12J69D", "2018VB12")
    assert set(objects) - names == {"2018VB12"}


def test_solar_system_watchlist():
    watchlist = SolarSystemWatchlist("ss", "rocks", "me", [2830, " 2018 VB12", "K12J69D"])
    assert watchlist.objects == ("2830", "2018VB12", "K12J69D")
    error = error_of(SolarSystemWatchlist, "ss", "n", "o", [2830, "02830", 1.5])
    assert "objects[1]: duplicate object '2830' (also objects[0], after normalisation)" in str(
        error
    )
    assert "objects[2]: 1.5 is a float" in str(error)
    assert "at least one object" in str(error_of(SolarSystemWatchlist, "ss", "n", "o", ()))


def test_load_objects_errors(tmp_path):
    error = error_of(load_objects, b"object\n2830\n\n0002830\nnull\n", format="csv", source="s")
    assert str(error) == (
        "s: rows 1 and 2, column 'object': duplicate object '2830' (after normalisation) "
        "(CSV lines 2 and 4)\n"
        "s: row 3, column 'object': 'null' is ZTF's marker for no object (CSV line 5)"
    )
    assert "missing column 'object'" in str(error_of(load_objects, b"name\nx\n", format="csv"))
    assert load_objects(b"ID\n5\n", format="csv", column="id") == ("5",)
    path = write_table(Table({"OBJECT": [2830, 12345678901234567]}), tmp_path / "o.fits")
    assert load_objects(path) == ("2830", "12345678901234567")
    path = write_table(Table({"object": [2830.0]}), tmp_path / "f.vot")
    assert "row 1, column 'object': 2830.0 is a float" in str(error_of(load_objects, path))


# ---------------------------------------------------------------------------------- JSON


def test_watchlist_json_round_trip():
    watchlist = load_watchlist(FILES / "watchlist.vot", "w1", "Targets", "alice@example.org")
    data = watchlist_to_json(watchlist)
    assert data["kind"] == "watchlist" and data["id"] == "w1"
    assert data["entries"][0] == {
        "name": "near-ZTF18acsbuxi",
        "ra": 14.8589117,
        "dec": -7.2913943,
        "radius_arcsec": watchlist.entries[0].radius_arcsec,
    }
    again = watchlist_from_json(json.loads(json.dumps(data)))
    assert again == watchlist and watchlist.to_json() == data
    del data["kind"]  # kind defaults to "watchlist"
    assert watchlist_from_json(data) == watchlist


def test_solar_system_json_round_trip():
    watchlist = SolarSystemWatchlist(
        "ss-1", "rocks", "bob", load_objects(FILES / "solar_system.csv")
    )
    data = json.loads(json.dumps(watchlist_to_json(watchlist)))
    assert data == {
        "kind": "solar_system",
        "id": "ss-1",
        "name": "rocks",
        "owner": "bob",
        "objects": ["2830", "119257", "21164719644750924", "K12J69D", "2018VB12"],
    }
    assert watchlist_from_json(data) == watchlist
    with pytest.raises(TypeError):
        watchlist_to_json({"id": "x"})


finite = st.floats(allow_nan=False, allow_infinity=False)
entries_strategy = st.lists(
    st.builds(
        WatchlistEntry,
        name=st.text(st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1),
        ra=finite.filter(lambda x: 0 <= x < 360),
        dec=st.floats(-90, 90),
        radius_arcsec=st.floats(1e-6, MAX_RADIUS_ARCSEC),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda entry: entry.name,
)


@settings(max_examples=60, deadline=None, database=None)
@given(entries_strategy)
def test_json_round_trip_is_exact(entries):
    watchlist = Watchlist("w", "n", "o", tuple(entries))
    command = WatchlistCommand.put(watchlist)
    assert WatchlistCommand.from_bytes(command.to_bytes()) == command


@pytest.mark.parametrize(
    ("data", "messages"),
    [
        ([], ["expected a JSON object, got list"]),
        ({"kind": "comet"}, ["kind: unknown kind 'comet'"]),
        ({}, ["id: missing field", "name: missing field", "owner: missing field", "entries:"]),
        (
            {"id": "w", "name": "n", "owner": "o", "entries": [], "colour": "red"},
            ["colour: unknown field 'colour'"],
        ),
        ({"id": "w", "name": "n", "owner": "o", "entries": []}, ["entries: a watchlist needs"]),
        ({"id": "w", "name": "n", "owner": "o", "entries": "x"}, ["entries: entries must be"]),
        ({"id": "w", "name": "n", "owner": "o", "entries": [5]}, ["entries[0]: expected a JSON"]),
        (
            {
                "id": "w",
                "name": 5,
                "owner": "o",
                "entries": [{"name": "a", "ra": "1", "dec": 99, "radius": 1}],
            },
            [
                "name: expected a string, got int 5",
                "entries[0].radius: unknown field 'radius'",
                "entries[0].radius_arcsec: missing field",
                "entries[0].ra: expected a number, got str '1'",
                "entries[0].dec: 99.0 is outside -90..90",
            ],
        ),
        (
            {"kind": "solar_system", "id": "s", "name": "n", "owner": "o", "objects": [0, 1.5]},
            ["objects[0]: 0 is not an object ID", "objects[1]: 1.5 is a float"],
        ),
        (
            {"kind": "solar_system", "id": "s", "name": "n", "owner": "o", "entries": []},
            ["entries: unknown field", "objects: missing field"],
        ),
    ],
)
def test_watchlist_from_json_is_strict(data, messages):
    error = error_of(watchlist_from_json, data)
    for message in messages:
        assert message in str(error), str(error)
    assert str(error).startswith("watchlist JSON: ")


# ------------------------------------------------------------------------------ commands


def test_commands_round_trip():
    watchlist = load_watchlist(FILES / "watchlist.csv", "w1", "Targets", "alice")
    put = WatchlistCommand.put(watchlist)
    assert put == WatchlistCommand("put", "w1", watchlist)
    assert put.key == b"w1"
    assert WatchlistCommand.from_json(json.loads(json.dumps(put.to_json()))) == put
    assert WatchlistCommand.from_bytes(put.to_bytes()) == put
    solar = SolarSystemWatchlist("s1", "rocks", "alice", ["2830"])
    assert WatchlistCommand.from_bytes(WatchlistCommand.put(solar).to_bytes()).payload == solar
    delete = WatchlistCommand.delete("w1")
    assert delete.to_json() == {"op": "delete", "watchlist_id": "w1", "payload": None}
    assert delete.to_bytes() == b'{"op":"delete","watchlist_id":"w1","payload":null}'
    assert WatchlistCommand.from_bytes(delete.to_bytes()) == delete
    assert WatchlistCommand.from_json({"op": "delete", "watchlist_id": "w1"}) == delete


def test_command_constructor_validation():
    watchlist = Watchlist("w1", "n", "o", [WatchlistEntry("a", 1, 1, 1)])
    error = error_of(WatchlistCommand, "patch", "w1", watchlist)
    assert "watchlist command: op: unknown op 'patch' (expected 'put' or 'delete')" in str(error)
    assert "payload.id: the payload's id 'w1' is not the command's watchlist_id 'w2'" in str(
        error_of(WatchlistCommand, "put", "w2", watchlist)
    )
    assert "a put needs a watchlist" in str(error_of(WatchlistCommand, "put", "w1"))
    assert "a delete takes no payload" in str(error_of(WatchlistCommand, "delete", "w1", watchlist))
    assert "watchlist_id:" in str(error_of(WatchlistCommand, "delete", "no spaces"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{nope", "watchlist command: not JSON"),
        (b"\xff", "watchlist command: not JSON"),
        (b"[]", "expected a JSON object, got list"),
        (b'{"op":"patch","watchlist_id":"w"}', "op: unknown op 'patch'"),
        (b'{"op":"PUT","watchlist_id":"w","payload":null}', "op: unknown op 'PUT'"),
        (b'{"watchlist_id":"w"}', "op: missing field"),
        (b'{"op":"delete"}', "watchlist_id: missing field"),
        (b'{"op":"delete","watchlist_id":"w","payload":{}}', "a delete takes no payload"),
        (b'{"op":"delete","watchlist_id":"w","when":1}', "when: unknown field"),
        (b'{"op":"put","watchlist_id":"w"}', "payload: missing field"),
        (b'{"op":"put","watchlist_id":"w","payload":null}', "payload: expected a JSON object"),
        (
            b'{"op":"put","watchlist_id":"w","payload":{"id":"w","name":"n","owner":"o",'
            b'"entries":[{"name":"a","ra":1,"dec":95,"radius_arcsec":1}]}}',
            "payload.entries[0].dec: 95.0 is outside -90..90",
        ),
        (
            b'{"op":"put","watchlist_id":"w","payload":{"id":"v","name":"n","owner":"o",'
            b'"objects":["1"],"kind":"solar_system"}}',
            "payload.id: the payload's id 'v' is not the command's watchlist_id 'w'",
        ),
    ],
)
def test_command_from_bytes_is_strict(data, message):
    error = error_of(WatchlistCommand.from_bytes, data)
    assert message in str(error)


# ----------------------------------------------------------------------------- catalogues


def test_synthetic_catalogue_is_reproducible():
    first, again, other = (
        synthetic_catalogue(1000),
        synthetic_catalogue(1000),
        synthetic_catalogue(1000, seed=1),
    )
    for name in ("ids", "ra", "dec"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert np.array_equal(first.columns["kind"], again.columns["kind"])
    assert not np.array_equal(first.ra, other.ra)
    assert np.array_equal(first.ids, np.arange(1, 1001))
    assert len(synthetic_catalogue(0)) == 0


def test_synthetic_catalogue_is_uniform_on_the_sphere():
    catalogue = synthetic_catalogue(200_000, seed=3)
    assert catalogue.ra.dtype == np.float64 and catalogue.ids.dtype == np.int64
    assert catalogue.ra.min() >= 0 and catalogue.ra.max() < 360
    assert np.abs(catalogue.dec).max() <= 90
    # Uniform in area: P(|dec| < 30) = sin(30 deg) = 0.5; P(dec > 60) = (1 - sin 60)/2.
    assert np.mean(np.abs(catalogue.dec) < 30) == pytest.approx(0.5, abs=0.005)
    assert np.mean(catalogue.dec > 60) == pytest.approx((1 - math.sin(math.pi / 3)) / 2, abs=0.003)
    assert np.mean(catalogue.ra < 90) == pytest.approx(0.25, abs=0.005)
    kinds, counts = np.unique(catalogue.columns["kind"], return_counts=True)
    assert dict(zip(kinds, counts / len(catalogue), strict=True)) == pytest.approx(
        {"galaxy": 0.35, "qso": 0.05, "star": 0.6}, abs=0.01
    )
    assert 14 <= catalogue.columns["mag"].min() and catalogue.columns["mag"].max() < 24


def assert_same_catalogue(got: Catalogue, expected: Catalogue, columns=("mag", "kind")):
    assert np.array_equal(got.ids, expected.ids)
    assert np.array_equal(got.ra, expected.ra) and got.ra.dtype == np.float64
    assert np.array_equal(got.dec, expected.dec) and got.dec.dtype == np.float64
    for name in columns:
        values = expected.columns[name]
        assert np.array_equal(got.columns[name], values, equal_nan=values.dtype.kind == "f")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".fits", ".vot"])
def test_write_then_load_round_trip(tmp_path, suffix):
    catalogue = synthetic_catalogue(500, seed=7)
    path = write_catalogue(catalogue, tmp_path / ("synthetic" + suffix))
    loaded = load_catalogue(path, "id", columns=("mag", "kind"))
    assert_same_catalogue(loaded, catalogue)
    assert loaded.name == "synthetic" and loaded.id_column == "id"
    assert loaded.columns["kind"].dtype.kind == "U"
    assert load_catalogue(path.read_bytes(), "id", format=suffix.lstrip(".")).ids.shape == (500,)


def test_catalogue_loaders_agree_on_text_ids_and_missing_values(tmp_path):
    ids = np.array(["gaia-1", "gaia-2", "gaia-3"])
    mag = np.array([15.5, np.nan, 17.25])
    flag = np.ma.MaskedArray([1, 2, 3], mask=[False, True, False])
    source = Catalogue(ids, [10.0, 20.5, 359.5], [-5.0, 0.0, 89.0], {"mag": mag, "flag": flag})
    loaded = {}
    for suffix in (".parquet", ".csv", ".fits", ".vot"):
        path = write_catalogue(source, tmp_path / ("c" + suffix))
        loaded[suffix] = load_catalogue(path, "ID", "RA", "Dec", columns=("MAG", "flag"))
    for suffix, catalogue in loaded.items():
        assert list(catalogue.ids) == list(ids), suffix
        assert list(catalogue.ra) == [10.0, 20.5, 359.5]
        assert np.array_equal(catalogue.columns["MAG"], mag, equal_nan=True), suffix
        assert list(np.ma.getmaskarray(catalogue.columns["flag"])) == [False, True, False]
        assert catalogue.columns["flag"][2] == 3


def test_million_source_parquet_round_trip(tmp_path):
    catalogue = synthetic_catalogue(1_000_000)
    path = write_catalogue(catalogue, tmp_path / "million.parquet")
    assert pq.read_metadata(path).num_rows == 1_000_000
    assert_same_catalogue(load_catalogue(path, "id", columns=("mag", "kind")), catalogue)


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cat.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "id,ra,dec\n1,10,20\n2,nan,30\n",
            "cat.csv: row 2, column 'ra': nan is not a finite number",
        ),
        ("id,ra,dec\n1,10,20\n2,11,\n", "cat.csv: row 2, column 'dec': missing value"),
        ("id,ra,dec\n1,10,20\n2,11,x\n", "cat.csv: row 2, column 'dec': 'x' is not a number"),
        ("id,ra,dec\n1,10,20\n2,360,1\n", "cat.csv: row 2, column 'ra': 360.0 is outside 0..360"),
        ("id,ra,dec\n1,10,-91\n", "cat.csv: row 1, column 'dec': -91.0 is outside -90..90"),
        ("id,ra,dec\n1,1,1\n2,2,2\n1,3,3\n", "cat.csv: rows 1 and 3, column 'id': duplicate ID 1"),
        ("id,ra,dec\na,1,1\n,2,2\n", "cat.csv: row 2, column 'id': missing ID"),
        ("id,ra,dec\n1.5,1,1\n", "cat.csv: column 'id': IDs must be integers or text"),
        ("id,ra,dec\n1,1,1\n2,2,2,2\n", "cat.csv: row 2: 4 fields, but the header has 3 columns"),
        ("id,ra\n1,1\n", "cat.csv: header: missing column 'dec' (columns: 'id', 'ra')"),
        ("id,ra,dec\n", "cat.csv: no rows"),
        ("", "cat.csv: empty file"),
    ],
)
def test_catalogue_csv_errors(tmp_path, text, expected):
    error = error_of(load_catalogue, write_csv(tmp_path, text), "id")
    assert isinstance(error, CatalogueError)
    assert str(error).startswith(expected), str(error)


@pytest.mark.parametrize("suffix", [".parquet", ".fits", ".vot"])
def test_catalogue_table_errors(tmp_path, suffix):
    def load(table: Table, **kwargs):
        path = tmp_path / ("cat" + suffix)
        if suffix == ".parquet":
            pq.write_table(pa.table({name: table[name].tolist() for name in table.colnames}), path)
        else:
            write_table(table, path)
        return error_of(load_catalogue, path, "source_id", **kwargs)

    table = Table({"source_id": [5, 6, 7], "ra": [1.0, math.nan, 2.0], "dec": [0.0, 1.0, 91.0]})
    error = load(table)
    assert [(p.row, p.column) for p in error.problems] == [(2, "ra"), (3, "dec")]
    assert f"cat{suffix}: row 3, column 'dec': 91.0 is outside -90..90" in str(error)
    table = Table({"source_id": [5, 6, 5], "ra": [1.0, 2.0, 3.0], "dec": [0.0, 1.0, 2.0]})
    assert f"cat{suffix}: rows 1 and 3, column 'source_id': duplicate ID 5" == str(load(table))
    assert "missing column 'mag'" in str(load(table, columns=("mag",)))


def test_catalogue_units_are_converted(tmp_path):
    table = Table({"id": [1, 2], "ra": [0.5, 1.0] * u.rad, "dec": [-60.0, 30.0] * u.arcmin})
    path = write_table(table, tmp_path / "rad.fits")
    catalogue = load_catalogue(path, "id")
    assert list(catalogue.ra) == pytest.approx([math.degrees(0.5), math.degrees(1.0)])
    assert list(catalogue.dec) == pytest.approx([-1.0, 0.5])
    table["ra"] = [0.5, 7.0] * u.rad
    error = error_of(load_catalogue, write_table(table, path), "id")
    assert str(error).startswith("rad.fits: row 2, column 'ra': 7.0 rad (= 401.07")
    table["ra"].unit = u.m
    assert "column 'ra': unit 'm' is not an angle" in str(
        error_of(load_catalogue, write_table(table, path), "id")
    )


def test_catalogue_masked_coordinate_names_the_row(tmp_path):
    table = Table({"id": [1, 2, 3], "ra": MaskedColumn([1.0, 2.0, 3.0], mask=[0, 0, 1])})
    table["dec"] = [0.0, 0.0, 0.0]
    for suffix in (".fits", ".vot"):
        error = error_of(load_catalogue, write_table(table, tmp_path / ("m" + suffix)), "id")
        # astropy writes a masked float to FITS as NaN, to VOTable as an empty cell.
        message = "nan is not a finite number" if suffix == ".fits" else "missing value"
        assert str(error).startswith(f"m{suffix}: row 3, column 'ra': {message}")


def test_catalogue_arguments_and_constructor():
    with pytest.raises(CatalogueError, match="cannot tell the format"):
        load_catalogue("x.txt", "id")
    with pytest.raises(CatalogueError, match="requested twice"):
        load_catalogue(b"id,ra,dec\n1,1,1\n", "id", columns=("ra",), format="csv")
    catalogue = load_catalogue(b"ID,RA,DEC,v\n1,1,1,a\n", "id", columns=("V",), format="csv")
    assert catalogue.id_column == "ID" and list(catalogue.columns) == ["V"]
    error = error_of(Catalogue, [1, 2], [1.0], [1.0, 2.0])
    assert "ra: shape (1,), expected (2,) like ids" in str(error)
    error = error_of(Catalogue, [1, 2], [1.0, 400.0], [1.0, 2.0], name="mine")
    assert (
        str(error)
        == "mine: row 2, column 'ra': 400.0 is outside 0..360 (ra must be >= 0 and < 360 deg)"
    )
    assert "clashes" in str(error_of(Catalogue, [1], [1.0], [1.0], {"ra": [1]}))
    with pytest.raises(CatalogueError, match="cannot tell the format"):
        write_catalogue(synthetic_catalogue(3), "x.txt")
