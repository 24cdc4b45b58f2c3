"""brokerapp.adapters.dbschema: the DDL, upserts and selects it writes for each table and store, the
migrations, and a row's parameters. Pure text: the real servers run it in
tests/integration/test_stores.py."""

import math
import re

import pytest

from brokerapp.adapters import dbschema
from brokerapp.adapters.dbschema import TABLES, Column, Table, row_params

KS = "broker_ks"

EXPECTED = {
    "candidates": (
        "candidate_id object_id survey mjd band ra decl mag mag_err flux flux_err visit_id",
        ("candidate_id",),
        (("object_id", "mjd"),),
        ("object_id",),
        ("mjd", "candidate_id"),
    ),
    "ss_candidates": (
        "candidate_id ss_name ss_distance_arcsec object_id survey mjd band ra decl mag mag_err "
        "flux flux_err visit_id",
        ("candidate_id",),
        (("ss_name", "mjd"),),
        ("ss_name",),
        ("mjd", "candidate_id"),
    ),
    "annotations": (
        "alert_id source entry object_id separation_arcsec mjd detail",
        ("alert_id", "source", "entry"),
        (("object_id",),),
        ("alert_id",),
        ("source", "entry"),
    ),
    "objects": (
        "object_id survey n_detections first_mjd last_mjd latest_candidate_id latest_band "
        "latest_mag ra_mean decl_mean position_scatter_arcsec stats",
        ("object_id",),
        (),
        ("object_id",),
        (),
    ),
}

ALL = sorted(TABLES)

# Column types and nullability, written from the tables' documentation (README, "Candidates,
# objects and the databases"): IDs BIGINT, names VARCHAR, measurements DOUBLE (NULL where a
# survey or an alert may not give one), free text TEXT. "!" marks NOT NULL.
TYPES = {
    "candidates": "candidate_id BIGINT! object_id VARCHAR(64)! survey VARCHAR(8)! mjd DOUBLE! "
    "band VARCHAR(8) ra DOUBLE decl DOUBLE mag DOUBLE mag_err DOUBLE flux DOUBLE "
    "flux_err DOUBLE visit_id BIGINT",
    "ss_candidates": "candidate_id BIGINT! ss_name VARCHAR(64)! ss_distance_arcsec DOUBLE "
    "object_id VARCHAR(64) survey VARCHAR(8)! mjd DOUBLE! band VARCHAR(8) ra DOUBLE "
    "decl DOUBLE mag DOUBLE mag_err DOUBLE flux DOUBLE flux_err DOUBLE visit_id BIGINT",
    "annotations": "alert_id BIGINT! source VARCHAR(128)! entry VARCHAR(255)! "
    "object_id VARCHAR(64) separation_arcsec DOUBLE mjd DOUBLE detail TEXT",
    "objects": "object_id VARCHAR(64)! survey VARCHAR(8)! n_detections INT! first_mjd DOUBLE! "
    "last_mjd DOUBLE! latest_candidate_id BIGINT! latest_band VARCHAR(8) latest_mag DOUBLE "
    "ra_mean DOUBLE decl_mean DOUBLE position_scatter_arcsec DOUBLE stats TEXT!",
}
CQL = {"BIGINT": "bigint", "INT": "int", "DOUBLE": "double", "TEXT": "text"}


def columns(name):
    """(column, SQL type, nullable) of a table, from :data:`TYPES`."""
    words = TYPES[name].split()
    return [
        (c, t.rstrip("!"), not t.endswith("!"))
        for c, t in zip(words[::2], words[1::2], strict=True)
    ]


def test_the_four_tables_and_their_keys():
    assert list(TABLES) == ["candidates", "ss_candidates", "annotations", "objects"]
    for name, (columns, key, indexes, partition, clustering) in EXPECTED.items():
        tbl = TABLES[name]
        assert tbl.column_names == tuple(columns.split())
        assert tbl.mariadb_key == key
        assert tbl.mariadb_indexes == indexes
        assert tbl.partition_key == partition
        assert tbl.clustering == clustering
        assert tbl.order == partition + clustering


def test_nullable_columns():
    cands = TABLES["candidates"]
    assert cands.required == ("candidate_id", "object_id", "survey", "mjd")
    ss = TABLES["ss_candidates"]
    assert ss.required == ("candidate_id", "ss_name", "survey", "mjd")
    assert TABLES["annotations"].required == ("alert_id", "source", "entry")
    assert TABLES["objects"].required == (
        "object_id",
        "survey",
        "n_detections",
        "first_mjd",
        "last_mjd",
        "latest_candidate_id",
        "stats",
    )


def test_no_wall_clock_columns():
    for tbl in TABLES.values():
        for col in tbl.columns:
            parts = set(col.name.split("_"))
            assert not parts & {"time", "timestamp", "date", "created", "updated", "at"}, col.name
            assert col.type in {"BIGINT", "INT", "DOUBLE", "TEXT"} or col.type.startswith(
                "VARCHAR("
            )


def _columns_in(text):
    return re.findall(r"`(\w+)`", text)


@pytest.mark.parametrize("name", ALL)
def test_mariadb_create_table(name):
    tbl = TABLES[name]
    ddl = dbschema.mariadb_create_table(tbl)
    assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS `{name}` (")
    assert ddl.endswith("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin")
    _names, key, indexes, _partition, _clustering = EXPECTED[name]
    for column, kind, nullable in columns(name):
        null = "NULL" if nullable else "NOT NULL"
        assert f"\n  `{column}` {kind} {null},\n" in ddl
    assert _columns_in(ddl.split("PRIMARY KEY")[0])[1:] == [c for c, _t, _n in columns(name)]
    pk = ", ".join(f"`{c}`" for c in key)
    assert f"PRIMARY KEY ({pk})" in ddl
    for index in indexes:
        cols = ", ".join(f"`{c}`" for c in index)
        assert f"KEY `ix_{'_'.join(index)}` ({cols})" in ddl
    assert ddl.count("KEY") == 1 + len(indexes)


def test_mariadb_candidates_ddl_exactly():
    assert dbschema.mariadb_create_table(TABLES["candidates"]) == (
        "CREATE TABLE IF NOT EXISTS `candidates` (\n"
        "  `candidate_id` BIGINT NOT NULL,\n"
        "  `object_id` VARCHAR(64) NOT NULL,\n"
        "  `survey` VARCHAR(8) NOT NULL,\n"
        "  `mjd` DOUBLE NOT NULL,\n"
        "  `band` VARCHAR(8) NULL,\n"
        "  `ra` DOUBLE NULL,\n"
        "  `decl` DOUBLE NULL,\n"
        "  `mag` DOUBLE NULL,\n"
        "  `mag_err` DOUBLE NULL,\n"
        "  `flux` DOUBLE NULL,\n"
        "  `flux_err` DOUBLE NULL,\n"
        "  `visit_id` BIGINT NULL,\n"
        "  PRIMARY KEY (`candidate_id`),\n"
        "  KEY `ix_object_id_mjd` (`object_id`, `mjd`)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"
    )


@pytest.mark.parametrize("name", ALL)
def test_cassandra_create_table(name):
    tbl = TABLES[name]
    ddl = dbschema.cassandra_create_table(tbl, KS)
    assert ddl.startswith(f'CREATE TABLE IF NOT EXISTS "{KS}"."{name}" (')
    _names, _key, _indexes, partition_key, clustering = EXPECTED[name]
    for column, kind, _nullable in columns(name):
        cql = CQL.get(kind, "text")
        assert f'\n  "{column}" {cql},\n' in ddl
    partition = ", ".join(f'"{c}"' for c in partition_key)
    key = ", ".join([f"({partition})", *(f'"{c}"' for c in clustering)])
    assert ddl.endswith(f"PRIMARY KEY ({key})\n)")


def test_cassandra_candidates_key():
    ddl = dbschema.cassandra_create_table(TABLES["candidates"], KS)
    assert 'PRIMARY KEY (("object_id"), "mjd", "candidate_id")' in ddl
    ddl = dbschema.cassandra_create_table(TABLES["ss_candidates"], KS)
    assert 'PRIMARY KEY (("ss_name"), "mjd", "candidate_id")' in ddl
    ddl = dbschema.cassandra_create_table(TABLES["annotations"], KS)
    assert 'PRIMARY KEY (("alert_id"), "source", "entry")' in ddl
    ddl = dbschema.cassandra_create_table(TABLES["objects"], KS)
    assert 'PRIMARY KEY (("object_id"))' in ddl
    assert '"object_id" text' in ddl and '"n_detections" int' in ddl


@pytest.mark.parametrize("name", ALL)
def test_mariadb_upsert(name):
    tbl = TABLES[name]
    text = dbschema.mariadb_upsert(tbl)
    insert, update = text.split(" ON DUPLICATE KEY UPDATE ")
    assert insert.startswith(f"INSERT INTO `{name}` (")
    listed = insert.split(" VALUES ")[0]
    names = [c for c, _t, _n in columns(name)]
    assert _columns_in(listed)[1:] == names
    assert insert.count("%s") == len(names)
    assert insert.endswith("VALUES (" + ", ".join(["%s"] * len(names)) + ")")
    non_key = [c for c in names if c not in EXPECTED[name][1]]
    assert update == ", ".join(f"`{c}` = VALUES(`{c}`)" for c in non_key)
    assert "%s" not in update


@pytest.mark.parametrize("name", ALL)
def test_cassandra_upsert(name):
    text = dbschema.cassandra_upsert(TABLES[name], KS)
    listed = [c for c, _t, _n in columns(name)]
    names = ", ".join(f'"{c}"' for c in listed)
    marks = ", ".join(["?"] * len(listed))
    assert text == f'INSERT INTO "{KS}"."{name}" ({names}) VALUES ({marks})'
    assert text.count("?") == len(listed)
    assert "IF NOT EXISTS" not in text


def test_selects_and_counts():
    cands = TABLES["candidates"]
    assert dbschema.mariadb_select(cands, ("object_id",)).endswith(
        "FROM `candidates` WHERE `object_id` = %s ORDER BY `object_id`, `mjd`, `candidate_id`"
    )
    assert dbschema.mariadb_select(cands).endswith(
        "FROM `candidates` ORDER BY `object_id`, `mjd`, `candidate_id`"
    )
    text = dbschema.cassandra_select(cands, KS, ("object_id",))
    assert text.endswith(f'FROM "{KS}"."candidates" WHERE "object_id" = ?')
    assert dbschema.cassandra_select(cands, KS, ("object_id", "mjd")).count("?") == 2
    assert dbschema.mariadb_count(cands) == "SELECT COUNT(*) FROM `candidates`"
    assert dbschema.cassandra_count(cands, KS) == f'SELECT COUNT(*) FROM "{KS}"."candidates"'


@pytest.mark.parametrize(
    "where",
    [("candidate_id",), ("mjd",), ("object_id", "candidate_id"), ("object_id", "band")],
)
def test_cassandra_select_needs_a_partition_lookup(where):
    with pytest.raises(ValueError, match="Cassandra looks up candidates by object_id"):
        dbschema.cassandra_select(TABLES["candidates"], KS, where)


def test_lookup_columns():
    assert TABLES["candidates"].lookup_columns == {"candidate_id", "object_id", "mjd"}
    assert TABLES["annotations"].lookup_columns == {"alert_id", "source", "entry", "object_id"}


def test_keyspace_statement():
    assert dbschema.cassandra_create_keyspace(KS, 3) == (
        f'CREATE KEYSPACE IF NOT EXISTS "{KS}" WITH replication = '
        "{'class': 'SimpleStrategy', 'replication_factor': 3}"
    )
    for bad in (0, "1; DROP", True, 1.5):
        with pytest.raises(ValueError):
            dbschema.cassandra_create_keyspace(KS, bad)


def test_keyspace_replicated_per_datacenter():
    assert dbschema.cassandra_create_keyspace(KS, {"dc-west": 3, "dc1": 2}) == (
        f'CREATE KEYSPACE IF NOT EXISTS "{KS}" WITH replication = '
        "{'class': 'NetworkTopologyStrategy', 'dc-west': 3, 'dc1': 2}"
    )
    for bad in ({}, {"dc1": 0}, {"dc1": "3"}, {"dc'1": 1}, {"dc1': 1} --": 1}, {"": 1}):
        with pytest.raises(ValueError):
            dbschema.cassandra_create_keyspace(KS, bad)


def test_migrations():
    steps = dbschema.migrations(KS)
    assert [s.version for s in steps] == list(range(1, len(steps) + 1))
    first = steps[0]
    assert first.version == 1
    assert first.mariadb == tuple(dbschema.mariadb_create_table(t) for t in TABLES.values())
    assert first.cassandra == tuple(dbschema.cassandra_create_table(t, KS) for t in TABLES.values())
    for statement in first.mariadb + first.cassandra:
        assert statement.startswith("CREATE TABLE IF NOT EXISTS ")
    assert dbschema.mariadb_migrations_table().startswith(
        "CREATE TABLE IF NOT EXISTS `schema_migrations` ("
    )
    assert dbschema.cassandra_migrations_table(KS) == (
        f'CREATE TABLE IF NOT EXISTS "{KS}"."schema_migrations" '
        '("version" int PRIMARY KEY, "description" text)'
    )


def test_row_params_in_column_order_missing_optional_as_none():
    row = {"object_id": "ZTF18abc", "candidate_id": 7, "mjd": 60000.5, "survey": "ztf", "mag": 18}
    assert row_params(TABLES["candidates"], row) == (
        7,
        "ZTF18abc",
        "ztf",
        60000.5,
        None,
        None,
        None,
        18,
        None,
        None,
        None,
        None,
    )


def test_row_params_nan_is_none():
    row = {"candidate_id": 7, "object_id": "a", "survey": "ztf", "mjd": 1.0, "mag": math.nan}
    assert row_params(TABLES["candidates"], row)[7] is None


@pytest.mark.parametrize("value", [None, math.nan, "absent"])
def test_row_params_missing_required_column(value):
    row = {"candidate_id": 7, "object_id": "a", "survey": "ztf", "mjd": value}
    if value == "absent":
        del row["mjd"]
    with pytest.raises(ValueError, match="candidates: required column mjd missing"):
        row_params(TABLES["candidates"], row)


def test_row_params_refuses_unknown_columns():
    row = {"candidate_id": 7, "object_id": "a", "survey": "ztf", "mjd": 1.0, "dec": 3.0}
    with pytest.raises(ValueError, match="candidates: no column 'dec'"):
        row_params(TABLES["candidates"], row)


def test_unknown_table():
    assert dbschema.table("objects") is TABLES["objects"]
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        dbschema.table("nope")


@pytest.mark.parametrize("name", ["a-b", "x`; DROP TABLE y", 'a"b', "1abc", "a" * 49, ""])
def test_identifiers_are_refused(name):
    with pytest.raises(ValueError, match="not a safe identifier"):
        Column(name, "BIGINT")
    with pytest.raises(ValueError, match="not a safe identifier"):
        Table(name, (Column("a", "BIGINT"),), ("a",), (), ("a",))
    with pytest.raises(ValueError, match="not a safe identifier"):
        dbschema.cassandra_upsert(TABLES["objects"], name)
    with pytest.raises(ValueError, match="not a safe identifier"):
        dbschema.migrations(name)
    with pytest.raises(ValueError, match="not a safe identifier"):
        dbschema.cassandra_create_keyspace(name, 1)


def test_table_checks_its_keys():
    with pytest.raises(ValueError, match="unsupported type"):
        Column("a", "DATETIME")
    with pytest.raises(ValueError, match="key column 'b' is not a column"):
        Table("t", (Column("a", "BIGINT"),), ("b",), (), ("a",))
    with pytest.raises(ValueError, match="key column 'a' may not be nullable"):
        Table("t", (Column("a", "BIGINT", True),), ("a",), (), ("a",))
    with pytest.raises(ValueError, match="duplicate column"):
        Table("t", (Column("a", "BIGINT"), Column("a", "INT")), ("a",), (), ("a",))
