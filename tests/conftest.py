"""Options of the whole test suite.

``--need-servers`` (``make test`` and CI pass it, after starting every server): a test that
needs a server which is not answering fails instead of skipping, so a database that crashed
cannot turn into a green run with skips. Without it (``pytest tests/integration`` run by hand
on purpose with only some servers up) such tests skip with the reason.
"""


def pytest_addoption(parser):
    parser.addoption(
        "--need-servers",
        action="store_true",
        default=False,
        help="fail, not skip, a test whose server is not answering (make test sets it)",
    )
