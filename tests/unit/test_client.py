"""The randomuser client against the local source over real HTTP (127.0.0.1 only), and source selection."""

from __future__ import annotations

import json
import logging
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


def test_a_sequence_of_faults_then_success(source_url: str) -> None:
    """The fault suite's source faults: each page's first requests answer 429, 503, malformed and truncated
    JSON in turn; the client retries each kind and the fifth attempt gets the page."""
    sleeps = Sleeps()
    faults = "429,5xx,malformed,truncated"
    answer = make_client(source_url, sleeps, max_attempts=5).get(
        results=40, seed="seq", extra={"fault": faults, "fault_times": "4"}
    )
    assert len(answer.results) == 40
    assert answer.attempts == 5
    # 429 and 503 carry Retry-After: 1; malformed and truncated answers back off
    assert sleeps.calls[:2] == [1.0, 1.0] and len(sleeps.calls) == 4


def test_unknown_fault_is_refused_by_name(source_url: str) -> None:
    r = requests.get(f"{source_url}/api/1.4/", params={"fault": "5xx,boom"}, timeout=10)
    assert r.status_code == 400
    assert "unknown fault=boom" in r.json()["error"]


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


# --- issue 13, defect 8: answers the local source cannot produce, from a scripted raw HTTP server ---------

Reply = bytes | Callable[[socket.socket], None]


class Scripted:
    """A raw HTTP server on 127.0.0.1: request i gets replies[min(i, last)] (bytes, or a function writing
    to the socket), then the connection closes. `paths` records each request's path and query."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.paths: list[str] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                scripted.paths.append(self.path)
                reply = scripted.replies[min(len(scripted.paths), len(scripted.replies)) - 1]
                self.close_connection = True
                if callable(reply):
                    reply(self.connection)
                else:
                    self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(
    body: bytes,
    status: str = "200 OK",
    content_type: str | None = "application/json; charset=utf-8",
    headers: dict[str, str] | None = None,
    length: int | None = None,
) -> bytes:
    """A whole HTTP/1.1 answer; `length` overrides Content-Length (to declare more than is sent)."""
    lines = [
        f"HTTP/1.1 {status}",
        "Connection: close",
        f"Content-Length: {len(body) if length is None else length}",
    ]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked_head(content_type: str = "application/json") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def users_body(
    count: int = 2, info: dict[str, Any] | None = None, names: Sequence[str] = ("Ada",), **extra: Any
) -> bytes:
    users = [
        {"login": {"uuid": str(uuid.UUID(int=i + 1, version=4))}, "name": {"first": names[i % len(names)]}}
        for i in range(count)
    ]
    body: dict[str, Any] = {"results": users, **extra}
    if info is not None:
        body["info"] = info
    return json.dumps(body, ensure_ascii=False).encode()


def good_info(seed: str = "s", results: int = 2, page: int = 1) -> dict[str, Any]:
    return {"seed": seed, "results": results, "page": page, "version": "1.4"}


def scripted_client(url: str, sleeps: Sleeps | None = None, **config: Any) -> RandomUserClient:
    return make_client(url, sleeps, read_timeout=5.0, **config)


# Retry-After, HTTP-date form (RFC 9110 section 10.2.3)


def test_retry_after_http_date_counts_from_now() -> None:
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 30.0
    assert parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now=now) == 30.0  # obsolete RFC 850
    assert parse_retry_after("Wed Oct 21 07:28:00 2015", now=now) == 30.0  # obsolete asctime
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now=now) == 0.0  # past: no wait, never < 0
    assert parse_retry_after(" 120 ", now=now) == 120.0
    assert parse_retry_after("-5") == 0.0
    for junk in ("soon", "Wed, 32 Oct 2015 07:28:00 GMT", "nan", ""):
        assert parse_retry_after(junk, now=now) is None, junk


def test_retry_after_http_date_defaults_to_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr("producer.client.utc_now", lambda: fixed)
    ahead = format_datetime(fixed + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(ahead) == 90.0


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(timedelta(hours=1), 7.0), (timedelta(hours=-1), 0.0)],
    ids=["future-capped", "past-no-wait"],
)
def test_429_honours_retry_after_http_date(offset: timedelta, expected: float) -> None:
    when = format_datetime(datetime.now(UTC) + offset, usegmt=True)
    limited = reply(b'{"error": "slow down"}', "429 Too Many Requests", headers={"Retry-After": when})
    sleeps = Sleeps()
    with Scripted([limited, reply(users_body(2, good_info()))]) as server:
        answer = scripted_client(server.url, sleeps, retry_after_max=7.0).get(results=2, seed="s")
    assert answer.attempts == 2
    assert sleeps.calls == [expected]  # the header, not the 0.25-0.5 s exponential backoff


def test_503_retry_after_http_date_seconds_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr("producer.client.utc_now", lambda: fixed)
    when = format_datetime(fixed + timedelta(seconds=3), usegmt=True)
    sleeps = Sleeps()
    unavailable = reply(b"down", "503 Service Unavailable", headers={"Retry-After": when})
    with Scripted([unavailable, reply(users_body(2, good_info()))]) as server:
        scripted_client(server.url, sleeps).get(results=2, seed="s")
    assert len(sleeps.calls) == 1
    assert sleeps.calls == [3.0]  # from the header's date, not the 0.25-0.5 s exponential backoff


# A body cut short while it is read


def cut_chunked(sock: socket.socket) -> None:
    sock.sendall(chunked_head() + chunk(b'{"results": [{"login": ') + b'40\r\n{"uuid"')


def cut_content_length(sock: socket.socket) -> None:
    body = users_body(2, good_info())
    sock.sendall(reply(body)[: -len(body) // 2])


def reset_mid_body(sock: socket.socket) -> None:
    body = users_body(2, good_info())
    sock.sendall(reply(body)[: -len(body) // 2])
    time.sleep(0.05)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
    sock.close()


def bad_gzip(sock: socket.socket) -> None:
    sock.sendall(reply(b"\x1f\x8b\x08\x00this is no gzip stream", headers={"Content-Encoding": "gzip"}))


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (cut_chunked, "ChunkedEncodingError"),
        (cut_content_length, "ChunkedEncodingError"),
        (reset_mid_body, r"(ChunkedEncodingError|ConnectionError)"),
        (bad_gzip, "ContentDecodingError"),
    ],
    ids=["chunked-cut", "content-length-short", "connection-reset", "undecodable-gzip"],
)
def test_truncated_body_is_retried_then_named(fault: Callable[[socket.socket], None], cause: str) -> None:
    sleeps = Sleeps()
    with Scripted([fault]) as server:
        with pytest.raises(RandomUserError) as err:
            scripted_client(server.url, sleeps).get(results=2, seed="s")
    message = str(err.value)
    assert re.search(
        rf"body of {re.escape(server.url)}/api/1\.4/\?results=2&format=json&seed=s cut short", message
    )
    assert re.search(rf"after [\d,]+ bytes: {cause}", message), message
    assert "gave up after 3 attempts" in message
    assert len(server.paths) == 3
    assert len(sleeps.calls) == 2


def test_truncated_body_once_then_success() -> None:
    with Scripted([cut_chunked, reply(users_body(2, good_info()))]) as server:
        answer = scripted_client(server.url).get(results=2, seed="s")
    assert (answer.attempts, len(answer.results)) == (2, 2)


# A deeply nested body


@pytest.mark.parametrize("depth", [100_000, 500], ids=["past-json-recursion-limit", "past-max-depth"])
def test_deeply_nested_body_is_malformed_and_retried(depth: int) -> None:
    nested = b'{"results": [{"x": ' + b"[" * depth + b"]" * depth + b"}]}"
    sleeps = Sleeps()
    with Scripted([reply(nested)]) as server:
        with pytest.raises(MalformedResponse, match=r"nested (too deeply|deeper than 32)") as err:
            scripted_client(server.url, sleeps).get(results=1)
    assert f"from {server.url}/api/1.4/?results=1" in str(err.value)
    assert len(server.paths) == 3
    assert len(sleeps.calls) == 2


def test_usual_nesting_passes(source_url: str) -> None:
    answer = make_client(source_url).get(results=50, seed="deep")
    assert len(answer.results) == 50


# UTF-8 whatever Content-Type says

NAMES = ("Ωμέγα", "مريم", "Дмитрий", "Zoë")


@pytest.mark.parametrize(
    "content_type",
    ["text/html", None, "application/json; charset=ISO-8859-1", "application/json"],
    ids=["text-html-no-charset", "no-content-type", "wrong-charset", "json-no-charset"],
)
def test_body_is_decoded_as_utf8(content_type: str | None) -> None:
    body = users_body(4, good_info(results=4), names=NAMES)
    with Scripted([reply(body, content_type=content_type)]) as server:
        answer = scripted_client(server.url).get(results=4, seed="s")
    assert [u["name"]["first"] for u in answer.results] == list(NAMES)


def test_utf8_byte_order_mark_is_dropped() -> None:
    with Scripted([reply(b"\xef\xbb\xbf" + users_body(2, good_info(), names=NAMES))]) as server:
        answer = scripted_client(server.url).get(results=2, seed="s")
    assert answer.results[1]["name"]["first"] == "مريم"


def test_invalid_utf8_is_malformed_naming_the_url() -> None:
    body = users_body(2, good_info(), names=["Ada"]).replace(b"Ada", b"A\xffda")
    sleeps = Sleeps()
    with Scripted([reply(body, content_type="text/html")]) as server:
        with pytest.raises(MalformedResponse) as err:
            scripted_client(server.url, sleeps).get(results=2, seed="s")
    message = str(err.value)
    assert f"body of {server.url}/api/1.4/?results=2&format=json&seed=s is not valid UTF-8" in message
    assert re.search(r"invalid start byte at byte \d+ of \d+ \(bytes there: b'\\xffda", message), message
    assert len(server.paths) == 3


# The body's size cap


def test_body_over_declared_cap_is_refused_unread_and_not_retried() -> None:
    body = users_body(2, good_info())
    with Scripted([reply(body)]) as server:
        with pytest.raises(RandomUserError) as err:
            scripted_client(server.url, max_body_bytes=len(body) - 1).get(results=2, seed="s")
    message = str(err.value)
    assert f"answer from {server.url}/api/1.4/?results=2" in message
    assert (
        f"declares {len(body):,} bytes (Content-Length), over the cap of {len(body) - 1:,} bytes" in message
    )
    assert "not retried" in message
    assert len(server.paths) == 1


def test_body_at_the_cap_passes() -> None:
    body = users_body(2, good_info())
    with Scripted([reply(body)]) as server:
        answer = scripted_client(server.url, max_body_bytes=len(body)).get(results=2, seed="s")
    assert len(answer.results) == 2


class Endless:
    """A chunked body of up to `total` bytes (valid JSON once complete); records whether the client hung up
    before all of it was sent."""

    def __init__(self, total: int = 32 * 1024 * 1024) -> None:
        self.total = total
        self.sent = 0
        self.done = threading.Event()

    def __call__(self, sock: socket.socket) -> None:
        piece = b"x" * 65536
        try:
            sock.sendall(chunked_head() + chunk(b'{"results": [], "pad": "'))
            while self.sent < self.total:
                sock.sendall(chunk(piece))
                self.sent += len(piece)
            sock.sendall(chunk(b'"}') + b"0\r\n\r\n")
        except OSError:
            pass
        finally:
            self.done.set()


def test_streamed_body_over_cap_is_refused_without_reading_it_all() -> None:
    endless = Endless()
    with Scripted([endless]) as server:
        with pytest.raises(RandomUserError) as err:
            scripted_client(server.url, max_body_bytes=256 * 1024).get(results=1)
        assert endless.done.wait(10)
    message = str(err.value)
    assert f"answer from {server.url}/api/1.4/?results=1" in message
    assert "over the cap of 262,144 bytes (max_body_bytes)" in message
    assert "without reading the rest, not retried" in message
    assert len(server.paths) == 1
    assert endless.sent < endless.total  # the client hung up: the 32 MiB were never all read


def test_default_cap_is_far_above_5000_users() -> None:
    cap = ClientConfig(base_url="http://127.0.0.1:9").max_body_bytes
    assert cap == 64 * 1024 * 1024
    assert cap > 10 * 5000 * 1200
    with pytest.raises(ValueError, match="max_body_bytes must be >= 1"):
        ClientConfig(base_url="http://127.0.0.1:9", max_body_bytes=0)


# Answers that contradict the request


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"seed": "other"}, "info.seed is 'other', asked seed='s'"),
        ({"page": 1}, "info.page is 1, asked page=3"),
        ({"results": 1}, "info.results is 1, asked results=2"),
        ({"results": "many"}, "info.results is 'many', asked results=2"),
        ({"version": "1.3"}, "info.version is '1.3', asked /api/1.4/"),
    ],
    ids=["seed", "page", "results", "results-not-a-number", "version"],
)
def test_info_contradicting_the_request_is_rejected_and_retried(change: dict[str, Any], problem: str) -> None:
    sleeps = Sleeps()
    with Scripted([reply(users_body(2, {**good_info(page=3), **change}))]) as server:
        with pytest.raises(MalformedResponse) as err:
            scripted_client(server.url, sleeps).get(results=2, seed="s", page=3)
    message = str(err.value)
    assert f"answer from {server.url}/api/1.4/?results=2&format=json&seed=s&page=3 contradicts" in message
    assert problem in message
    assert "gave up after 3 attempts" in message
    assert len(server.paths) == 3
    assert len(sleeps.calls) == 2


def test_empty_results_is_rejected_and_retried() -> None:
    # what randomuser.me answered while it was down: 200, no users, an info for another request
    down = b'{"results":[],"info":{"seed":"d3adb33f","results":1,"page":1,"version":"1.4"}}'
    with Scripted([reply(down)]) as server:
        with pytest.raises(MalformedResponse, match=r"empty 'results' from http://.*: asked for 5 user\(s\)"):
            scripted_client(server.url).get(results=5, seed="s")
    assert len(server.paths) == 3


def test_contradicting_answer_once_then_success() -> None:
    with Scripted([reply(users_body(2, good_info(seed="x"))), reply(users_body(2, good_info()))]) as server:
        answer = scripted_client(server.url).get(results=2, seed="s")
    assert answer.attempts == 2


@pytest.mark.parametrize(
    ("asked", "info"),
    [
        ({"results": 2}, {"seed": "a1b2c3d4e5f60718", "results": 2, "page": 1, "version": "1.4"}),
        ({"results": 2, "seed": "s"}, None),  # noinfo: no info at all
        ({"results": 2, "seed": "s", "page": 4}, {"version": "1.4"}),  # fields left out
        ({"results": 2, "seed": "abcdef0123456789ab"}, good_info(seed="abcdef0123456789ab0c")),  # nat suffix
        ({"results": 2, "page": 2}, {"seed": "random", "results": "2", "page": 2, "version": "1.4"}),
    ],
    ids=["unnamed-seed-and-page", "no-info", "partial-info", "real-api-nat-suffix", "count-as-string"],
)
def test_answers_agreeing_with_the_request_pass(asked: dict[str, Any], info: dict[str, Any] | None) -> None:
    with Scripted([reply(users_body(2, info))]) as server:
        answer = scripted_client(server.url).get(**asked)
    assert (answer.attempts, len(answer.results)) == (1, 2)


def test_local_source_answers_agree_with_the_request(source_url: str) -> None:
    client = make_client(source_url)
    for asked in [
        {"results": 3, "seed": "agree", "page": 7, "nat": ["ua", "ir"]},
        {"results": 2, "seed": "agree", "inc": ["login"]},
        {"results": 1, "page": 10000},
        {"results": 4, "seed": "agree", "page": 2, "extra": {"bad": "2", "bad_field": "login.uuid"}},
    ]:
        answer = client.get(**asked)
        assert answer.attempts == 1, asked
        assert answer.info["results"] == asked["results"]


def test_page_past_the_api_cap_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"page must be between 1 and 10000 \(past it the API answers page 1\)"
    ):
        build_params(results=1, page=10001)


def test_4xx_is_not_retried_and_shows_the_start_of_the_body() -> None:
    with Scripted([reply(b'{"error": "no such path"}' + b" " * 5000, "404 Not Found")]) as server:
        with pytest.raises(
            RandomUserError, match=r"HTTP 404 from http://.*/api/1\.4/\?results=1&format=json: '\{\"error\""
        ) as err:
            scripted_client(server.url).get(results=1)
    assert len(str(err.value)) < 400
    assert len(server.paths) == 1
