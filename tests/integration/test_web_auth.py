"""The watchlist worker's write endpoints need the bearer token; its read pages stay open.

Run as a user runs the worker (``faust -A agents.watchlist worker``) against the real Kafka.
Binding beyond loopback in a test would expose the worker to the network, so the served
checks use ``web_auth=always`` on loopback; the choice between the two (``auto`` beyond
loopback) is covered in ``tests/unit/test_webauth.py``, and a worker told to bind
``0.0.0.0`` without a token is shown refusing to start before it binds anything.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from .test_branches import WATCHLISTS, branch, runs  # noqa: F401  (runs is a fixture)

TOKEN = "test-token-s3cret"


def names(run):
    return {
        "BROKER_WATCHLIST_SOURCE_TOPIC": f"{run.prefix}-alerts",
        "BROKER_WATCHLIST_CONTROL_TOPIC": f"{run.prefix}-watchlist-control",
        "BROKER_ANNOTATIONS_TOPIC": f"{run.prefix}-annotations",
        "BROKER_ANNOTATED_ALERTS_TOPIC": f"{run.prefix}-annotated-alerts",
    }


def call(url, method, data=None, token=None):
    request = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response), dict(response.headers)
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read()), dict(refused.headers)


def test_writes_without_the_token_are_refused_and_change_nothing(services, tmp_path, runs):  # noqa: F811
    run = branch(tmp_path, "agents.watchlist", "watchlist", "BROKER_WATCHLIST_WEB_PORT")
    run.env_overrides.update(
        names(run), BROKER_WEB_AUTH="always", BROKER_WEB_TOKEN=TOKEN, BROKER_ALERTS_PARTITIONS="4"
    )
    runs.append(run)
    run.start()
    url = f"http://127.0.0.1:{run.port}/watchlist/watchlists/wl1?name=test&owner=me"
    body = (WATCHLISTS / "watchlist.csv").read_bytes()

    for token in (None, "wrong-token"):
        status, answer, headers = call(url, "PUT", body, token)
        assert status == 401, answer
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert TOKEN not in json.dumps(answer)
    status, answer, _ = call(url, "DELETE")
    assert status == 401, answer
    assert run.status()["commands"] == {}  # nothing reached the control topic

    # Read pages stay open.
    assert call(f"http://127.0.0.1:{run.port}/watchlist/watchlists/", "GET")[:2] == (200, {})
    assert "watchlists" in run.status()

    status, answer, _ = call(url, "PUT", body, TOKEN)
    assert status == 200, answer
    assert answer["accepted"] == "wl1"
    run.wait_status(lambda s: s["commands"].get("commit") == 1, what="the upload to be applied")
    assert call(f"http://127.0.0.1:{run.port}/watchlist/watchlists/", "GET")[1]["wl1"]["owner"] == (
        "me"
    )
    status, answer, _ = call(url, "DELETE", token=TOKEN)
    assert status == 200, answer
    run.wait_status(lambda s: s["watchlists"] == 0, what="the delete to be applied")
    run.stop()
    assert TOKEN not in run.log()


def test_a_worker_bound_beyond_loopback_without_a_token_refuses_to_start(
    services,
    tmp_path,
    runs,  # noqa: F811
):
    run = branch(tmp_path, "agents.watchlist", "watchlist", "BROKER_WATCHLIST_WEB_PORT")
    run.env_overrides.update(names(run), BROKER_WEB_BIND="0.0.0.0")
    runs.append(run)
    with pytest.raises(AssertionError, match="exited"):
        run.start()
    assert "need a bearer token" in run.log()
    assert "BROKER_WEB_TOKEN" in run.log()
