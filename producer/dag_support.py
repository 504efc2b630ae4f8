"""What the DAGs share: their settings, connections and clients, all read from Airflow when a task runs.

The DAG files import this module only inside their tasks (nothing but cheap imports at parse time). The
topic, bucket and connection ids come from the JSON Variable correnteza_pipeline, the hosts, ports and
credentials from the Connections it names (all rendered by Ansible's airflow role).
"""

from __future__ import annotations

from typing import Any

from producer.archive import Archive

# The one name the DAGs must know: the Variable holding the rest (the airflow role renders it).
SETTINGS_VARIABLE = "correnteza_pipeline"


def settings() -> Any:
    """The pipeline Variable's JSON (None when it is not set: setting() then fails naming it)."""
    from airflow.sdk import Variable

    return Variable.get(SETTINGS_VARIABLE, default=None, deserialize_json=True)


def setting(values: Any, key: str) -> str:
    """One key of the pipeline Variable; a clear error naming the Variable and the key if missing."""
    from producer.settings import pipeline_setting

    return pipeline_setting(SETTINGS_VARIABLE, values, key)


def variable(name: str) -> str:
    from airflow.sdk import Variable

    from producer.settings import required_variable

    return str(required_variable(name, Variable.get(name, default=None)))


def postgres(values: Any, application: str) -> Any:
    """A psycopg2 connection from the pipeline's PostgreSQL connection (the producer package uses psycopg2;
    the postgres provider's hook may hand out psycopg 3 connections)."""
    import psycopg2
    from airflow.sdk import Connection

    from producer.settings import postgres_params

    conn_id = setting(values, "conn_postgres")
    conn = Connection.get(conn_id)
    params = postgres_params(conn_id, conn.host, conn.port, conn.login, conn.password, conn.schema)
    return psycopg2.connect(**params, connect_timeout=10, application_name=f"airflow-{application}")


def registry_conf(values: Any) -> dict[str, Any]:
    """SchemaRegistryClient settings from the pipeline's registry connection (the read-only user)."""
    from airflow.sdk import Connection

    from producer.settings import registry_settings

    conn_id = setting(values, "conn_registry")
    conn = Connection.get(conn_id)
    return registry_settings(conn_id, conn.login, conn.password, conn.extra_dejson)


def archive(values: Any, conn_key: str = "conn_s3") -> Archive:
    """The bronze archive through the connection named by conn_key: conn_s3 (the pipeline's identity,
    read-write) or conn_s3_reader (read-only, for replay)."""
    from airflow.sdk import Connection

    from producer.settings import s3_settings

    conn_id = setting(values, conn_key)
    conn = Connection.get(conn_id)
    config = s3_settings(
        conn_id,
        conn.login,
        conn.password,
        conn.extra_dejson,
        setting(values, "s3_bucket"),
        setting(values, "s3_prefix"),
    )
    return Archive(config)


def publish_outbox(values: Any, application: str) -> int:
    """Drain the whole outbox to Kafka (not only one run's batches): at-least-once across failed runs."""
    from contextlib import closing

    from airflow.sdk import Connection

    from producer.publisher import make_producer, producer_config, registry_encoder
    from producer.settings import kafka_settings
    from producer.tasks import publish

    topic = setting(values, "topic_users")
    # the schema is looked up first: a schema missing from the registry fails before anything is sent
    encode = registry_encoder(registry_conf(values), topic)
    conn_id = setting(values, "conn_kafka")
    servers, extra = kafka_settings(conn_id, Connection.get(conn_id).extra_dejson)
    producer = make_producer(producer_config(servers, extra))
    with closing(postgres(values, application)) as conn:
        result = publish(conn, producer, topic, encode)
    return len(result.delivered)


def context() -> tuple[dict[str, Any], str, Any]:
    """The running task's params, run id and DAG run."""
    from airflow.sdk import get_current_context

    current = get_current_context()
    return dict(current["params"]), str(current["run_id"]), current["dag_run"]


def run_day(dag_run: Any) -> Any:
    """The day a run was due (its archive partition): the same for every try of its tasks."""
    from datetime import UTC, datetime

    for name in ("logical_date", "run_after", "start_date"):
        value = getattr(dag_run, name, None)
        if value is not None:
            return value.astimezone(UTC).date()
    return datetime.now(UTC).date()
