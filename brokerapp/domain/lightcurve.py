"""An object's statistics and light curve as text, JSON and a figure (pure functions).

``brokerapp object ID`` fetches the object's ``objects`` row and its ``candidates`` rows from
a store (:mod:`brokerapp.adapters.stores`) and hands them, as plain dicts, to the functions here:

:func:`format_object`
    The aligned plain-text report: the statistics of the ``objects`` row (detections,
    first/last MJD, latest magnitude and band, mean position and scatter), a table of the
    per-band statistics of its ``stats`` JSON (n, latest/peak/mean magnitude, rate), the
    colours, and the light curve (MJD, band, mag ± err, candidate ID) in time order.
:func:`object_document`
    The same as one JSON-ready dict (``--json``).
:func:`light_curve_figure`
    A matplotlib figure of the light curve: one colour and marker per band, error bars,
    magnitude axis inverted, MJD on x. It is drawn on a figure with its own Agg canvas
    (no ``pyplot``, no global backend switch), so it works without a display and leaves the
    backend of the calling program alone.

Rows are those of :mod:`brokerapp.adapters.dbschema` (``decl`` is the declination). A value that is
None or not a finite number counts as missing and is shown as ``-``; detections without a
magnitude are counted and left out of the figure. "Time order" is ascending
``(mjd, candidate_id)``, as :func:`brokerapp.domain.history.merge_history` and the stores use.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from brokerapp.domain.history import BAND_ORDER

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "MISSING",
    "band_statistics_table",
    "format_object",
    "format_table",
    "light_curve_figure",
    "light_curve_table",
    "object_document",
    "object_summary",
    "parse_stats",
    "plottable",
    "statistics_table",
    "time_ordered",
]

#: How a missing value (None, NaN, infinity) is shown in the text tables.
MISSING = "-"

#: Colour and marker of each known band in the figure (blue to red, as the filters).
_BAND_STYLE: dict[str, tuple[str, str]] = {
    "u": ("#6a3d9a", "v"),
    "g": ("#1b9e77", "o"),
    "r": ("#d62728", "s"),
    "i": ("#ff7f0e", "D"),
    "z": ("#8c564b", "^"),
    "y": ("#333333", "P"),
}
#: Styles handed out, in turn, to bands not in :data:`_BAND_STYLE` (and to "no band").
_OTHER_STYLES: tuple[tuple[str, str], ...] = (
    ("#1f77b4", "X"),
    ("#e377c2", "p"),
    ("#7f7f7f", "h"),
    ("#bcbd22", "*"),
    ("#17becf", "<"),
    ("#9467bd", ">"),
)
_NO_BAND = "no band"


def _number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None (None, NaN, infinity, not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _fixed(value: Any, digits: int, *, sign: bool = False) -> str:
    """Return a number with ``digits`` decimals (``+`` on positives if ``sign``), or ``-``."""
    number = _number(value)
    if number is None:
        return MISSING
    return f"{number:+.{digits}f}" if sign else f"{number:.{digits}f}"


def _text(value: Any) -> str:
    return MISSING if value is None or value == "" else str(value)


def _time_key(row: Mapping[str, Any]) -> tuple[float, int]:
    mjd = _number(row.get("mjd"))
    candidate = row.get("candidate_id")
    return (math.inf if mjd is None else mjd, candidate if isinstance(candidate, int) else 0)


def time_ordered(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the rows in time order: ascending MJD, then candidate ID (rows without an MJD last).

    Parameters
    ----------
    rows : iterable of mapping
        ``candidates`` rows.

    Returns
    -------
    list of mapping
        The same row objects, sorted.
    """
    return sorted(rows, key=_time_key)


def plottable(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the rows that can be drawn: a finite MJD and magnitude, in time order."""
    return [
        r
        for r in time_ordered(rows)
        if _number(r.get("mjd")) is not None and _number(r.get("mag")) is not None
    ]


def parse_stats(stats: Any) -> dict[str, Any]:
    """Return the ``stats`` of an ``objects`` row as ``{"bands": {...}, "colours": {...}}``.

    Parameters
    ----------
    stats : str, mapping or None
        The column's JSON text (or an already decoded mapping).

    Returns
    -------
    dict
        ``bands`` (band -> statistics) and ``colours`` (``"g-r"`` -> float), each ``{}``
        when absent or when the text is not a JSON object.
    """
    if isinstance(stats, str | bytes):
        try:
            stats = json.loads(stats)
        except ValueError:
            stats = None
    if not isinstance(stats, Mapping):
        stats = {}
    bands = stats.get("bands")
    colours = stats.get("colours")
    return {
        "bands": dict(bands) if isinstance(bands, Mapping) else {},
        "colours": dict(colours) if isinstance(colours, Mapping) else {},
    }


def _band_rank(survey: Any) -> dict[str, int]:
    order = BAND_ORDER.get(survey, BAND_ORDER["lsst"])
    return {band: i for i, band in enumerate(order)}


def _band_sort_key(rank: Mapping[str, int]):
    return lambda band: (band is None, rank.get(band, len(rank)), str(band))


def format_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    right: Sequence[bool] | None = None,
    indent: str = "",
) -> str:
    """Return rows of strings as an aligned plain-text table.

    Parameters
    ----------
    headers : sequence of str
        Column titles; an empty sequence prints no title line.
    rows : iterable of sequence of str
        Cells, as many per row as there are columns.
    right : sequence of bool, optional
        Per column, whether it is right-aligned (numbers); default left.
    indent : str
        Prefix of every line.

    Returns
    -------
    str
        Lines joined by newlines, columns two spaces apart, no trailing spaces.
    """
    body = [list(map(str, row)) for row in rows]
    lines = ([list(headers)] if headers else []) + body
    if not lines:
        return ""
    columns = max(len(line) for line in lines)
    right = list(right or []) + [False] * columns
    widths = [max(len(line[c]) for line in lines if c < len(line)) for c in range(columns)]
    out = []
    for line in lines:
        cells = [
            cell.rjust(widths[c]) if right[c] else cell.ljust(widths[c])
            for c, cell in enumerate(line)
        ]
        out.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(out)


def _mag_with_error(mag: Any, err: Any) -> str:
    mag_text = _fixed(mag, 3)
    if mag_text == MISSING:
        return MISSING
    # A missing error is padded to an error's width, so that the ± signs line up.
    return f"{mag_text} ± {_fixed(err, 3):>5}"


def statistics_table(obj: Mapping[str, Any], *, indent: str = "  ") -> str:
    """Return the statistics of an ``objects`` row as an aligned two-column table.

    Parameters
    ----------
    obj : mapping
        The ``objects`` row.
    indent : str
        Prefix of every line.

    Returns
    -------
    str
        Survey, detections, first and last MJD, latest magnitude and band, latest candidate,
        mean position [deg] and its scatter [arcsec].
    """
    latest = _fixed(obj.get("latest_mag"), 3)
    if obj.get("latest_band") is not None:
        latest = f"{latest} ({obj['latest_band']})"
    rows = [
        ("survey", _text(obj.get("survey"))),
        ("detections", _text(obj.get("n_detections"))),
        ("first MJD", _fixed(obj.get("first_mjd"), 5)),
        ("last MJD", _fixed(obj.get("last_mjd"), 5)),
        ("latest mag (band)", latest),
        ("latest candidate", _text(obj.get("latest_candidate_id"))),
        ("mean RA [deg]", _fixed(obj.get("ra_mean"), 6)),
        ("mean Dec [deg]", _fixed(obj.get("decl_mean"), 6)),
        ("position scatter", _with_unit(_fixed(obj.get("position_scatter_arcsec"), 3), "arcsec")),
    ]
    return format_table((), rows, indent=indent)


def _with_unit(text: str, unit: str) -> str:
    return text if text == MISSING else f"{text} {unit}"


def band_statistics_table(
    stats: Mapping[str, Any], survey: Any = None, *, indent: str = "  "
) -> str:
    """Return the per-band statistics of a ``stats`` JSON as an aligned table.

    Parameters
    ----------
    stats : mapping
        :func:`parse_stats` of the ``objects`` row's ``stats``.
    survey : str, optional
        The object's survey: bands are listed in its order (:data:`BAND_ORDER`), then the
        others alphabetically.
    indent : str
        Prefix of every line.

    Returns
    -------
    str
        Columns band, n, latest, peak and mean magnitude, rate [mag/day] (positive: fading);
        an empty string when there are no band statistics.
    """
    bands = stats.get("bands") or {}
    if not bands:
        return ""
    rows = []
    for band in sorted(bands, key=_band_sort_key(_band_rank(survey))):
        entry = bands[band] if isinstance(bands[band], Mapping) else {}
        rows.append(
            (
                str(band),
                _text(entry.get("n")),
                _fixed(entry.get("latest_mag"), 3),
                _fixed(entry.get("peak_mag"), 3),
                _fixed(entry.get("mean_mag"), 3),
                _fixed(entry.get("rate_mag_per_day"), 4, sign=True),
            )
        )
    headers = ("band", "n", "latest mag", "peak mag", "mean mag", "rate mag/day")
    return format_table(headers, rows, right=(False, True, True, True, True, True), indent=indent)


def _colour_items(stats: Mapping[str, Any], survey: Any) -> list[tuple[str, Any]]:
    colours = stats.get("colours") or {}
    rank = _band_rank(survey)
    sort_band = _band_sort_key(rank)
    return sorted(colours.items(), key=lambda item: sort_band(str(item[0]).split("-", 1)[0]))


def light_curve_table(rows: Iterable[Mapping[str, Any]], *, indent: str = "  ") -> str:
    """Return the light curve as an aligned table, in time order.

    Parameters
    ----------
    rows : iterable of mapping
        The object's ``candidates`` rows (any order).
    indent : str
        Prefix of every line.

    Returns
    -------
    str
        Columns MJD, band, ``mag ± err`` and candidate ID; a missing value is ``-`` (a
        missing magnitude makes the whole ``mag ± err`` cell ``-``).
    """
    cells = [
        (
            _fixed(r.get("mjd"), 5),
            _text(r.get("band")),
            _mag_with_error(r.get("mag"), r.get("mag_err")),
            _text(r.get("candidate_id")),
        )
        for r in time_ordered(rows)
    ]
    headers = ("MJD", "band", "mag ± err", "candidate")
    return format_table(headers, cells, right=(True, False, True, True), indent=indent)


def object_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """Return the light curve's heading line: detections, and how many lack a magnitude."""
    missing = len(rows) - len(plottable(rows))
    noun = "detection" if len(rows) == 1 else "detections"
    line = f"Light curve: {len(rows)} {noun}"
    if missing:
        line += f", {missing} without a magnitude (left out of plots)"
    return line


def format_object(
    object_id: str, obj: Mapping[str, Any] | None, rows: Sequence[Mapping[str, Any]]
) -> str:
    """Return the plain-text report of one object.

    Parameters
    ----------
    object_id : str
        The object.
    obj : mapping or None
        Its ``objects`` row; None when the store has none (statistics not written yet).
    rows : sequence of mapping
        Its ``candidates`` rows (any order).

    Returns
    -------
    str
        The statistics, band table, colours and light curve, separated by blank lines.
    """
    parts = [f"Object {object_id}"]
    survey = None
    if obj is None:
        parts[0] += "\n  no objects row (no statistics stored for this object)"
    else:
        survey = obj.get("survey")
        parts[0] += "\n" + statistics_table(obj)
        stats = parse_stats(obj.get("stats"))
        bands = band_statistics_table(stats, survey)
        parts.append("Bands\n" + bands if bands else "Bands: none")
        colours = _colour_items(stats, survey)
        if colours:
            cells = [(str(k), _fixed(v, 3, sign=True)) for k, v in colours]
            parts.append("Colours\n" + format_table((), cells, right=(False, True), indent="  "))
        else:
            parts.append("Colours: none")
    heading = object_summary(rows)
    parts.append(heading + ("\n" + light_curve_table(rows) if rows else ""))
    return "\n\n".join(parts)


def object_document(
    object_id: str,
    obj: Mapping[str, Any] | None,
    rows: Sequence[Mapping[str, Any]],
    store: str | None = None,
) -> dict[str, Any]:
    """Return the object as one JSON-ready dict (``brokerapp object --json``).

    Parameters
    ----------
    object_id : str
        The object.
    obj : mapping or None
        Its ``objects`` row, or None.
    rows : sequence of mapping
        Its ``candidates`` rows (any order).
    store : str, optional
        Where the rows came from (``mariadb`` or ``cassandra``).

    Returns
    -------
    dict
        ``object_id``, ``store``, ``object`` (the row with ``stats`` decoded into ``bands``
        and ``colours``, or None), ``light_curve`` (the rows with every column, in time
        order), ``n_detections`` and ``n_without_mag``.
    """
    obj_doc = None
    if obj is not None:
        obj_doc = {k: v for k, v in obj.items() if k != "stats"}
        obj_doc["stats"] = parse_stats(obj.get("stats"))
    ordered = [dict(r) for r in time_ordered(rows)]
    return {
        "object_id": object_id,
        "store": store,
        "object": obj_doc,
        "light_curve": ordered,
        "n_detections": len(ordered),
        "n_without_mag": len(ordered) - len(plottable(ordered)),
    }


def _styles(bands: Iterable[Any]) -> dict[Any, tuple[str, str]]:
    styles = {}
    n_other = 0
    for band in bands:
        known = _BAND_STYLE.get(band) if isinstance(band, str) else None
        if known is None:
            known = _OTHER_STYLES[n_other % len(_OTHER_STYLES)]
            n_other += 1
        styles[band] = known
    return styles


def light_curve_figure(
    rows: Iterable[Mapping[str, Any]],
    object_id: str,
    *,
    survey: str | None = None,
    size: tuple[float, float] = (8.0, 5.0),
) -> Figure:
    """Draw an object's light curve on a new matplotlib figure with an Agg canvas.

    Parameters
    ----------
    rows : iterable of mapping
        The object's ``candidates`` rows (any order). Rows without a finite MJD or magnitude
        are left out.
    object_id : str
        Shown in the title.
    survey : str, optional
        Orders the bands in the legend (:data:`brokerapp.domain.history.BAND_ORDER`); default the
        survey of the rows.
    size : tuple of float
        Figure size [inches].

    Returns
    -------
    matplotlib.figure.Figure
        One axes: per band one ``errorbar`` (its own colour and marker, labelled
        ``"<band> (<n>)"``), MJD on x, magnitude on an inverted y axis, a legend. Save it
        with ``figure.savefig(path)``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = list(rows)
    points = plottable(rows)
    if survey is None:
        survey = next((r.get("survey") for r in rows if r.get("survey")), None)
    by_band: dict[Any, list[Mapping[str, Any]]] = {}
    for row in points:
        by_band.setdefault(row.get("band"), []).append(row)
    bands = sorted(by_band, key=_band_sort_key(_band_rank(survey)))
    styles = _styles(bands)

    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for band in bands:
        group = by_band[band]
        colour, marker = styles[band]
        errors = [_number(r.get("mag_err")) for r in group]
        ax.errorbar(
            [float(r["mjd"]) for r in group],
            [float(r["mag"]) for r in group],
            yerr=[math.nan if e is None else e for e in errors],
            fmt=marker,
            color=colour,
            ecolor=colour,
            markersize=5,
            capsize=2,
            linestyle="none",
            label=f"{_NO_BAND if band is None else band} ({len(group)})",
        )
    ax.invert_yaxis()
    ax.set_xlabel("MJD")
    ax.set_ylabel("magnitude")
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.grid(True, alpha=0.3)
    title = f"{object_id}" + (f" ({survey})" if survey else "")
    omitted = len(rows) - len(points)
    if omitted:
        title += f": {omitted} without a magnitude not shown"
    ax.set_title(title)
    if bands:
        ax.legend(title="band", loc="best")
    else:
        ax.text(0.5, 0.5, "no detections with a magnitude", ha="center", transform=ax.transAxes)
    return figure
