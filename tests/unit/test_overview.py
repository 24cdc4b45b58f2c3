"""The overview page and /metrics, from plain status dicts."""

from brokerapp.overview import metrics_text, render_overview, summarise

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
        '<tr id="filters"><td><a href="http://127.0.0.1:6069/filters/">filters</a></td><td>down'
        in page
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
