"""Configuration of each local server: the files it reads and the options it starts with.

The templates and pinned POMs live under ``deploy/``; these functions fill them from the
settings and write them into the services home::

    var/kafka-<cluster>/node-N/server.properties    :func:`kafka_properties`
    (registry: -D options, no file)                  :func:`registry_options`
    var/mariadb/my.cnf                               :func:`write_mariadb_cnf`
    var/cassandra/cassandra.yaml                     :func:`write_cassandra_yaml`

Clusters run in KRaft combined mode (each node is broker and controller). A three-broker
cluster has replication factor 3 and ``min.insync.replicas=2`` for every topic it creates by
default, so one broker can be killed in fault tests. The registries store their schemas in
Kafka (``kafkasql`` storage, one journal topic per registry), so a restart loses nothing.
Every server binds :data:`~brokerapp.tools.services.probes.LOCAL_HOST`.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

from brokerapp.model.settings import Settings
from brokerapp.tools.services.probes import LOCAL_HOST
from brokerapp.tools.services.tls import RegistryCertificate

__all__ = [
    "APICURIO_POM",
    "CASSANDRA_JVM_OPTIONS",
    "CASSANDRA_LOGBACK",
    "CASSANDRA_POM",
    "CASSANDRA_YAML",
    "DEPLOY_DIR",
    "KAFKA_LOG4J",
    "KAFKA_POM",
    "MARIADB_CNF",
    "jvm_options",
    "kafka_java",
    "kafka_properties",
    "upstream_security_properties",
    "registry_options",
    "write_cassandra_yaml",
    "write_mariadb_cnf",
]

DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy"
KAFKA_POM = DEPLOY_DIR / "kafka" / "pom.xml"
KAFKA_LOG4J = DEPLOY_DIR / "kafka" / "log4j2.properties"
APICURIO_POM = DEPLOY_DIR / "apicurio" / "pom.xml"
CASSANDRA_POM = DEPLOY_DIR / "cassandra" / "pom.xml"
CASSANDRA_YAML = DEPLOY_DIR / "cassandra" / "cassandra.yaml"
CASSANDRA_JVM_OPTIONS = DEPLOY_DIR / "cassandra" / "jvm17.options"
CASSANDRA_LOGBACK = DEPLOY_DIR / "cassandra" / "logback.xml"
MARIADB_CNF = DEPLOY_DIR / "mariadb" / "my.cnf"

#: Smallest ``socket.request.max.bytes`` of a broker (Kafka's default, 100 MiB).
MIN_SOCKET_REQUEST_BYTES = 104857600
#: Largest request body the registries accept (schemas of big alert packets).
REGISTRY_MAX_BODY = "16M"


def upstream_security_properties(
    port: int, feed_port: int, keystore: Path, keystore_password: str
) -> dict[str, object]:
    """Return the ``server.properties`` entries of the upstream stand-in's listeners.

    As Rubin serves community brokers: ``SASL_SSL`` with SCRAM-SHA-512 on the client port
    (the broker's TLS keystore from :func:`~brokerapp.tools.services.tls.ensure_upstream_tls`)
    and ``StandardAuthorizer`` ACLs, nothing allowed without an ACL. The upstream's own side
    (its producers, admin and registry journal) and the broker-to-broker traffic use a
    PLAINTEXT ``INTERNAL`` listener on ``feed_port`` whose anonymous principal, like the
    controller's, is a super user; it binds loopback only.

    Parameters
    ----------
    port : int
        The SASL_SSL client port; the controller listens on ``port + 1``.
    feed_port : int
        The internal listener's port.
    keystore : Path
        The broker's PKCS#12 keystore.
    keystore_password : str
        Its password.

    Returns
    -------
    dict
        Entries that replace or add to :func:`kafka_properties`'s.
    """
    return {
        "listeners": (
            f"SASL_SSL://{LOCAL_HOST}:{port},INTERNAL://{LOCAL_HOST}:{feed_port},"
            f"CONTROLLER://{LOCAL_HOST}:{port + 1}"
        ),
        "advertised.listeners": f"SASL_SSL://{LOCAL_HOST}:{port},INTERNAL://{LOCAL_HOST}:{feed_port}",
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": (
            "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL"
        ),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": keystore,
        "ssl.keystore.password": keystore_password,
        "ssl.client.auth": "none",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }


def kafka_properties(
    settings: Settings,
    node_id: int,
    port: int,
    voters: str,
    node_dir: Path,
    brokers: int,
    extra: dict[str, object] | None = None,
) -> str:
    """Return the ``server.properties`` of one KRaft node (broker and controller).

    Parameters
    ----------
    settings : Settings
        Message size limits.
    node_id : int
        Node ID, 1-based.
    port : int
        Client port; the controller listens on ``port + 1``.
    voters : str
        ``controller.quorum.voters`` of the cluster.
    node_dir : Path
        The node's folder; its log dir is ``data/`` in it.
    brokers : int
        Brokers in the cluster (3 raises replication and ``min.insync.replicas``).
    extra : dict, optional
        Entries that replace or add to these (the upstream's security).

    Returns
    -------
    str
        One ``key=value`` per line.
    """
    replication = 3 if brokers >= 3 else 1
    min_isr = 2 if brokers >= 3 else 1
    max_bytes = settings.max_message_bytes
    props = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{LOCAL_HOST}:{port},CONTROLLER://{LOCAL_HOST}:{port + 1}",
        "advertised.listeners": f"PLAINTEXT://{LOCAL_HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": node_dir / "data",
        "num.partitions": 1,
        # Every topic is created on purpose, with its partitions and retention: a consumer
        # subscribing to a topic that does not exist yet must not create it with defaults.
        "auto.create.topics.enable": "false",
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": 0,
        "message.max.bytes": max_bytes,
        "replica.fetch.max.bytes": max_bytes,
        "socket.request.max.bytes": max(max_bytes * 2, MIN_SOCKET_REQUEST_BYTES),
    }
    props.update(extra or {})
    return "".join(f"{k}={v}\n" for k, v in props.items())


def kafka_java(heap: str, kafka_lib: Path) -> list[str]:
    """Return the ``java`` command line, up to the main class, of Kafka's JVMs.

    Parameters
    ----------
    heap : str
        ``-Xms`` and ``-Xmx``.
    kafka_lib : Path
        Folder of Kafka's jars (the class path).
    """
    return [
        "java",
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J.as_uri()}",
        "-cp",
        str(kafka_lib / "*"),
    ]


def registry_options(
    cluster: str,
    port: int,
    bootstrap: str | None,
    tls: RegistryCertificate | None = None,
) -> dict[str, object]:
    """Return the ``-D`` options of one Apicurio Registry.

    Parameters
    ----------
    cluster : str
        ``local`` or ``upstream``: names the journal and snapshot topics.
    port : int
        The port it serves on: HTTP, or HTTPS when ``tls`` is given.
    bootstrap : str or None
        Bootstrap servers of the Kafka cluster holding its journal (``kafkasql`` storage);
        None keeps Apicurio's default in-memory storage (H2), which a restart loses (tests).
    tls : RegistryCertificate, optional
        Serve HTTPS only, with this PEM certificate and key (Quarkus'
        ``quarkus.http.ssl.certificate.*`` and ``quarkus.http.insecure-requests=disabled``);
        the plain HTTP port then moves to ``port + 1`` and refuses every request.
    """
    options: dict[str, object] = {
        "quarkus.http.port": port,
        "quarkus.http.host": LOCAL_HOST,
        "quarkus.http.limits.max-body-size": REGISTRY_MAX_BODY,
        "quarkus.log.level": "WARN",
        'quarkus.log.category."io.apicurio".level': "INFO",
    }
    if bootstrap is not None:
        options.update(
            {
                "apicurio.storage.kind": "kafkasql",
                "apicurio.kafkasql.bootstrap.servers": bootstrap,
                "apicurio.kafkasql.topic": f"_registry-{cluster}-journal",
                "apicurio.kafkasql.snapshots.topic": f"_registry-{cluster}-snapshots",
            }
        )
    if tls is not None:
        options.update(
            {
                "quarkus.http.port": port + 1,
                "quarkus.http.ssl-port": port,
                "quarkus.http.ssl.certificate.files": tls.certificate,
                "quarkus.http.ssl.certificate.key-files": tls.key,
                "quarkus.http.insecure-requests": "disabled",
            }
        )
    return options


def write_mariadb_cnf(settings: Settings, base: Path, socket_path: Path) -> Path:
    """Write ``base/my.cnf`` from ``deploy/mariadb/my.cnf`` and return its path.

    Parameters
    ----------
    settings : Settings
        ``mariadb_port``.
    base : Path
        MariaDB's folder under the home (data in ``data/``, pid file ``mariadbd.pid``).
    socket_path : Path
        The unix socket root logs in through.
    """
    base.mkdir(parents=True, exist_ok=True)
    cnf = base / "my.cnf"
    fields = {
        "datadir": base / "data",
        "socket": socket_path,
        "port": settings.mariadb_port,
        "pid_file": base / "mariadbd.pid",
        # mariadbd refuses to run as root unless told to.
        "user_line": "user = root" if os.geteuid() == 0 else "",
    }
    cnf.write_text(string.Template(MARIADB_CNF.read_text()).substitute(fields))
    return cnf


def write_cassandra_yaml(settings: Settings, base: Path) -> Path:
    """Write ``base/cassandra.yaml`` from ``deploy/cassandra/cassandra.yaml``; return its path.

    Also creates ``data/`` and ``logs/`` under ``base``.

    Parameters
    ----------
    settings : Settings
        ``cassandra_storage_port`` and ``cassandra_port``.
    base : Path
        Cassandra's folder under the home.
    """
    data = base / "data"
    for folder in (data, base / "logs"):
        folder.mkdir(parents=True, exist_ok=True)
    config = base / "cassandra.yaml"
    fields = {
        "data_dir": data,
        "storage_port": settings.cassandra_storage_port,
        "native_port": settings.cassandra_port,
    }
    config.write_text(string.Template(CASSANDRA_YAML.read_text()).substitute(fields))
    return config


def jvm_options(path: Path) -> list[str]:
    """Return the JVM arguments of an options file (one per line, ``#`` comments)."""
    options: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            options += line.split(None, 1)
    return options
