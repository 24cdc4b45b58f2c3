"""The real MariaDB and Cassandra started by `brokerapp services up --databases`.

These tests need both databases up; they skip (with the reason) when `services status` does
not show them answering, so a Kafka-only `services up` still runs the rest of the tier. Each
test works in its own table (MariaDB) or keyspace (Cassandra) and removes it at the end; the
restart tests stop and start the database through `Services`, as `services down`/`up` do.
"""

import uuid

import aiomysql
import pymysql
import pytest

from .databases import cassandra_cluster, databases_or_skip


@pytest.fixture(scope="module")
def db_services(request):
    return databases_or_skip(request.config)


def _mariadb(settings):
    return pymysql.connect(
        host=settings.mariadb_host,
        port=settings.mariadb_port,
        user=settings.mariadb_user,
        password=settings.mariadb_secret().get_secret_value(),
        database=settings.mariadb_database,
        autocommit=True,
    )


def _restart(svc, name):
    assert svc.stop(name), f"{name} was not running"
    assert svc.pid(name) is None
    service = {"mariadb": svc.mariadb, "cassandra": svc.cassandra}[name]()
    svc.start(service)
    svc.wait_databases([service])


@pytest.fixture
def table(db_services):
    settings = db_services.settings
    name = f"test_{uuid.uuid4().hex[:12]}"
    conn = _mariadb(settings)
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE `{name}` (alert_id BIGINT PRIMARY KEY, object_id VARCHAR(64) NOT NULL,"
            " n_seen INT NOT NULL)"
        )
    conn.close()
    yield name
    conn = _mariadb(settings)
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{name}`")
    conn.close()


@pytest.fixture
def keyspace(db_services):
    name = f"test_{uuid.uuid4().hex[:12]}"
    cluster = cassandra_cluster(db_services.settings)
    session = cluster.connect()
    session.execute(
        f"CREATE KEYSPACE {name} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    session.execute(
        f"CREATE TABLE {name}.lightcurve (object_id text, mjd double, mag float, "
        "PRIMARY KEY (object_id, mjd))"
    )
    cluster.shutdown()
    yield name
    cluster = cassandra_cluster(db_services.settings)
    cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {name}")
    cluster.shutdown()


UPSERT = (
    "INSERT INTO `{table}` (alert_id, object_id, n_seen) VALUES (%s, %s, %s) "
    "ON DUPLICATE KEY UPDATE object_id = VALUES(object_id), n_seen = n_seen + VALUES(n_seen)"
)


async def test_mariadb_upsert_and_select_over_tcp(db_services, table):
    settings = db_services.settings
    conn = await aiomysql.connect(
        host=settings.mariadb_host,
        port=settings.mariadb_port,
        user=settings.mariadb_user,
        password=settings.mariadb_secret().get_secret_value(),
        db=settings.mariadb_database,
        autocommit=True,
    )
    try:
        async with conn.cursor() as cur:
            rows = [(1, "ZTF18aaaaaaa", 1), (2, "ZTF18bbbbbbb", 1), (1, "ZTF18aaaaaaa", 1)]
            for row in rows:
                await cur.execute(UPSERT.format(table=table), row)
            # A value with quotes goes through as a parameter, not as SQL.
            await cur.execute(UPSERT.format(table=table), (3, "x'); DROP TABLE t; --", 1))
            await cur.execute(
                f"SELECT alert_id, object_id, n_seen FROM `{table}` WHERE alert_id IN (%s, %s, %s)"
                " ORDER BY alert_id",
                (1, 2, 3),
            )
            assert await cur.fetchall() == (
                (1, "ZTF18aaaaaaa", 2),
                (2, "ZTF18bbbbbbb", 1),
                (3, "x'); DROP TABLE t; --", 1),
            )
    finally:
        conn.close()


def test_cassandra_prepared_insert_and_select(db_services, keyspace):
    cluster = cassandra_cluster(db_services.settings)
    try:
        session = cluster.connect(keyspace)
        insert = session.prepare("INSERT INTO lightcurve (object_id, mjd, mag) VALUES (?, ?, ?)")
        points = [("ZTF18aaaaaaa", 60000.5 + i, 18.0 + i / 10) for i in range(5)]
        for point in points:
            session.execute(insert, point)
        select = session.prepare("SELECT mjd, mag FROM lightcurve WHERE object_id = ?")
        rows = list(session.execute(select, ("ZTF18aaaaaaa",)))
        assert [r.mjd for r in rows] == [p[1] for p in points]
        assert [r.mag for r in rows] == pytest.approx([p[2] for p in points])
        assert list(session.execute(select, ("nothing",))) == []
    finally:
        cluster.shutdown()


def test_mariadb_data_survives_a_restart(db_services, table):
    settings = db_services.settings
    conn = _mariadb(settings)
    with conn.cursor() as cur:
        cur.executemany(UPSERT.format(table=table), [(i, f"ZTF{i:09d}", i) for i in range(1, 101)])
    conn.close()

    _restart(db_services, "mariadb")

    conn = _mariadb(settings)
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*), SUM(n_seen) FROM `{table}`")
        assert cur.fetchone() == (100, 5050)
    conn.close()


def test_cassandra_data_survives_a_restart(db_services, keyspace):
    settings = db_services.settings
    cluster = cassandra_cluster(settings)
    session = cluster.connect(keyspace)
    insert = session.prepare("INSERT INTO lightcurve (object_id, mjd, mag) VALUES (?, ?, ?)")
    for i in range(100):
        session.execute(insert, (f"obj{i % 10}", 60000.0 + i, 17.5))
    cluster.shutdown()

    _restart(db_services, "cassandra")

    cluster = cassandra_cluster(settings)
    try:
        session = cluster.connect(keyspace)
        count = session.execute("SELECT COUNT(*) FROM lightcurve").one()[0]
        assert count == 100
        rows = list(session.execute("SELECT mjd FROM lightcurve WHERE object_id = 'obj3'"))
        assert [r.mjd for r in rows] == [60000.0 + i for i in range(3, 100, 10)]
    finally:
        cluster.shutdown()
