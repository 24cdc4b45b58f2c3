"""Retry delays: exponential backoff with a ceiling.

The gateway, the branches and the sinks retry an outage (schema registry, database) after a
delay that doubles with each attempt, from the configured initial delay up to its maximum.
"""

from __future__ import annotations

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Parameters
    ----------
    attempt : int
        Retry number, from 1.
    initial : float
        Wait before the first retry.
    maximum : float
        Longest wait.

    Returns
    -------
    float
        ``min(maximum, initial * 2 ** (attempt - 1))``.

    Raises
    ------
    ValueError
        If ``attempt`` is below 1.
    """
    if attempt < 1:
        raise ValueError(f"retry numbers start at 1, not {attempt}")
    exponent = min(attempt - 1, 64)
    return min(maximum, initial * 2.0**exponent)
