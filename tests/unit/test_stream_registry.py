"""The stream's registry client (spark/correnteza_stream/registry.py) against a fake opener: no network."""

from __future__ import annotations

import base64
import http.client
import io
import json
import urllib.error
from pathlib import Path

import pytest

from tests.unit.conftest_spark import DLQ_V1, USER_V1, stream_config

from correnteza_stream.config import ConfigError  # isort: skip
from correnteza_stream.registry import RegistryError, SchemaRegistry, connect, subject_of  # isort: skip

URL = "https://10.0.0.9:8443/apis/ccompat/v7"
PASSWORD = "n0t-in-any-message"


class Answer(io.BytesIO):
    """A response body (a context manager, like urllib's)."""


class FakeOpener:
    """Answers by URL: a dict (JSON), bytes, an int (an HTTP error status) or an exception to raise."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.requests: list = []

    def __call__(self, request, timeout):
        self.requests.append((request, timeout))
        answer = self.answers[request.full_url]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, int):
            raise urllib.error.HTTPError(request.full_url, answer, "Status", {}, io.BytesIO(b"{}"))
        return Answer(answer if isinstance(answer, bytes) else json.dumps(answer).encode())


def client(answers: dict[str, object]) -> tuple[SchemaRegistry, FakeOpener]:
    opener = FakeOpener(answers)
    return SchemaRegistry(URL + "/", "schema-reader", PASSWORD, opener), opener


def test_schema_by_id_gets_the_schema_with_basic_auth():
    registry, opener = client({f"{URL}/schemas/ids/7": {"schema": USER_V1}})
    assert registry.schema_by_id(7) == USER_V1
    ((request, timeout),) = opener.requests
    assert request.get_method() == "GET"
    token = base64.b64encode(f"schema-reader:{PASSWORD}".encode()).decode()
    assert request.get_header("Authorization") == f"Basic {token}"
    assert "application/vnd.schemaregistry.v1+json" in request.get_header("Accept")
    assert timeout > 0


def test_an_unknown_id_is_none():
    registry, _ = client({f"{URL}/schemas/ids/99": 404})
    assert registry.schema_by_id(99) is None


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (503, "HTTP 503"),
        (401, "HTTP 401"),
        (500, "HTTP 500"),
        (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), "Connection refused"),
        (TimeoutError("timed out"), "timed out"),
        (http.client.RemoteDisconnected("closed"), "closed"),
        (b"<html>not json</html>", "not a JSON document"),
        ({"id": 7}, "has no schema"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_any_other_answer_raises_naming_the_url_not_the_password(answer, message):
    registry, _ = client({f"{URL}/schemas/ids/7": answer})
    with pytest.raises(RegistryError, match=message) as caught:
        registry.schema_by_id(7)
    assert f"GET {URL}/schemas/ids/7" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(registry)


def test_latest_gives_the_id_and_schema_of_a_subject():
    path = f"{URL}/subjects/users_created.dlq-value/versions/latest"
    registry, _ = client(
        {path: {"subject": "users_created.dlq-value", "version": 1, "id": 12, "schema": DLQ_V1}}
    )
    assert registry.latest(subject_of("users_created.dlq")) == (12, DLQ_V1)


def test_latest_of_a_subject_that_is_not_registered_raises():
    registry, _ = client({f"{URL}/subjects/users_created-value/versions/latest": 404})
    with pytest.raises(RegistryError, match="subject 'users_created-value' is not registered"):
        registry.latest("users_created-value")


def test_latest_needs_an_id():
    registry, _ = client({f"{URL}/subjects/s/versions/latest": {"schema": USER_V1, "id": "7"}})
    with pytest.raises(RegistryError, match="no schema id"):
        registry.latest("s")


def test_connect_reads_the_password_file_and_checks_the_ca_file(tmp_path: Path):
    secret = tmp_path / "registry_password"
    secret.write_text(PASSWORD + "\n")
    config = stream_config(registry_password_file=str(secret), registry_ca_file=str(tmp_path / "no-ca.crt"))
    with pytest.raises(ConfigError, match=r"registry_ca_file .*no-ca\.crt"):
        connect(config)
    opener = FakeOpener({"https://127.0.0.1:8443/apis/ccompat/v7/schemas/ids/1": {"schema": USER_V1}})
    registry = connect(config, opener)
    assert registry.schema_by_id(1) == USER_V1
    token = base64.b64encode(f"schema-reader:{PASSWORD}".encode()).decode()
    assert opener.requests[0][0].get_header("Authorization") == f"Basic {token}"
