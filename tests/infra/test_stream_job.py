"""The stream_job role: the streaming job's unit on spark_master, its settings and its checkpoint."""

from __future__ import annotations

import json
import re

from tests.infra.listeners import scrape

testinfra_hosts = ["ansible://spark_master"]

SERVICE = "correnteza-stream"
APP_NAME = "correnteza-stream-users"
CHECKPOINT = "/data/spark/checkpoints/users_created"
# The driver's JMX exporter agent (contract: correnteza_port_jmx_exporter_driver).
DRIVER_EXPORTER_PORT = 7072


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


def test_driver_exporter_reports_the_querys_micro_batches(host):
    series = scrape(host, DRIVER_EXPORTER_PORT)
    for name in (
        "spark_stream_inputrate_rows_per_second",
        "spark_stream_processingrate_rows_per_second",
        "spark_stream_batch_duration_ms",
    ):
        assert [labels["query"] for labels, _ in series[name]] == [APP_NAME], name
    assert all(value >= 0 for _, value in series["spark_stream_batch_duration_ms"])
