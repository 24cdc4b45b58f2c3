"""The overview page as a person sees it: rendered by headless Chromium, against the JSON.

A real ssfilter worker reads sample alerts, ``brokerapp overview`` runs on a free port, and
Debian's ``chromium`` (``make install`` installs it) renders the page: ``--dump-dom`` gives
the DOM after load, whose table must show the numbers ``/status.json`` gives at about the
same time, and ``--screenshot`` writes a PNG under the test's ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .test_branches import branch, fill_buffer, samples
from .workers import free_port

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

#: Every worker the overview asks, by its port setting: all but ssfilter get a port nobody
#: listens on, so that the test sees only its own worker whatever else runs on this machine.
PORT_SETTINGS = [
    "BROKER_GATEWAY_WEB_PORT",
    "BROKER_FILTERS_WEB_PORT",
    "BROKER_WATCHLIST_WEB_PORT",
    "BROKER_CROSSMATCH_WEB_PORT",
    "BROKER_NODE_WEB_PORT",
    "BROKER_CANDIDATES_WEB_PORT",
    "BROKER_OBJECTS_WEB_PORT",
    "BROKER_MARIADB_SINK_WEB_PORT",
    "BROKER_CASSANDRA_SINK_WEB_PORT",
]


@pytest.fixture
def runs():
    started = []
    yield started
    for run in started:
        run.stop()


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("`chromium` is not on PATH: run `make install` (it apt-installs chromium)")
    return path


def run_chromium(profile: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """Run Chromium headless with a profile of its own (under the test's tmp_path)."""
    result = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-4000:]
    return result


class OverviewTable(HTMLParser):
    """The overview table's rows: worker -> {cell class: text}, plus each row's link."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.links: dict[str, str] = {}
        self._row: str | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tr" and attributes.get("id"):
            self._row = attributes["id"]
            self.rows[self._row] = {}
        elif tag == "td" and self._row is not None:
            self._cell = (attributes.get("class") or "?").split()[0]
            self.rows[self._row][self._cell] = ""
        elif tag == "a" and self._row is not None and self._cell == "worker":
            self.links[self._row] = attributes.get("href", "")

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row is not None and self._cell is not None:
            self.rows[self._row][self._cell] += data


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def number(text: str) -> float | None:
    return None if text.strip() == "-" else float(text)


async def test_overview_in_headless_chromium_shows_the_json_numbers(
    services, settings, tmp_path, runs
):
    chromium()  # fails at once, saying to run `make install`, when it is missing
    run = branch(tmp_path, "agents.ssfilter", "ssfilter", "BROKER_SSFILTER_WEB_PORT")
    run.env_overrides.update(
        BROKER_SOLAR_TOPIC=f"{run.prefix}-solar",
        BROKER_NONSOLAR_TOPIC=f"{run.prefix}-nonsolar",
        BROKER_ALERTS_PARTITIONS="4",
    )
    alerts = samples("ztf")
    await fill_buffer(settings, run.alerts, alerts)
    runs.append(run)
    run.start()
    # The stream has ended: every alert read and sent, nothing left to read.
    own_status = run.wait_status(
        lambda s: sum(s["sent"].values()) >= 2 * len(alerts) and s.get("lag") == 0
    )
    # The branch's own lag: per partition of its input, high watermark minus next to read.
    assert own_status["lag_by_partition"] == {f"{run.alerts}:{p}": 0 for p in range(4)}

    port = free_port()
    env = {**os.environ, **run.env(), **{name: str(free_port()) for name in PORT_SETTINGS}}
    log = open(tmp_path / "overview.log", "wb")  # noqa: SIM115
    overview = subprocess.Popen(
        [sys.executable, "-m", "brokerapp", "overview", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get_json(f"{base}/status.json")
                break
            except OSError:
                assert overview.poll() is None, (tmp_path / "overview.log").read_text()
                assert time.monotonic() < deadline, "overview did not answer"
                time.sleep(0.3)

        dom = run_chromium(tmp_path / "profile-dom", "--dump-dom", f"{base}/").stdout
        rows = {row["worker"]: row for row in get_json(f"{base}/status.json")}
        (tmp_path / "overview.html").write_bytes(dom)
        table = OverviewTable()
        table.feed(dom.decode())

        # Every worker the JSON lists is a row of the page, linked to its own page.
        assert set(table.rows) == set(rows)
        for name, row in rows.items():
            assert table.links[name] == row["url"]
            assert table.rows[name]["up"] == ("up" if row["up"] else "down")
        assert table.links["ssfilter"] == f"http://127.0.0.1:{run.port}/ssfilter/"
        assert {"candidates", "objects", "mariadb-sink", "cassandra-sink"} <= set(rows)

        shown, own = table.rows["ssfilter"], rows["ssfilter"]
        assert own["up"] is True
        # Counts after the stream has ended are equal in both reads.
        for field in ("received", "sent", "deadlettered", "lag"):
            assert number(shown[field]) == own[field], field
        # Each alert to its split stream and its cutouts once to the cutouts topic.
        assert own["received"] == len(alerts) and own["sent"] == 2 * len(alerts)
        assert own["lag"] == 0 and own["deadlettered"] == 0
        # Rates and latencies move between the two reads: present, and roughly the same. With
        # no new alerts the last minute's rate only falls, so the page (read first) shows at
        # least the rate of the JSON (read after it); it is rounded to 0.1 on the page.
        assert own["rate"] > 0
        assert number(shown["rate"]) >= own["rate"] - 0.05
        for field in ("p50_ms", "p99_ms"):
            assert own[field] is not None, field
            assert number(shown[field]) == pytest.approx(own[field], rel=0.5, abs=1.0), field
        assert shown["store"] == "-"
        for name, row in rows.items():
            if not row["up"]:
                assert all(table.rows[name][f] == "-" for f in ("received", "sent", "lag"))

        screenshot = tmp_path / "overview.png"
        run_chromium(
            tmp_path / "profile-shot",
            f"--screenshot={screenshot}",
            "--window-size=1400,900",
            "--hide-scrollbars",
            f"{base}/",
        )
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert screenshot.stat().st_size > 5000
        print(f"overview screenshot: {screenshot}")
    finally:
        overview.terminate()
        overview.wait(10)
