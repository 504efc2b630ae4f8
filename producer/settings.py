"""The DAG's settings as Ansible renders them in Airflow, checked before use.

The names and ports that cross components come only from Airflow: the JSON Variable of the pipeline
(topics and connection ids, rendered by the airflow role from ansible/group_vars/all/contract.yml) and the
Connections it names. These functions take what Variable.get / Connection.get returned (plain values, no
Airflow import), so the checks are unit-tested without Airflow; each error names the Variable or the
Connection and what it lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# The keys of the pipeline Variable (see the airflow role).
PIPELINE_KEYS: Final = ("topic_users", "topic_dlq", "conn_postgres", "conn_kafka", "conn_cassandra")
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
