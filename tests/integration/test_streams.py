"""``brokerapp streams`` and the overview's ``/streams/``, as a user runs and fetches them.

The CLI runs as a subprocess (``python -m brokerapp``); ``brokerapp overview`` runs on a free
port and is fetched over HTTP. Every description is checked with ``jsonschema`` against the
schema file shipped in the repository; neither needs a Kafka or registry server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import fastavro
import jsonschema
import pytest

from .workers import REPO, free_port

SCHEMA_FILE = REPO / "brokerapp" / "model" / "stream_description.schema.json"


def validator():
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    import os

    out = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    out.update(BROKER_HOME=str(tmp_path / "home"), BROKER_FILTERS="[3]", **extra)
    return out


def cli(args, environment):
    return subprocess.run(
        [sys.executable, "-m", "brokerapp", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_streams_describe_prints_valid_descriptions(tmp_path):
    done = cli(["streams", "describe"], env(tmp_path, BROKER_ALERTS_TOPIC="site-alerts"))
    assert done.returncode == 0, done.stderr
    documents = json.loads(done.stdout)
    for document in documents:
        assert list(validator().iter_errors(document)) == [], document["name"]
    topics = [d["kafka"]["topic"] for d in documents]
    assert "site-alerts" in topics and "Filter003" in topics and "voevents" in topics

    one = cli(
        ["streams", "describe", "site-alerts"], env(tmp_path, BROKER_ALERTS_TOPIC="site-alerts")
    )
    assert one.returncode == 0, one.stderr
    alerts = json.loads(one.stdout)
    assert alerts["name"] == "alerts"
    assert alerts["value"]["schema"]["subject"] == "site-alerts-value"


def test_streams_describe_of_an_unknown_stream_fails_in_one_line(tmp_path):
    done = cli(["streams", "describe", "nope"], env(tmp_path))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == ["Error: no output stream or topic 'nope'"]


def test_streams_check_names_the_broken_field(tmp_path):
    done = cli(["streams", "describe", "voevents"], env(tmp_path))
    document = json.loads(done.stdout)
    good = tmp_path / "good.json"
    good.write_text(json.dumps([document]))
    checked = cli(["streams", "check", str(good)], env(tmp_path))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{good}: 1 valid description(s)"

    del document["voevent"]["vtp"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    refused = cli(["streams", "check", str(bad)], env(tmp_path))
    assert refused.returncode == 1
    (line,) = refused.stderr.splitlines()
    assert line.startswith(f"Error: {bad}: stream 'voevents': voevent.vtp: ")


@pytest.fixture
def overview(tmp_path):
    port = free_port()
    environment = env(tmp_path, BROKER_STREAMS_PUBLIC_URL=f"http://127.0.0.1:{port}")
    log = open(tmp_path / "overview.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "brokerapp", "overview", "--port", str(port)],
        cwd=REPO,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, (tmp_path / "overview.log").read_text()
        try:
            urllib.request.urlopen(f"{base}/streams/", timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "overview did not answer"
            time.sleep(0.2)
    yield base, environment
    process.terminate()
    process.wait(30)


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_overview_serves_the_descriptions_and_the_schema_file_they_name(overview):
    base, environment = overview
    served = fetch(f"{base}/streams/")
    for document in served:
        assert list(validator().iter_errors(document)) == [], document["name"]
    printed = cli(["streams", "describe"], environment)
    assert served == json.loads(printed.stdout)

    assert fetch(f"{base}/streams/alerts")["kafka"]["topic"] == "alerts"
    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch(f"{base}/streams/nope")
    assert missing.value.code == 404

    # The json-file stream's URL is served, and is an Avro schema a reader can use.
    (cutouts,) = [d for d in served if d["name"] == "cutouts"]
    url = cutouts["value"]["schema"]["url"]
    assert url == f"{base}/streams/schemas/cutouts_v1.avsc"
    schema = fastavro.parse_schema(fetch(url))
    assert schema["name"] == "brokerapp.cutouts_v1"
