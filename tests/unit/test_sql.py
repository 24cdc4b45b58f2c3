import pytest

from brokerapp.adapters.sql import cql_name, sql_name


def test_safe_names_are_quoted():
    assert sql_name("broker") == "`broker`"
    assert cql_name("zone_entries_ab12") == '"zone_entries_ab12"'


@pytest.mark.parametrize(
    "name", ["", "1abc", "a-b", "a`b", 'a"b', "x; DROP TABLE y", "a b", "é", "a" * 49, None]
)
def test_anything_else_is_refused(name):
    with pytest.raises(ValueError, match="not a safe identifier"):
        sql_name(name)
    with pytest.raises(ValueError, match="not a safe identifier"):
        cql_name(name)
