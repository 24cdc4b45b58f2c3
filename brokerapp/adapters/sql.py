"""Quoting of SQL and CQL identifiers, which cannot be bound as parameters.

Values always go to the database as bound parameters (``%s`` for MariaDB, ``?`` or prepared
statements for Cassandra). Names of databases, keyspaces and tables cannot be bound, so the
few statements that need one build it from a name checked here: letters, digits and
underscores only, starting with a letter or underscore, at most 48 characters (the shortest
limit of MariaDB's 64 and Cassandra's 48). Anything else is refused, never escaped.

Datacenter names, which a keyspace's replication map holds as string literals (and which
may contain ``-`` and ``.``), are checked the same way by :func:`cql_dc_literal`.
"""

from __future__ import annotations

import re

__all__ = ["cql_dc_literal", "cql_name", "sql_name"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")
_DC = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,47}")


def _checked(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"not a safe identifier: {name!r} (letters, digits, _; at most 48 characters)"
        )
    return name


def sql_name(name: str) -> str:
    """Return ``name`` quoted for MariaDB (```name```), after checking it.

    Raises
    ------
    ValueError
        If the name has anything but letters, digits and underscores.
    """
    return f"`{_checked(name)}`"


def cql_name(name: str) -> str:
    """Return ``name`` quoted for CQL (``"name"``), after checking it.

    Raises
    ------
    ValueError
        If the name has anything but letters, digits and underscores.
    """
    return f'"{_checked(name)}"'


def cql_dc_literal(name: str) -> str:
    """Return a datacenter name as a CQL string literal (``'dc1'``), after checking it.

    Raises
    ------
    ValueError
        If the name has anything but letters, digits, ``_``, ``-`` and ``.``.
    """
    if not isinstance(name, str) or not _DC.fullmatch(name):
        raise ValueError(
            f"not a safe datacenter name: {name!r} (letters, digits, _ - .; at most 48 characters)"
        )
    return f"'{name}'"
