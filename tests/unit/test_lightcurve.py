"""brokerapp.domain.lightcurve from plain rows: the text tables, the JSON document, the figure."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from brokerapp.domain import lightcurve
from brokerapp.domain.lightcurve import (
    MISSING,
    band_statistics_table,
    format_object,
    format_table,
    light_curve_figure,
    light_curve_table,
    object_document,
    parse_stats,
    plottable,
    statistics_table,
    time_ordered,
)

OBJECT_ID = "ZTF18abcdefg"


def _row(candidate_id, mjd, band, mag, mag_err=0.05, **extra):
    row = {
        "candidate_id": candidate_id,
        "object_id": OBJECT_ID,
        "survey": "ztf",
        "mjd": mjd,
        "band": band,
        "ra": 150.0,
        "decl": -2.25,
        "mag": mag,
        "mag_err": mag_err,
        "flux": None,
        "flux_err": None,
        "visit_id": None,
    }
    row.update(extra)
    return row


# Out of time order on purpose; two bands; one g point without a magnitude, one r point
# without an error, a tie in MJD broken by candidate ID.
ROWS = [
    _row(40, 60004.0, "r", 18.61, None),
    _row(10, 60001.125, "g", 18.25, 0.05),
    _row(30, 60003.5, "g", None, None),
    _row(21, 60002.0, "r", 18.5, 0.08),
    _row(20, 60002.0, "g", 18.1, 0.04),
    _row(50, 60005.25, "g", 17.95, 0.03),
]

OBJECT = {
    "object_id": OBJECT_ID,
    "survey": "ztf",
    "n_detections": 6,
    "first_mjd": 60001.125,
    "last_mjd": 60005.25,
    "latest_candidate_id": 50,
    "latest_band": "g",
    "latest_mag": 17.95,
    "ra_mean": 150.0,
    "decl_mean": -2.25,
    "position_scatter_arcsec": None,
    # As object_row writes it: sorted keys, so r before g alphabetically would be wrong.
    "stats": json.dumps(
        {
            "bands": {
                "r": {
                    "n": 2,
                    "latest_mag": 18.61,
                    "peak_mag": 18.5,
                    "mean_mag": 18.555,
                    "rate_mag_per_day": 0.055,
                },
                "g": {
                    "n": 4,
                    "latest_mag": 17.95,
                    "peak_mag": 17.95,
                    "mean_mag": 18.1,
                    "rate_mag_per_day": -0.0729,
                },
                "i": {"n": 1, "latest_mag": None, "peak_mag": None, "mean_mag": None},
            },
            "colours": {"r-i": 0.25, "g-r": -0.66},
        },
        sort_keys=True,
    ),
}


def _lines(text):
    return text.splitlines()


def test_time_order_and_plottable():
    ordered = time_ordered(ROWS)
    assert [r["candidate_id"] for r in ordered] == [10, 20, 21, 30, 40, 50]
    assert [r["candidate_id"] for r in plottable(ROWS)] == [10, 20, 21, 40, 50]
    # NaN and infinity count as missing, as in brokerapp.domain.history.
    assert plottable([_row(1, 1.0, "g", math.nan), _row(2, 2.0, "g", math.inf)]) == []


def test_light_curve_table_columns_order_and_missing_values():
    lines = _lines(light_curve_table(ROWS, indent=""))
    assert lines[0].split() == ["MJD", "band", "mag", "±", "err", "candidate"]
    cells = [line.split(None, 2) for line in lines[1:]]
    assert [c[0] for c in cells] == [
        "60001.12500",
        "60002.00000",
        "60002.00000",
        "60003.50000",
        "60004.00000",
        "60005.25000",
    ]
    assert [line.split()[-1] for line in lines[1:]] == ["10", "20", "21", "30", "40", "50"]
    assert [c[1] for c in cells] == ["g", "g", "r", "g", "r", "g"]
    assert "18.250 ± 0.050" in lines[1]
    assert "18.500 ± 0.080" in lines[3]
    # No magnitude: the whole mag ± err cell is '-'; no error: '-' after the ±.
    assert lines[4].split() == ["60003.50000", "g", MISSING, "30"]
    assert lines[5].split() == ["60004.00000", "r", "18.610", "±", MISSING, "40"]
    assert lines[5].index("±") == lines[1].index("±")
    # Aligned: every line as long as the header once trailing spaces are dropped.
    assert len({len(line) for line in lines}) == 1
    assert "None" not in "\n".join(lines)


def test_format_table_aligns_columns():
    text = format_table(("a", "bb"), [("xyz", "1"), ("q", "123")], right=(False, True))
    assert _lines(text) == ["a     bb", "xyz    1", "q    123"]
    assert format_table((), []) == ""


def test_statistics_table():
    lines = _lines(statistics_table(OBJECT, indent=""))
    table = {line[:18].strip(): line[18:].strip() for line in lines}
    assert table["detections"] == "6"
    assert table["first MJD"] == "60001.12500"
    assert table["last MJD"] == "60005.25000"
    assert table["latest mag (band)"] == "17.950 (g)"
    assert table["latest candidate"] == "50"
    assert table["mean RA [deg]"] == "150.000000"
    assert table["mean Dec [deg]"] == "-2.250000"
    assert table["position scatter"] == MISSING


def test_band_table_in_survey_order_with_missing_values():
    stats = parse_stats(OBJECT["stats"])
    lines = _lines(band_statistics_table(stats, "ztf", indent=""))
    assert re.split(r"\s{2,}", lines[0].strip()) == [
        "band",
        "n",
        "latest mag",
        "peak mag",
        "mean mag",
        "rate mag/day",
    ]
    assert [line.split() for line in lines[1:]] == [
        ["g", "4", "17.950", "17.950", "18.100", "-0.0729"],
        ["r", "2", "18.610", "18.500", "18.555", "+0.0550"],
        ["i", "1", MISSING, MISSING, MISSING, MISSING],
    ]
    assert band_statistics_table(parse_stats("{}"), "ztf") == ""


@pytest.mark.parametrize("stats", [None, "", "not json", "[1, 2]", '{"bands": 3}'])
def test_unreadable_stats_are_empty(stats):
    assert parse_stats(stats) == {"bands": {}, "colours": {}}


def test_format_object_report():
    text = format_object(OBJECT_ID, OBJECT, ROWS)
    assert text.startswith(f"Object {OBJECT_ID}\n")
    assert "Light curve: 6 detections, 1 without a magnitude (left out of plots)" in text
    colours = text.split("Colours\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split() for line in _lines(colours)] == [["g-r", "-0.660"], ["r-i", "+0.250"]]
    assert "None" not in text
    bare = format_object(OBJECT_ID, None, ROWS[:1])
    assert "no objects row" in bare
    assert "Light curve: 1 detection\n" in bare


def test_object_document_is_json():
    document = json.loads(json.dumps(object_document(OBJECT_ID, OBJECT, ROWS, "mariadb")))
    assert document["object_id"] == OBJECT_ID
    assert document["store"] == "mariadb"
    assert document["n_detections"] == 6
    assert document["n_without_mag"] == 1
    assert [r["candidate_id"] for r in document["light_curve"]] == [10, 20, 21, 30, 40, 50]
    assert document["object"]["stats"]["colours"] == {"g-r": -0.66, "r-i": 0.25}
    assert document["object"]["latest_mag"] == 17.95
    assert object_document(OBJECT_ID, None, [])["object"] is None


def _containers(figure):
    (ax,) = figure.axes
    return ax, {c.get_label(): c for c in ax.containers}


def test_figure_one_errorbar_per_band():
    figure = light_curve_figure(ROWS, OBJECT_ID)
    ax, containers = _containers(figure)
    # Legend order: survey band order (g before r), with the count of points drawn.
    assert list(containers) == ["g (3)", "r (2)"]
    g_line = containers["g (3)"].lines[0]
    r_line = containers["r (2)"].lines[0]
    assert list(g_line.get_xdata()) == [60001.125, 60002.0, 60005.25]
    assert list(g_line.get_ydata()) == [18.25, 18.1, 17.95]
    assert list(r_line.get_xdata()) == [60002.0, 60004.0]
    assert list(r_line.get_ydata()) == [18.5, 18.61]
    # Each band its own colour and marker.
    assert g_line.get_color() != r_line.get_color()
    assert g_line.get_marker() != r_line.get_marker()
    # Error bars drawn, one per point (a point without an error gets a NaN bar).
    assert containers["g (3)"].has_yerr and containers["r (2)"].has_yerr
    (g_bars,) = containers["g (3)"].lines[2]
    assert len(g_bars.get_segments()) == 3
    assert ax.yaxis_inverted()
    assert not ax.xaxis_inverted()
    assert OBJECT_ID in ax.get_title()
    assert "1 without a magnitude" in ax.get_title()
    assert ax.get_xlabel() == "MJD"
    assert "mag" in ax.get_ylabel()
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["g (3)", "r (2)"]


def test_figure_saves_a_png(tmp_path):
    out = tmp_path / "lc.png"
    light_curve_figure(ROWS, OBJECT_ID).savefig(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty.png"
    figure = light_curve_figure([_row(1, 60000.0, "g", None)], OBJECT_ID)
    figure.savefig(empty)
    assert empty.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.axes[0].containers == []


def test_building_a_figure_leaves_the_backend_alone():
    import matplotlib

    before = matplotlib.get_backend()
    figure = light_curve_figure(ROWS, OBJECT_ID)
    assert type(figure.canvas).__name__ == "FigureCanvasAgg"
    assert matplotlib.get_backend() == before
    assert "matplotlib" not in lightcurve.__dict__


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, brokerapp.domain.lightcurve; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
