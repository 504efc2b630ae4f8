"""The DAG's settings as Ansible renders them in Airflow, checked before use.

The names and ports that cross components come only from Airflow: the JSON Variable of the pipeline
(topics and connection ids, rendered by the airflow role from ansible/group_vars/all/contract.yml) and the
Connections it names. These functions take what Variable.get / Connection.get returned (plain values, no
Airflow import), so the checks are unit-tested without Airflow; each error names the Variable or the
Connection and what it lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from producer.archive import ArchiveConfig

# The keys of the pipeline Variable (see the airflow role).
PIPELINE_KEYS: Final = (
    "topic_users",
    "topic_dlq",
    "conn_postgres",
    "conn_kafka",
    "conn_cassandra",
    "conn_registry",
    "conn_s3",
    "conn_s3_reader",
    "s3_bucket",
    "s3_prefix",
)
# What the Schema Registry connection's extra must give (its login/password: the read-only user).
REGISTRY_EXTRA_FIELDS: Final = ("url", "ssl.ca.location")
# What an object store (S3) connection's extra must give (its login/password: the access and secret keys).
S3_EXTRA_FIELDS: Final = ("endpoint_url", "region_name")
# What a PostgreSQL connection must give (no fallback: a missing field is a provisioning error).
POSTGRES_FIELDS: Final = ("host", "port", "login", "password", "schema")


class SettingsError(LookupError):
    """A Variable or a Connection lacks something the DAG needs; the message names both."""


def required_variable(name: str, value: Any) -> Any:
    """value (Variable.get(name, default=None)), or an error naming the Variable when it is not set."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SettingsError(f"Airflow Variable {name} is not set (the airflow role renders it)")
    return value


def pipeline_setting(variable: str, settings: Any, key: str) -> str:
    """settings[key] from the pipeline's JSON Variable `variable`, non-empty; else an error naming both."""
    if key not in PIPELINE_KEYS:
        raise ValueError(f"unknown pipeline setting {key!r} (known: {', '.join(PIPELINE_KEYS)})")
    settings = required_variable(variable, settings)
    if not isinstance(settings, Mapping):
        raise SettingsError(
            f"Airflow Variable {variable} must be a JSON object, got {type(settings).__name__}"
        )
    value = settings.get(key)
    if value is None or not str(value).strip():
        raise SettingsError(f"Airflow Variable {variable} has no key {key!r} (or it is empty)")
    return str(value)


def postgres_params(
    conn_id: str, host: Any, port: Any, login: Any, password: Any, schema: Any
) -> dict[str, Any]:
    """psycopg2.connect keywords from a Connection's fields; every field is required."""
    given = {"host": host, "port": port, "login": login, "password": password, "schema": schema}
    missing = [name for name in POSTGRES_FIELDS if given[name] is None or str(given[name]).strip() == ""]
    if missing:
        raise SettingsError(f"Airflow connection {conn_id} has no {', '.join(missing)}")
    try:
        port_number = int(port)
    except (TypeError, ValueError) as err:
        raise SettingsError(f"Airflow connection {conn_id}: port {port!r} is not a number") from err
    return {
        "host": str(host),
        "port": port_number,
        "user": str(login),
        "password": str(password),
        "dbname": str(schema),
    }


def kafka_settings(conn_id: str, extra: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(bootstrap servers, the other librdkafka settings) from a Kafka Connection's extra."""
    rest = dict(extra)
    servers = str(rest.pop("bootstrap.servers", "") or "").strip()
    if not servers:
        raise SettingsError(f"Airflow connection {conn_id} has no bootstrap.servers in its extra")
    return servers, rest


def _blank(value: Any) -> bool:
    return value is None or str(value).strip() == ""


def _require_credentials(
    conn_id: str, login: Any, password: Any, extra: Mapping[str, Any], extra_fields: Iterable[str]
) -> None:
    """Raise naming every blank field of a Connection: login, password and the given extra fields."""
    missing = [name for name, value in (("login", login), ("password", password)) if _blank(value)]
    missing += [f"extra.{name}" for name in extra_fields if _blank(extra.get(name))]
    if missing:
        raise SettingsError(f"Airflow connection {conn_id} has no {', '.join(missing)}")


def registry_settings(conn_id: str, login: Any, password: Any, extra: Mapping[str, Any]) -> dict[str, Any]:
    """SchemaRegistryClient settings from the registry Connection: extra's url and CA file, basic auth.

    Every field is required: the registry is reached over TLS verified with the platform's CA, and
    anonymous requests are refused. The password is never part of an error.
    """
    _require_credentials(conn_id, login, password, extra, REGISTRY_EXTRA_FIELDS)
    url = str(extra["url"]).strip()
    parsed = urlsplit(url)
    if parsed.scheme != "https" or not parsed.hostname:
        raise SettingsError(
            f"Airflow connection {conn_id}: extra.url must be https://<host>:<port>/..., "
            f"got scheme {parsed.scheme!r}"
        )
    if parsed.username or parsed.password:
        raise SettingsError(f"Airflow connection {conn_id}: extra.url must not carry credentials")
    if ":" in str(login):
        raise SettingsError(f"Airflow connection {conn_id}: login {login!r} must not contain ':'")
    return {
        "url": url,
        "basic.auth.user.info": f"{login}:{password}",
        "ssl.ca.location": str(extra["ssl.ca.location"]),
    }


def s3_settings(
    conn_id: str, login: Any, password: Any, extra: Mapping[str, Any], bucket: str, prefix: str
) -> ArchiveConfig:
    """The archive's settings from an S3 Connection (aws type: login = access key, password = secret key,
    extra endpoint_url and region_name) and the pipeline's bucket and prefix. Keys never reach an error."""
    from producer.archive import ArchiveConfig

    _require_credentials(conn_id, login, password, extra, S3_EXTRA_FIELDS)
    endpoint = str(extra["endpoint_url"]).strip()
    parsed = urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.username:
        raise SettingsError(
            f"Airflow connection {conn_id}: extra.endpoint_url must be http(s)://<host>:<port> without "
            f"credentials, got scheme {parsed.scheme!r} host {parsed.hostname!r}"
        )
    return ArchiveConfig(
        endpoint=endpoint,
        bucket=bucket,
        prefix=prefix,
        region=str(extra["region_name"]).strip(),
        access_key=str(login),
        secret_key=str(password),
    )
