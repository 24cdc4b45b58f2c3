"""The overview page and /metrics, from plain status dicts."""

from brokerapp.model.settings import Settings
from brokerapp.tools.overview import metrics_text, render_overview, summarise, workers

GATEWAY = {
    "mirrored": 1200,
    "deadlettered": 3,
    "last_minute": {"rate": 20.0, "p50_ms": 3.0, "p99_ms": 8.0},
    "partitions": [{"lag": 5}, {"lag": 7}, {"lag": None}],
}
BRANCH = {
    "received": 1200,
    "sent": {"alerts-solar": 200, "alerts-nonsolar": 1000},
    "deadlettered": 0,
    "end_to_end": {"rate": 19.5, "p50_ms": 1.0, "p99_ms": 4.0},
}
CANDIDATES = {
    "branch": "candidates",
    "received": 500,
    "sent": {"candidates": 480, "ss-candidates": 15, "candidates-deadletter": 5},
    "deadlettered": 5,
    "end_to_end": {"rate": 8.0, "p50_ms": 2.0, "p99_ms": 6.5},
    "lag": 42,
    "lag_by_partition": {"alerts-nonsolar:0": 40, "alerts-nonsolar:1": 2, "alerts-solar:0": None},
}
OBJECTS = {
    "branch": "objects",
    "received": 480,
    "sent": {"candidate-object-updates": 470, "objects": 470},
    "deadlettered": 10,
    "end_to_end": {"rate": 7.5, "p50_ms": 3.0, "p99_ms": 9.0},
    "lag": 0,
    "lag_by_partition": {"candidates:0": 0},
}


def latency(rate, p50, p99):
    return {"count": 10, "rate": rate, "p50_ms": p50, "p99_ms": p99, "max_ms": p99}


SINK = {
    "branch": "mariadb-sink",
    "received": 1000,
    "sent": {"mariadb-sink-deadletter": 2},
    "deadlettered": 2,
    "end_to_end": {"rate": 0.0, "p50_ms": None, "p99_ms": None},
    "lag": 7,
    "store": "mariadb",
    "store_available": True,
    "retries": 0,
    "last_error": None,
    "tables": {
        "candidates": {"rows_written": 3000, "stored_latency": latency(5.0, 40.0, 120.0)},
        "ss_candidates": {"rows_written": 20, "stored_latency": latency(0.5, 300.0, 900.0)},
        "annotations": {
            "rows_written": 0,
            "stored_latency": {"count": 0, "rate": 0.0, "p50_ms": None, "p99_ms": None},
        },
        "objects": {"rows_written": 700, "stored_latency": latency(4.5, 35.0, 100.0)},
    },
}
SINK_DOWN = {
    **SINK,
    "branch": "cassandra-sink",
    "store": "cassandra",
    "store_available": False,
    "retries": 4,
    "last_error": "StoreUnavailable: no host <answered>",
}


def test_rows_take_each_workers_own_numbers():
    gateway = summarise("gateway", "http://x/gateway/", GATEWAY)
    assert (gateway["received"], gateway["lag"], gateway["p99_ms"], gateway["deadlettered"]) == (
        1200,
        12,
        8.0,
        3,
    )
    branch = summarise("ssfilter", "http://x/ssfilter/", BRANCH)
    assert (branch["received"], branch["sent"], branch["rate"], branch["lag"]) == (
        1200,
        1200,
        19.5,
        None,
    )
    down = summarise("filters", "http://x/filters/", None)
    assert down["up"] is False and down["received"] is None


def test_page_links_every_worker_and_marks_the_down_ones():
    rows = [
        summarise("gateway", "http://127.0.0.1:6066/gateway/", GATEWAY),
        summarise("filters", "http://127.0.0.1:6069/filters/", None),
    ]
    page = render_overview(rows)
    assert 'href="http://127.0.0.1:6066/gateway/"' in page
    assert (
        '<tr id="filters"><td class="worker"><a href="http://127.0.0.1:6069/filters/">filters</a>'
        '</td><td class="up">down' in page
    )
    assert '<td class="lag">12</td>' in page


def test_metrics_are_prometheus_text_with_one_series_per_worker():
    rows = [summarise("gateway", "u", GATEWAY), summarise("ssfilter", "u", BRANCH)]
    text = metrics_text(rows)
    assert 'broker_received_total{worker="ssfilter"} 1200' in text
    assert 'broker_lag{worker="gateway"} 12' in text
    assert 'broker_latency_ms{worker="gateway",quantile="0.99"} 8' in text
    assert 'broker_up{worker="ssfilter"} 1' in text
    assert "# TYPE broker_sent_total counter" in text
    assert 'broker_lag{worker="ssfilter"}' not in text


def test_every_worker_is_listed_with_its_port_and_page():
    settings = Settings(
        candidates_web_port=7001,
        objects_web_port=7002,
        mariadb_sink_web_port=7003,
        cassandra_sink_web_port=7004,
    )
    listed = workers(settings)
    assert listed["candidates"] == (7001, "candidates")
    assert listed["objects"] == (7002, "objects")
    assert listed["mariadb-sink"] == (7003, "mariadb-sink")
    assert listed["cassandra-sink"] == (7004, "cassandra-sink")
    assert {"gateway", "ssfilter", "filters", "watchlist", "crossmatch"} <= listed.keys()


def test_candidates_and_objects_rows_are_branch_rows_with_their_lag():
    row = summarise("candidates", "u", CANDIDATES)
    assert (row["received"], row["sent"], row["deadlettered"], row["lag"]) == (500, 500, 5, 42)
    assert (row["rate"], row["p50_ms"], row["p99_ms"]) == (8.0, 2.0, 6.5)
    assert row["store"] is None and row["store_available"] is None
    row = summarise("objects", "u", OBJECTS)
    assert (row["received"], row["sent"], row["deadlettered"], row["lag"]) == (480, 940, 10, 0)
    assert row["p99_ms"] == 9.0


def test_a_branch_without_lag_shows_none():
    assert summarise("ssfilter", "u", BRANCH)["lag"] is None
    assert summarise("ssfilter", "u", {**BRANCH, "lag": 3})["lag"] == 3


def test_sink_rows_show_rows_written_and_the_worst_tables_latency():
    row = summarise("mariadb-sink", "u", SINK)
    assert row["received"] == 1000
    assert row["sent"] == 3000 + 20 + 0 + 700  # rows written, not the dead-letter sends
    assert row["deadlettered"] == 2
    assert row["lag"] == 7
    assert (row["p50_ms"], row["p99_ms"]) == (300.0, 900.0)  # ss_candidates is the worst
    assert row["rate"] == 10.0  # messages stored per second, every table
    assert (row["store"], row["store_available"], row["store_error"]) == ("mariadb", True, None)


def test_a_sink_that_stored_nothing_yet_has_no_latency():
    idle = {
        **SINK,
        "tables": {
            name: {"rows_written": 0, "stored_latency": {"count": 0, "rate": 0.0}}
            for name in ("candidates", "objects")
        },
    }
    row = summarise("mariadb-sink", "u", idle)
    assert (row["sent"], row["p50_ms"], row["p99_ms"], row["rate"]) == (0, None, None, 0.0)


def test_an_unavailable_store_is_a_warning_on_the_page_and_a_zero_in_metrics():
    rows = [
        summarise("mariadb-sink", "http://h:6074/mariadb-sink/", SINK),
        summarise("cassandra-sink", "http://h:6075/cassandra-sink/", SINK_DOWN),
        summarise("ssfilter", "http://h:6067/ssfilter/", BRANCH),
    ]
    page = render_overview(rows)
    assert '<td class="store">mariadb</td>' in page
    assert (
        '<td class="store warning" title="StoreUnavailable: no host &lt;answered&gt;">'
        "cassandra unavailable</td>" in page
    )
    assert '<tr id="ssfilter">' in page and '<td class="store">-</td>' in page
    assert '<tr id="mariadb-sink"><td class="worker"><a href="http://h:6074/mariadb-sink/">' in page
    assert '<td class="sent">3720</td>' in page
    assert '<td class="p99_ms">900.0</td>' in page
    text = metrics_text(rows)
    assert 'broker_store_available{worker="mariadb-sink"} 1' in text
    assert 'broker_store_available{worker="cassandra-sink"} 0' in text
    assert 'broker_store_available{worker="ssfilter"}' not in text
    assert 'broker_sent_total{worker="mariadb-sink"} 3720' in text
    assert 'broker_lag{worker="mariadb-sink"} 7' in text


NOTIFIER = {
    "received": 40,
    "written": 31,
    "backlog": 9,
    "failures": 2,
    "bytes": 123456,
    "oldest_unsent_age_s": 12.5,
    "deadlettered": 1,
    "notifier": "email",
    "sent": {"email-deadletter": 1},
    "end_to_end": {},
}


def test_notifier_rows_show_written_backlog_failures_bytes_and_the_oldest_unwritten():
    row = summarise("email", "u", NOTIFIER)
    assert (row["received"], row["sent"], row["lag"]) == (40, 31, 9)
    assert (row["failures"], row["bytes"], row["oldest_s"]) == (2, 123456, 12.5)
    page = render_overview([row])
    assert '<td class="failures">2</td>' in page and '<td class="oldest_s">12.5</td>' in page
    text = metrics_text([row])
    assert 'broker_failures_total{worker="email"} 2' in text
    assert 'broker_oldest_unwritten_seconds{worker="email"} 12.5' in text
    listed = workers(Settings(voevent_web_port=7101, email_web_port=7102, webhooks_web_port=7103))
    assert [listed[n] for n in ("voevent", "email", "webhooks")] == [
        (7101, "voevent"),
        (7102, "email"),
        (7103, "webhooks"),
    ]


def test_history_keeps_the_last_window_of_each_workers_lag_and_p99():
    from brokerapp.tools.overview import History

    history = History(seconds=60)
    for t, lag in ((0.0, 5), (30.0, None), (50.0, 9), (100.0, 2)):
        row = {"worker": "ssfilter", "lag": lag, "p99_ms": 1800.0}
        history.record([row, {"worker": "gateway", "lag": 1, "p99_ms": None}], t)
    # The point at t=0 is older than 60 s at t=100; unknown values are left out.
    assert history.series("ssfilter", "lag") == [(50.0, 9.0), (100.0, 2.0)]
    assert history.series("ssfilter", "p99_ms") == [(50.0, 1800.0), (100.0, 1800.0)]
    assert history.series("gateway", "p99_ms") == []
    assert history.series("nobody", "lag") == []


def test_a_sparkline_spans_the_window_from_zero_to_the_largest_value():
    from brokerapp.tools.overview import sparkline

    svg = sparkline([(0.0, 0.0), (5.0, 10.0), (10.0, 5.0)], 0.0, 10.0, " ms", 102, 22)
    assert svg.startswith('<svg class="spark" width="102" height="22"')
    # x from 1 to 101 over the window; y from 21 (value 0) up to 1 (the largest value).
    assert 'points="1.0,21.0 51.0,1.0 101.0,11.0"' in svg
    assert "<title>now 5 ms, max 10 ms</title>" in svg
    assert sparkline([], 0.0, 10.0) == "-"
    assert "<circle" in sparkline([(10.0, 3.0)], 0.0, 10.0)


def test_the_page_draws_lag_and_latency_over_the_last_minutes():
    from brokerapp.tools.overview import History

    history = History(seconds=600)
    for t, p99 in ((1000.0, 4.0), (1005.0, 1800.0)):
        history.record(
            [summarise("ssfilter", "u", {**BRANCH, "lag": 3, "end_to_end": {"p99_ms": p99}})], t
        )
    page = render_overview(
        [summarise("ssfilter", "u", BRANCH), summarise("gateway", "u", None)],
        history=history,
        now=1005.0,
    )
    assert "<th>lag, last 10 min</th><th>p99 ms, last 10 min</th>" in page
    ssfilter = page.split('<tr id="ssfilter">')[1].split("</tr>")[0]
    assert '<td class="lag_trend"><svg' in ssfilter
    assert "<title>now 1800 ms, max 1800 ms</title>" in ssfilter
    gateway = page.split('<tr id="gateway">')[1].split("</tr>")[0]
    assert '<td class="lag_trend">-</td><td class="p99_ms_trend">-</td>' in gateway
