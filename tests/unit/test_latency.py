"""Tests of brokerapp.runtime.latency, the latency window of the status pages.

Percentiles are checked against numpy's on the same latencies.
"""

from __future__ import annotations

import numpy as np
import pytest

from brokerapp.runtime.latency import LatencyWindow


def test_latency_window_percentiles_within_five_percent_of_numpy():
    rng = np.random.default_rng(1)
    latencies = rng.lognormal(mean=1.0, sigma=1.0, size=20_000)
    window = LatencyWindow(60)
    for second, chunk in enumerate(np.array_split(latencies, 20)):
        window.add(1000.0 + second, chunk.tolist())
    summary = window.summary(1019.5)
    assert summary["count"] == 20_000
    assert summary["max_ms"] == pytest.approx(latencies.max())
    for name, q in (("p50_ms", 50), ("p99_ms", 99)):
        exact = np.percentile(latencies, q)
        assert exact <= summary[name] <= exact * 1.05
    assert summary["rate"] == pytest.approx(20_000 / 19.5)


def test_latency_window_forgets_what_is_older_than_the_window():
    window = LatencyWindow(60)
    window.add(100.0, [500.0] * 10)
    window.add(150.0, [2.0, 3.0])
    assert window.summary(150.0)["max_ms"] == 500.0
    later = window.summary(170.0)
    assert later["count"] == 2
    assert later["max_ms"] == 3.0
    empty = window.summary(500.0)
    assert empty == {"count": 0, "rate": 0.0, "p50_ms": None, "p99_ms": None, "max_ms": None}


def test_latency_window_counts_clock_skew_as_zero():
    window = LatencyWindow(10)
    window.add(5.0, [-3.0, 0.0, 1.0])
    summary = window.summary(5.0)
    assert summary["count"] == 3
    assert summary["p50_ms"] <= 0.01
    assert summary["max_ms"] == 1.0
