"""The pipeline role: the streaming job's unit on spark_master, its checkpoint, and the schemas it applied."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import testinfra

testinfra_hosts = ["ansible://spark_master"]

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "correnteza-stream"
APP_NAME = "correnteza-stream-users"
CHECKPOINT = "/data/spark/checkpoints/users_created"
KEYSPACE = "spark_streams"
CQL_FILES = sorted(path.name for path in (ROOT / "spark" / "cql").glob("[0-9]*.cql"))
SQL_FILES = sorted(path.name for path in (ROOT / "producer" / "sql").glob("*.sql"))


def first(group_hosts, group: str) -> str:
    return sorted(group_hosts(group))[0]


@pytest.fixture(scope="module")
def cassandra(group_hosts):
    return testinfra.get_host(f"ansible://{first(group_hosts, 'cassandra')}")


@pytest.fixture(scope="module")
def postgres(group_hosts):
    return testinfra.get_host(f"ansible://{first(group_hosts, 'postgres')}")


def cql(cassandra, statement: str) -> str:
    return cassandra.check_output(f"sudo /usr/local/bin/cqlsh -e {json.dumps(statement)}")


def master_status(host) -> dict:
    ip = host.ansible.get_variables()["correnteza_ip"]
    return json.loads(host.check_output(f"curl -fsS http://{ip}:8080/json/"))


def test_unit_is_running_and_enabled(host):
    service = host.service(SERVICE)
    assert service.is_running
    assert service.is_enabled


def test_unit_runs_spark_submit_in_client_mode_as_spark(host):
    unit = host.file(f"/etc/systemd/system/{SERVICE}.service").content_string
    assert "User=spark" in unit
    assert "--deploy-mode client" in unit
    assert "Restart=on-failure" in unit
    assert re.search(r"--master spark://[0-9.]+:7077", unit)
    driver = host.check_output(f"systemctl show -p MainPID --value {SERVICE}")
    assert host.check_output(f"ps -o user= -p {driver}").strip() == "spark"


def test_application_is_running_in_the_master(host):
    apps = [app for app in master_status(host)["activeapps"] if app["name"] == APP_NAME]
    assert [app["state"] for app in apps] == ["RUNNING"]
    assert apps[0]["cores"] >= 1


def test_checkpoint_is_on_the_data_volume(host):
    with host.sudo():
        checkpoint = host.file(CHECKPOINT)
        assert checkpoint.is_directory
        assert checkpoint.user == "spark"
        real = host.check_output(f"realpath {CHECKPOINT}")
        assert not real.startswith("/tmp")
        assert host.check_output(f"findmnt -n -o TARGET -T {CHECKPOINT}") == "/data"
        # The running query has written its metadata (the query id) and offsets there.
        assert host.file(f"{CHECKPOINT}/metadata").is_file
        assert host.file(f"{CHECKPOINT}/offsets").is_directory


def test_password_file_is_private_and_not_in_the_settings(host, secret):
    with host.sudo():
        password_file = host.file("/etc/correnteza/cassandra_app_password")
        assert password_file.user == "spark"
        assert password_file.mode == 0o600
        settings = host.file("/etc/correnteza/stream.json").content_string
    assert secret("cassandra_app_password") not in settings
    assert '"checkpoint_dir": "/data/spark/checkpoints/users_created"' in settings


def test_job_log_has_no_password(host, secret):
    log = host.check_output(f"sudo journalctl -u {SERVICE} --no-pager -n 2000")
    assert secret("cassandra_app_password") not in log


@pytest.mark.parametrize("table", ["created_users", "created_users_dlq", "schema_migrations"])
def test_cassandra_table_exists(cassandra, table):
    out = cql(
        cassandra,
        "SELECT table_name FROM system_schema.tables "
        f"WHERE keyspace_name = '{KEYSPACE}' AND table_name = '{table}'",
    )
    assert re.search(rf"^\s*{table}\s*$", out, re.MULTILINE), out


def test_keyspace_replication_factor(cassandra, group_hosts):
    expected = min(3, len(group_hosts("cassandra")))
    query = f"SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = '{KEYSPACE}'"
    out = cql(cassandra, query)
    assert "NetworkTopologyStrategy" in out
    assert f"'dc1': '{expected}'" in out


def test_every_cql_version_is_recorded_once(cassandra):
    out = cql(cassandra, f"SELECT version, name FROM {KEYSPACE}.schema_migrations")
    recorded = sorted(re.findall(r"^\s*\d+\s*\|\s*(\S+\.cql)\s*$", out, re.MULTILINE))
    assert recorded == CQL_FILES


def test_created_users_key_is_the_user_id(cassandra):
    out = cql(
        cassandra,
        "SELECT column_name, kind, type FROM system_schema.columns "
        f"WHERE keyspace_name = '{KEYSPACE}' AND table_name = 'created_users'",
    )
    assert re.search(r"^\s*id\s*\|\s*partition_key\s*\|\s*uuid\s*$", out, re.MULTILINE), out


def test_application_role_may_write_the_keyspace(cassandra):
    out = cql(cassandra, "LIST ALL PERMISSIONS OF correnteza")
    for permission in ("SELECT", "MODIFY"):
        assert re.search(rf"<(keyspace {KEYSPACE}|all keyspaces)>\s*\|\s*{permission}", out), out


def test_landing_ddl_files_are_recorded(postgres):
    out = postgres.check_output(
        "sudo -u postgres psql -X -A -t -d ingestion -c "
        "'SELECT filename FROM landing_schema_files ORDER BY 1'"
    )
    assert out.split() == SQL_FILES
    owner = postgres.check_output(
        "sudo -u postgres psql -X -A -t -d ingestion -c "
        "\"SELECT tableowner FROM pg_tables WHERE tablename = 'landing_schema_files'\""
    )
    assert owner == "ingestion"
