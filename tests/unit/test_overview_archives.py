"""The image and light-curve archivers on the overview: a row each, as slow branches."""

from brokerapp.model.settings import Settings
from brokerapp.tools.overview import summarise, workers


def test_the_archivers_are_listed_at_their_ports():
    listed = workers(Settings(cutout_archive_web_port=7201, lightcurve_archive_web_port=7202))
    assert listed["cutout-archive"] == (7201, "cutout-archive")
    assert listed["lightcurve-archive"] == (7202, "lightcurve-archive")


def test_an_archiver_row_shows_files_bytes_failures_backlog_and_oldest():
    status = {
        "notifier": "cutout-archive",
        "received": 12,
        "written": 99,
        "bytes": 123456,
        "failures": 1,
        "backlog": 30,
        "oldest_unsent_age_s": 4.5,
        "deadlettered": 1,
    }
    row = summarise("cutout-archive", "http://127.0.0.1:7201/cutout-archive/", status)
    assert (row["received"], row["sent"], row["bytes"]) == (12, 99, 123456)
    assert (row["failures"], row["lag"], row["oldest_s"], row["deadlettered"]) == (1, 30, 4.5, 1)
