"""Problems and errors of watchlists, catalogues and control messages.

Errors
    Every problem is a :class:`WatchlistError` (a ``ValueError``; :class:`CatalogueError` for
    catalogues), whose text has one line per :class:`Problem`::

        watchlist.csv: row 17, column 'dec': 95.2 is outside -90..90 (CSV line 18)

    - The source is the file name (not the directory), or ``source`` for bytes.
    - **Rows are 1-based data rows**: row 1 is the first row after the header (CSV) or the
      first row of the table (VOTable, FITS, Parquet); skipped blank CSV rows are not
      counted. For CSV the physical line (1-based, counting the header and blank lines) is
      added in parentheses, for editors.
    - The column is named as spelled in the file. A missing or ambiguous column is reported
      at ``header``; an unreadable or empty file without a row; duplicates name both rows
      (``rows 3 and 9, column 'name': duplicate entry name 'M31'``).
    - Loading is all-or-nothing: every row is parsed and checked first, and entries are
      returned only if every row is valid. Otherwise the error lists every problem (the first
      :data:`MAX_PROBLEMS_SHOWN` in its text; all in :attr:`WatchlistError.problems`, except
      for catalogues, where ``omitted`` counts those beyond the first
      :data:`MAX_PROBLEMS_SHOWN` per column). The first problem's ``row`` and ``column``
      are also attributes of the error.
    - Errors from constructing the model or from JSON name a JSON-style path with 0-based
      indices (``entries[3].dec``, ``payload.objects[0]``).

"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAX_PROBLEMS_SHOWN", "CatalogueError", "Problem", "WatchlistError"]

MAX_PROBLEMS_SHOWN = 20
"""Problems listed in the text of a :class:`WatchlistError`; the rest are counted."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a watchlist, catalogue or message, and where it is.

    Attributes
    ----------
    message : str
        What is wrong, e.g. ``"95.2 is outside -90..90"``.
    row : int or None
        1-based data row (see the module docstring), if the problem is in one row.
    column : str or None
        The column (as spelled in the file) or field concerned.
    other_row : int or None
        For a duplicate, the earlier row holding the same value.
    line : int or None
        CSV only: the 1-based physical line of ``row``.
    other_line : int or None
        CSV only: the physical line of ``other_row``.
    where : str or None
        A location used instead of row and column, e.g. ``"header"`` or ``"entries[3].dec"``.
    """

    message: str
    row: int | None = None
    column: str | None = None
    other_row: int | None = None
    line: int | None = None
    other_line: int | None = None
    where: str | None = None

    def location(self) -> str:
        """Return where the problem is, e.g. ``"row 17, column 'dec'"`` (may be empty)."""
        if self.where is not None:
            return self.where
        parts = []
        if self.row is not None:
            if self.other_row is not None:
                parts.append(f"rows {self.other_row} and {self.row}")
            else:
                parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def describe(self, source: str | None = None) -> str:
        """Return the one-line text of the problem.

        Parameters
        ----------
        source : str, optional
            The file or message the problem is in, put first.

        Returns
        -------
        str
            E.g. ``"watchlist.csv: row 17, column 'dec': 95.2 is outside -90..90 (CSV line
            18)"``.
        """
        text = self.message
        if self.line is not None:
            if self.other_line is not None:
                text += f" (CSV lines {self.other_line} and {self.line})"
            else:
                text += f" (CSV line {self.line})"
        prefix = ": ".join(part for part in (source, self.location()) if part)
        return f"{prefix}: {text}" if prefix else text


class WatchlistError(ValueError):
    """A watchlist, its file or a control message is invalid.

    Parameters
    ----------
    problems : str, Problem or sequence of Problem
        What is wrong; a string is one problem without a location.
    source : str, optional
        The file name or message kind, put before each problem.
    omitted : int, optional
        Further problems found but not listed in ``problems``.

    Attributes
    ----------
    problems : tuple of Problem
        The problems listed (the text shows the first :data:`MAX_PROBLEMS_SHOWN`).
    source : str or None
        As given.
    omitted : int
        As given.
    """

    def __init__(
        self,
        problems: str | Problem | Sequence[Problem],
        source: str | None = None,
        omitted: int = 0,
    ) -> None:
        if isinstance(problems, str):
            problems = (Problem(problems),)
        elif isinstance(problems, Problem):
            problems = (problems,)
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        self.omitted = omitted
        super().__init__(self._text())

    @property
    def row(self) -> int | None:
        """Row of the first problem, if any."""
        return self.problems[0].row if self.problems else None

    @property
    def column(self) -> str | None:
        """Column of the first problem, if any."""
        return self.problems[0].column if self.problems else None

    @property
    def line(self) -> int | None:
        """CSV line of the first problem, if any."""
        return self.problems[0].line if self.problems else None

    def _text(self) -> str:
        shown = [problem.describe(self.source) for problem in self.problems[:MAX_PROBLEMS_SHOWN]]
        rest = len(self.problems) - len(shown) + self.omitted
        if rest > 0:
            shown.append(f"... and {rest} more problem{'s' if rest > 1 else ''}")
        return "\n".join(shown) if shown else (self.source or "invalid watchlist")


class CatalogueError(WatchlistError):
    """A catalogue file or :class:`Catalogue` is invalid (rows and columns as for watchlists)."""


class _InvalidValueError(Exception):
    """Internal: one value is invalid; the caller adds where."""
