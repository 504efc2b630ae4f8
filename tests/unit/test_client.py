"""The randomuser client against the local source over real HTTP (127.0.0.1 only), and source selection."""

from __future__ import annotations

import logging
import random
import re
import time

import pytest
import requests

from producer.client import (
    ApiErrorBody,
    MalformedResponse,
    RandomUserClient,
    RandomUserError,
    build_params,
    parse_retry_after,
)
from producer.config import ClientConfig
from producer.selection import select_source
from producer.validation import validate_records
from tests.unit.conftest import free_port


class Sleeps:
    """Records the client's waits; really sleeps when asked to (for the rate limit to refill)."""

    def __init__(self, real: bool = False) -> None:
        self.calls: list[float] = []
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.real:
            time.sleep(seconds)


def make_client(url: str, sleeps: Sleeps | None = None, **config: float) -> RandomUserClient:
    settings = {"max_attempts": 3, "read_timeout": 10.0, **config}
    return RandomUserClient(
        ClientConfig(base_url=url, **settings), sleep=sleeps or Sleeps(), rng=random.Random(1)
    )


def test_answer_has_api_shape(source_url: str) -> None:
    answer = make_client(source_url).get(results=7, seed="shape", page=2)
    assert len(answer.results) == 7
    assert answer.info == {"seed": "shape", "results": 7, "page": 2, "version": "1.4"}
    assert answer.url == f"{source_url}/api/1.4/"
    user = answer.results[0]
    assert set(user) == set(
        "gender name location email login registered dob phone cell id picture nat".split()
    )
    assert set(user["login"]) == {"uuid", "username", "password", "salt", "md5", "sha1", "sha256"}
    assert set(user["location"]) == {
        "street",
        "city",
        "state",
        "country",
        "postcode",
        "coordinates",
        "timezone",
    }
    assert answer.attempts == 1


def test_same_seed_and_page_same_users(source_url: str) -> None:
    client = make_client(source_url)
    first = client.get(results=20, seed="det", page=1).results
    again = client.get(results=20, seed="det", page=1).results
    assert [u["login"]["uuid"] for u in first] == [u["login"]["uuid"] for u in again]
    assert [u["email"] for u in first] == [u["email"] for u in again]


def test_other_page_or_seed_other_users(source_url: str) -> None:
    client = make_client(source_url)
    page1 = {u["login"]["uuid"] for u in client.get(results=20, seed="det", page=1).results}
    page2 = {u["login"]["uuid"] for u in client.get(results=20, seed="det", page=2).results}
    other = {u["login"]["uuid"] for u in client.get(results=20, seed="other", page=1).results}
    assert page1.isdisjoint(page2)
    assert page1.isdisjoint(other)


def test_no_seed_gets_a_random_seed(source_url: str) -> None:
    client = make_client(source_url)
    one, two = client.get(results=1).info["seed"], client.get(results=1).info["seed"]
    assert re.fullmatch(r"[0-9a-f]{16}", one)
    assert one != two


def test_nat_inc_exc(source_url: str) -> None:
    client = make_client(source_url)
    users = client.get(results=30, seed="n", nat=["gb", "FR"]).results
    assert {u["nat"] for u in users} <= {"GB", "FR"}
    assert {u["location"]["country"] for u in users} <= {"United Kingdom", "France"}
    only = client.get(results=2, seed="n", inc=["login", "nat"]).results
    assert all(set(u) == {"login", "nat"} for u in only)
    without = client.get(results=2, seed="n", exc=["login"]).results
    assert all("login" not in u and "email" in u for u in without)


def test_error_body_is_retried_then_reported(source_url: str) -> None:
    sleeps = Sleeps()
    with pytest.raises(
        ApiErrorBody, match=r"API error from http://127\.0\.0\.1:\d+/api/1\.4/\?.*Uh oh"
    ) as err:
        make_client(source_url, sleeps).get(results=3, seed="e", extra={"fault": "error"})
    assert "gave up after 3 attempts" in str(err.value)
    assert len(sleeps.calls) == 2


def test_error_body_once_then_success(source_url: str) -> None:
    answer = make_client(source_url).get(results=3, seed="e1", extra={"fault": "error", "fault_times": "1"})
    assert len(answer.results) == 3
    assert answer.attempts == 2


def test_malformed_json_names_url_and_problem(source_url: str) -> None:
    sleeps = Sleeps()
    with pytest.raises(MalformedResponse) as err:
        make_client(source_url, sleeps).get(results=5, seed="m", extra={"fault": "malformed"})
    message = str(err.value)
    assert f"malformed JSON from {source_url}/api/1.4/?results=5" in message
    assert re.search(r"at line \d+ column \d+ \(char \d+ of \d+", message)
    assert len(sleeps.calls) == 2


def test_5xx_then_success(source_url: str) -> None:
    sleeps = Sleeps()
    answer = make_client(source_url, sleeps).get(
        results=4, seed="5", extra={"fault": "5xx", "fault_times": "2"}
    )
    assert len(answer.results) == 4
    assert answer.attempts == 3
    # the source's 503 carries Retry-After: 1, which the client honours
    assert sleeps.calls == [1.0, 1.0]


def test_5xx_always_fails_clearly(source_url: str) -> None:
    with pytest.raises(RandomUserError, match=r"HTTP 503 from http://127\.0\.0\.1.*gave up after 2 attempts"):
        make_client(source_url, max_attempts=2).get(results=1, extra={"fault": "5xx"})


def test_slow_answer_within_timeout(source_url: str) -> None:
    answer = make_client(source_url, read_timeout=5.0).get(results=2, extra={"fault": "slow", "delay": "0.3"})
    assert len(answer.results) == 2
    assert answer.seconds >= 0.3


def test_slow_answer_past_timeout(source_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(RandomUserError, match=r"ReadTimeout calling http://127\.0\.0\.1:\d+/api/1\.4/"):
        make_client(source_url, read_timeout=0.3, max_attempts=2).get(
            results=2, extra={"fault": "slow", "delay": "2"}
        )
    assert time.monotonic() - started < 2.0


def test_429_honours_retry_after(limited_source_url: str) -> None:
    sleeps = Sleeps(real=True)
    client = make_client(limited_source_url, sleeps)
    assert len(client.get(results=1, seed="r").results) == 1
    answer = client.get(results=2, seed="r")  # the bucket is empty: 429, Retry-After: 1, then success
    assert len(answer.results) == 2
    assert answer.attempts == 2
    assert sleeps.calls == [1.0]


def test_429_raw_answer_has_retry_after(limited_source_url: str) -> None:
    statuses = [
        requests.get(f"{limited_source_url}/api/", params={"results": 1}, timeout=5) for _ in range(3)
    ]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert parse_retry_after(limited[0].headers["Retry-After"]) == 1.0


def test_record_missing_a_field(source_url: str) -> None:
    users = make_client(source_url).get(results=10, seed="b", extra={"bad": "3"}).results
    assert sum("email" not in u for u in users) == 3
    keyless = make_client(source_url).get(results=10, seed="b", extra={"bad": "3", "bad_field": "login.uuid"})
    checked = validate_records(keyless.results)
    assert len(checked.accepted) == 7
    assert [r.reason for r in checked.rejected] == ["missing login.uuid"] * 3


def test_more_than_5000_is_refused_by_the_client() -> None:
    with pytest.raises(ValueError, match="between 1 and 5000"):
        build_params(results=5001)
    with pytest.raises(ValueError, match="between 1 and 5000"):
        make_client("http://127.0.0.1:9").get(results=6000)


def test_source_answers_one_user_past_5000_like_the_real_api(source_url: str) -> None:
    body = requests.get(f"{source_url}/api/", params={"results": 6000, "seed": "cap"}, timeout=10)
    assert body.status_code == 200
    assert len(body.json()["results"]) == 1
    assert "answering 1 user" in body.headers["X-Correnteza-Note"]


def test_unreachable_source(tmp_path: object) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RandomUserError, match=r"ConnectionError calling http://127\.0\.0\.1"):
        make_client(url, connect_timeout=0.5, max_attempts=2).get(results=1)


def test_backoff_is_exponential_with_jitter() -> None:
    client = make_client("http://127.0.0.1:9", backoff_base=0.5, backoff_max=4.0)
    for attempt, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0)]:
        waits = {client.backoff(attempt) for _ in range(20)}
        assert all(cap / 2 <= w <= cap for w in waits), (attempt, waits)
        assert len(waits) > 1  # jitter
    assert client.backoff(1, retry_after=7.0) == 7.0
    assert client.backoff(1, retry_after=600.0) == 60.0  # retry_after_max


def test_fetch_5000_users(source_url: str) -> None:
    started = time.monotonic()
    answer = make_client(source_url, read_timeout=60.0).get(results=5000, seed="big")
    seconds = time.monotonic() - started
    assert len(answer.results) == 5000
    assert len({u["login"]["uuid"] for u in answer.results}) == 5000
    print(f"5000 users in {seconds:.2f} s ({5000 / seconds:.0f} users/s)")


def test_select_local_forced(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    choice = select_source("local", "http://127.0.0.1:8000", "http://127.0.0.1:9")
    assert (choice.name, choice.url) == ("local", "http://127.0.0.1:8000")
    expected = "using the local randomuser-compatible source at http://127.0.0.1:8000"
    assert f"{expected} (forced by randomuser_mode=local)" in caplog.text


def test_select_auto_falls_back_when_real_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    real = f"http://127.0.0.1:{free_port()}"
    choice = select_source("auto", "http://127.0.0.1:8000", real, probe_timeout=0.5)
    assert choice.name == "local"
    assert f"{real} unreachable" in caplog.text
    assert "using the local randomuser-compatible source at http://127.0.0.1:8000" in caplog.text


def test_select_auto_uses_real_when_it_answers(source_url: str) -> None:
    # the "real" API here is the local source on 127.0.0.1: tests never leave the machine
    choice = select_source("auto", "http://127.0.0.1:8000", source_url, probe_timeout=2.0)
    assert (choice.name, choice.url) == ("real", source_url)


def test_select_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="randomuser_mode must be one of local, real, auto"):
        select_source("sometimes", "http://127.0.0.1:8000", "http://127.0.0.1:9")
