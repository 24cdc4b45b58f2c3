"""With Kafka up and only the schema registry down, commands still fail in one line.

The real local Kafka answers; the registry settings point at a port nobody listens on. The
closed-port cases with every server down are in ``tests/unit/test_cli_unreachable.py``.
"""

import os
import socket
import subprocess
import sys

import pytest

from brokerapp.adapters.kafka_admin import delete_topics

HINT = "start the local servers with `make services`"


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args, **env):
    return subprocess.run(
        [sys.executable, "-m", "brokerapp", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_produce_names_the_registry_that_did_not_answer(
    settings, services, unique_topic, closed_port
):
    registry = f"http://127.0.0.1:{closed_port}/apis/ccompat/v7"
    try:
        done = _run(
            ["produce", "--simulate", "1", "--topic", unique_topic, "--no-progress"],
            BROKER_REGISTRY_URL=registry,
        )
    finally:
        delete_topics(settings.kafka_bootstrap, [unique_topic])
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"Error: schema registry at {registry} did not answer (ConnectError: ")
    assert line.endswith(HINT)


def test_inline_produce_needs_no_registry(settings, services, unique_topic, closed_port):
    try:
        done = _run(
            [
                "produce",
                "--simulate",
                "2",
                "--mode",
                "inline",
                "--topic",
                unique_topic,
                "--no-progress",
            ],
            BROKER_REGISTRY_URL=f"http://127.0.0.1:{closed_port}/apis/ccompat/v7",
        )
    finally:
        delete_topics(settings.kafka_bootstrap, [unique_topic])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("produced 2 ")


def test_commands_run_as_before_when_kafka_answers(settings, services):
    done = _run(["-v", "topics", "--pattern", "^no-such-topic-anywhere$"])
    assert done.returncode == 0, done.stderr
    assert done.stderr == "no topics match\n"
