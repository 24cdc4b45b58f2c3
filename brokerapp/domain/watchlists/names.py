"""Solar-system object names: one normal form for watchlists and alerts.

Solar-system object names (:func:`normalise_object_name`)
    Alerts name a solar-system object as ZTF ``candidate.ssnamenr`` (a string: ``"2830"``
    for a numbered asteroid, a designation such as ``"2018VB12"`` otherwise) or LSST
    ``ssObjectId`` (a 64-bit integer) or MPC designation. Watchlists and alerts are
    compared on one normal form, a string:

    - integers (Python or numpy, not bool): their decimal form, ``2830 -> "2830"``; must be
      > 0 (0 is Rubin's "no object");
    - strings: all whitespace removed (``"2018 VB12"`` and ZTF's ``"2018VB12"`` agree); a
      string of ASCII digits loses leading zeros (``"002830" -> "2830"``, so an integer and
      its string agree); case is kept; empty, ``"0"`` and ZTF's ``"null"`` are errors;
    - floats are refused: a 64-bit ``ssObjectId`` does not survive a float.

    Packed and unpacked MPC designations (``K12J69D`` and ``2012 JD69``) are not converted
    into each other. :func:`object_key` is the forgiving form for the alert side (None for
    no object).

"""

from __future__ import annotations

from typing import Any

import numpy as np

from brokerapp.domain.watchlists.problems import WatchlistError, _InvalidValueError

__all__ = ["normalise_object_name", "object_key"]


def _normalise_object(value: Any) -> str:
    """Return the normal form of an object name or ID (raises :class:`_InvalidValueError`)."""
    if isinstance(value, bool | np.bool_):
        raise _InvalidValueError(f"{value!r} is not an object name or ID")
    if isinstance(value, int | np.integer):
        if value <= 0:
            raise _InvalidValueError(
                f"{value} is not an object ID (IDs are > 0; 0 means no object)"
            )
        return str(int(value))
    if isinstance(value, float | np.floating):
        raise _InvalidValueError(
            f"{value!r} is a float: give IDs as integers or strings (a 64-bit ssObjectId "
            "does not survive a float)"
        )
    if not isinstance(value, str):
        raise _InvalidValueError(f"expected a string or an integer, got {type(value).__name__}")
    text = "".join(value.split())
    if not text:
        raise _InvalidValueError("empty value")
    if text.lower() == "null":
        raise _InvalidValueError("'null' is ZTF's marker for no object")
    if any(ord(char) < 32 or 127 <= ord(char) < 160 for char in text):
        raise _InvalidValueError(f"{text!r} contains a control character")
    if text.isascii() and text.isdigit():
        number = int(text)
        if number == 0:
            raise _InvalidValueError(f"{value!r} is not an object ID (0 means no object)")
        return str(number)
    return text


def normalise_object_name(value: Any) -> str:
    """Return the normal form of a solar-system object name or ID.

    Parameters
    ----------
    value : str or int
        A ZTF ``ssnamenr`` (``"2830"``, ``"2018VB12"``), an LSST ``ssObjectId``
        (``21164719644750924``) or an MPC designation.

    Returns
    -------
    str
        The normal form (see the module docstring): ``2830``, ``"2830"`` and ``"002830"``
        give ``"2830"``; ``"2018 VB12"`` gives ``"2018VB12"``.

    Raises
    ------
    WatchlistError
        For a float, a bool, 0, an empty string or ``"null"``.
    """
    try:
        return _normalise_object(value)
    except _InvalidValueError as exc:
        raise WatchlistError(str(exc), source="object name") from None


def object_key(value: Any) -> str | None:
    """Return :func:`normalise_object_name` of ``value``, or None if it names no object.

    For the alert side: ``None``, ``0``, ``""``, ``"null"`` and anything else that is not a
    valid name or ID give None instead of an error.

    Parameters
    ----------
    value : Any
        An alert's ``ssnamenr``, ``ssObjectId`` or designation.

    Returns
    -------
    str or None
        The normal form, or None.
    """
    if value is None:
        return None
    try:
        return _normalise_object(value)
    except _InvalidValueError:
        return None
