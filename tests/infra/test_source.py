"""The source role: the correnteza-source unit (source group) answers randomuser 1.4 JSON on port 8000."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import testinfra

testinfra_hosts = ["ansible://source"]

ROOT = Path(__file__).resolve().parents[2]
VENV = "/opt/correnteza/source-venv"
PORT = 8000


def ip_of(host: testinfra.host.Host) -> str:
    return str(host.ansible.get_variables()["correnteza_ip"])


def api(host: testinfra.host.Host, **params: object) -> requests.Response:
    return requests.get(f"http://{ip_of(host)}:{PORT}/api/1.4/", params=params, timeout=60)


@pytest.mark.parametrize("service", ["correnteza-source"])
def test_service_running_and_enabled(host: testinfra.host.Host, service: str) -> None:
    unit = host.service(service)
    assert unit.is_running
    assert unit.is_enabled


def test_runs_as_its_own_user(host: testinfra.host.Host) -> None:
    user = host.check_output("systemctl show -p User --value correnteza-source")
    assert user == "correnteza-source"
    assert host.user("correnteza-source").shell == "/usr/sbin/nologin"


@pytest.mark.parametrize("port", [PORT])
def test_listens_on_private_ip(host: testinfra.host.Host, port: int) -> None:
    assert host.socket(f"tcp://{ip_of(host)}:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_faker_pinned_as_the_lock(host: testinfra.host.Host) -> None:
    pin = re.search(r"(?im)^faker==(\S+)", (ROOT / "locks" / "hosts.txt").read_text())
    assert pin is not None
    version = host.check_output(f"{VENV}/bin/python -c 'import faker; print(faker.VERSION)'")
    assert version == pin.group(1)


def test_health(host: testinfra.host.Host) -> None:
    answer = requests.get(f"http://{ip_of(host)}:{PORT}/health", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_api_shape_and_count(host: testinfra.host.Host) -> None:
    answer = api(host, results=25, seed="infra", page=3)
    assert answer.status_code == 200
    body = answer.json()
    assert body["info"] == {"seed": "infra", "results": 25, "page": 3, "version": "1.4"}
    assert len(body["results"]) == 25
    for user in body["results"]:
        assert uuid.UUID(user["login"]["uuid"]).version == 4
        assert {"name", "location", "email", "login", "dob", "registered", "nat", "picture"} <= set(user)


def test_deterministic_for_a_seed(host: testinfra.host.Host) -> None:
    first = [u["login"]["uuid"] for u in api(host, results=10, seed="same").json()["results"]]
    again = [u["login"]["uuid"] for u in api(host, results=10, seed="same").json()["results"]]
    other = [u["login"]["uuid"] for u in api(host, results=10, seed="same", page=2).json()["results"]]
    assert first == again
    assert set(first).isdisjoint(other)


def test_reachable_from_the_airflow_host(host: testinfra.host.Host, group_hosts) -> None:
    airflow_hosts = sorted(group_hosts("airflow"))
    assert airflow_hosts, "no host in the airflow group"
    client = testinfra.get_host(
        f"ansible://{airflow_hosts[0]}", ansible_inventory=str(ROOT / "ansible/inventory/hosts.yml")
    )
    out = client.check_output(f"curl -sf 'http://{ip_of(host)}:{PORT}/api/?results=4&seed=infra&page=3'")
    local = [u["login"]["uuid"] for u in api(host, results=4, seed="infra", page=3).json()["results"]]
    assert all(uid in out for uid in local)


def test_faults_on_demand(host: testinfra.host.Host) -> None:
    assert api(host, results=1, fault="5xx").status_code == 503
    assert "error" in api(host, results=1, fault="error").json()
    bad = api(host, results=10, seed="infra", bad=3).json()["results"]
    assert sum("email" not in u for u in bad) == 3


def test_rate_limit_answers_429(host: testinfra.host.Host) -> None:
    url = f"http://{ip_of(host)}:{PORT}/api/?results=1&inc=nat"
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: requests.get(url, timeout=10), range(300)))
    limited = [r for r in answers if r.status_code == 429]
    assert limited, "300 concurrent requests never hit the rate limit"
    assert int(limited[0].headers["Retry-After"]) >= 1


def test_logs_one_line_per_request(host: testinfra.host.Host) -> None:
    api(host, results=2, seed="logline")
    logs = host.check_output("sudo journalctl -u correnteza-source -n 200 --no-pager")
    assert re.search(r'"GET /api/1\.4/\?results=2&seed=logline" 200 \d+ [\d.]+ms', logs)
