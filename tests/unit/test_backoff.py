"""Tests of brokerapp.runtime.backoff."""

from __future__ import annotations

import pytest

from brokerapp.runtime.backoff import backoff_delay


def test_backoff_doubles_up_to_the_maximum():
    assert [backoff_delay(n, 0.5, 3.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_delay(10_000, 0.5, 30.0) == 30.0
    with pytest.raises(ValueError):
        backoff_delay(0, 0.5, 3.0)
