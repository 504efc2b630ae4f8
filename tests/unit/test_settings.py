"""The DAG's settings checks (producer.settings): what Ansible renders in Airflow, or a clear error."""

from __future__ import annotations

import pytest

from producer.settings import (
    PIPELINE_KEYS,
    SettingsError,
    kafka_settings,
    pipeline_setting,
    postgres_params,
    registry_settings,
    required_variable,
)

SETTINGS = {
    "topic_users": "users_created",
    "topic_dlq": "users_created.dlq",
    "conn_postgres": "correnteza_postgres",
    "conn_kafka": "correnteza_kafka",
    "conn_cassandra": "correnteza_cassandra",
    "conn_registry": "correnteza_registry",
    "conn_s3": "correnteza_s3",
    "conn_s3_reader": "correnteza_s3_reader",
    "s3_bucket": "correnteza-bronze",
    "s3_prefix": "randomuser",
}
REGISTRY_EXTRA = {
    "url": "https://10.77.0.138:8443/apis/ccompat/v7",
    "ssl.ca.location": "/etc/ssl/correnteza/ca.crt",
}


def test_pipeline_keys_are_the_rendered_ones() -> None:
    import pathlib

    import yaml

    role_vars = pathlib.Path(__file__).resolve().parents[2] / "ansible/roles/airflow/vars/main.yml"
    rendered = yaml.safe_load(role_vars.read_text())["airflow_pipeline_settings"]
    assert set(PIPELINE_KEYS) == set(SETTINGS) == set(rendered)
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


def test_registry_settings() -> None:
    conf = registry_settings("correnteza_registry", "schema-reader", "s3cret", REGISTRY_EXTRA)
    assert conf == {
        "url": "https://10.77.0.138:8443/apis/ccompat/v7",
        "basic.auth.user.info": "schema-reader:s3cret",
        "ssl.ca.location": "/etc/ssl/correnteza/ca.crt",
    }


def test_registry_settings_build_a_client() -> None:
    """confluent-kafka accepts the settings (a password may hold ':'); no request is made."""
    import certifi
    from confluent_kafka.schema_registry import SchemaRegistryClient

    extra = {**REGISTRY_EXTRA, "ssl.ca.location": certifi.where()}  # a CA file that exists here
    client = SchemaRegistryClient(registry_settings("correnteza_registry", "schema-reader", "s3:cret", extra))
    assert client.config()["url"] == REGISTRY_EXTRA["url"]


@pytest.mark.parametrize(
    ("login", "password", "extra", "missing"),
    [
        (None, "p", REGISTRY_EXTRA, "login"),
        ("u", "", REGISTRY_EXTRA, "password"),
        ("u", "p", {"ssl.ca.location": "/ca.crt"}, "extra.url"),
        ("u", "p", {"url": "https://h:1/x", "ssl.ca.location": " "}, "extra.ssl.ca.location"),
        (None, None, {}, "login, password, extra.url, extra.ssl.ca.location"),
    ],
)
def test_registry_settings_name_what_is_missing(
    login: object, password: object, extra: dict, missing: str
) -> None:
    with pytest.raises(SettingsError, match=rf"^Airflow connection correnteza_registry has no {missing}$"):
        registry_settings("correnteza_registry", login, password, extra)


def test_registry_settings_refuse_plain_http_and_url_credentials() -> None:
    plain = {**REGISTRY_EXTRA, "url": "http://10.77.0.138:8080/apis/ccompat/v7"}
    with pytest.raises(
        SettingsError, match=r"correnteza_registry: extra\.url must be https://.*got scheme 'http'"
    ):
        registry_settings("correnteza_registry", "u", "s3cret", plain)
    inline = {**REGISTRY_EXTRA, "url": "https://u:s3cret@10.77.0.138:8443/apis/ccompat/v7"}
    with pytest.raises(SettingsError, match=r"must not carry credentials") as err:
        registry_settings("correnteza_registry", "u", "s3cret", inline)
    assert "s3cret" not in str(err.value)
    with pytest.raises(SettingsError, match=r"login 'a:b' must not contain ':'"):
        registry_settings("correnteza_registry", "a:b", "s3cret", REGISTRY_EXTRA)


def test_registry_errors_never_show_the_password() -> None:
    with pytest.raises(SettingsError) as err:
        registry_settings("correnteza_registry", "u", "s3cret", {})
    assert "s3cret" not in str(err.value)
