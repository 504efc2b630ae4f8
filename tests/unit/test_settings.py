"""The DAG's settings checks (producer.settings): what Ansible renders in Airflow, or a clear error."""

from __future__ import annotations

import pytest

from producer.settings import (
    PIPELINE_KEYS,
    SettingsError,
    kafka_settings,
    pipeline_setting,
    postgres_params,
    required_variable,
)

SETTINGS = {
    "topic_users": "users_created",
    "topic_dlq": "users_created.dlq",
    "conn_postgres": "correnteza_postgres",
    "conn_kafka": "correnteza_kafka",
    "conn_cassandra": "correnteza_cassandra",
}


def test_pipeline_keys_are_the_rendered_ones() -> None:
    assert set(PIPELINE_KEYS) == set(SETTINGS)
    for key, value in SETTINGS.items():
        assert pipeline_setting("correnteza_pipeline", SETTINGS, key) == value


def test_missing_variable_names_it() -> None:
    with pytest.raises(SettingsError, match=r"Airflow Variable correnteza_pipeline is not set"):
        pipeline_setting("correnteza_pipeline", None, "topic_users")


@pytest.mark.parametrize("value", [{}, {"topic_users": ""}, {"topic_users": None}, {"topic_dlq": "x"}])
def test_missing_key_names_the_variable_and_the_key(value: dict) -> None:
    with pytest.raises(SettingsError, match=r"Airflow Variable correnteza_pipeline has no key 'topic_users'"):
        pipeline_setting("correnteza_pipeline", value, "topic_users")


def test_variable_must_be_an_object() -> None:
    with pytest.raises(SettingsError, match=r"correnteza_pipeline must be a JSON object, got str"):
        pipeline_setting("correnteza_pipeline", "users_created", "topic_users")


def test_unknown_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"unknown pipeline setting 'topic'"):
        pipeline_setting("correnteza_pipeline", SETTINGS, "topic")


@pytest.mark.parametrize("value", [None, "", "  "])
def test_required_variable(value: object) -> None:
    with pytest.raises(SettingsError, match=r"Airflow Variable randomuser_local_url is not set"):
        required_variable("randomuser_local_url", value)
    assert required_variable("randomuser_local_url", "http://10.77.0.5:8000") == "http://10.77.0.5:8000"


def test_postgres_params() -> None:
    params = postgres_params("pg", "10.77.0.30", 5432, "ingestion", "s3cret", "ingestion")
    assert params == {
        "host": "10.77.0.30",
        "port": 5432,
        "user": "ingestion",
        "password": "s3cret",
        "dbname": "ingestion",
    }
    assert postgres_params("pg", "h", "5432", "u", "p", "d")["port"] == 5432


def test_postgres_fields_have_no_fallback() -> None:
    with pytest.raises(SettingsError, match=r"Airflow connection correnteza_postgres has no port, schema$"):
        postgres_params("correnteza_postgres", "10.77.0.30", None, "ingestion", "s3cret", "")
    with pytest.raises(SettingsError, match=r"has no host, port, login, password, schema"):
        postgres_params("pg", None, None, None, None, None)
    with pytest.raises(SettingsError, match=r"pg: port 'x' is not a number"):
        postgres_params("pg", "h", "x", "u", "p", "d")


def test_kafka_settings() -> None:
    servers, rest = kafka_settings("k", {"bootstrap.servers": "10.77.0.26:9092", "linger.ms": 5})
    assert (servers, rest) == ("10.77.0.26:9092", {"linger.ms": 5})
    with pytest.raises(SettingsError, match=r"Airflow connection correnteza_kafka has no bootstrap\.servers"):
        kafka_settings("correnteza_kafka", {"linger.ms": 5})
