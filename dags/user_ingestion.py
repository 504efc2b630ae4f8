"""user_ingestion: randomuser users -> PostgreSQL (users_raw + outbox) -> Kafka users_created.

fetch  : pick the source (Variable randomuser_mode: local|real|auto), fetch `batches` pages of `batch_size`
         users (batch i = page i+1 of the seed, so the same conf gives the same users), validate, stage them
         in PostgreSQL; XCom gets only the batch ids.
land   : upsert the staged users into users_raw (on login.uuid) and queue them in users_outbox.
publish: send unpublished outbox rows to Kafka (acks=all, idempotent); mark each only once delivered.
Every task is idempotent, so Airflow's retries are safe. Nothing but cheap imports at parse time.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task

POSTGRES_CONN_ID = "correnteza_postgres"
KAFKA_CONN_ID = "correnteza_kafka"
TOPIC = "users_created"
LOCAL_URL_DEFAULT = "http://127.0.0.1:8000"


def _postgres() -> Any:
    """A psycopg2 connection from the correnteza_postgres connection (the producer package uses psycopg2;
    the postgres provider's hook may hand out psycopg 3 connections)."""
    import psycopg2
    from airflow.sdk import Connection

    conn = Connection.get(POSTGRES_CONN_ID)
    return psycopg2.connect(
        host=conn.host,
        port=conn.port or 5432,
        user=conn.login,
        password=conn.password,
        dbname=conn.schema or "ingestion",
        connect_timeout=10,
        application_name="airflow-user_ingestion",
    )


def _context() -> tuple[dict[str, Any], str]:
    from airflow.sdk import get_current_context

    context = get_current_context()
    return dict(context["params"]), str(context["run_id"])


@dag(
    dag_id="user_ingestion",
    description="randomuser users -> PostgreSQL users_raw + outbox -> Kafka users_created",
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
    },
)
def user_ingestion() -> None:
    @task
    def fetch() -> list[str]:
        from airflow.sdk import Variable

        from producer.config import REAL_URL, ClientConfig
        from producer.landing import ensure_schema
        from producer.selection import select_source
        from producer.tasks import FetchPlan, fetch_batches, run_seed

        params, run_id = _context()
        choice = select_source(
            Variable.get("randomuser_mode", default="local"),
            Variable.get("randomuser_local_url", default=LOCAL_URL_DEFAULT),
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
        )
        with closing(_postgres()) as conn:
            ensure_schema(conn)
            return fetch_batches(conn, choice, plan, ClientConfig(base_url=choice.url))

    @task
    def land(batch_ids: list[str]) -> list[str]:
        from producer.tasks import land_batches

        with closing(_postgres()) as conn:
            land_batches(conn, batch_ids)
        return batch_ids

    @task
    def publish(batch_ids: list[str]) -> int:
        from airflow.sdk import Connection

        from producer.publisher import make_producer, producer_config
        from producer.tasks import publish as publish_outbox

        extra = dict(Connection.get(KAFKA_CONN_ID).extra_dejson)
        servers = str(extra.pop("bootstrap.servers", ""))
        producer = make_producer(producer_config(servers, extra))
        with closing(_postgres()) as conn:
            result = publish_outbox(conn, producer, TOPIC)
        return len(result.delivered)

    publish(land(fetch()))


user_ingestion()
