"""Readiness probes of the local services: whether each answers its clients yet.

Each ``*_ready`` function returns a callable that takes no argument and answers True once
the service does real work for a client (Kafka lists its brokers, the registry's readiness
endpoint is green, MariaDB runs a query, Cassandra reports its version), not merely once its
port is open. Every local service listens on :data:`LOCAL_HOST`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx

__all__ = [
    "LOCAL_HOST",
    "cassandra_ready",
    "kafka_ready",
    "mariadb_ready",
    "port_open",
    "quiet_cassandra_driver",
    "registry_ready",
]

#: The address every local service binds to and is probed on.
LOCAL_HOST = "127.0.0.1"


@contextlib.contextmanager
def quiet_cassandra_driver() -> Iterator[None]:
    """Hide the Cassandra driver's log records while probing (a refused login logs ERROR).

    A probe or bootstrap login that is refused is an expected answer, reported by the caller.
    """
    driver = logging.getLogger("cassandra")
    level = driver.level
    driver.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        driver.setLevel(level)


def port_open(port: int, host: str = LOCAL_HOST) -> bool:
    """Return whether something accepts TCP connections on ``host:port`` (0.5 s at most)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def kafka_ready(bootstrap: str, brokers: int) -> Callable[[], bool]:
    """Return a probe: the cluster's metadata lists at least ``brokers`` brokers."""
    first_port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])

    def ready() -> bool:
        if not port_open(first_port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000})
        try:
            metadata = admin.list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - any client error means "not ready yet"
            return False
        return len(metadata.brokers) >= brokers

    return ready


def registry_ready(url: str, cafile: Path | None = None) -> Callable[[], bool]:
    """Return a probe: the registry's Quarkus readiness endpoint answers 200.

    ``cafile`` is the CA that signs an ``https`` registry's certificate (None: the system
    store).
    """
    # Apicurio answers /subjects while it is still replaying its Kafka journal after a restart
    # (schemas then 404); its Quarkus readiness endpoint turns 200 only once that is done.
    parts = urlparse(url)
    health = f"{parts.scheme}://{parts.netloc}/health/ready"

    def ready() -> bool:
        try:
            verify: ssl.SSLContext | bool = True
            if cafile is not None:
                verify = ssl.create_default_context(cafile=str(cafile))
            return httpx.get(health, timeout=2.0, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def mariadb_ready(port: int, socket_path: Path) -> Callable[[], bool]:
    """Return a probe: the TCP port is open and root answers ``SELECT 1`` on the socket."""

    def ready() -> bool:
        if not port_open(port):
            return False
        import pymysql

        try:
            conn = pymysql.connect(
                unix_socket=str(socket_path), user="root", password="", connect_timeout=2
            )
        except pymysql.MySQLError:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone() == (1,)
        except pymysql.MySQLError:
            return False
        finally:
            conn.close()

    return ready


def cassandra_ready(port: int) -> Callable[[], bool]:
    """Return a probe: the local node answers CQL (a query, or a request for credentials).

    The node runs with PasswordAuthenticator and its roles are made only once it answers
    (:meth:`~brokerapp.tools.services.manager.Services.bootstrap_cassandra`), so a node that
    refuses an anonymous login is serving CQL: it is ready.
    """

    def ready() -> bool:
        if not port_open(port):
            return False
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy

        profile = ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy([LOCAL_HOST]), request_timeout=5
        )
        cluster = Cluster(
            [LOCAL_HOST],
            port=port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=5,
            control_connection_timeout=5,
        )
        from cassandra import AuthenticationFailed
        from cassandra.cluster import NoHostAvailable

        try:
            with quiet_cassandra_driver():
                session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local").one()
            return row is not None and bool(row.release_version)
        except NoHostAvailable as exc:
            errors = list(exc.errors.values())
            return bool(errors) and all(isinstance(e, AuthenticationFailed) for e in errors)
        except Exception:  # noqa: BLE001 - any driver error means "not ready yet"
            return False
        finally:
            cluster.shutdown()

    return ready
