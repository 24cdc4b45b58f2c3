"""The tables the database sinks write, described once for MariaDB and Cassandra.

Pure text generation, no I/O: :mod:`brokerapp.adapters.stores` runs what this module writes. Both
stores hold the same four tables with the same columns (:data:`TABLES`):

``candidates``
    One row per non-solar detection: the alert's own and its previous detections.
``ss_candidates``
    One row per solar-system detection, keyed by the solar-system object's name.
``annotations``
    What the watchlist and crossmatch branches said about an alert (``source`` is
    ``watchlist:<id>`` or ``catalogue:<name>``; ``detail`` is JSON of any other fields).
``objects``
    The latest statistics of each object (``stats`` is JSON).

The column ``decl`` is the declination (``DEC`` is reserved in SQL). There are no wall-clock
columns anywhere, so replaying the same input leaves the tables identical. A float NaN (a
survey's "no value") is stored as NULL in both stores (:func:`row_params`): MariaDB has no NaN.

Keys differ by store: MariaDB has a primary key and secondary indexes, Cassandra a partition
key (the object, the solar-system name or the alert) and clustering columns (time, then the
candidate). Rows read back from either store come in the same order, :attr:`Table.order`
(Cassandra's key order: partition, then clustering columns); MariaDB's text columns use the
binary, no-pad collation ``utf8mb4_nopad_bin``, so keys compare and sort by code point as in
Cassandra (``ZTF18abc``, ``ZTF18ABC`` and ``ZTF18abc `` are three objects in both).

The schema changes through numbered :class:`Migration` steps (:func:`migrations`); each
store records the versions it has applied in its table ``schema_migrations``. A migration's
statements must be idempotent (``IF NOT EXISTS``): if one fails half-way, the next run
repeats it from its first statement.

Identifiers reach the statements only through :func:`brokerapp.adapters.sql.sql_name` and
:func:`brokerapp.adapters.sql.cql_name`; values are always bound parameters (``%s`` for MariaDB,
``?`` in prepared CQL statements).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from brokerapp.adapters.sql import cql_dc_literal, cql_name, sql_name

__all__ = [
    "MIGRATIONS_TABLE",
    "TABLES",
    "Column",
    "Migration",
    "Table",
    "cassandra_count",
    "cassandra_create_keyspace",
    "cassandra_create_table",
    "cassandra_migrations_table",
    "cassandra_select",
    "cassandra_upsert",
    "mariadb_count",
    "mariadb_create_table",
    "mariadb_migrations_table",
    "mariadb_select",
    "mariadb_upsert",
    "migrations",
    "row_params",
    "table",
]

#: Table in which each store records the migrations it has applied (version, description).
MIGRATIONS_TABLE = "schema_migrations"

_TYPE = re.compile(r"(BIGINT|INT|DOUBLE|TEXT|VARCHAR\((\d+)\))")
_CQL_TYPES = {"BIGINT": "bigint", "INT": "int", "DOUBLE": "double", "TEXT": "text"}


@dataclass(frozen=True)
class Column:
    """One column of a table, as both stores hold it.

    Parameters
    ----------
    name : str
        Column name (letters, digits, underscores).
    type : str
        SQL type: ``BIGINT``, ``INT``, ``DOUBLE``, ``VARCHAR(n)`` or ``TEXT``.
    nullable : bool
        Whether the column may be NULL (missing in a row). Required columns are ``NOT NULL``
        in MariaDB; Cassandra has no such constraint, so :func:`row_params` enforces it.
    """

    name: str
    type: str
    nullable: bool = False

    def __post_init__(self) -> None:
        sql_name(self.name)
        if not _TYPE.fullmatch(self.type):
            raise ValueError(f"column {self.name}: unsupported type {self.type!r}")

    @property
    def cql_type(self) -> str:
        """CQL type: BIGINT -> bigint, INT -> int, DOUBLE -> double, VARCHAR/TEXT -> text."""
        return _CQL_TYPES.get(self.type, "text")

    @property
    def mariadb_definition(self) -> str:
        """Column definition of MariaDB's ``CREATE TABLE``."""
        return f"{sql_name(self.name)} {self.type} {'NULL' if self.nullable else 'NOT NULL'}"


@dataclass(frozen=True)
class Table:
    """One table, its columns and its keys in each store.

    Parameters
    ----------
    name : str
        Table name.
    columns : tuple of Column
        Columns in their stored order (also the order of :func:`row_params`).
    mariadb_key : tuple of str
        MariaDB primary key.
    mariadb_indexes : tuple of tuple of str
        MariaDB secondary indexes (each named ``ix_<columns>``).
    partition_key : tuple of str
        Cassandra partition key.
    clustering : tuple of str
        Cassandra clustering columns, ascending.
    """

    name: str
    columns: tuple[Column, ...]
    mariadb_key: tuple[str, ...]
    mariadb_indexes: tuple[tuple[str, ...], ...]
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        sql_name(self.name)
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: duplicate column names")
        keys = (*self.mariadb_key, *self.order, *(c for ix in self.mariadb_indexes for c in ix))
        for key in keys:
            if key not in names:
                raise ValueError(f"table {self.name}: key column {key!r} is not a column")
        for key in (*self.mariadb_key, *self.order):
            if self.column(key).nullable:
                raise ValueError(f"table {self.name}: key column {key!r} may not be nullable")

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of the columns, in order."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the columns that may not be missing or None."""
        return tuple(c.name for c in self.columns if not c.nullable)

    @property
    def order(self) -> tuple[str, ...]:
        """Order of rows read back from either store: Cassandra's primary key order."""
        return (*self.partition_key, *self.clustering)

    @property
    def lookup_columns(self) -> frozenset[str]:
        """Columns a fetch may filter on: MariaDB's key and index columns, Cassandra's key."""
        indexed = (c for index in self.mariadb_indexes for c in index)
        return frozenset((*self.mariadb_key, *indexed, *self.order))

    def column(self, name: str) -> Column:
        """Return the column called ``name``.

        Raises
        ------
        KeyError
            If the table has no such column.
        """
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name} has no column {name!r}")


@dataclass(frozen=True)
class Migration:
    """One numbered schema change, as statements for each store.

    Parameters
    ----------
    version : int
        Schema version this step reaches (1, 2, ...; applied in order).
    description : str
        What the step does (recorded with the version).
    mariadb : tuple of str
        Statements run on MariaDB (in the sinks' database).
    cassandra : tuple of str
        Statements run on Cassandra (names qualified with the keyspace).
    """

    version: int
    description: str
    mariadb: tuple[str, ...]
    cassandra: tuple[str, ...]


def _detection_columns() -> tuple[Column, ...]:
    """Columns shared by both candidate tables, after their own leading ones."""
    return (
        Column("survey", "VARCHAR(8)"),
        Column("mjd", "DOUBLE"),
        Column("band", "VARCHAR(8)", True),
        Column("ra", "DOUBLE", True),
        Column("decl", "DOUBLE", True),
        Column("mag", "DOUBLE", True),
        Column("mag_err", "DOUBLE", True),
        Column("flux", "DOUBLE", True),
        Column("flux_err", "DOUBLE", True),
        Column("visit_id", "BIGINT", True),
    )


CANDIDATES = Table(
    name="candidates",
    columns=(
        Column("candidate_id", "BIGINT"),
        Column("object_id", "VARCHAR(64)"),
        *_detection_columns(),
    ),
    mariadb_key=("candidate_id",),
    mariadb_indexes=(("object_id", "mjd"),),
    partition_key=("object_id",),
    clustering=("mjd", "candidate_id"),
)

SS_CANDIDATES = Table(
    name="ss_candidates",
    columns=(
        Column("candidate_id", "BIGINT"),
        Column("ss_name", "VARCHAR(64)"),
        Column("ss_distance_arcsec", "DOUBLE", True),
        Column("object_id", "VARCHAR(64)", True),
        *_detection_columns(),
    ),
    mariadb_key=("candidate_id",),
    mariadb_indexes=(("ss_name", "mjd"),),
    partition_key=("ss_name",),
    clustering=("mjd", "candidate_id"),
)

ANNOTATIONS = Table(
    name="annotations",
    columns=(
        Column("alert_id", "BIGINT"),
        Column("source", "VARCHAR(128)"),
        Column("entry", "VARCHAR(255)"),
        Column("object_id", "VARCHAR(64)", True),
        Column("separation_arcsec", "DOUBLE", True),
        Column("mjd", "DOUBLE", True),
        Column("detail", "TEXT", True),
    ),
    mariadb_key=("alert_id", "source", "entry"),
    mariadb_indexes=(("object_id",),),
    partition_key=("alert_id",),
    clustering=("source", "entry"),
)

OBJECTS = Table(
    name="objects",
    columns=(
        Column("object_id", "VARCHAR(64)"),
        Column("survey", "VARCHAR(8)"),
        Column("n_detections", "INT"),
        Column("first_mjd", "DOUBLE"),
        Column("last_mjd", "DOUBLE"),
        Column("latest_candidate_id", "BIGINT"),
        Column("latest_band", "VARCHAR(8)", True),
        Column("latest_mag", "DOUBLE", True),
        Column("ra_mean", "DOUBLE", True),
        Column("decl_mean", "DOUBLE", True),
        Column("position_scatter_arcsec", "DOUBLE", True),
        Column("stats", "TEXT"),
    ),
    mariadb_key=("object_id",),
    mariadb_indexes=(),
    partition_key=("object_id",),
)

#: The sinks' tables by name, in creation order.
TABLES: dict[str, Table] = {t.name: t for t in (CANDIDATES, SS_CANDIDATES, ANNOTATIONS, OBJECTS)}


def table(name: str) -> Table:
    """Return the description of table ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`TABLES`.
    """
    try:
        return TABLES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown table {name!r}; the tables are {', '.join(TABLES)}") from None


def _sql_list(names: tuple[str, ...]) -> str:
    return ", ".join(sql_name(n) for n in names)


def _cql_list(names: tuple[str, ...]) -> str:
    return ", ".join(cql_name(n) for n in names)


def _cql_table(keyspace: str, name: str) -> str:
    return f"{cql_name(keyspace)}.{cql_name(name)}"


# ---------------------------------------------------------------------------- MariaDB
_MARIADB_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"


def mariadb_create_table(tbl: Table) -> str:
    """Return MariaDB's ``CREATE TABLE IF NOT EXISTS`` of a table (InnoDB, utf8mb4, binary).

    Parameters
    ----------
    tbl : Table
        The table.

    Returns
    -------
    str
        One statement.
    """
    parts = [c.mariadb_definition for c in tbl.columns]
    parts.append(f"PRIMARY KEY ({_sql_list(tbl.mariadb_key)})")
    for index in tbl.mariadb_indexes:
        parts.append(f"KEY {sql_name('ix_' + '_'.join(index))} ({_sql_list(index)})")
    body = ",\n  ".join(parts)
    return f"CREATE TABLE IF NOT EXISTS {sql_name(tbl.name)} (\n  {body}\n) {_MARIADB_OPTIONS}"


def mariadb_migrations_table() -> str:
    """Return MariaDB's ``CREATE TABLE IF NOT EXISTS schema_migrations``."""
    return (
        f"CREATE TABLE IF NOT EXISTS {sql_name(MIGRATIONS_TABLE)} (\n"
        f"  {sql_name('version')} INT NOT NULL,\n"
        f"  {sql_name('description')} VARCHAR(255) NOT NULL,\n"
        f"  PRIMARY KEY ({sql_name('version')})\n) {_MARIADB_OPTIONS}"
    )


def mariadb_upsert(tbl: Table) -> str:
    """Return MariaDB's parameterised upsert of one row of a table.

    ``INSERT INTO t (c1, ...) VALUES (%s, ...) ON DUPLICATE KEY UPDATE c = VALUES(c), ...``
    over every non-key column, so a row written again replaces the old values. pymysql's
    ``executemany`` turns it into one multi-row statement.

    Parameters
    ----------
    tbl : Table
        The table.

    Returns
    -------
    str
        The statement, one ``%s`` per column in :attr:`Table.columns` order.
    """
    names = tbl.column_names
    placeholders = ", ".join(["%s"] * len(names))
    updates = ", ".join(
        f"{sql_name(n)} = VALUES({sql_name(n)})" for n in names if n not in tbl.mariadb_key
    )
    return (
        f"INSERT INTO {sql_name(tbl.name)} ({_sql_list(names)}) VALUES ({placeholders}) "
        f"ON DUPLICATE KEY UPDATE {updates}"
    )


def mariadb_select(tbl: Table, where: tuple[str, ...] = ()) -> str:
    """Return MariaDB's ``SELECT`` of every column, equality on ``where``, in table order.

    Parameters
    ----------
    tbl : Table
        The table.
    where : tuple of str
        Columns compared for equality with ``%s`` parameters (in this order); none: all rows.

    Returns
    -------
    str
        The statement, rows ordered by :attr:`Table.order`.
    """
    text = f"SELECT {_sql_list(tbl.column_names)} FROM {sql_name(tbl.name)}"
    if where:
        text += " WHERE " + " AND ".join(f"{sql_name(tbl.column(c).name)} = %s" for c in where)
    return text + f" ORDER BY {_sql_list(tbl.order)}"


def mariadb_count(tbl: Table) -> str:
    """Return MariaDB's ``SELECT COUNT(*)`` of a table."""
    return f"SELECT COUNT(*) FROM {sql_name(tbl.name)}"


# ---------------------------------------------------------------------------- Cassandra
def _replicas(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1, not {value}")
    return value


def cassandra_create_keyspace(keyspace: str, replication: int | Mapping[str, int]) -> str:
    """Return ``CREATE KEYSPACE IF NOT EXISTS`` with its replication.

    Parameters
    ----------
    keyspace : str
        Keyspace name.
    replication : int or mapping of str to int
        An int: SimpleStrategy with that replication factor (1 on the single local node).
        A mapping datacenter -> replicas: NetworkTopologyStrategy, with each datacenter
        name checked and quoted by :func:`~brokerapp.adapters.sql.cql_dc_literal`.

    Returns
    -------
    str
        One statement.

    Raises
    ------
    ValueError
        For a factor below 1, an empty mapping or an unsafe datacenter name.
    """
    if isinstance(replication, Mapping):
        if not replication:
            raise ValueError("replication per datacenter needs at least one datacenter")
        parts = ["'class': 'NetworkTopologyStrategy'"] + [
            f"{cql_dc_literal(dc)}: {_replicas(n, f'replicas of {dc!r}')}"
            for dc, n in sorted(replication.items())
        ]
        spec = "{" + ", ".join(parts) + "}"
    else:
        factor = _replicas(replication, "replication factor")
        spec = f"{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}"
    return f"CREATE KEYSPACE IF NOT EXISTS {cql_name(keyspace)} WITH replication = {spec}"


def cassandra_create_table(tbl: Table, keyspace: str) -> str:
    """Return Cassandra's ``CREATE TABLE IF NOT EXISTS`` of a table in ``keyspace``.

    Parameters
    ----------
    tbl : Table
        The table.
    keyspace : str
        Keyspace name.

    Returns
    -------
    str
        One statement, ``PRIMARY KEY ((partition...), clustering...)``.
    """
    parts = [f"{cql_name(c.name)} {c.cql_type}" for c in tbl.columns]
    key = [f"({_cql_list(tbl.partition_key)})", *(cql_name(c) for c in tbl.clustering)]
    parts.append(f"PRIMARY KEY ({', '.join(key)})")
    body = ",\n  ".join(parts)
    return f"CREATE TABLE IF NOT EXISTS {_cql_table(keyspace, tbl.name)} (\n  {body}\n)"


def cassandra_migrations_table(keyspace: str) -> str:
    """Return Cassandra's ``CREATE TABLE IF NOT EXISTS schema_migrations`` in ``keyspace``."""
    return (
        f"CREATE TABLE IF NOT EXISTS {_cql_table(keyspace, MIGRATIONS_TABLE)} "
        f"({cql_name('version')} int PRIMARY KEY, {cql_name('description')} text)"
    )


def cassandra_upsert(tbl: Table, keyspace: str) -> str:
    """Return Cassandra's ``INSERT`` of one row (an upsert by nature), to prepare.

    Parameters
    ----------
    tbl : Table
        The table.
    keyspace : str
        Keyspace name.

    Returns
    -------
    str
        The statement, one ``?`` per column in :attr:`Table.columns` order.
    """
    names = tbl.column_names
    placeholders = ", ".join(["?"] * len(names))
    return (
        f"INSERT INTO {_cql_table(keyspace, tbl.name)} ({_cql_list(names)}) VALUES ({placeholders})"
    )


def cassandra_select(tbl: Table, keyspace: str, where: tuple[str, ...] = ()) -> str:
    """Return Cassandra's ``SELECT`` of every column, equality on ``where``.

    Parameters
    ----------
    tbl : Table
        The table.
    keyspace : str
        Keyspace name.
    where : tuple of str
        Columns compared for equality with ``?`` (in this order): the whole partition key,
        then optionally a prefix of the clustering columns; none: every row.

    Returns
    -------
    str
        The statement to prepare.

    Raises
    ------
    ValueError
        If ``where`` is not a partition lookup Cassandra answers without a full scan.
    """
    text = f"SELECT {_cql_list(tbl.column_names)} FROM {_cql_table(keyspace, tbl.name)}"
    if not where:
        return text
    given = set(where)
    missing = [c for c in tbl.partition_key if c not in given]
    rest = given - set(tbl.partition_key)
    prefix = set(tbl.clustering[: len(rest)])
    if missing or rest != prefix:
        raise ValueError(
            f"Cassandra looks up {tbl.name} by {', '.join(tbl.partition_key)}"
            + (f", then a prefix of {', '.join(tbl.clustering)}" if tbl.clustering else "")
            + f"; not by {', '.join(where)}"
        )
    return text + " WHERE " + " AND ".join(f"{cql_name(c)} = ?" for c in where)


def cassandra_count(tbl: Table, keyspace: str) -> str:
    """Return Cassandra's ``SELECT COUNT(*)`` of a table (a full scan)."""
    return f"SELECT COUNT(*) FROM {_cql_table(keyspace, tbl.name)}"


# ---------------------------------------------------------------------------- migrations
def migrations(keyspace: str) -> list[Migration]:
    """Return every migration, in version order.

    Parameters
    ----------
    keyspace : str
        Cassandra keyspace the CQL statements name (MariaDB's run in the connection's
        database).

    Returns
    -------
    list of Migration
        Version 1 creates :data:`TABLES`.
    """
    tables = tuple(TABLES.values())
    return [
        Migration(
            version=1,
            description="create " + ", ".join(t.name for t in tables),
            mariadb=tuple(mariadb_create_table(t) for t in tables),
            cassandra=tuple(cassandra_create_table(t, keyspace) for t in tables),
        )
    ]


# ---------------------------------------------------------------------------- rows
def row_params(tbl: Table, row: Mapping[str, object]) -> tuple[object, ...]:
    """Return a row's parameters for the upserts, in column order.

    Parameters
    ----------
    tbl : Table
        The table.
    row : mapping
        Column name -> value. Nullable columns may be missing (None).

    Returns
    -------
    tuple
        One value per column of :attr:`Table.columns`. A float NaN (the surveys' "no
        value") becomes None, as MariaDB cannot store NaN and both stores must hold the same.

    Raises
    ------
    ValueError
        If a required column is missing, None or NaN, or the row names a column the table
        does not have (a misspelt column would otherwise be dropped silently).
    """
    unknown = [k for k in row if k not in tbl.column_names]
    if unknown:
        raise ValueError(f"{tbl.name}: no column {', '.join(map(repr, unknown))}")
    params = tuple(_value(row.get(name)) for name in tbl.column_names)
    missing = [
        c.name for c, v in zip(tbl.columns, params, strict=True) if v is None and not c.nullable
    ]
    if missing:
        raise ValueError(f"{tbl.name}: required column {', '.join(missing)} missing, None or NaN")
    return params


def _value(value: object) -> object:
    """Return None for a float NaN, the value otherwise."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
