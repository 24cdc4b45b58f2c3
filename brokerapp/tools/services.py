"""Start, stop and inspect the real local services: Kafka (KRaft), Apicurio, MariaDB, Cassandra.

Nothing here is a stand-in: the Kafka broker is the Apache Kafka server resolved from Maven
Central by ``deploy/kafka/pom.xml``; the registry is Apicurio Registry's runnable archive
resolved by ``deploy/apicurio/pom.xml``. Both run as JVMs on 127.0.0.1, detached from the
calling process, with their data, logs and pid files under the services home
(``Settings.home``, default ``./var``)::

    var/lib/kafka/*.jar                 class path of the brokers (mvn dependency:copy-dependencies)
    var/lib/apicurio/                   the unpacked registry archive
    var/kafka-local/node-N/             server.properties and log dirs of local broker N
    var/kafka-upstream/node-1/          the upstream stand-in cluster (``--upstream``)
    var/run/<service>.pid, var/log/<service>.log

Clusters run in KRaft combined mode (each node is broker and controller). Broker ``N`` of a
cluster whose first broker port is ``P`` listens on ``P + 2(N-1)`` and its controller on the
port above that. A three-broker cluster has replication factor 3 and
``min.insync.replicas=2`` for every topic it creates by default, so one broker can be killed
in fault tests. The registries store their schemas in Kafka (``kafkasql`` storage, one journal
topic per registry), so restarting a registry loses nothing.

With ``--databases``, ``services up`` also starts two databases, each on 127.0.0.1 with its
data under the home::

    var/mariadb/my.cnf, data/           Debian's ``mariadbd`` (apt package ``mariadb-server``)
    var/lib/cassandra/*.jar             Apache Cassandra 5.0 (``deploy/cassandra/pom.xml``)
    var/cassandra/cassandra.yaml, data/, logs/

MariaDB's root account has no password and is reachable only through the unix socket
``var/mariadb/mysqld.sock``; clients use the account ``mariadb_user@127.0.0.1`` (password
:func:`local_mariadb_password`) on ``mariadb_database``, which ``up`` creates idempotently.
Cassandra is a single node (``SimpleSnitch``, one token, no authentication) running
``CassandraDaemon`` with the Java 17 options of ``deploy/cassandra/jvm17.options``. Both are
listed by ``status`` and stopped by ``down`` while their pid files exist; ``reset`` deletes
their data too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from brokerapp.adapters.sql import sql_name
from brokerapp.model.settings import Settings

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
KAFKA_POM = DEPLOY_DIR / "kafka" / "pom.xml"
KAFKA_LOG4J = DEPLOY_DIR / "kafka" / "log4j2.properties"
APICURIO_POM = DEPLOY_DIR / "apicurio" / "pom.xml"
CASSANDRA_POM = DEPLOY_DIR / "cassandra" / "pom.xml"
CASSANDRA_YAML = DEPLOY_DIR / "cassandra" / "cassandra.yaml"
CASSANDRA_JVM_OPTIONS = DEPLOY_DIR / "cassandra" / "jvm17.options"
CASSANDRA_LOGBACK = DEPLOY_DIR / "cassandra" / "logback.xml"
MARIADB_CNF = DEPLOY_DIR / "mariadb" / "my.cnf"
#: Password of the local MariaDB account when ``mariadb_password`` is empty (dev service only).
DEFAULT_MARIADB_PASSWORD = "broker"
#: Names of the database services, in the order ``up --databases`` starts them.
DATABASE_SERVICES = ("mariadb", "cassandra")

#: Seconds a service gets to stop on SIGTERM before it is killed.
STOP_GRACE_SECONDS = 60.0
#: Seconds between readiness probes while waiting for a service.
POLL_SECONDS = 0.5


class ServiceError(RuntimeError):
    """A service could not be installed, started or stopped; the message says why."""


@dataclass
class Service:
    """One JVM process managed by this module.

    Parameters
    ----------
    name : str
        Stable name, used for the pid and log files (e.g. ``kafka-local-1``).
    kind : str
        ``kafka``, ``registry``, ``mariadb`` or ``cassandra``.
    port : int
        The port clients use; readiness is probed there.
    command : list of str
        The full command line.
    cwd : Path
        Working directory of the process.
    ready : callable
        Returns True once the service answers its clients.
    """

    name: str
    kind: str
    port: int
    command: list[str]
    cwd: Path
    ready: Callable[[], bool] = field(repr=False)


@dataclass(frozen=True)
class ServiceState:
    """What ``services status`` reports for one service."""

    name: str
    pid: int | None
    running: bool
    answering: bool
    port: int

    def line(self) -> str:
        """Return a one-line human-readable status."""
        state = "up" if self.answering else ("starting" if self.running else "down")
        pid = self.pid if self.running else "-"
        return f"{self.name:<22} {state:<9} port {self.port:<6} pid {pid}"


class Services:
    """Install, start, stop and report the local services of one services home.

    Parameters
    ----------
    settings : Settings
        Addresses, heap sizes, home folder and time-outs.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.home = settings.data_dir
        self.lib = self.home / "lib"
        self.run_dir = self.home / "run"
        self.log_dir = self.home / "log"

    # ------------------------------------------------------------------ install
    def install(self, databases: bool = True) -> None:
        """Resolve the Kafka jars and the Apicurio archive from Maven Central if missing.

        Parameters
        ----------
        databases : bool
            Also resolve the Cassandra jars (MariaDB comes from Debian: `make install`).
        """
        self._install_kafka()
        self._install_apicurio()
        if databases:
            self._install_cassandra()

    def _install_cassandra(self) -> None:
        target = self.lib / "cassandra"
        stamp = target / ".pom-sha256"
        digest = _sha256(CASSANDRA_POM)
        if stamp.exists() and stamp.read_text() == digest:
            return
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        _mvn(
            CASSANDRA_POM,
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        )
        stamp.write_text(digest)

    def _install_kafka(self) -> None:
        target = self.lib / "kafka"
        stamp = target / ".pom-sha256"
        digest = _sha256(KAFKA_POM)
        if stamp.exists() and stamp.read_text() == digest:
            return
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        _mvn(
            KAFKA_POM,
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        )
        stamp.write_text(digest)

    def _install_apicurio(self) -> None:
        target = self.lib / "apicurio"
        stamp = target / ".pom-sha256"
        digest = _sha256(APICURIO_POM)
        if stamp.exists() and stamp.read_text() == digest:
            return
        shutil.rmtree(target, ignore_errors=True)
        download = self.lib / "apicurio-download"
        shutil.rmtree(download, ignore_errors=True)
        download.mkdir(parents=True)
        _mvn(APICURIO_POM, "dependency:copy", f"-DoutputDirectory={download}")
        archives = list(download.glob("*.tar.gz"))
        if len(archives) != 1:
            raise ServiceError(f"expected one Apicurio archive in {download}, found {archives}")
        target.mkdir(parents=True)
        with tarfile.open(archives[0]) as tar:
            tar.extractall(target, filter="data")
        shutil.rmtree(download)
        stamp.write_text(digest)

    def _apicurio_jar(self) -> Path:
        jars = sorted((self.lib / "apicurio").glob("*-runner.jar")) or sorted(
            (self.lib / "apicurio").glob("**/quarkus-run.jar")
        )
        if not jars:
            raise ServiceError("Apicurio runner jar not found; run `brokerapp services install`")
        return jars[0]

    # ------------------------------------------------------------------ plans
    def kafka_nodes(self, cluster: str, brokers: int) -> list[Service]:
        """Return the broker services of one cluster (``local`` or ``upstream``).

        Parameters
        ----------
        cluster : str
            ``local`` (ports from ``kafka_bootstrap``) or ``upstream``.
        brokers : int
            1 or 3.

        Returns
        -------
        list of Service
            One service per broker, not yet started.
        """
        base = (
            self.settings.kafka_port()
            if cluster == "local"
            else self.settings.upstream_kafka_port()
        )
        ports = [base + 2 * i for i in range(brokers)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{p + 1}" for i, p in enumerate(ports))
        bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports)
        nodes = []
        for i, port in enumerate(ports):
            node_id = i + 1
            node_dir = self.home / f"kafka-{cluster}" / f"node-{node_id}"
            props = self._kafka_properties(node_id, port, voters, node_dir, brokers)
            nodes.append(
                Service(
                    name=f"kafka-{cluster}-{node_id}",
                    kind="kafka",
                    port=port,
                    command=self._java(self.settings.kafka_heap, KAFKA_LOG4J)
                    + ["kafka.Kafka", str(node_dir / "server.properties")],
                    cwd=node_dir,
                    ready=_kafka_ready(bootstrap, brokers),
                )
            )
            node_dir.mkdir(parents=True, exist_ok=True)
            (node_dir / "server.properties").write_text(props)
        return nodes

    def _kafka_properties(
        self, node_id: int, port: int, voters: str, node_dir: Path, brokers: int
    ) -> str:
        replication = 3 if brokers >= 3 else 1
        min_isr = 2 if brokers >= 3 else 1
        max_bytes = self.settings.max_message_bytes
        props = {
            "process.roles": "broker,controller",
            "node.id": node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
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
            "socket.request.max.bytes": max(max_bytes * 2, 104857600),
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def registry(self, cluster: str) -> Service:
        """Return the Apicurio Registry service of one side (``local`` or ``upstream``).

        Parameters
        ----------
        cluster : str
            ``local`` (port from ``registry_url``, storage in the local Kafka) or
            ``upstream`` (port from ``upstream_registry_url``, storage in the upstream Kafka).

        Returns
        -------
        Service
            The registry service, not yet started.
        """
        if cluster == "local":
            port, url = self.settings.registry_port(), self.settings.registry_url
            bootstrap = self.settings.kafka_bootstrap
        else:
            port, url = self.settings.upstream_registry_port(), self.settings.upstream_registry_url
            bootstrap = self.settings.upstream_bootstrap
        workdir = self.home / f"registry-{cluster}"
        workdir.mkdir(parents=True, exist_ok=True)
        options = {
            "quarkus.http.port": port,
            "quarkus.http.host": "127.0.0.1",
            "quarkus.http.limits.max-body-size": "16M",
            "apicurio.storage.kind": "kafkasql",
            "apicurio.kafkasql.bootstrap.servers": bootstrap,
            "apicurio.kafkasql.topic": f"_registry-{cluster}-journal",
            "apicurio.kafkasql.snapshots.topic": f"_registry-{cluster}-snapshots",
            "quarkus.log.level": "WARN",
            'quarkus.log.category."io.apicurio".level': "INFO",
        }
        command = [
            "java",
            f"-Xms{self.settings.registry_heap}",
            f"-Xmx{self.settings.registry_heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            *(f"-D{k}={v}" for k, v in options.items()),
            "-jar",
            str(self._apicurio_jar()),
        ]
        return Service(
            name=f"registry-{cluster}",
            kind="registry",
            port=port,
            command=command,
            cwd=workdir,
            ready=_registry_ready(url),
        )

    def mariadb(self) -> Service:
        """Return the MariaDB service (Debian's ``mariadbd``), writing its option file.

        Returns
        -------
        Service
            The database server, not yet started (see :meth:`init_mariadb`).
        """
        base = self.home / "mariadb"
        base.mkdir(parents=True, exist_ok=True)
        cnf = base / "my.cnf"
        fields = {
            "datadir": base / "data",
            "socket": self.mariadb_socket,
            "port": self.settings.mariadb_port,
            "pid_file": base / "mariadbd.pid",
            # mariadbd refuses to run as root unless told to.
            "user_line": "user = root" if os.geteuid() == 0 else "",
        }
        cnf.write_text(string.Template(MARIADB_CNF.read_text()).substitute(fields))
        server = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
        return Service(
            name="mariadb",
            kind="mariadb",
            port=self.settings.mariadb_port,
            command=[server, f"--defaults-file={cnf}"],
            cwd=base,
            ready=_mariadb_ready(self.settings.mariadb_port, self.mariadb_socket),
        )

    @property
    def mariadb_socket(self) -> Path:
        """Unix socket of the local MariaDB server (root logs in there, without password)."""
        return self.home / "mariadb" / "mysqld.sock"

    def init_mariadb(self, service: Service) -> None:
        """Create MariaDB's data directory once (``mariadb-install-db``).

        Parameters
        ----------
        service : Service
            The service from :meth:`mariadb` (its option file names the directory).

        Raises
        ------
        ServiceError
            If MariaDB is not installed or the initialisation fails.
        """
        if not Path(service.command[0]).exists():
            raise ServiceError(
                "MariaDB is not installed: `apt-get install mariadb-server mariadb-client` "
                "(`make install` does)"
            )
        if (service.cwd / "data" / "mysql").is_dir():
            return
        tool = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if tool is None:
            raise ServiceError("mariadb-install-db not found: `apt-get install mariadb-server`")
        shutil.rmtree(service.cwd / "data", ignore_errors=True)
        cmd = [
            tool,
            service.command[1],
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=service.cwd)
        if done.returncode != 0:
            raise ServiceError(
                f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}"
                f"{done.stderr[-3000:]}"
            )

    def bootstrap_mariadb(self) -> None:
        """Create the broker's database and account idempotently, and lock root to the socket.

        Drops the anonymous accounts and every root account but ``root@localhost`` (the unix
        socket), creates ``mariadb_database`` and ``mariadb_user@127.0.0.1`` with all
        privileges on it, and (re)sets that account's password to
        :func:`local_mariadb_password`.
        """
        import pymysql

        database = self.settings.mariadb_database
        if not re.fullmatch(r"[A-Za-z0-9_]+", database):
            raise ServiceError(f"mariadb_database {database!r}: use letters, digits, underscores")
        user, password = self.settings.mariadb_user, local_mariadb_password(self.settings)
        conn = pymysql.connect(unix_socket=str(self.mariadb_socket), user="root", password="")
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT User, Host FROM mysql.user "
                    "WHERE User = '' OR (User = 'root' AND Host <> 'localhost')"
                )
                for old_user, host in cur.fetchall():
                    cur.execute("DROP USER IF EXISTS %s@%s", (old_user, host))
                # A database name cannot be a bound parameter: sql_name checks and quotes it.
                cur.execute(
                    f"CREATE DATABASE IF NOT EXISTS {sql_name(database)} CHARACTER SET utf8mb4"
                )
                cur.execute(
                    "CREATE USER IF NOT EXISTS %s@'127.0.0.1' IDENTIFIED BY %s", (user, password)
                )
                cur.execute("ALTER USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
                cur.execute(
                    f"GRANT ALL PRIVILEGES ON {sql_name(database)}.* TO %s@'127.0.0.1'", (user,)
                )
            conn.commit()
        finally:
            conn.close()

    def cassandra(self) -> Service:
        """Return the single Cassandra node, writing its ``cassandra.yaml``.

        Returns
        -------
        Service
            ``CassandraDaemon`` on the jars of ``lib/cassandra``, not yet started.
        """
        base = self.home / "cassandra"
        data = base / "data"
        logs = base / "logs"
        for folder in (data, logs):
            folder.mkdir(parents=True, exist_ok=True)
        config = base / "cassandra.yaml"
        fields = {
            "data_dir": data,
            "storage_port": self.settings.cassandra_storage_port,
            "native_port": self.settings.cassandra_port,
        }
        config.write_text(string.Template(CASSANDRA_YAML.read_text()).substitute(fields))
        lib = self.lib / "cassandra"
        heap = self.settings.cassandra_heap
        command = [
            "java",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            *_jvm_options(CASSANDRA_JVM_OPTIONS),
            f"-javaagent:{self._jamm_jar()}",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dcassandra.config={config.as_uri()}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={data}",
            f"-Dcassandra.logdir={logs}",
            f"-Dlogback.configurationFile={CASSANDRA_LOGBACK.as_uri()}",
            # A single seed node: no peers to wait for.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-cp",
            str(lib / "*"),
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        return Service(
            name="cassandra",
            kind="cassandra",
            port=self.settings.cassandra_port,
            command=command,
            cwd=base,
            ready=_cassandra_ready(self.settings.cassandra_port),
        )

    def _jamm_jar(self) -> Path:
        jars = sorted((self.lib / "cassandra").glob("jamm-*.jar"))
        if not jars:
            raise ServiceError("Cassandra jars not found; run `brokerapp services install`")
        return jars[-1]

    def databases(self) -> list[Service]:
        """Return the database services (MariaDB, Cassandra), not yet started."""
        return [self.mariadb(), self.cassandra()]

    def _java(self, heap: str, log4j: Path) -> list[str]:
        return [
            "java",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j.as_uri()}",
            "-cp",
            str(self.lib / "kafka" / "*"),
        ]

    # ------------------------------------------------------------------ start/stop
    def format_cluster(self, cluster: str, nodes: list[Service]) -> None:
        """Format KRaft storage of every node of a cluster, once, with one cluster ID.

        Parameters
        ----------
        cluster : str
            ``local`` or ``upstream``.
        nodes : list of Service
            The cluster's broker services.

        Raises
        ------
        ServiceError
            If the cluster was formatted earlier with another broker count.
        """
        cluster_dir = self.home / f"kafka-{cluster}"
        layout_file = cluster_dir / "layout.json"
        if layout_file.exists():
            layout = json.loads(layout_file.read_text())
            if layout["brokers"] != len(nodes):
                raise ServiceError(
                    f"the {cluster} cluster under {cluster_dir} was formatted with "
                    f"{layout['brokers']} broker(s), not {len(nodes)}; "
                    "run `brokerapp services reset` to wipe it first"
                )
            cluster_id = layout["cluster_id"]
        else:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        for node in nodes:
            if (node.cwd / "data" / "meta.properties").exists():
                continue
            cmd = self._java("256m", KAFKA_LOG4J) + [
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(node.cwd / "server.properties"),
                "--ignore-formatted",
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ServiceError(
                    f"formatting {node.name} failed ({done.returncode}): {done.stderr.strip()}"
                    f" {done.stdout.strip()}"
                )
        layout_file.write_text(json.dumps({"brokers": len(nodes), "cluster_id": cluster_id}))

    def start(self, service: Service) -> None:
        """Start a service in its own session unless it already runs.

        Parameters
        ----------
        service : Service
            What to start.
        """
        if self.pid(service.name) is not None:
            return
        if _port_open(service.port):
            raise ServiceError(
                f"port {service.port} of {service.name} is taken by a process this home "
                "did not start; stop it or choose other ports in the settings"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{service.name}.log", "ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                service.command,
                cwd=service.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pid_file(service.name).write_text(str(proc.pid))

    def wait_ready(self, services: list[Service]) -> None:
        """Wait until every service answers, or raise with the tail of its log.

        Parameters
        ----------
        services : list of Service
            Started services.

        Raises
        ------
        ServiceError
            When a service dies or does not answer within ``startup_timeout``.
        """
        deadline = time.monotonic() + self.settings.startup_timeout
        pending = list(services)
        while pending:
            for service in list(pending):
                if self.pid(service.name) is None:
                    raise ServiceError(f"{service.name} exited:\n{self.log_tail(service.name)}")
                if service.ready():
                    pending.remove(service)
            if pending and time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise ServiceError(
                    f"{names} did not answer within {self.settings.startup_timeout:.0f} s:\n"
                    + self.log_tail(pending[0].name)
                )
            if pending:
                time.sleep(POLL_SECONDS)

    def stop(self, name: str, sig: int = signal.SIGTERM, grace: float = STOP_GRACE_SECONDS) -> bool:
        """Stop one service; kill it if it outlives the grace period.

        Parameters
        ----------
        name : str
            Service name.
        sig : int
            First signal to send (``SIGKILL`` for crash tests).
        grace : float
            Seconds to wait before ``SIGKILL``.

        Returns
        -------
        bool
            True if a running process was stopped.
        """
        pid = self.pid(name)
        if pid is None:
            self._pid_file(name).unlink(missing_ok=True)
            return False
        _signal_group(pid, sig)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self._pid_file(name).unlink(missing_ok=True)
        return True

    def up(
        self,
        brokers: int = 1,
        upstream: bool = False,
        registry: bool = True,
        databases: bool = False,
    ) -> list[Service]:
        """Install if needed, format and start the local (and upstream) services.

        Parameters
        ----------
        brokers : int
            Brokers of the local cluster: 1, or 3 for fault tests.
        upstream : bool
            Also start the upstream stand-in cluster and its registry.
        registry : bool
            Start the schema registries.
        databases : bool
            Also start MariaDB and Cassandra (first, as Cassandra is slowest to answer), and
            create MariaDB's broker database and account once it answers.

        Returns
        -------
        list of Service
            Everything that now runs.
        """
        if brokers not in (1, 3):
            raise ServiceError("--brokers takes 1 or 3")
        self.install(databases=databases)
        dbs = self.start_databases() if databases else []
        clusters = ["local"] + (["upstream"] if upstream else [])
        started: list[Service] = []
        for cluster in clusters:
            nodes = self.kafka_nodes(cluster, brokers if cluster == "local" else 1)
            self.format_cluster(cluster, nodes)
            for node in nodes:
                self.start(node)
            started += nodes
        self.wait_ready(started)
        if registry:
            registries = [self.registry(cluster) for cluster in clusters]
            for reg in registries:
                self.start(reg)
            self.wait_ready(registries)
            started += registries
        if dbs:
            self.wait_databases(dbs)
            started += dbs
        return started

    def start_databases(self) -> list[Service]:
        """Initialise (once) and start MariaDB and Cassandra without waiting for them.

        Returns
        -------
        list of Service
            The two database services.
        """
        dbs = self.databases()
        self.init_mariadb(dbs[0])
        for db in dbs:
            self.start(db)
        return dbs

    def wait_databases(self, dbs: list[Service]) -> None:
        """Wait until the databases answer, then create MariaDB's database and account.

        Parameters
        ----------
        dbs : list of Service
            Started database services.
        """
        self.wait_ready(dbs)
        if any(db.kind == "mariadb" for db in dbs):
            self.bootstrap_mariadb()

    def down(self, grace: float = STOP_GRACE_SECONDS) -> list[str]:
        """Stop every service of this home, registries first.

        Parameters
        ----------
        grace : float
            Seconds each service gets after SIGTERM before it is killed (a broker that has
            lost its controller quorum never finishes a clean shutdown).

        Returns
        -------
        list of str
            Names of the services that were running.
        """
        names = self.known_names()
        order = sorted(names, key=lambda n: (not n.startswith("registry"), n))
        return [name for name in order if self.stop(name, grace=grace)]

    def reset(self) -> None:
        """Stop everything and delete all service data and worker table stores (jars are kept).

        The workers' table stores go too: they hold state (e.g. schema IDs of the deleted
        registries) that must not outlive the clusters.
        """
        self.down()
        for sub in (
            "kafka-local",
            "kafka-upstream",
            "registry-local",
            "registry-upstream",
            *DATABASE_SERVICES,
        ):
            shutil.rmtree(self.home / sub, ignore_errors=True)
        shutil.rmtree(self.settings.faust_dir, ignore_errors=True)

    # ------------------------------------------------------------------ status
    def known_names(self) -> list[str]:
        """Return the names of services with a pid file in this home."""
        if not self.run_dir.exists():
            return []
        return sorted(p.stem for p in self.run_dir.glob("*.pid"))

    def status(self) -> list[ServiceState]:
        """Report every service this home knows of (running or not).

        Returns
        -------
        list of ServiceState
            One entry per service.
        """
        states = []
        for service in self.planned():
            pid = self.pid(service.name)
            running = pid is not None
            states.append(
                ServiceState(
                    name=service.name,
                    pid=pid,
                    running=running,
                    answering=running and _port_open(service.port),
                    port=service.port,
                )
            )
        return states

    def planned(self) -> list[Service]:
        """Return every service this home was set up with (running or not).

        The databases are included only while their pid files exist (started and not
        stopped by ``down``), so a home once started with ``--databases`` keeps its Kafka-only
        status and readiness checks afterwards.
        """
        planned: list[Service] = []
        for cluster in ("local", "upstream"):
            layout_file = self.home / f"kafka-{cluster}" / "layout.json"
            if layout_file.exists():
                brokers = json.loads(layout_file.read_text())["brokers"]
                planned += self.kafka_nodes(cluster, brokers)
                if (self.lib / "apicurio").exists():
                    planned.append(self.registry(cluster))
        if self._pid_file("mariadb").exists():
            planned.append(self.mariadb())
        if self._pid_file("cassandra").exists():
            planned.append(self.cassandra())
        return planned

    def pid(self, name: str) -> int | None:
        """Return the pid of a running service, or None."""
        pid_file = self._pid_file(name)
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text())
        return pid if _alive(pid) else None

    def log_tail(self, name: str, lines: int = 30) -> str:
        """Return the last lines of a service's log."""
        log = self.log_dir / f"{name}.log"
        if not log.exists():
            return "(no log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"


def _mvn(pom: Path, *args: str) -> None:
    if shutil.which("mvn") is None:
        raise ServiceError("Maven (mvn) is not installed: `apt-get install maven`")
    cmd = ["mvn", "-q", "-B", "-f", str(pom), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    shutil.rmtree(pom.parent / "target", ignore_errors=True)


def local_mariadb_password(settings: Settings) -> str:
    """Return the password of the local MariaDB account: ``mariadb_password``, or ``broker``.

    The fixed fallback is for the local development server only, which listens on 127.0.0.1;
    set ``BROKER_MARIADB_PASSWORD`` before the first ``services up --databases`` (or any later
    one: it resets the password) to use another.

    Parameters
    ----------
    settings : Settings
        The broker's settings.

    Returns
    -------
    str
        The password clients use with ``mariadb_user``.
    """
    return settings.mariadb_password.get_secret_value() or DEFAULT_MARIADB_PASSWORD


def _jvm_options(path: Path) -> list[str]:
    """Return the JVM arguments of an options file (one per line, ``#`` comments)."""
    options: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            options += line.split(None, 1)
    return options


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _alive(pid: int) -> bool:
    try:
        waited, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        waited = 0
    if waited == pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().split(") ", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _kafka_ready(bootstrap: str, brokers: int) -> Callable[[], bool]:
    first_port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])

    def ready() -> bool:
        if not _port_open(first_port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000})
        try:
            metadata = admin.list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - any client error means "not ready yet"
            return False
        return len(metadata.brokers) >= brokers

    return ready


def _registry_ready(url: str) -> Callable[[], bool]:
    # Apicurio answers /subjects while it is still replaying its Kafka journal after a restart
    # (schemas then 404); its Quarkus readiness endpoint turns 200 only once that is done.
    parts = urlparse(url)
    health = f"{parts.scheme}://{parts.netloc}/health/ready"

    def ready() -> bool:
        try:
            return httpx.get(health, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def _mariadb_ready(port: int, socket_path: Path) -> Callable[[], bool]:
    def ready() -> bool:
        if not _port_open(port):
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


def _cassandra_ready(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        if not _port_open(port):
            return False
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy

        profile = ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy(["127.0.0.1"]), request_timeout=5
        )
        cluster = Cluster(
            ["127.0.0.1"],
            port=port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=5,
            control_connection_timeout=5,
        )
        try:
            session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local").one()
            return row is not None and bool(row.release_version)
        except Exception:  # noqa: BLE001 - any driver error means "not ready yet"
            return False
        finally:
            cluster.shutdown()

    return ready
