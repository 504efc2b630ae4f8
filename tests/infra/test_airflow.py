"""The `airflow` role: Airflow 3 (four components, LocalExecutor) with its connections and Variables."""

from __future__ import annotations

import json

import pytest
import requests

testinfra_hosts = ["ansible://airflow"]

UNITS = ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
PORT = 8080
HOME = "/opt/correnteza/airflow"
VENV = "/opt/correnteza/airflow-venv"
ENV_FILE = "/etc/correnteza/airflow.env"
# Runs the Airflow CLI as the airflow user with the same environment as the units.
CLI = (
    "sudo bash -c 'set -a; . "
    + ENV_FILE
    + "; set +a; exec runuser -u airflow -- env AIRFLOW_HOME="
    + HOME
    + " PYTHONPATH=/opt/correnteza/app PATH="
    + VENV
    + "/bin:/usr/bin:/bin airflow {}'"
)


def cli_json(host, args: str):
    """Runs an Airflow CLI command with `-o json` and parses its JSON (log lines before it are skipped)."""
    out = host.check_output(CLI.format(f"{args} -o json"))
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("[", "{")))
    return json.loads("\n".join(lines[start:]))


@pytest.fixture(scope="module")
def api(host):
    return f"http://{host.ansible.get_variables()['correnteza_ip']}:{PORT}"


@pytest.fixture(scope="module")
def token(api, secret):
    resp = requests.post(
        f"{api}/auth/token",
        json={"username": "admin", "password": secret("airflow_admin_password")},
        timeout=30,
    )
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["access_token"]


@pytest.mark.parametrize("unit", UNITS)
def test_unit_running_and_enabled(host, unit):
    svc = host.service(unit)
    assert svc.is_running
    assert svc.is_enabled


def test_api_listens_on_the_private_ip_only(host):
    ip = host.ansible.get_variables()["correnteza_ip"]
    assert host.socket(f"tcp://{ip}:{PORT}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{PORT}").is_listening
    assert not host.socket(f"tcp://127.0.0.1:{PORT}").is_listening


@pytest.mark.parametrize("path", [f"{HOME}/airflow.cfg", f"{HOME}/simple_auth_manager_passwords.json"])
def test_secret_files_are_private_to_airflow(host, path):
    with host.sudo():
        f = host.file(path)
        assert (f.user, f.mode) == ("airflow", 0o600)


def test_env_file_is_root_only(host):
    with host.sudo():
        f = host.file(ENV_FILE)
        assert (f.user, f.mode) == ("root", 0o600)


@pytest.mark.parametrize("unit", UNITS)
def test_units_get_the_app_on_pythonpath(host, unit):
    env = host.check_output(f"systemctl show -p Environment --value {unit}")
    assert "PYTHONPATH=/opt/correnteza/app" in env.split()
    assert f"PATH={VENV}/bin:" in env


def test_health_reports_every_component_healthy(api):
    health = requests.get(f"{api}/api/v2/monitor/health", timeout=30).json()
    for component in ("metadatabase", "scheduler", "dag_processor", "triggerer"):
        assert health[component]["status"] == "healthy", health


def test_api_refuses_unauthenticated_requests(api):
    assert requests.get(f"{api}/api/v2/dags", timeout=30).status_code in (401, 403)
    bad = requests.post(f"{api}/auth/token", json={"username": "admin", "password": "wrong"}, timeout=30)
    assert bad.status_code == 401


def test_api_accepts_the_admin_token(api, token):
    resp = requests.get(f"{api}/api/v2/dags", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert resp.status_code == 200
    assert "total_entries" in resp.json()


def test_no_import_errors(api, token):
    resp = requests.get(
        f"{api}/api/v2/importErrors", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["total_entries"] == 0, [e.get("filename") for e in body.get("import_errors", [])]


def test_cli_lists_no_import_errors(host):
    assert cli_json(host, "dags list-import-errors") == []


def test_both_dags_are_parsed_and_active(host):
    """user_ingestion on its schedule, user_replay on demand; neither paused (a trigger would wait)."""
    dags = {d["dag_id"]: d for d in cli_json(host, "dags list")}
    assert {"user_ingestion", "user_replay"} <= set(dags), sorted(dags)
    for dag_id in ("user_ingestion", "user_replay"):
        assert str(dags[dag_id]["is_paused"]).lower() == "false", dags[dag_id]


def test_dags_folder_is_deployed(host):
    assert host.file("/opt/correnteza/dags").is_directory
    assert host.file("/opt/correnteza/app/producer/__init__.py").is_file
    out = host.check_output(CLI.format("config get-value core dags_folder"))
    assert out.strip() == "/opt/correnteza/dags"


def test_executor_and_metadata_db(host, group_hosts):
    assert host.check_output(CLI.format("config get-value core executor")).strip() == "LocalExecutor"
    pg_ip = next(iter(group_hosts("postgres").values()))["correnteza_ip"]
    conn = host.check_output(CLI.format("config get-value database sql_alchemy_conn"))
    assert conn.startswith("postgresql+psycopg2://airflow:") and f"@{pg_ip}:5432/airflow" in conn


def test_connections_from_the_inventory(host, group_hosts):
    pg_ip = next(iter(group_hosts("postgres").values()))["correnteza_ip"]
    kafka = ",".join(f"{hv['correnteza_ip']}:9092" for hv in group_hosts("kafka").values())
    cassandra = ",".join(hv["correnteza_ip"] for hv in group_hosts("cassandra").values())

    def get(conn_id: str) -> dict:
        return cli_json(host, f"connections get {conn_id}")[0]

    pg = get("correnteza_postgres")
    assert (pg["conn_type"], pg["host"], pg["schema"], pg["login"]) == (
        "postgres",
        pg_ip,
        "ingestion",
        "ingestion",
    )
    assert int(pg["port"]) == 5432
    kf = get("correnteza_kafka")
    assert kf["conn_type"] == "kafka"
    assert kf["extra_dejson"]["bootstrap.servers"] == kafka
    cs = get("correnteza_cassandra")
    assert (cs["conn_type"], cs["host"], cs["login"]) == ("generic", cassandra, "correnteza")
    assert int(cs["port"]) == 9042
    registry_ip = next(iter(group_hosts("registry").values()))["correnteza_ip"]
    rg = get("correnteza_registry")
    assert (rg["conn_type"], rg["login"]) == ("http", "schema-reader")
    assert rg["extra_dejson"]["url"] == f"https://{registry_ip}:8443/apis/ccompat/v7"
    assert host.file(rg["extra_dejson"]["ssl.ca.location"]).is_file
    store_ip = next(iter(group_hosts("objectstore").values()))["correnteza_ip"]
    for conn_id in ("correnteza_s3", "correnteza_s3_reader"):
        s3 = get(conn_id)
        assert s3["conn_type"] == "aws", conn_id
        assert s3["extra_dejson"] == {"endpoint_url": f"http://{store_ip}:8333", "region_name": "us-east-1"}


def test_connection_passwords_are_the_secrets(host, secret):
    def password(conn_id: str) -> str:
        return cli_json(host, f"connections get {conn_id}")[0]["password"]

    assert password("correnteza_postgres") == secret("postgres_ingestion_password")
    assert password("correnteza_cassandra") == secret("cassandra_app_password")
    assert password("correnteza_registry") == secret("registry_reader_password")
    # the object store: the pipeline's identity writes the archive, the reader's only reads it
    for conn_id, identity in (("correnteza_s3", "pipeline"), ("correnteza_s3_reader", "reader")):
        got = cli_json(host, f"connections get {conn_id}")[0]
        assert got["login"] == secret(f"s3_{identity}_access_key"), conn_id
        assert got["password"] == secret(f"s3_{identity}_secret_key"), conn_id


def test_variables_from_the_inventory(host, group_hosts):
    source_ip = next(iter(group_hosts("source").values()))["correnteza_ip"]
    expected = {
        "randomuser_mode": "local",
        "randomuser_local_url": f"http://{source_ip}:8000",
        "randomuser_real_url": "https://randomuser.me",
    }
    for key, value in expected.items():
        assert host.check_output(CLI.format(f"variables get {key}")).strip() == value


def test_pipeline_settings_variable_names_the_contract(host):
    settings = json.loads(host.check_output(CLI.format("variables get correnteza_pipeline")))
    assert settings == {
        "topic_users": "users_created",
        "topic_dlq": "users_created.dlq",
        "conn_postgres": "correnteza_postgres",
        "conn_kafka": "correnteza_kafka",
        "conn_cassandra": "correnteza_cassandra",
        "conn_registry": "correnteza_registry",
        "conn_s3": "correnteza_s3",
        "conn_s3_reader": "correnteza_s3_reader",
        "s3_bucket": "correnteza-bronze",
        "s3_prefix": "randomuser",
    }
