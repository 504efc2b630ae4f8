"""user_ingestion: randomuser users -> PostgreSQL (users_raw + outbox) -> Kafka.

fetch  : pick the source (Variable randomuser_mode: local|real|auto), fetch `batches` pages of `batch_size`
         users (batch i = page i+1 of the seed, so the same conf gives the same users), validate, and land
         each batch in one transaction: its audit row (batches), its rejects, users_raw (upsert on
         login.uuid) and the outbox. XCom gets only the batch ids.
publish: drain the outbox to Kafka (acks=all, idempotent): this run's users and any an earlier failed run
         left; each row is marked only once delivered. Values are Avro (Confluent wire format) written with
         the newest schema file of the topic's subject, whose id is looked up in the Schema Registry (read
         only: Ansible registers the schemas); a row that cannot be serialized fails alone.
Every task is idempotent, so Airflow's retries are safe. The topic and the connection ids come from the
JSON Variable correnteza_pipeline, the hosts and ports from those Connections (PostgreSQL, Kafka, the
Schema Registry; all rendered by Ansible's airflow role). Nothing but cheap imports at parse time; the
tables are made by Ansible, not here.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task

DAG_ID = "user_ingestion"
# The one name the DAG must know: the Variable holding the rest (the airflow role renders it).
SETTINGS_VARIABLE = "correnteza_pipeline"


def _settings() -> Any:
    """The pipeline Variable's JSON (None when it is not set: _setting then fails naming it)."""
    from airflow.sdk import Variable

    return Variable.get(SETTINGS_VARIABLE, default=None, deserialize_json=True)


def _setting(settings: Any, key: str) -> str:
    """One key of the pipeline Variable; a clear error naming the Variable and the key if missing."""
    from producer.settings import pipeline_setting

    return pipeline_setting(SETTINGS_VARIABLE, settings, key)


def _variable(name: str) -> str:
    from airflow.sdk import Variable

    from producer.settings import required_variable

    return str(required_variable(name, Variable.get(name, default=None)))


def _postgres(settings: Any) -> Any:
    """A psycopg2 connection from the pipeline's PostgreSQL connection (the producer package uses psycopg2;
    the postgres provider's hook may hand out psycopg 3 connections)."""
    import psycopg2
    from airflow.sdk import Connection

    from producer.settings import postgres_params

    conn_id = _setting(settings, "conn_postgres")
    conn = Connection.get(conn_id)
    params = postgres_params(conn_id, conn.host, conn.port, conn.login, conn.password, conn.schema)
    return psycopg2.connect(**params, connect_timeout=10, application_name=f"airflow-{DAG_ID}")


def _registry_conf(settings: Any) -> dict[str, Any]:
    """SchemaRegistryClient settings from the pipeline's registry connection (the read-only user)."""
    from airflow.sdk import Connection

    from producer.settings import registry_settings

    conn_id = _setting(settings, "conn_registry")
    conn = Connection.get(conn_id)
    return registry_settings(conn_id, conn.login, conn.password, conn.extra_dejson)


def _context() -> tuple[dict[str, Any], str]:
    from airflow.sdk import get_current_context

    context = get_current_context()
    return dict(context["params"]), str(context["run_id"])


@dag(
    dag_id=DAG_ID,
    description="randomuser users -> PostgreSQL users_raw + outbox -> Kafka",
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": True},
    tags=["correnteza", "ingestion"],
    params={
        "batch_size": Param(100, type="integer", minimum=1, maximum=5000, description="users per request"),
        "batches": Param(1, type="integer", minimum=1, maximum=100, description="requests (pages) per run"),
        "seed": Param(None, type=["null", "string"], description="randomuser seed; null: random per run"),
        "nationalities": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "pattern": "^[A-Za-z]{2}$"},
            description='randomuser nat codes, e.g. ["GB", "FR"]; null: all',
        ),
        "inject_bad": Param(0, type="integer", minimum=0, description="test only: K bad records per batch"),
        "inject_bad_field": Param(
            "email", type="string", description="test only: the field bad records miss"
        ),
        "inject_faults": Param(
            [],
            type="array",
            items={"type": "string"},
            description='test only: faults the local source answers each page with first, e.g. ["429"]',
        ),
    },
)
def user_ingestion() -> None:
    @task
    def fetch() -> list[str]:
        from airflow.sdk import Variable

        from producer.config import REAL_URL, ClientConfig
        from producer.selection import select_source
        from producer.tasks import FetchPlan, fetch_batches, run_seed

        params, run_id = _context()
        choice = select_source(
            Variable.get("randomuser_mode", default="local"),
            _variable("randomuser_local_url"),
            Variable.get("randomuser_real_url", default=REAL_URL),
        )
        nats = params.get("nationalities")
        plan = FetchPlan(
            run_id=run_id,
            seed=run_seed(params.get("seed"), run_id),
            batches=int(params["batches"]),
            batch_size=int(params["batch_size"]),
            nationalities=tuple(nats) if nats else None,
            inject_bad=int(params.get("inject_bad") or 0),
            inject_bad_field=str(params.get("inject_bad_field") or "email"),
            inject_faults=tuple(str(f) for f in params.get("inject_faults") or ()),
        )
        with closing(_postgres(_settings())) as conn:
            return fetch_batches(conn, choice, plan, ClientConfig(base_url=choice.url))

    @task
    def publish() -> int:
        """Drains the whole outbox (not only this run's batches): at-least-once across failed runs."""
        from airflow.sdk import Connection

        from producer.publisher import make_producer, producer_config, registry_encoder
        from producer.settings import kafka_settings
        from producer.tasks import publish as publish_outbox

        settings = _settings()
        topic = _setting(settings, "topic_users")
        # the schema is looked up first: a schema missing from the registry fails before anything is sent
        encode = registry_encoder(_registry_conf(settings), topic)
        conn_id = _setting(settings, "conn_kafka")
        servers, extra = kafka_settings(conn_id, Connection.get(conn_id).extra_dejson)
        producer = make_producer(producer_config(servers, extra))
        with closing(_postgres(settings)) as conn:
            result = publish_outbox(conn, producer, topic, encode)
        return len(result.delivered)

    fetch() >> publish()


user_ingestion()
