"""brokerapp.adapters.stores on the real MariaDB and Cassandra of `services up --databases`.

The tests skip (with the reason) when `services status` does not show both databases
answering. Each test works in its own MariaDB database and Cassandra keyspace, both named
`t_<random>`, and removes them at the end. The broker account may not create databases (it
has all privileges on `mariadb_database` only), so the test database is created, granted to
it and dropped through root's unix socket, as `services up` does for the real one. Nothing
here stops or restarts the shared servers: unreachable stores are stores pointed at a port
nobody listens on.
"""

import asyncio
import math
import socket

import pytest
from click.testing import CliRunner

from brokerapp.adapters.dbschema import TABLES
from brokerapp.adapters.stores import (
    CassandraStore,
    MariaDbStore,
    StoreRejected,
    StoreUnavailable,
    open_store,
)
from brokerapp.tools.cli import main

from .databases import databases_or_skip, mariadb_root, private_stores

KINDS = ["mariadb", "cassandra"]


@pytest.fixture(scope="module")
def db_services(request):
    return databases_or_skip(request.config)


@pytest.fixture
def isolated(db_services):
    """Settings naming a fresh MariaDB database and Cassandra keyspace (dropped afterwards)."""
    with private_stores(db_services, sink_concurrency=16) as settings:
        yield settings


@pytest.fixture(params=KINDS)
async def store(request, isolated):
    """An open, migrated store of each kind."""
    opened = await open_store(isolated, request.param)
    await opened.migrate()
    yield opened
    await opened.close()


def _candidate(candidate_id, object_id="ZTF18aaaaaaa", mjd=60000.5, **extra):
    row = {
        "candidate_id": candidate_id,
        "object_id": object_id,
        "survey": "ztf",
        "mjd": mjd,
        "band": "g",
        "ra": 150.0 + candidate_id / 1e6,
        "decl": -2.25,
        "mag": 18.0 + candidate_id / 100,
        "mag_err": 0.05,
    }
    row.update(extra)
    return row


SAMPLE = {
    "candidates": [
        _candidate(3, mjd=60003.25),
        _candidate(1, mjd=60001.125, band=None, mag=None),
        _candidate(2, mjd=60002.0, flux=1234.5, flux_err=12.25, visit_id=2**40),
        _candidate(7, object_id="ZTF18ABCdefg", mjd=60000.1),
        _candidate(8, object_id="ZTF18abcdefg", mjd=60000.1),
    ],
    "ss_candidates": [
        {
            "candidate_id": 11,
            "ss_name": "2001 AB",
            "ss_distance_arcsec": 0.75,
            "survey": "lsst",
            "mjd": 60010.5,
            "band": "r",
            "flux": 5.5e-29,
            "visit_id": 1234567890123,
        },
        {"candidate_id": 10, "ss_name": "2001 AB", "survey": "lsst", "mjd": 60009.5},
        {"candidate_id": 12, "ss_name": "Ceres", "object_id": "x1", "survey": "ztf", "mjd": 1.0},
    ],
    "annotations": [
        {"alert_id": 5, "source": "watchlist:w1", "entry": "M31", "separation_arcsec": 1.5},
        {"alert_id": 5, "source": "watchlist:w1", "entry": "M31 ", "separation_arcsec": 2.5},
        {"alert_id": 5, "source": "watchlist:w1", "entry": "m31", "separation_arcsec": 3.5},
        {"alert_id": 5, "source": "catalogue:gaia", "entry": "Gaia DR3 123", "mjd": 60000.5},
        {
            "alert_id": 6,
            "source": "watchlist:w1",
            "entry": "NGC 224",
            "object_id": "ZTF18aaaaaaa",
            "detail": '{"note": "ünïcode ✓"}',
        },
    ],
    "objects": [
        {
            "object_id": "ZTF18aaaaaaa",
            "survey": "ztf",
            "n_detections": 3,
            "first_mjd": 60001.125,
            "last_mjd": 60003.25,
            "latest_candidate_id": 3,
            "latest_band": "g",
            "latest_mag": 18.03,
            "ra_mean": 150.000002,
            "decl_mean": -2.25,
            "position_scatter_arcsec": 0.0123456789012345,
            "stats": '{"bands": {"g": {"n": 3}}}',
        },
        {
            "object_id": "ZTF18bbbbbbb",
            "survey": "ztf",
            "n_detections": 1,
            "first_mjd": 0.1 + 0.2,
            "last_mjd": 0.1 + 0.2,
            "latest_candidate_id": 99,
            "stats": "{}",
        },
    ],
}


def _full(table, row):
    """The row as a store returns it: every column, None where missing."""
    return {name: row.get(name) for name in TABLES[table].column_names}


def _ordered(table, rows):
    order = TABLES[table].order
    return sorted((_full(table, r) for r in rows), key=lambda r: tuple(r[c] for c in order))


async def _load(opened):
    for table, rows in SAMPLE.items():
        await opened.upsert(table, rows)


async def test_migrate_twice(isolated):
    for kind in KINDS:
        opened = await open_store(isolated, kind)
        try:
            assert await opened.schema_version() == 0
            assert await opened.migrate() == [1]
            assert await opened.schema_version() == 1
            assert await opened.migrate() == []
            assert await opened.schema_version() == 1
            for table in TABLES:
                assert await opened.count(table) == 0
                assert await opened.dump(table) == []
        finally:
            await opened.close()


async def test_upsert_twice_gives_an_identical_dump(store):
    await _load(store)
    first = {table: await store.dump(table) for table in TABLES}
    for table, rows in SAMPLE.items():
        assert first[table] == _ordered(table, rows), table
        assert await store.count(table) == len(rows)
    await _load(store)
    await store.upsert("candidates", list(reversed(SAMPLE["candidates"])))
    assert {table: await store.dump(table) for table in TABLES} == first
    await store.upsert("candidates", [])


async def test_both_stores_hold_the_same_rows(isolated):
    dumps = {}
    for kind in KINDS:
        opened = await open_store(isolated, kind)
        try:
            await opened.migrate()
            await _load(opened)
            dumps[kind] = {table: await opened.dump(table) for table in TABLES}
        finally:
            await opened.close()
    assert dumps["mariadb"] == dumps["cassandra"]
    # Keys compare exactly in both (MariaDB's binary no-pad collation, as Cassandra's text):
    # case and trailing spaces make different keys.
    objects = [r["object_id"] for r in dumps["mariadb"]["candidates"]]
    assert "ZTF18ABCdefg" in objects and "ZTF18abcdefg" in objects
    entries = [r["entry"] for r in dumps["mariadb"]["annotations"] if r["alert_id"] == 5]
    assert entries == ["Gaia DR3 123", "M31", "M31 ", "m31"]


async def test_writing_before_migrate_is_neither_unavailable_nor_rejected(isolated):
    # Missing tables are a set-up error: a sink must stop, not retry or dead-letter.
    for kind in KINDS:
        opened = await open_store(isolated, kind)
        try:
            with pytest.raises(Exception) as raised:
                await opened.upsert("candidates", [_candidate(1)])
            assert not isinstance(raised.value, StoreUnavailable | StoreRejected), raised.value
        finally:
            await opened.close()


async def test_an_updated_row_replaces_the_old_values(store):
    await store.upsert("candidates", [_candidate(1, flux=10.0, visit_id=5)])
    await store.upsert("candidates", [_candidate(1, mag=19.5, flux=None, band="r")])
    assert await store.fetch("candidates", object_id="ZTF18aaaaaaa") == [
        _full("candidates", _candidate(1, mag=19.5, band="r"))
    ]
    obj = dict(SAMPLE["objects"][0])
    await store.upsert("objects", [obj])
    newer = {**obj, "n_detections": 4, "last_mjd": 60004.0, "latest_mag": None, "stats": "{}"}
    await store.upsert("objects", [newer])
    assert await store.fetch("objects", object_id=obj["object_id"]) == [_full("objects", newer)]
    assert await store.count("objects") == 1


async def test_fetch_by_key_in_time_order(store):
    # Candidate IDs out of time order, two objects, inserted in neither order.
    rows = [
        _candidate(50, mjd=60005.0),
        _candidate(10, mjd=60009.0),
        _candidate(30, mjd=60001.0),
        _candidate(20, object_id="ZTF18zzzzzzz", mjd=60000.0),
        _candidate(40, mjd=60001.0),
    ]
    await store.upsert("candidates", rows)
    got = await store.fetch("candidates", object_id="ZTF18aaaaaaa")
    assert [(r["mjd"], r["candidate_id"]) for r in got] == [
        (60001.0, 30),
        (60001.0, 40),
        (60005.0, 50),
        (60009.0, 10),
    ]
    assert got == _ordered("candidates", [r for r in rows if r["object_id"] == "ZTF18aaaaaaa"])
    assert await store.fetch("candidates", object_id="ZTF18aaaaaaa", mjd=60001.0) == got[:2]
    assert await store.fetch("candidates", object_id="nothing") == []

    await _load(store)
    ss = await store.fetch("ss_candidates", ss_name="2001 AB")
    assert [r["candidate_id"] for r in ss] == [10, 11]
    notes = await store.fetch("annotations", alert_id=5)
    assert [(r["source"], r["entry"]) for r in notes] == [
        ("catalogue:gaia", "Gaia DR3 123"),
        ("watchlist:w1", "M31"),
        ("watchlist:w1", "M31 "),
        ("watchlist:w1", "m31"),
    ]


async def test_fetch_filters_are_checked(store):
    with pytest.raises(ValueError, match="cannot be fetched by band"):
        await store.fetch("candidates", band="g")
    with pytest.raises(ValueError, match="needs at least one"):
        await store.fetch("candidates")
    with pytest.raises(ValueError, match="unknown table"):
        await store.fetch("nope", object_id="x")
    if isinstance(store, CassandraStore):
        # Not a partition lookup: Cassandra would scan every node.
        with pytest.raises(ValueError, match="Cassandra looks up candidates by object_id"):
            await store.fetch("candidates", candidate_id=1)
    else:
        await store.upsert("candidates", [_candidate(1)])
        assert [r["candidate_id"] for r in await store.fetch("candidates", candidate_id=1)] == [1]


async def test_values_with_quotes_are_parameters(store):
    nasty = [
        "x'); DROP TABLE candidates; --",
        'quote " double',
        "back`tick",
        "semi; colon \\ backslash",
        "ünïcode ✓ 🚀",
    ]
    rows = [_candidate(i, object_id=name, mjd=60000.0 + i) for i, name in enumerate(nasty)]
    await store.upsert("candidates", rows)
    for row in rows:
        assert await store.fetch("candidates", object_id=row["object_id"]) == [
            _full("candidates", row)
        ]
    assert await store.count("candidates") == len(nasty)
    note = {"alert_id": 1, "source": "catalogue:it's", "entry": 'O\'Brien "A"', "detail": "'"}
    await store.upsert("annotations", [note])
    assert await store.fetch("annotations", alert_id=1) == [_full("annotations", note)]


async def test_a_rejected_value_raises_store_rejected(store):
    await store.upsert("candidates", [_candidate(1)])
    bad_rows = [
        _candidate(2, object_id=None),  # a required column empty
        {**_candidate(2), "dec": 1.0},  # a column the table does not have
        {**_candidate(2), "candidate_id": "not a number"},  # wrong type for BIGINT
        _candidate(2, visit_id=2**64),  # beyond BIGINT
    ]
    if isinstance(store, MariaDbStore):
        bad_rows += [
            _candidate(2, object_id="x" * 65),  # longer than VARCHAR(64)
            _candidate(2, mag=math.inf),  # MariaDB has no infinity
            _candidate(2, band={"g": 1}),  # pymysql cannot quote a dict
        ]
    else:
        bad_rows += [
            _candidate(2, object_id="x" * 70_000),  # longer than a partition key may be
            _candidate(2, band=7),  # not text
        ]
    for bad in bad_rows:
        with pytest.raises(StoreRejected):
            await store.upsert("candidates", [_candidate(3), bad, _candidate(4)])
    if isinstance(store, MariaDbStore):
        # One transaction: nothing of a refused batch is written.
        assert await store.count("candidates") == 1
    # The store still works afterwards.
    await store.upsert("candidates", [_candidate(5)])
    ids = [r["candidate_id"] for r in await store.fetch("candidates", object_id="ZTF18aaaaaaa")]
    assert 1 in ids and 5 in ids


async def test_a_large_batch_and_paged_reads(store):
    # More rows than one Cassandra page (5000), more than sink_concurrency in flight.
    rows = [
        _candidate(i, object_id=f"ZTF{i % 7:09d}", mjd=60000.0 + (i * 7919) % 6000 / 10)
        for i in range(6000)
    ]
    await store.upsert("candidates", rows)
    assert await store.count("candidates") == len(rows)
    assert await store.dump("candidates") == _ordered("candidates", rows)
    one = await store.fetch("candidates", object_id="ZTF000000003")
    assert one == _ordered("candidates", [r for r in rows if r["object_id"] == "ZTF000000003"])


async def test_rows_larger_than_one_cassandra_batch_may_hold_are_all_stored(isolated):
    # 60 objects of 6 kB each: 360 kB, beyond the node's batch_size_fail_threshold (64 KiB in
    # deploy/cassandra/cassandra.yaml), which refuses a batch over it ("Batch too large").
    opened = await open_store(isolated.model_copy(update={"cassandra_batch_rows": 50}), "cassandra")
    try:
        await opened.migrate()
        rows = [
            {
                "object_id": f"ZTF{i:09d}",
                "survey": "ztf",
                "n_detections": i + 1,
                "first_mjd": 60000.0,
                "last_mjd": 60000.0 + i,
                "latest_candidate_id": i,
                "latest_band": None,
                "latest_mag": None,
                "ra_mean": None,
                "decl_mean": None,
                "position_scatter_arcsec": None,
                "stats": "x" * 6000 + str(i),
            }
            for i in range(60)
        ]
        await opened.upsert("objects", rows)
        assert await opened.count("objects") == 60
        assert await opened.fetch("objects", object_id="ZTF000000059") == [rows[59]]
    finally:
        await opened.close()


def _unused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_mariadb_unreachable_is_unavailable(db_services):
    settings = db_services.settings.model_copy(update={"mariadb_port": _unused_port()})
    with pytest.raises(StoreUnavailable, match="MariaDB unavailable"):
        await MariaDbStore.connect(settings)
    with pytest.raises(StoreUnavailable):
        await open_store(settings, "mariadb")


async def test_mariadb_lost_connections_are_unavailable_then_replaced(isolated, db_services):
    store = await MariaDbStore.connect(isolated)
    try:
        await store.migrate()
        await store.upsert("candidates", [_candidate(1)])
        root = mariadb_root(db_services)
        with root.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s",
                (isolated.mariadb_database,),
            )
            for (thread,) in cur.fetchall():
                cur.execute("KILL CONNECTION %s", (thread,))
        root.close()
        # The pool notices a closed connection before using it, or the statement fails:
        # either way never a raw driver error, and the next write goes through.
        outcomes = []
        for i in (2, 3, 4):
            try:
                await store.upsert("candidates", [_candidate(i)])
                outcomes.append("ok")
            except StoreUnavailable:
                outcomes.append("unavailable")
        assert outcomes[-1] == "ok", outcomes
        assert await store.count("candidates") == 1 + outcomes.count("ok")
    finally:
        await store.close()


async def test_cassandra_unreachable_is_unavailable(db_services):
    settings = db_services.settings.model_copy(update={"cassandra_port": _unused_port()})
    with pytest.raises(StoreUnavailable, match="Cassandra unavailable"):
        await asyncio.wait_for(CassandraStore.connect(settings), 60)


async def test_open_store_refuses_unknown_kinds(db_services):
    with pytest.raises(ValueError, match="unknown store 'postgres'"):
        await open_store(db_services.settings, "postgres")


def test_cli_migrate_and_status(isolated):
    env = {
        "BROKER_MARIADB_DATABASE": isolated.mariadb_database,
        "BROKER_CASSANDRA_KEYSPACE": isolated.cassandra_keyspace,
    }
    runner = CliRunner()
    status = runner.invoke(main, ["db", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert "mariadb: not migrated" in status.output
    assert "cassandra: not migrated" in status.output

    first = runner.invoke(main, ["db", "migrate", "--store", "mariadb"], env=env)
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == ["mariadb: applied 1 (schema version 1)"]
    both = runner.invoke(main, ["db", "migrate"], env=env)
    assert both.exit_code == 0, both.output
    assert both.output.splitlines() == [
        "mariadb: up to date (schema version 1)",
        "cassandra: applied 1 (schema version 1)",
    ]

    status = runner.invoke(main, ["db", "status"], env=env)
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    assert lines[0].startswith(f"mariadb: schema version 1 (database {isolated.mariadb_database}")
    assert lines[1:5] == [f"  {t:<16} {0:>12,} rows" for t in TABLES]
    assert lines[5].startswith(
        f"cassandra: schema version 1 (keyspace {isolated.cassandra_keyspace}"
    )
    assert len(lines) == 10

    down = runner.invoke(
        main,
        ["db", "migrate", "--store", "mariadb"],
        env={**env, "BROKER_MARIADB_PORT": str(_unused_port())},
    )
    assert down.exit_code == 1
    assert "mariadb: unavailable" in down.output


def test_cli_reports_a_refused_account_in_one_line(isolated, tmp_path):
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password\n")
    env = {
        "BROKER_MARIADB_DATABASE": isolated.mariadb_database,
        "BROKER_CASSANDRA_KEYSPACE": isolated.cassandra_keyspace,
        "BROKER_MARIADB_PASSWORD": "",
        "BROKER_MARIADB_PASSWORD_FILE": str(wrong),
    }
    runner = CliRunner()
    for args in (["db", "status"], ["db", "migrate", "--store", "mariadb"]):
        result = runner.invoke(main, args, env=env)
        assert result.exit_code == 1, result.output
        refused = [line for line in result.output.splitlines() if line.startswith("mariadb:")]
        assert len(refused) == 1, result.output
        assert refused[0].startswith(
            f"mariadb: cannot connect (database {isolated.mariadb_database} on 127.0.0.1:3306)"
        )
        assert "Access denied" in refused[0]
        assert "not-the-password" not in result.output
        assert "Traceback" not in result.output
