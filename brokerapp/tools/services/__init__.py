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
    var/mariadb/password                generated password of the broker account (mode 0600)

MariaDB's root account has no password and is reachable only through the unix socket
``var/mariadb/mysqld.sock``; clients use the account ``mariadb_user@127.0.0.1`` on
``mariadb_database``, which ``up`` creates idempotently. Its password is ``mariadb_password``
when set, else one generated once into ``var/mariadb/password``
(:func:`local_mariadb_password`), where the default settings of the stores find it: nothing
at runtime imports this package.
Cassandra is a single node (``SimpleSnitch``, one token, no authentication) running
``CassandraDaemon`` with the Java 17 options of ``deploy/cassandra/jvm17.options``. Both are
listed by ``status`` and stopped by ``down`` while their pid files exist; ``reset`` deletes
their data too.

Modules: ``process`` (pid files, start, stop, wait), ``probes`` (readiness of each server),
``config`` (each server's configuration files and options), ``install`` (the one installer of
the Maven-resolved servers), ``manager`` (:class:`Services`: plans, ``up``/``down``/``status``
/``reset``).
"""

from brokerapp.tools.services.install import MAVEN_SERVERS, MavenServer, install_server
from brokerapp.tools.services.manager import (
    DATABASE_SERVICES,
    MARIADB_ACCOUNT_HOST,
    Services,
    local_mariadb_password,
)
from brokerapp.tools.services.probes import LOCAL_HOST
from brokerapp.tools.services.process import (
    POLL_SECONDS,
    STOP_GRACE_SECONDS,
    Service,
    ServiceError,
    ServiceState,
)

__all__ = [
    "DATABASE_SERVICES",
    "LOCAL_HOST",
    "MARIADB_ACCOUNT_HOST",
    "MAVEN_SERVERS",
    "POLL_SECONDS",
    "STOP_GRACE_SECONDS",
    "MavenServer",
    "Service",
    "ServiceError",
    "ServiceState",
    "Services",
    "install_server",
    "local_mariadb_password",
]
