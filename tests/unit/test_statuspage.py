"""The HTML status page: what an operator reads in a browser."""

from html.parser import HTMLParser

from brokerapp.runtime.statuspage import render


class Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.headings, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in in ("td", "th"):
            self.cells.append(data)
        elif self._in in ("h2", "h3"):
            self.headings.append(data)


def parse(page):
    parser = Cells()
    parser.feed(page)
    return parser


def test_scalars_sections_and_rows_all_appear():
    status = {
        "mirrored": 1234,
        "last_minute": {"rate": 12.5, "p99_ms": None},
        "partitions": [
            {"topic": "ztf_20260101_programid1", "partition": 0, "lag": 3},
            {"topic": "lsst-alerts-20260101", "partition": 1, "lag": 0, "paused": "retry"},
        ],
        "schema_ids": {},
    }
    page = render("gateway", status, refresh=5)
    parsed = parse(page)
    assert {"mirrored", "1234", "rate", "12.500"} <= set(parsed.cells)
    assert ["last_minute", "partitions", "schema_ids"] == parsed.headings
    assert {"topic", "partition", "lag", "paused", "retry"} <= set(parsed.cells)
    assert "ztf_20260101_programid1" in parsed.cells
    assert 'http-equiv="refresh" content="5"' in page


def test_values_are_escaped():
    page = render("<b>", {"reason": "<script>alert(1)</script>"}, refresh=0)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "refresh" not in page
