"""The `postgresql` role: Debian's PostgreSQL 15 with the airflow and ingestion databases."""

from __future__ import annotations

import psycopg2
import pytest
import testinfra

testinfra_hosts = ["ansible://postgres"]

UNIT = "postgresql@15-main"
PORT = 5432
# database -> (owner role, secret holding its password)
DATABASES = {
    "airflow": ("airflow", "postgres_airflow_password"),
    "ingestion": ("ingestion", "postgres_ingestion_password"),
}
# Connects from a client host with the Airflow venv's psycopg2 and prints the
# server's answer: OK <current_user> <current_database> or ERR <message>.
PROBE = (
    "import os, psycopg2\n"
    "try:\n"
    "    e = os.environ\n"
    "    c = psycopg2.connect(host=e['PGHOST'], dbname=e['PGDATABASE'], user=e['PGUSER'],\n"
    "                         password=e['PGPASSWORD'], connect_timeout=5)\n"
    "    cur = c.cursor(); cur.execute('select current_user, current_database()')\n"
    "    print('OK', *cur.fetchone())\n"
    "except psycopg2.Error as e:\n"
    "    print('ERR', str(e).strip().replace(chr(10), ' '))\n"
)
CLIENT_PYTHON = "/opt/correnteza/airflow-venv/bin/python"


@pytest.fixture(scope="module")
def pg_ip(host):
    return host.ansible.get_variables()["correnteza_ip"]


@pytest.fixture(scope="module")
def airflow_host(group_hosts):
    name = sorted(group_hosts("airflow"))[0]
    return testinfra.get_host(f"ansible://{name}", ansible_inventory="ansible/inventory/hosts.yml")


def probe(client, pg_ip: str, database: str, user: str, password: str) -> str:
    env = f"PGHOST={pg_ip} PGDATABASE={database} PGUSER={user} PGPASSWORD={password}"
    cmd = f"{env} {CLIENT_PYTHON} -c {_quote(PROBE)}"
    result = client.run(cmd)
    assert result.rc == 0, f"probe failed to run on the client host: {result.stderr[-500:]}"
    return result.stdout.strip()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_service_running_and_enabled(host):
    svc = host.service(UNIT)
    assert svc.is_running
    assert svc.is_enabled


def test_listens_on_private_ip_and_loopback_only(host, pg_ip):
    assert host.socket(f"tcp://{pg_ip}:{PORT}").is_listening
    assert host.socket(f"tcp://127.0.0.1:{PORT}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{PORT}").is_listening
    assert not host.socket(f"tcp://:::{PORT}").is_listening


def test_data_directory_on_the_data_volume(host):
    out = host.check_output("sudo -u postgres psql -XtAc 'show data_directory'")
    assert out.startswith("/data/postgresql/15/")


@pytest.mark.parametrize("database", sorted(DATABASES))
def test_database_exists_with_its_owner(host, database):
    owner = host.check_output(
        "sudo -u postgres psql -XtAc %s",
        f"select pg_get_userbyid(datdba) from pg_database where datname = '{database}'",
    )
    assert owner == DATABASES[database][0]


def test_hba_uses_scram_only_for_tcp(host):
    rules = host.check_output(
        'sudo -u postgres psql -XtAc "select type, auth_method from pg_hba_file_rules where error is null"'
    ).splitlines()
    methods = {tuple(r.split("|")) for r in rules}
    assert methods == {("local", "peer"), ("host", "scram-sha-256")}


@pytest.mark.parametrize("database", sorted(DATABASES))
def test_owner_reaches_its_database_from_airflow(airflow_host, pg_ip, secret, database):
    user, secret_name = DATABASES[database]
    assert probe(airflow_host, pg_ip, database, user, secret(secret_name)) == f"OK {user} {database}"


@pytest.mark.parametrize("database", sorted(DATABASES))
def test_wrong_password_is_refused(airflow_host, pg_ip, database):
    user = DATABASES[database][0]
    out = probe(airflow_host, pg_ip, database, user, "not-the-password")
    assert out.startswith("ERR") and "password authentication failed" in out


def test_a_role_cannot_reach_the_other_database(airflow_host, pg_ip, secret):
    out = probe(airflow_host, pg_ip, "airflow", "ingestion", secret("postgres_ingestion_password"))
    assert out.startswith("ERR") and "no pg_hba.conf entry" in out


def test_host_outside_pg_hba_is_refused(pg_ip, secret):
    # The control node (10.77.0.1) is not an Airflow host: no pg_hba entry admits it.
    with pytest.raises(psycopg2.OperationalError, match=r"no pg_hba\.conf entry"):
        psycopg2.connect(
            host=pg_ip,
            dbname="ingestion",
            user="ingestion",
            password=secret("postgres_ingestion_password"),
            connect_timeout=5,
        )
