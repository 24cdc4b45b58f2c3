"""Every `brokerapp` command whose server does not answer fails in one line, as a user sees it.

Each command runs as a user types it (`python -m brokerapp ...` in a subprocess) with every
server setting pointing at a port nobody listens on (found by binding a socket and closing
it), so no server is needed. A port with a listener that never answers stands for a hung
server: there the command waits `cli_connect_timeout`, set small here, and says so.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WATCHLISTS = Path(__file__).parents[1] / "data" / "watchlists"
HINT = "start the local servers with `make services`"
#: Only a guard against a hung command, not a measure of anything.
HANG_GUARD_SECONDS = 300


def _closed_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.fixture(scope="module")
def ports():
    """(local, upstream): two distinct closed ports."""
    return tuple(_closed_ports(2))


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def _env(tmp_path, local, upstream, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env.update(
        {
            "BROKER_HOME": str(tmp_path / "home"),
            "BROKER_KAFKA_BOOTSTRAP": f"127.0.0.1:{local}",
            "BROKER_UPSTREAM_BOOTSTRAP": f"127.0.0.1:{upstream}",
            "BROKER_UPSTREAM_FEED_BOOTSTRAP": f"127.0.0.1:{upstream}",
            "BROKER_REGISTRY_URL": f"http://127.0.0.1:{local}/apis/ccompat/v7",
            "BROKER_UPSTREAM_REGISTRY_URL": f"http://127.0.0.1:{upstream}/apis/ccompat/v7",
            "BROKER_MARIADB_PORT": str(local),
            "BROKER_CASSANDRA_PORT": str(local),
        }
    )
    env.update(extra)
    return env


def _run(args, env):
    return subprocess.run(
        [sys.executable, "-m", "brokerapp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )


def _assert_quiet_failure(done, lines=1):
    """Non-zero exit, nothing on stdout, `lines` lines on stderr, no traceback, no log noise."""
    assert done.returncode != 0, done.stdout
    assert done.stdout == ""
    assert "Traceback" not in done.stderr, done.stderr
    assert "%3|" not in done.stderr and "FAIL" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == lines, done.stderr
    return done.stderr.splitlines()


LOCAL_KAFKA_COMMANDS = {
    "topics": ["topics"],
    "topics grow": ["topics", "grow", "alerts", "--partitions", "24"],
    "topics delete": ["topics", "delete", "some-topic"],
    "replay": ["replay", "some-group", "--to-earliest"],
    "tail": ["tail", "--topic", "alerts"],
    "cutouts": ["cutouts", "739260766315010006"],
    "registry export": ["registry", "export"],
    "produce": ["produce", "--simulate", "1", "--topic", "some-topic"],
    "produce --from-db": ["produce", "--from-db", "candidates", "--topic", "some-topic"],
    "watchlist put": ["watchlist", "put", "w1", str(WATCHLISTS / "watchlist.csv")],
    "watchlist delete": ["watchlist", "delete", "w1"],
    "watchlist put-objects": [
        "watchlist",
        "put-objects",
        "s1",
        str(WATCHLISTS / "solar_system.csv"),
    ],
}


@pytest.mark.parametrize("args", LOCAL_KAFKA_COMMANDS.values(), ids=LOCAL_KAFKA_COMMANDS.keys())
def test_kafka_commands_name_the_local_cluster_in_one_line(tmp_path, ports, args):
    local, upstream = ports
    (line,) = _assert_quiet_failure(_run(args, _env(tmp_path, local, upstream)))
    assert line == (
        f"Error: Kafka at 127.0.0.1:{local} did not answer "
        f"(Connect to ipv4#127.0.0.1:{local} failed: Connection refused); {HINT}"
    )


UPSTREAM_KAFKA_COMMANDS = {
    "topics --upstream": ["topics", "--upstream"],
    "topics grow --upstream": ["topics", "grow", "t", "-p", "2", "--upstream"],
    "topics delete --upstream": ["topics", "delete", "t", "--upstream"],
    "tail --upstream": ["tail", "--pattern", "^ztf_", "--upstream"],
    "produce --upstream": ["produce", "--simulate", "1", "--daily", "--upstream"],
}


@pytest.mark.parametrize(
    "args", UPSTREAM_KAFKA_COMMANDS.values(), ids=UPSTREAM_KAFKA_COMMANDS.keys()
)
def test_upstream_commands_name_the_upstream_cluster(tmp_path, ports, args):
    local, upstream = ports
    (line,) = _assert_quiet_failure(_run(args, _env(tmp_path, local, upstream)))
    assert line.startswith(f"Error: upstream Kafka at 127.0.0.1:{upstream} did not answer (")
    assert line.endswith(HINT)


def test_filter_names_the_cluster_of_its_bootstrap_argument(tmp_path, ports):
    local, upstream = ports
    (other,) = _closed_ports(1)
    done = _run(["filter", f"127.0.0.1:{other}", "alerts", "7"], _env(tmp_path, local, upstream))
    (line,) = _assert_quiet_failure(done)
    assert line.startswith(f"Error: Kafka at 127.0.0.1:{other} did not answer (")
    assert "Connection refused" in line and line.endswith(HINT)
    # No worker was started: its banner would be on stderr.
    assert "Filter007" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [["topics"], ["watchlist", "put", "w1", str(WATCHLISTS / "watchlist.csv")]],
    ids=["topics", "watchlist put"],
)
def test_a_silent_server_is_given_cli_connect_timeout(tmp_path, ports, silent_port, args):
    local, upstream = ports
    env = _env(tmp_path, local, upstream, BROKER_KAFKA_BOOTSTRAP=f"127.0.0.1:{silent_port}")
    env["BROKER_CLI_CONNECT_TIMEOUT"] = "0.6"
    (line,) = _assert_quiet_failure(_run(args, env))
    assert line == (
        f"Error: Kafka at 127.0.0.1:{silent_port} did not answer within 0.6 s (no reply); {HINT}"
    )


STORE_COMMANDS = {
    "db migrate": (["db", "migrate"], ["mariadb", "cassandra"]),
    "db migrate --store cassandra": (["db", "migrate", "--store", "cassandra"], ["cassandra"]),
    "db status": (["db", "status"], ["mariadb", "cassandra"]),
    "object": (["object", "ZTF24aaaaaaa"], ["mariadb"]),
    "object --store cassandra": (["object", "ZTF24aaaaaaa", "--store", "cassandra"], ["cassandra"]),
}


@pytest.mark.parametrize("args,kinds", STORE_COMMANDS.values(), ids=STORE_COMMANDS.keys())
def test_store_commands_name_each_store_in_a_line(tmp_path, ports, args, kinds):
    local, upstream = ports
    lines = _assert_quiet_failure(_run(args, _env(tmp_path, local, upstream)), len(kinds))
    names = {"mariadb": "MariaDB", "cassandra": "Cassandra"}
    for line, kind in zip(lines, kinds, strict=True):
        assert line.startswith(f"{kind}: unavailable: {names[kind]} (")
        assert f"127.0.0.1:{local}) did not answer (" in line
        assert "refused" in line
        assert line.endswith(HINT)


def test_verbose_shows_librdkafka_lines_through_python_logging(tmp_path, ports):
    local, upstream = ports
    done = _run(["-v", "topics"], _env(tmp_path, local, upstream))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "%3|" not in done.stderr
    *logged, error = done.stderr.splitlines()
    assert all(line.startswith("librdkafka ") for line in logged), done.stderr
    assert any(
        line.startswith("librdkafka ERROR: FAIL [rdkafka#")
        and f"Connect to ipv4#127.0.0.1:{local} failed: Connection refused" in line
        for line in logged
    ), done.stderr
    assert error.startswith(f"Error: Kafka at 127.0.0.1:{local} did not answer (")


def test_local_commands_need_no_server(tmp_path, ports):
    local, upstream = ports
    env = _env(tmp_path, local, upstream)
    status = _run(["services", "status"], env)
    assert status.returncode == 0, status.stderr
    assert status.stdout == f"no services set up under {tmp_path / 'home'}\n"
    config = _run(["config"], env)
    assert config.returncode == 0, config.stderr
    assert f'"kafka_bootstrap": "127.0.0.1:{local}"' in config.stdout


def test_overview_on_a_busy_port_fails_in_one_line(tmp_path, ports):
    local, upstream = ports
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = _run(["overview", "--port", str(port)], _env(tmp_path, local, upstream))
    (line,) = _assert_quiet_failure(done)
    assert line.startswith(f"Error: overview cannot listen on 127.0.0.1:{port}: ")
    assert line.endswith("address already in use")


# ----------------------------------------------------------------- the helpers, in-process
@pytest.fixture
def client_loggers():
    """Restore the client loggers as they were (configuring them is process-wide)."""
    import logging

    from brokerapp.tools.cli.errors import CLIENT_LOGGERS

    saved = {}
    for name in CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def test_client_logging_is_silent_or_warnings_on_stderr(capsys, client_loggers):
    import logging

    from brokerapp.tools.cli.errors import configure_client_logging

    configure_client_logging(False)
    logging.getLogger("librdkafka").error("FAIL [rdkafka#producer-1] quiet")
    logging.getLogger("aiokafka.conn").error("Unable connect to node")
    assert capsys.readouterr().err == ""

    configure_client_logging(True)
    configure_client_logging(True)  # a second call replaces, it does not add
    logging.getLogger("librdkafka").error("FAIL [rdkafka#producer-1] shown")
    logging.getLogger("cassandra.cluster").info("not shown: below WARNING")
    logging.getLogger("aiokafka.conn").warning("Unable connect to node")
    assert capsys.readouterr().err.splitlines() == [
        "librdkafka ERROR: FAIL [rdkafka#producer-1] shown",
        "aiokafka.conn WARNING: Unable connect to node",
    ]


def _raised_from(*chain):
    """Return the first exception raised from the second, raised from the third..."""
    for outer, inner in zip(chain, chain[1:], strict=False):
        outer.__cause__ = inner
    return chain[0]


def test_a_store_that_did_not_answer_gets_the_hint_a_held_lock_does_not():
    import asyncio

    import pymysql

    from brokerapp.adapters.stores import StoreUnavailable
    from brokerapp.model.settings import load_settings
    from brokerapp.tools.cli.common import store_where
    from brokerapp.tools.cli.errors import store_unavailable

    settings = load_settings(mariadb_port=3307)
    where = store_where(settings, "mariadb")
    refused = _raised_from(
        StoreUnavailable("MariaDB unavailable (connect): (2003, ...)"),
        pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1'"),
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 3307)"),
    )
    assert store_unavailable(settings, "mariadb", refused) == (
        f"mariadb: unavailable: MariaDB ({where}) did not answer (Connection refused); {HINT}"
    )
    slow = _raised_from(
        StoreUnavailable("MariaDB did not answer within 30 s"),
        TimeoutError(),
        asyncio.CancelledError(),  # asyncio.timeout raises its TimeoutError from this
    )
    assert store_unavailable(settings, "mariadb", slow) == (
        f"mariadb: unavailable: MariaDB ({where}) did not answer (timed out); {HINT}"
    )
    lock = StoreUnavailable("another migration holds the MariaDB lock 'broker_migrate'")
    assert store_unavailable(settings, "mariadb", lock) == (
        f"mariadb: unavailable ({where}): another migration holds the MariaDB lock 'broker_migrate'"
    )


def test_a_registry_request_refused_inside_reported_is_one_line(ports):
    import httpx

    from brokerapp.model.settings import load_settings
    from brokerapp.tools.cli.errors import ServerUnreachable, reported

    local, upstream = ports
    settings = load_settings(
        kafka_bootstrap=f"127.0.0.1:{local}",
        upstream_registry_url=f"http://127.0.0.1:{upstream}/apis/ccompat/v7",
    )
    with pytest.raises(ServerUnreachable) as raised:
        with reported(settings, settings.kafka_bootstrap):
            httpx.get(f"{settings.upstream_registry_url}/subjects", timeout=5)
    assert raised.value.message.startswith(
        f"upstream schema registry at http://127.0.0.1:{upstream}/apis/ccompat/v7 "
        "did not answer (ConnectError: "
    )
    assert raised.value.message.endswith(HINT)
    with pytest.raises(KeyError):  # anything else passes unchanged
        with reported(settings, settings.kafka_bootstrap):
            raise KeyError("not a server's")
