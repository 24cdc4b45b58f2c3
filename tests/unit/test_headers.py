"""Tests of brokerapp.wire.headers: origin headers of mirrored alerts and dead-letter headers.

Expected header values are written out literally, never computed by the code under test.
"""

from __future__ import annotations

import pytest

from brokerapp.domain.remap import upstream_schema_id
from brokerapp.wire.codecs import DecodeError
from brokerapp.wire.headers import deadletter_headers, trace_headers


def test_trace_headers_keep_upstream_and_add_origin():
    upstream = [("producer", b"rubin"), ("trace-id", b"\x00\x01"), ("producer", b"again")]
    headers = trace_headers(upstream, "lsst-alerts-2025-01-02", 7, 123456789, 1735776000123)
    assert headers == [
        ("producer", b"rubin"),
        ("trace-id", b"\x00\x01"),
        ("producer", b"again"),
        ("origin-topic", b"lsst-alerts-2025-01-02"),
        ("origin-partition", b"7"),
        ("origin-offset", b"123456789"),
        ("origin-timestamp", b"1735776000123"),
    ]
    assert upstream == [("producer", b"rubin"), ("trace-id", b"\x00\x01"), ("producer", b"again")]


def test_trace_headers_without_upstream_headers():
    expected = [
        ("origin-topic", b"ztf_20250102_programid1"),
        ("origin-partition", b"0"),
        ("origin-offset", b"0"),
        ("origin-timestamp", b"1"),
    ]
    assert trace_headers(None, "ztf_20250102_programid1", 0, 0, 1) == expected
    assert trace_headers([], "ztf_20250102_programid1", 0, 0, 1) == expected


def test_trace_headers_do_not_stack_on_remirror():
    first = trace_headers([("producer", b"rubin")], "upstream", 1, 10, 1000)
    second = trace_headers(first, "alerts", 2, 20, 2000)
    assert second == [
        ("producer", b"rubin"),
        ("origin-topic", b"alerts"),
        ("origin-partition", b"2"),
        ("origin-offset", b"20"),
        ("origin-timestamp", b"2000"),
    ]
    names = [name for name, _ in second]
    assert len(names) - len(set(names)) == 0
    # Other headers that merely start with "origin" are kept.
    kept = trace_headers([("origin-site", b"chile")], "t", 0, 0, 0)
    assert kept[0] == ("origin-site", b"chile")


def test_trace_headers_reject_non_integer_numbers():
    with pytest.raises(TypeError):
        trace_headers(None, "t", 0, 1.5, 0)


def test_deadletter_headers_carry_reason_mode_and_schema_id():
    error = DecodeError("confluent", "unknown schema ID", schema_id=314)
    headers = deadletter_headers(str(error), error, "lsst-alerts", 3, 99)
    assert headers == [
        ("error-reason", b"confluent decode failed (schema_id=314): unknown schema ID"),
        ("error-mode", b"confluent"),
        ("error-schema-id", b"314"),
        ("origin-topic", b"lsst-alerts"),
        ("origin-partition", b"3"),
        ("origin-offset", b"99"),
    ]


def test_deadletter_headers_from_a_real_bad_frame():
    try:
        upstream_schema_id(b"\x07abc")
    except DecodeError as error:
        headers = dict(deadletter_headers("bad frame", error, "t", 0, 5))
    assert headers["error-reason"] == b"bad frame"
    assert headers["error-mode"] == b"confluent"
    assert "error-schema-id" not in headers
    assert headers["origin-offset"] == b"5"


def test_deadletter_headers_for_other_errors():
    headers = deadletter_headers("registry said 409 — conflict", RuntimeError("x"), "t", 1, 2)
    assert headers == [
        ("error-reason", "registry said 409 — conflict".encode()),
        ("error-mode", b"unknown"),
        ("origin-topic", b"t"),
        ("origin-partition", b"1"),
        ("origin-offset", b"2"),
    ]
