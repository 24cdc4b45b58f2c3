"""The local services of one services home: what runs, how to bring it up and down.

:class:`Services` plans every server (:class:`~brokerapp.tools.services.process.Service`:
name, port, command line, readiness probe), installs what Maven resolves
(:mod:`~brokerapp.tools.services.install`), writes each server's configuration
(:mod:`~brokerapp.tools.services.config`), formats the KRaft clusters, and starts, waits for,
stops and reports the processes (:class:`~brokerapp.tools.services.process.Supervisor`).

Broker ``N`` of a cluster whose first broker port is ``P`` listens on ``P + 2(N-1)`` and its
controller on the port above that. ``var/kafka-<cluster>/layout.json`` records the broker
count and cluster ID a cluster was formatted with; ``status`` and ``down`` know a cluster by
it. MariaDB and Cassandra are part of the plan only while their pid files exist.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from brokerapp.adapters.sql import sql_name
from brokerapp.model.settings import Settings
from brokerapp.tools.services.config import (
    CASSANDRA_JVM_OPTIONS,
    CASSANDRA_LOGBACK,
    jvm_options,
    kafka_java,
    kafka_properties,
    registry_options,
    upstream_security_properties,
    write_cassandra_yaml,
    write_mariadb_cnf,
)
from brokerapp.tools.services.install import MAVEN_SERVERS, install_server
from brokerapp.tools.services.monitoring import prometheus_service
from brokerapp.tools.services.probes import (
    LOCAL_HOST,
    cassandra_ready,
    kafka_ready,
    mariadb_ready,
    port_open,
    quiet_cassandra_driver,
    registry_ready,
)
from brokerapp.tools.services.process import (
    STOP_GRACE_SECONDS,
    Service,
    ServiceError,
    ServiceState,
    Supervisor,
)
from brokerapp.tools.services.tls import ensure_registry_tls, ensure_upstream_tls
from brokerapp.tools.services.upstream_access import (
    grant_upstream_access,
    upstream_client_password,
)

__all__ = [
    "DATABASE_SERVICES",
    "MARIADB_ACCOUNT_HOST",
    "Services",
    "local_cassandra_password",
    "local_mariadb_password",
]

#: Names of the database services, in the order ``up --databases`` starts them.
DATABASE_SERVICES = ("mariadb", "cassandra")
#: Host part of the local MariaDB account (``mariadb_user@127.0.0.1``): clients come over TCP.
MARIADB_ACCOUNT_HOST = LOCAL_HOST
#: Random bytes of the password generated for the local MariaDB account.
MARIADB_PASSWORD_BYTES = 24
#: Heap of the short-lived JVM that formats a KRaft node's storage.
FORMAT_HEAP = "256m"


class Services(Supervisor):
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
        super().__init__(self.home / "run", self.home / "log", settings.startup_timeout)

    # ------------------------------------------------------------------ install
    def install(self, databases: bool = True) -> None:
        """Resolve the Kafka jars and the Apicurio archive from Maven Central if missing.

        Parameters
        ----------
        databases : bool
            Also resolve the Cassandra jars (MariaDB comes from Debian: `make install`).
        """
        names = ["kafka", "apicurio"] + (["cassandra"] if databases else [])
        for name in names:
            install_server(MAVEN_SERVERS[name], self.lib)

    def _apicurio_jar(self) -> Path:
        jars = sorted((self.lib / "apicurio").glob("*-runner.jar")) or sorted(
            (self.lib / "apicurio").glob("**/quarkus-run.jar")
        )
        if not jars:
            raise ServiceError("Apicurio runner jar not found; run `brokerapp services install`")
        return jars[0]

    def _jamm_jar(self) -> Path:
        jars = sorted((self.lib / "cassandra").glob("jamm-*.jar"))
        if not jars:
            raise ServiceError("Cassandra jars not found; run `brokerapp services install`")
        return jars[-1]

    # ------------------------------------------------------------------ plans
    def kafka_nodes(self, cluster: str, brokers: int) -> list[Service]:
        """Return the broker services of one cluster (``local`` or ``upstream``).

        Writes each node's ``server.properties``.

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
        voters = ",".join(f"{i + 1}@{LOCAL_HOST}:{p + 1}" for i, p in enumerate(ports))
        bootstrap = ",".join(f"{LOCAL_HOST}:{p}" for p in ports)
        if cluster == "upstream":
            # Clients of the broker's side authenticate on `port`; readiness, the upstream's
            # own producers and admin use the internal listener.
            feed_ports = [self.settings.upstream_feed_port() + 2 * i for i in range(brokers)]
            bootstrap = ",".join(f"{LOCAL_HOST}:{p}" for p in feed_ports)
            keystore = ensure_upstream_tls(self.home, LOCAL_HOST)
        nodes = []
        for i, port in enumerate(ports):
            node_id = i + 1
            node_dir = self.home / f"kafka-{cluster}" / f"node-{node_id}"
            extra = (
                upstream_security_properties(
                    port, feed_ports[i], keystore.keystore, keystore.password
                )
                if cluster == "upstream"
                else None
            )
            props = kafka_properties(self.settings, node_id, port, voters, node_dir, brokers, extra)
            nodes.append(
                Service(
                    name=f"kafka-{cluster}-{node_id}",
                    kind="kafka",
                    port=port,
                    command=kafka_java(self.settings.kafka_heap, self.lib / "kafka")
                    + ["kafka.Kafka", str(node_dir / "server.properties")],
                    cwd=node_dir,
                    ready=kafka_ready(bootstrap, brokers),
                )
            )
            node_dir.mkdir(parents=True, exist_ok=True)
            _write_private(node_dir / "server.properties", props)
        return nodes

    def registry(self, cluster: str, in_memory: bool = False) -> Service:
        """Return the Apicurio Registry service of one side (``local`` or ``upstream``).

        Parameters
        ----------
        cluster : str
            ``local`` (port from ``registry_url``, storage in the local Kafka) or
            ``upstream`` (port from ``upstream_registry_url``, storage in the upstream Kafka).
            An ``https`` URL makes it serve HTTPS only, with a certificate signed by the
            project CA (:func:`~brokerapp.tools.services.tls.ensure_registry_tls`).
        in_memory : bool
            Keep Apicurio's in-memory storage instead of the Kafka journal (a test's own
            registry, which must not replay or write the shared journal topics).

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
            bootstrap = self.settings.upstream_feed_bootstrap  # the upstream's own side
        workdir = self.home / f"registry-{cluster}"
        workdir.mkdir(parents=True, exist_ok=True)
        tls = None
        if urlparse(url).scheme == "https":
            tls = ensure_registry_tls(self.home, LOCAL_HOST, cluster)
        options = registry_options(cluster, port, None if in_memory else bootstrap, tls)
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
            ready=registry_ready(url, tls.ca if tls else None),
        )

    def mariadb(self) -> Service:
        """Return the MariaDB service (Debian's ``mariadbd``), writing its option file.

        Returns
        -------
        Service
            The database server, not yet started (see :meth:`init_mariadb`).
        """
        base = self.home / "mariadb"
        cnf = write_mariadb_cnf(self.settings, base, self.mariadb_socket)
        server = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
        return Service(
            name="mariadb",
            kind="mariadb",
            port=self.settings.mariadb_port,
            command=[server, f"--defaults-file={cnf}"],
            cwd=base,
            ready=mariadb_ready(self.settings.mariadb_port, self.mariadb_socket),
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
        account = (user, MARIADB_ACCOUNT_HOST)
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
                    "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (*account, password)
                )
                cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (*account, password))
                cur.execute(f"GRANT ALL PRIVILEGES ON {sql_name(database)}.* TO %s@%s", account)
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
        config = write_cassandra_yaml(self.settings, base)
        data, logs = base / "data", base / "logs"
        heap = self.settings.cassandra_heap
        command = [
            "java",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            *jvm_options(CASSANDRA_JVM_OPTIONS),
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
            # Create the default cassandra/cassandra role at once, for bootstrap_cassandra.
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-cp",
            str(self.lib / "cassandra" / "*"),
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        return Service(
            name="cassandra",
            kind="cassandra",
            port=self.settings.cassandra_port,
            command=command,
            cwd=base,
            ready=cassandra_ready(self.settings.cassandra_port),
        )

    @property
    def cassandra_admin_password_path(self) -> Path:
        """File of the local Cassandra superuser's generated password (mode 0600)."""
        return self.home / "cassandra" / "admin.password"

    def _cassandra_session(self, user: str | None, password: str = "") -> tuple[Any, Any] | None:
        """Log in to the local node (anonymously if ``user`` is None); None if refused."""
        from cassandra import AuthenticationFailed
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import (
            EXEC_PROFILE_DEFAULT,
            Cluster,
            ExecutionProfile,
            NoHostAvailable,
        )
        from cassandra.policies import WhiteListRoundRobinPolicy

        profile = ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy([LOCAL_HOST]), request_timeout=30
        )
        cluster = Cluster(
            [LOCAL_HOST],
            port=self.settings.cassandra_port,
            protocol_version=5,
            auth_provider=None
            if user is None
            else PlainTextAuthProvider(username=user, password=password),
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=10,
            control_connection_timeout=10,
        )
        try:
            with quiet_cassandra_driver():
                return cluster, cluster.connect()
        except NoHostAvailable as exc:
            cluster.shutdown()
            errors = list(exc.errors.values())
            if errors and all(isinstance(e, AuthenticationFailed) for e in errors):
                return None
            raise ServiceError(f"Cassandra on port {self.settings.cassandra_port}: {exc}") from exc

    def bootstrap_cassandra(self) -> None:
        """Replace the default superuser and create the broker's role, idempotently.

        Does nothing on a node that lets anyone in (one started with an older configuration
        without PasswordAuthenticator). Otherwise logs in as ``cassandra_admin_user`` with
        the password of :attr:`cassandra_admin_password_path` (generated the first time).
        When that is refused (a new node), logs in as the default ``cassandra``/``cassandra``
        (retrying while the node creates it), creates the admin superuser, and, as the admin,
        drops the ``cassandra`` role. Then creates ``cassandra_user`` (login, not superuser)
        with the password :func:`local_cassandra_password`, or resets an existing role's
        password to it when that one is refused. Role names are quoted by
        :func:`~brokerapp.adapters.sql.cql_name`; passwords go as driver parameters.

        Raises
        ------
        ServiceError
            If neither the admin nor the default role can log in before the start-up
            time-out, or the node fails.
        """
        import time

        from brokerapp.adapters.sql import cql_name

        admin, user = self.settings.cassandra_admin_user, self.settings.cassandra_user
        if not user or user in (admin, "cassandra"):
            raise ServiceError(
                f"cassandra_user {user!r}: name a role other than {admin!r} and 'cassandra'"
            )
        anonymous = self._cassandra_session(None)
        if anonymous is not None:  # a node started without PasswordAuthenticator
            anonymous[0].shutdown()
            return
        admin_password = _generated_secret(self.cassandra_admin_password_path)
        password = local_cassandra_password(self.settings)
        login = self._cassandra_session(admin, admin_password)
        if login is None:
            deadline = time.monotonic() + self.settings.startup_timeout
            while (default := self._cassandra_session("cassandra", "cassandra")) is None:
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"Cassandra refuses both {admin!r} (password in "
                        f"{self.cassandra_admin_password_path}) and the default role "
                        "'cassandra': reset the node's data or restore the password file"
                    )
                time.sleep(1.0)
            cluster, session = default
            try:
                session.execute(
                    f"CREATE ROLE IF NOT EXISTS {cql_name(admin)} "
                    "WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = %s",
                    (admin_password,),
                )
            finally:
                cluster.shutdown()
            login = self._cassandra_session(admin, admin_password)
            if login is None:
                raise ServiceError(f"Cassandra refused the new superuser {admin!r}")
        cluster, session = login
        try:
            exists = session.execute(
                "SELECT role FROM system_auth.roles WHERE role = %s", (user,)
            ).one()
            if exists is None:
                session.execute(
                    f"CREATE ROLE {cql_name(user)} "
                    "WITH LOGIN = true AND SUPERUSER = false AND PASSWORD = %s",
                    (password,),
                )
            elif (broker := self._cassandra_session(user, password)) is None:
                # The file's password is the truth (Cassandra limits how often it changes).
                session.execute(f"ALTER ROLE {cql_name(user)} WITH PASSWORD = %s", (password,))
            else:
                broker[0].shutdown()
            session.execute("DROP ROLE IF EXISTS cassandra")
        finally:
            cluster.shutdown()

    def databases(self) -> list[Service]:
        """Return the database services (MariaDB, Cassandra), not yet started."""
        return [self.mariadb(), self.cassandra()]

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
            cmd = kafka_java(FORMAT_HEAP, self.lib / "kafka") + [
                "kafka.tools.StorageTool",
                "format",
                # One argument: a cluster ID may start with "-" (base64url), which would
                # otherwise be read as an option.
                f"--cluster-id={cluster_id}",
                "-c",
                str(node.cwd / "server.properties"),
                "--ignore-formatted",
            ]
            if cluster == "upstream":
                # The broker's SCRAM credentials, created with the metadata (KRaft).
                user = self.settings.upstream_sasl_username
                password = upstream_client_password(self.settings)
                cmd += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ServiceError(
                    f"formatting {node.name} failed ({done.returncode}): {done.stderr.strip()}"
                    f" {done.stdout.strip()}"
                )
        layout_file.write_text(json.dumps({"brokers": len(nodes), "cluster_id": cluster_id}))

    def up(
        self,
        brokers: int = 1,
        upstream: bool = False,
        registry: bool = True,
        databases: bool = False,
        monitoring: bool = False,
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
        monitoring : bool
            Also start Prometheus, scraping every worker (:meth:`monitoring`).

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
        if upstream:
            grant_upstream_access(self.settings)
        if registry:
            registries = [self.registry(cluster) for cluster in clusters]
            for reg in registries:
                self.start(reg)
            self.wait_ready(registries)
            started += registries
        if dbs:
            self.wait_databases(dbs)
            started += dbs
        if monitoring:
            started.append(self.start_monitoring())
        return started

    def monitoring(self) -> Service:
        """Return the Prometheus service, writing its configuration and scrape targets.

        See :mod:`~brokerapp.tools.services.monitoring`.
        """
        return prometheus_service(self.settings, self.home)

    def start_monitoring(self) -> Service:
        """Start Prometheus (unless it runs) and wait until it is ready; return it."""
        prometheus = self.monitoring()
        self.start(prometheus)
        self.wait_ready([prometheus])
        return prometheus

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
        if any(db.kind == "cassandra" for db in dbs):
            self.bootstrap_cassandra()

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
            "monitoring",
        ):
            shutil.rmtree(self.home / sub, ignore_errors=True)
        shutil.rmtree(self.settings.faust_dir, ignore_errors=True)

    # ------------------------------------------------------------------ status
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
                    answering=running and port_open(service.port),
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
        if self._pid_file("prometheus").exists():
            planned.append(self.monitoring())
        return planned


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it may hold a keystore password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def local_mariadb_password(settings: Settings) -> str:
    """Return the password of the local MariaDB account, generating one the first time.

    It is ``mariadb_password`` when set, else the content of the password file
    (:attr:`~brokerapp.model.settings.Settings.mariadb_password_path`, default
    ``<home>/mariadb/password``). When neither exists, a random password is generated and
    written to that file (mode 0600), where the default settings of every client find it.
    ``up --databases`` (re)sets the account's password to this value.

    Parameters
    ----------
    settings : Settings
        The broker's settings.

    Returns
    -------
    str
        The password clients use with ``mariadb_user``.
    """
    password = settings.mariadb_secret().get_secret_value()
    if password:
        return password
    path = settings.mariadb_password_path
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(MARIADB_PASSWORD_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password


def _generated_secret(path: Path) -> str:
    """Return the first line of ``path``, first writing a random password there (0600)."""
    if path.is_file():
        lines = path.read_text().splitlines()
        if lines and lines[0].strip():
            return lines[0].strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(MARIADB_PASSWORD_BYTES)
    _write_private(path, password + "\n")
    return password


def local_cassandra_password(settings: Settings) -> str:
    """Return the password of the local Cassandra role, generating one the first time.

    ``cassandra_password`` when set, else the first line of
    :attr:`~brokerapp.model.settings.Settings.cassandra_password_path` (default
    ``<home>/cassandra/password``), written with a random password (mode 0600) when missing.

    Parameters
    ----------
    settings : Settings
        The broker's settings.

    Returns
    -------
    str
        The password clients use with ``cassandra_user``.
    """
    password = settings.cassandra_secret().get_secret_value()
    return password or _generated_secret(settings.cassandra_password_path)
