"""The cassandra_schema role: the keyspace, its replication, the versioned tables, the app role's grants."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

testinfra_hosts = ["ansible://cassandra"]

ROOT = Path(__file__).resolve().parents[2]
KEYSPACE = "spark_streams"
CQL_FILES = sorted(path.name for path in (ROOT / "spark" / "cql").glob("[0-9]*.cql"))


def cql(host, statement: str) -> str:
    return host.check_output(f"sudo /usr/local/bin/cqlsh -e {json.dumps(statement)}")


@pytest.mark.parametrize("table", ["created_users", "created_users_dlq", "schema_migrations"])
def test_cassandra_table_exists(host, table):
    out = cql(
        host,
        "SELECT table_name FROM system_schema.tables "
        f"WHERE keyspace_name = '{KEYSPACE}' AND table_name = '{table}'",
    )
    assert re.search(rf"^\s*{table}\s*$", out, re.MULTILINE), out


def test_keyspace_replication_factor(host, group_hosts):
    expected = min(3, len(group_hosts("cassandra")))
    query = f"SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = '{KEYSPACE}'"
    out = cql(host, query)
    assert "NetworkTopologyStrategy" in out
    assert f"'dc1': '{expected}'" in out


def test_every_cql_version_is_recorded(host):
    out = cql(host, f"SELECT version, name FROM {KEYSPACE}.schema_migrations")
    recorded = re.findall(r"^\s*\d+\s*\|\s*(\S+\.cql)\s*$", out, re.MULTILINE)
    # A platform deployed before a version was retired (001_keyspace.cql, now the role's) keeps its row.
    assert [name for name in CQL_FILES if name not in recorded] == [], out


def test_created_users_key_is_the_user_id(host):
    out = cql(
        host,
        "SELECT column_name, kind, type FROM system_schema.columns "
        f"WHERE keyspace_name = '{KEYSPACE}' AND table_name = 'created_users'",
    )
    assert re.search(r"^\s*id\s*\|\s*partition_key\s*\|\s*uuid\s*$", out, re.MULTILINE), out


def test_application_role_may_write_the_keyspace(host):
    out = cql(host, "LIST ALL PERMISSIONS OF correnteza")
    for permission in ("SELECT", "MODIFY"):
        assert re.search(rf"<(keyspace {KEYSPACE}|all keyspaces)>\s*\|\s*{permission}", out), out


def test_application_role_has_exactly_what_it_needs(host):
    out = cql(host, "LIST ALL PERMISSIONS OF correnteza NORECURSIVE")
    granted = set(re.findall(rf"<keyspace {KEYSPACE}>\s*\|\s*(\w+)", out))
    assert granted == {"SELECT", "MODIFY"}, out
    assert "<all keyspaces>" not in out, out
