"""The registry role: Apicurio Registry on loopback behind nginx (TLS, basic auth) on the private address,
its schemas in PostgreSQL, the contract's subjects registered with BACKWARD compatibility."""

from __future__ import annotations

import json
import subprocess

import correnteza_ops as ops
import pytest
import requests
import testinfra

testinfra_hosts = ["ansible://registry"]

SUBJECTS = ["users_created-value", "users_created.dlq-value"]


def ip_of(host: testinfra.host.Host) -> str:
    return str(host.ansible.get_variables()["correnteza_ip"])


@pytest.mark.parametrize("service", ["apicurio-registry", "nginx"])
def test_service_running_and_enabled(host: testinfra.host.Host, service: str) -> None:
    unit = host.service(service)
    assert unit.is_running
    assert unit.is_enabled


def test_runs_as_its_own_user_on_java_21(host: testinfra.host.Host) -> None:
    assert host.check_output("systemctl show -p User --value apicurio-registry") == "correnteza-registry"
    pid = host.check_output("systemctl show -p MainPID --value apicurio-registry")
    exe = host.check_output(f"ps -o args= -p {pid}").split()[0]
    version = host.run(f"{exe} -version")
    assert 'version "21.' in version.stderr


def test_api_only_on_the_private_address(host: testinfra.host.Host) -> None:
    port = ops.contract().ports.registry
    assert host.socket(f"tcp://{ip_of(host)}:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


@pytest.mark.parametrize("port", [8090, 9000])
def test_apicurio_listens_on_loopback_only(host: testinfra.host.Host, port: int) -> None:
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert not host.socket(f"tcp://{ip_of(host)}:{port}").is_listening


def test_storage_is_postgresql(host: testinfra.host.Host) -> None:
    env = host.check_output("sudo cat /etc/correnteza/registry/registry.env")
    assert "APICURIO_STORAGE_KIND=sql" in env
    assert "APICURIO_STORAGE_SQL_KIND=postgresql" in env
    db = ops.contract().registry.db
    assert f"jdbc:postgresql://{ops.inventory().first('postgres').ip}:" in env and f"/{db}\n" in env + "\n"
    assert host.check_output("sudo stat -c %a:%U:%G /etc/correnteza/registry/registry.env") == (
        "640:root:correnteza-registry"
    )
    # Apicurio's tables exist in its own database, and they hold the registered versions.
    versions = ops.psql("SELECT count(*) FROM versions", database=db, role=ops.contract().registry.db_role)
    assert int(versions[0][0]) >= len(SUBJECTS)


def test_tls_verified_by_the_platform_ca() -> None:
    answer = ops.registry_request("GET", "/subjects")
    assert answer.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(ops.registry_url() + "/subjects", timeout=10, auth=ops.registry_credentials())


def test_plain_http_is_refused() -> None:
    url = ops.registry_url().replace("https://", "http://")
    answer = requests.get(url + "/subjects", timeout=10)
    assert answer.status_code == 400  # nginx: "plain HTTP request was sent to HTTPS port"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_anonymous_requests_are_refused(method: str) -> None:
    body = json.dumps({"compatibility": "NONE"})
    answer = ops.registry_request(method, "/config", anonymous=True, data=body)
    assert answer.status_code == 401


def test_wrong_password_is_refused() -> None:
    answer = requests.put(
        ops.registry_url() + "/config",
        json={"compatibility": "NONE"},
        auth=(ops.contract().registry.writer_user, "not-the-password"),
        verify=str(ops.CA_CERT),
        timeout=10,
    )
    assert answer.status_code == 401


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_the_reader_cannot_write(method: str) -> None:
    schema = ops.schema_file(SUBJECTS[0]).read_text().strip()
    path = {
        "POST": f"/subjects/{SUBJECTS[0]}/versions",
        "PUT": "/config",
        "DELETE": f"/subjects/{SUBJECTS[0]}",
    }
    answer = ops.registry_request(
        method, path[method], data=json.dumps({"schema": schema, "compatibility": "NONE"})
    )
    assert answer.status_code == 403
    assert ops.registry_request("GET", "/config").json()["compatibilityLevel"] == "BACKWARD"


@pytest.mark.parametrize("subject", SUBJECTS)
def test_subject_registered_with_backward(subject: str) -> None:
    assert subject in ops.registry_request("GET", "/subjects").json()
    config = ops.registry_request("GET", f"/config/{subject}")
    assert config.status_code == 200
    assert config.json()["compatibilityLevel"] == "BACKWARD"


@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_schema_file_is_a_registered_version(subject: str) -> None:
    folder = ops.schema_file(subject).parent
    for path in sorted(folder.glob("v*.avsc")):
        found = ops.registry_request(
            "POST",
            f"/subjects/{subject}",
            data=json.dumps({"schema": path.read_text().strip(), "schemaType": "AVRO"}),
        )
        assert found.status_code == 200, f"{path} is not registered under {subject}: {found.text}"
        assert found.json()["version"] >= 1


def test_global_compatibility_is_backward() -> None:
    assert ops.registry_request("GET", "/config").json()["compatibilityLevel"] == "BACKWARD"


def test_management_health_is_up(host: testinfra.host.Host) -> None:
    health = json.loads(host.check_output("curl -sf http://127.0.0.1:9000/health/ready"))
    assert health["status"] == "UP"


def test_an_incompatible_schema_fails_the_deploy_and_nothing_is_registered(tmp_path) -> None:
    """site.yml's schemas phase, given a schema folder where one subject gets a compatible v2 and the other an
    incompatible one: the run fails with the registry's reason and neither v2 is registered."""
    for subject in SUBJECTS:
        (tmp_path / subject).mkdir()
        (tmp_path / subject / "v1.avsc").write_text(ops.schema_file(subject, 1).read_text())
    compatible = json.loads(ops.schema_file(SUBJECTS[0], 1).read_text())
    compatible["fields"].append({"name": "infra_probe", "type": ["null", "string"], "default": None})
    (tmp_path / SUBJECTS[0] / "v2.avsc").write_text(json.dumps(compatible))
    incompatible = json.loads(ops.schema_file(SUBJECTS[1], 1).read_text())
    incompatible["fields"].append({"name": "infra_required", "type": "string"})
    (tmp_path / SUBJECTS[1] / "v2.avsc").write_text(json.dumps(incompatible))
    before = {s: ops.registry_request("GET", f"/subjects/{s}/versions").json() for s in SUBJECTS}

    run = subprocess.run(
        [
            str(ops.ROOT / ".venv" / "bin" / "ansible-playbook"),
            "ansible/site.yml",
            "--limit",
            "registry,localhost",
            "--tags",
            "schemas",
            "-e",
            f"registry_schemas_dir={tmp_path}",
        ],
        cwd=ops.ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode != 0, "the deploy of an incompatible schema succeeded"
    assert "The schema registry refuses" in run.stdout, run.stdout[-3000:]
    assert "Incompatible artifact" in run.stdout and "infra_required" in run.stdout, run.stdout[-3000:]
    assert {s: ops.registry_request("GET", f"/subjects/{s}/versions").json() for s in SUBJECTS} == before
    lookup = ops.registry_request(
        "POST",
        f"/subjects/{SUBJECTS[0]}",
        data=json.dumps({"schema": json.dumps(compatible), "schemaType": "AVRO"}),
    )
    assert lookup.status_code == 404, "the compatible v2 was registered although the deploy failed"
