"""The randomuser-compatible source: paths, parameters, determinism, faults, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from producer.config import NATIONALITIES
from producer.source.__main__ import parse_args
from producer.source.generator import COUNTRIES, LOCALES, UserGenerator
from producer.source.server import parse_query, remove_path

ROOT = Path(__file__).resolve().parents[2]


def get(url: str, path: str = "/api/", **params: object) -> requests.Response:
    return requests.get(f"{url}{path}", params=params, timeout=30)


def test_health(source_url: str) -> None:
    answer = get(source_url, "/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/1.4", "/api/1.4/"])
def test_api_paths_answer_the_same(source_url: str, path: str) -> None:
    answer = get(source_url, path, results=3, seed="paths")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    reference = get(source_url, "/api/1.4/", results=3, seed="paths").json()
    assert answer.json()["results"] == reference["results"]


def test_unknown_path_404(source_url: str) -> None:
    assert get(source_url, "/api/0.9/").status_code == 404


def test_only_json_format(source_url: str) -> None:
    answer = get(source_url, results=1, format="xml")
    assert answer.status_code == 400
    assert "json only" in answer.json()["error"]


def test_unknown_fault_is_400(source_url: str) -> None:
    answer = get(source_url, results=1, fault="gremlins")
    assert answer.status_code == 400
    assert "unknown fault" in answer.json()["error"]


def test_fault_error_body(source_url: str) -> None:
    answer = get(source_url, results=1, fault="error")
    assert answer.status_code == 200
    assert answer.json() == {
        "error": "Uh oh, something has gone wrong. Please tweet us @randomapi about the issue. Thank you."
    }


def test_fault_malformed_is_truncated_json(source_url: str) -> None:
    answer = get(source_url, results=3, fault="malformed")
    assert answer.status_code == 200
    assert answer.text.startswith('{"results":[')
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)


def test_fault_5xx(source_url: str) -> None:
    assert get(source_url, results=1, fault="5xx").status_code == 503


def test_fault_times_counts_per_query(source_url: str) -> None:
    codes = [get(source_url, results=1, seed="ft", fault="5xx", fault_times=2).status_code for _ in range(4)]
    assert codes == [503, 503, 200, 200]


def test_bad_records_are_deterministic(source_url: str) -> None:
    one = get(source_url, results=20, seed="bad", bad=5).json()["results"]
    two = get(source_url, results=20, seed="bad", bad=5).json()["results"]
    missing = [i for i, u in enumerate(one) if "email" not in u]
    assert len(missing) == 5
    assert missing == [i for i, u in enumerate(two) if "email" not in u]
    clean = get(source_url, results=20, seed="bad").json()["results"]
    # the other records are the normal users of that seed and page
    assert [u for i, u in enumerate(one) if i not in missing] == [
        u for i, u in enumerate(clean) if i not in missing
    ]


def test_bad_nested_field(source_url: str) -> None:
    users = get(source_url, results=6, seed="x", bad=2, bad_field="location.postcode").json()["results"]
    assert sum("postcode" not in u["location"] for u in users) == 2


def test_invalid_nat_means_any_like_the_real_api(source_url: str) -> None:
    users = get(source_url, results=40, seed="nat", nat="GB,XX").json()["results"]
    assert len({u["nat"] for u in users}) > 2


def test_every_nationality_generates() -> None:
    generator = UserGenerator()
    for nat in NATIONALITIES:
        user = generator.user("all", 1, 0, [nat])
        assert user["nat"] == nat
        assert user["location"]["country"] == COUNTRIES[nat]
        assert "@" in user["email"]
        assert user["name"]["first"] and user["name"]["last"]
    assert set(LOCALES) == set(NATIONALITIES) == set(COUNTRIES)


def test_uuid_is_a_deterministic_uuid4() -> None:
    generator = UserGenerator()
    user = generator.user("u", 3, 7)
    assert uuid.UUID(user["login"]["uuid"]).version == 4
    assert generator.user("u", 3, 7)["login"]["uuid"] == user["login"]["uuid"]


def test_same_users_in_another_process() -> None:
    code = (
        "from producer.source.generator import UserGenerator as G; "
        "print(G().user('proc', 2, 5)['login']['uuid'])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in (1, 2)
    }
    assert outputs == {UserGenerator().user("proc", 2, 5)["login"]["uuid"]}


def test_parse_query_like_the_real_api() -> None:
    query = parse_query("results=abc&page=-4&nat=gb&inc=name,login&exc=login", 10.0)
    assert (query.results, query.page, query.nats, query.fields) == (1, 1, ("GB",), ("name",))
    assert parse_query("results=5000", 10.0).results == 5000
    capped = parse_query("results=5001", 10.0)
    assert capped.results == 1 and capped.adjusted is not None
    assert parse_query("fault=slow&delay=999", 10.0).delay == 10.0


def test_remove_path() -> None:
    record = {"login": {"uuid": "x", "username": "y"}, "email": "e"}
    remove_path(record, "login.uuid")
    remove_path(record, "nope.deeper")
    assert record == {"login": {"username": "y"}, "email": "e"}


def test_cli_arguments() -> None:
    args = parse_args(["--host", "10.77.0.122", "--port", "8000", "--rate-limit", "20"])
    assert (args.host, args.port, args.rate_limit) == ("10.77.0.122", 8000, 20.0)
    with pytest.raises(SystemExit):
        parse_args(["--port", "70000"])
    with pytest.raises(SystemExit):
        parse_args(["--port", "8000", "--rate-limit", "-1"])
    with pytest.raises(SystemExit):
        parse_args(["--host", "127.0.0.1"])  # no --port: the port is the source role's, never a default
