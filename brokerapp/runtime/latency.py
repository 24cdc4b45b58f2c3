"""Latency and rate over a sliding window, in constant memory: what the status pages show.

The gateway, the branches and the sinks each keep a few :class:`LatencyWindow` objects (e.g.
processing time per alert, and latency since the upstream timestamp) and summarise them as
counts, rates and percentiles. A window is a deque of one-second buckets; each bucket holds a
message count, the largest latency and a histogram of latencies with log-spaced bins, 50 per
decade from 0.01 ms (bin ``i`` covers up to ``0.01 * 10 ** (i / 50)`` ms), so a percentile is
exact to about 5 % and memory does not grow with the message rate.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["LatencyWindow"]

_LATENCY_BINS_PER_DECADE = 50
_LATENCY_MIN_MS = 0.01


def _bin_of(latency_ms: float) -> int:
    if latency_ms <= _LATENCY_MIN_MS:
        return 0
    return 1 + int(math.log10(latency_ms / _LATENCY_MIN_MS) * _LATENCY_BINS_PER_DECADE)


def _bin_upper(index: int) -> float:
    return _LATENCY_MIN_MS * 10.0 ** (index / _LATENCY_BINS_PER_DECADE)


@dataclass
class _Second:
    second: int
    count: int = 0
    maximum: float = 0.0
    bins: dict[int, int] = field(default_factory=dict)


class LatencyWindow:
    """Counts and latencies of the last ``window`` seconds, in one-second buckets.

    Each second keeps its message count, largest latency and a log-spaced histogram of
    latencies (50 bins per decade, so a percentile is exact to about 5 %); memory does not grow
    with the message rate. Times are passed in by the caller (seconds, any monotonic or wall
    clock), which keeps the class free of clocks and testable.

    Parameters
    ----------
    window : int
        Seconds of history kept and summarised.
    """

    def __init__(self, window: int = 60):
        if window < 1:
            raise ValueError("window must be at least one second")
        self.window = window
        self._seconds: deque[_Second] = deque()

    def _bucket(self, now: float) -> _Second:
        second = int(now)
        if not self._seconds or self._seconds[-1].second < second:
            self._seconds.append(_Second(second))
        self._expire(now)
        return self._seconds[-1]

    def _expire(self, now: float) -> None:
        oldest = int(now) - self.window + 1
        while self._seconds and self._seconds[0].second < oldest:
            self._seconds.popleft()

    def add(self, now: float, latencies_ms: Iterable[float]) -> None:
        """Record messages that arrived at ``now`` with their latencies.

        Parameters
        ----------
        now : float
            Current time in seconds.
        latencies_ms : iterable of float
            One latency per message, in milliseconds (negative values, from clock skew
            between hosts, count as 0).
        """
        bucket = self._bucket(now)
        bins = bucket.bins
        for latency in latencies_ms:
            latency = max(latency, 0.0)
            bucket.count += 1
            bucket.maximum = max(bucket.maximum, latency)
            index = _bin_of(latency)
            bins[index] = bins.get(index, 0) + 1

    def summary(self, now: float) -> dict[str, float | int | None]:
        """Summarise the last ``window`` seconds before ``now``.

        Parameters
        ----------
        now : float
            Current time in seconds.

        Returns
        -------
        dict
            ``count`` (messages), ``rate`` (messages per second over the window, or over the
            time since the first message when that is shorter), ``p50_ms``, ``p99_ms`` and
            ``max_ms`` (None when no message arrived in the window). Percentiles are the upper
            edge of their histogram bin, never above the true maximum.
        """
        self._expire(now)
        count = sum(b.count for b in self._seconds)
        result: dict[str, float | int | None] = {
            "count": count,
            "rate": 0.0,
            "p50_ms": None,
            "p99_ms": None,
            "max_ms": None,
        }
        if not count:
            return result
        span = min(self.window, max(1.0, now - self._seconds[0].second))
        maximum = max(b.maximum for b in self._seconds)
        merged: dict[int, int] = {}
        for bucket in self._seconds:
            for index, n in bucket.bins.items():
                merged[index] = merged.get(index, 0) + n
        indices = sorted(merged)
        cumulative = []
        total = 0
        for index in indices:
            total += merged[index]
            cumulative.append(total)
        for name, quantile in (("p50_ms", 0.5), ("p99_ms", 0.99)):
            rank = max(1, math.ceil(quantile * count))
            index = indices[bisect.bisect_left(cumulative, rank)]
            result[name] = min(_bin_upper(index), maximum)
        result["rate"] = count / span
        result["max_ms"] = maximum
        return result
