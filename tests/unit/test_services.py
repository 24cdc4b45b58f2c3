"""The service launcher's logic without starting anything: installer, configuration, plans.

Maven is replaced by a stand-in function in the installer tests (resolving from Maven Central
needs the network and minutes per run); it writes the files ``mvn`` would.
"""

import io
import os
import stat
import tarfile

import pytest

from brokerapp.model.settings import load_settings
from brokerapp.tools.services import (
    MAVEN_SERVERS,
    MavenServer,
    ServiceError,
    Services,
    install_server,
    local_mariadb_password,
)
from brokerapp.tools.services.config import (
    kafka_properties,
    registry_options,
    write_cassandra_yaml,
    write_mariadb_cnf,
)


class FakeMvn:
    """Stands in for Maven: records each call and writes what the goal would."""

    def __init__(self, archives=1):
        self.calls = []
        self.archives = archives

    def __call__(self, pom, *args):
        self.calls.append((pom, args))
        out = next(a.split("=", 1)[1] for a in args if a.startswith("-DoutputDirectory="))
        if args[0] == "dependency:copy-dependencies":
            for jar in ("a-1.0.jar", "b-2.0.jar"):
                with open(os.path.join(out, jar), "w") as f:
                    f.write("jar")
        else:
            for i in range(self.archives):
                data = b"java -jar quarkus-run.jar"
                info = tarfile.TarInfo("app/quarkus-run.jar")
                info.size = len(data)
                with tarfile.open(os.path.join(out, f"registry-{i}.tar.gz"), "w:gz") as tar:
                    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def pom(tmp_path):
    path = tmp_path / "deploy" / "pom.xml"
    path.parent.mkdir()
    path.write_text("<project>1</project>")
    return path


def test_every_maven_server_has_one_installer_and_its_pom():
    assert sorted(MAVEN_SERVERS) == ["apicurio", "cassandra", "kafka"]
    assert [s.archive for s in MAVEN_SERVERS.values()] == [False, True, False]
    for server in MAVEN_SERVERS.values():
        assert server.pom.name == "pom.xml" and server.pom.is_file()
        assert server.pom.parent.name == server.name


def test_a_class_path_install_copies_the_dependencies_once(tmp_path, pom):
    mvn = FakeMvn()
    server = MavenServer("kafka", pom)
    assert install_server(server, tmp_path / "lib", mvn) is True
    target = tmp_path / "lib" / "kafka"
    assert sorted(p.name for p in target.glob("*.jar")) == ["a-1.0.jar", "b-2.0.jar"]
    assert mvn.calls == [
        (
            pom,
            (
                "dependency:copy-dependencies",
                f"-DoutputDirectory={target}",
                "-DincludeScope=runtime",
            ),
        )
    ]
    # Same POM: nothing to do, Maven is not run again.
    assert install_server(server, tmp_path / "lib", mvn) is False
    assert len(mvn.calls) == 1


def test_a_changed_pom_is_resolved_again_into_a_clean_folder(tmp_path, pom):
    mvn = FakeMvn()
    server = MavenServer("cassandra", pom)
    install_server(server, tmp_path / "lib", mvn)
    stale = tmp_path / "lib" / "cassandra" / "old-0.1.jar"
    stale.write_text("old")
    pom.write_text("<project>2</project>")
    assert install_server(server, tmp_path / "lib", mvn) is True
    assert len(mvn.calls) == 2
    assert not stale.exists()


def test_an_archive_install_unpacks_the_one_archive(tmp_path, pom):
    mvn = FakeMvn()
    assert install_server(MavenServer("apicurio", pom, archive=True), tmp_path / "lib", mvn)
    assert (tmp_path / "lib" / "apicurio" / "app" / "quarkus-run.jar").read_bytes() == (
        b"java -jar quarkus-run.jar"
    )
    assert mvn.calls[0][1][0] == "dependency:copy"
    assert not (tmp_path / "lib" / "apicurio-download").exists()


def test_an_archive_install_refuses_two_archives(tmp_path, pom):
    with pytest.raises(ServiceError, match="expected one apicurio archive"):
        install_server(MavenServer("apicurio", pom, archive=True), tmp_path / "lib", FakeMvn(2))
    # Not stamped: the next install tries again.
    assert not (tmp_path / "lib" / "apicurio" / ".pom-sha256").exists()


def test_kafka_properties_of_a_three_broker_node(tmp_path):
    settings = load_settings(home=tmp_path, max_message_bytes=1000)
    props = kafka_properties(
        settings, 2, 19094, "1@127.0.0.1:19093,2@127.0.0.1:19095", tmp_path / "n2", 3
    )
    lines = dict(line.split("=", 1) for line in props.splitlines())
    assert lines["node.id"] == "2"
    assert lines["listeners"] == "PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19095"
    assert lines["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19094"
    assert lines["controller.quorum.voters"] == "1@127.0.0.1:19093,2@127.0.0.1:19095"
    assert lines["log.dirs"] == str(tmp_path / "n2" / "data")
    assert lines["default.replication.factor"] == "3"
    assert lines["min.insync.replicas"] == "2"
    assert lines["auto.create.topics.enable"] == "false"
    assert lines["message.max.bytes"] == "1000"
    assert lines["socket.request.max.bytes"] == "104857600"


def test_a_single_broker_has_replication_one(tmp_path):
    props = kafka_properties(load_settings(home=tmp_path), 1, 9092, "1@127.0.0.1:9093", tmp_path, 1)
    lines = dict(line.split("=", 1) for line in props.splitlines())
    assert (lines["default.replication.factor"], lines["min.insync.replicas"]) == ("1", "1")
    assert lines["offsets.topic.replication.factor"] == "1"


def test_registry_options_keep_their_journal_in_kafka():
    options = registry_options("upstream", 8082, "127.0.0.1:9192")
    assert options["quarkus.http.port"] == 8082
    assert options["quarkus.http.host"] == "127.0.0.1"
    assert options["apicurio.storage.kind"] == "kafkasql"
    assert options["apicurio.kafkasql.bootstrap.servers"] == "127.0.0.1:9192"
    assert options["apicurio.kafkasql.topic"] == "_registry-upstream-journal"


def test_mariadb_and_cassandra_configuration_files(tmp_path):
    settings = load_settings(home=tmp_path, mariadb_port=3307, cassandra_port=9043)
    cnf = write_mariadb_cnf(settings, tmp_path / "mariadb", tmp_path / "mariadb" / "s.sock")
    text = cnf.read_text()
    assert cnf == tmp_path / "mariadb" / "my.cnf"
    assert "port = 3307\n" in text
    assert f"socket = {tmp_path / 'mariadb' / 's.sock'}\n" in text
    assert f"datadir = {tmp_path / 'mariadb' / 'data'}\n" in text
    assert "bind-address = 127.0.0.1\n" in text
    yaml = write_cassandra_yaml(settings, tmp_path / "cassandra").read_text()
    assert "native_transport_port: 9043\n" in yaml
    assert f"  - {tmp_path / 'cassandra' / 'data'}/data\n" in yaml
    assert (tmp_path / "cassandra" / "logs").is_dir()


def test_plans_give_each_broker_its_port_and_nothing_starts(tmp_path):
    svc = Services(load_settings(home=tmp_path, kafka_bootstrap="127.0.0.1:19092"))
    nodes = svc.kafka_nodes("local", 3)
    assert [(n.name, n.port) for n in nodes] == [
        ("kafka-local-1", 19092),
        ("kafka-local-2", 19094),
        ("kafka-local-3", 19096),
    ]
    assert nodes[2].command[-2:] == [
        "kafka.Kafka",
        str(tmp_path / "kafka-local" / "node-3" / "server.properties"),
    ]
    assert (tmp_path / "kafka-local" / "node-3" / "server.properties").is_file()
    assert svc.known_names() == []
    # No layout.json yet: status knows no cluster.
    assert svc.status() == []


def test_the_local_mariadb_password_is_generated_once_into_a_private_file(tmp_path):
    settings = load_settings(home=tmp_path)
    first = local_mariadb_password(settings)
    path = tmp_path / "mariadb" / "password"
    assert path.read_text() == first + "\n"
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The next call, and every client's default settings, find the same one.
    assert local_mariadb_password(load_settings(home=tmp_path)) == first
    assert load_settings(home=tmp_path).mariadb_secret().get_secret_value() == first


def test_a_configured_mariadb_password_is_used_and_no_file_written(tmp_path):
    settings = load_settings(home=tmp_path, mariadb_password="chosen")
    assert local_mariadb_password(settings) == "chosen"
    assert not (tmp_path / "mariadb" / "password").exists()
