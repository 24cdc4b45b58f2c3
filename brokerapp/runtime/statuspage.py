"""Render a worker's status (a JSON-ready dict) as a plain HTML page.

Every worker's web view serves the same data twice: as JSON for machines and as HTML for
people. This module turns the dict into HTML without templates: scalars become a two-column
table, a nested dict a titled section, and a list of dicts a table with one column per key.
Every value is escaped. The page reloads itself every ``refresh`` seconds.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render"]

_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}th{background:#eee}"
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _is_rows(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str | bytes)
        and bool(value)
        and all(isinstance(row, Mapping) for row in value)
    )


def _rows_table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(data: Mapping[str, Any], level: int) -> str:
    scalars = [(k, v) for k, v in data.items() if not isinstance(v, Mapping) and not _is_rows(v)]
    parts = []
    if scalars:
        parts.append(
            "<table>"
            + "".join(
                f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in scalars
            )
            + "</table>"
        )
    heading = f"h{min(level, 6)}"
    for key, value in data.items():
        if isinstance(value, Mapping):
            inner = _section(value, level + 1) if value else "<p>none</p>"
            parts.append(f"<{heading}>{html.escape(str(key))}</{heading}>{inner}")
        elif _is_rows(value):
            parts.append(f"<{heading}>{html.escape(str(key))}</{heading}>{_rows_table(value)}")
    return "".join(parts)


def render(title: str, status: Mapping[str, Any], refresh: int = 5) -> str:
    """Return an HTML page showing ``status``.

    Parameters
    ----------
    title : str
        Page title and top heading.
    status : mapping
        JSON-ready status: scalars, nested mappings and lists of mappings.
    refresh : int, optional
        Seconds between automatic reloads (0 for none).

    Returns
    -------
    str
        A complete HTML document.
    """
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh > 0 else ""
    name = html.escape(title)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{meta}<title>{name}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{name}</h1>{_section(status, 2)}</body></html>"
    )
