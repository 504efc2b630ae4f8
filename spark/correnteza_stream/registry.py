"""A read-only client of the schema registry's Confluent-compatible API (Apicurio's /apis/ccompat/v7).

Used by the driver only (executors never call it): the job looks up the writer schemas of the ids it meets
and, at start, the latest schema of a subject. Standard library only: urllib over TLS verified with the
platform's CA file, HTTP basic auth with the read-only user. Errors name the URL and the HTTP status, never
the password (it is only ever in the Authorization header).

  schema_by_id(id)  GET {url}/schemas/ids/{id}                   -> the schema text, None for an unknown id
  latest(subject)   GET {url}/subjects/{subject}/versions/latest -> (id, schema text)

Every other answer (network, TLS, 401/403, 5xx, a document without a schema) raises RegistryError: the
caller must not take a registry that cannot answer for an unknown id.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from correnteza_stream.config import ConfigError, StreamConfig

ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"
DEFAULT_TIMEOUT_S = 10.0

# (request, timeout) -> a response: what urllib's OpenerDirector.open does; tests give a fake.
Opener = Callable[[urllib.request.Request, float], Any]


def subject_of(topic: str) -> str:
    """The subject of a topic's values (TopicNameStrategy)."""
    return f"{topic}-value"


class RegistryError(RuntimeError):
    """The registry did not give a usable answer; the message names the URL, never a credential."""


class Registry(Protocol):
    """What the job needs from a registry (the HTTP client below, or a fake in unit tests)."""

    url: str

    def schema_by_id(self, schema_id: int) -> str | None: ...

    def latest(self, subject: str) -> tuple[int, str]: ...


def tls_opener(ca_file: str) -> Opener:
    """An opener that verifies the server with ca_file (hostname or IP address checked) and ignores any
    *_proxy environment variable (the registry is on the private network)."""
    context = ssl.create_default_context(cafile=ca_file)
    director = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    return lambda request, timeout: director.open(request, timeout=timeout)


class SchemaRegistry:
    """The HTTP client. ``url`` is the API base (e.g. https://host:port/apis/ccompat/v7)."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        opener: Opener,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}", "Accept": ACCEPT}
        self._opener = opener
        self._timeout = timeout

    def __repr__(self) -> str:  # never the credentials
        return f"SchemaRegistry({self.url!r})"

    def _get(self, path: str) -> dict[str, Any] | None:
        """The JSON object at url + path; None on 404; RegistryError on anything else."""
        address = self.url + path
        request = urllib.request.Request(address, headers=self._headers, method="GET")
        try:
            with self._opener(request, self._timeout) as answer:
                body = answer.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise RegistryError(f"schema registry GET {address}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            raise RegistryError(f"schema registry GET {address}: {reason}") from None
        try:
            document = json.loads(body)
        except ValueError as error:
            raise RegistryError(f"schema registry GET {address}: not a JSON document ({error})") from None
        if not isinstance(document, dict):
            raise RegistryError(f"schema registry GET {address}: expected a JSON object")
        return document

    @staticmethod
    def _schema_text(document: dict[str, Any], address: str) -> str:
        schema = document.get("schema")
        if not isinstance(schema, str) or not schema.strip():
            raise RegistryError(f"schema registry GET {address}: the answer has no schema")
        return schema

    def schema_by_id(self, schema_id: int) -> str | None:
        """The schema text registered under ``schema_id``; None when the registry does not know the id."""
        path = f"/schemas/ids/{int(schema_id)}"
        document = self._get(path)
        return None if document is None else self._schema_text(document, self.url + path)

    def latest(self, subject: str) -> tuple[int, str]:
        """(id, schema text) of the latest version of ``subject``; RegistryError when it is not registered."""
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions/latest"
        address = self.url + path
        document = self._get(path)
        if document is None:
            raise RegistryError(f"schema registry GET {address}: subject {subject!r} is not registered")
        schema_id = document.get("id")
        if not isinstance(schema_id, int) or isinstance(schema_id, bool):
            raise RegistryError(f"schema registry GET {address}: the answer has no schema id")
        return schema_id, self._schema_text(document, address)


def connect(config: StreamConfig, opener: Opener | None = None) -> SchemaRegistry:
    """The client of the job's settings (registry_url, registry_username, registry_password_file,
    registry_ca_file); ConfigError when the CA file is unusable."""
    if opener is None:
        try:
            opener = tls_opener(config.registry_ca_file)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"registry_ca_file {config.registry_ca_file}: {error}") from error
    return SchemaRegistry(config.registry_url, config.registry_username, config.registry_password(), opener)
