"""user_ingestion: randomuser users -> PostgreSQL (users_raw + outbox) -> Kafka.

fetch  : pick the source (Variable randomuser_mode: local|real|auto), fetch `batches` pages of `batch_size`
         users (batch i = page i+1 of the seed, so the same conf gives the same users), write each answer
         to the bronze archive (S3, one object per request; no batch is landed without it), validate, and
         land each batch in one transaction: its audit row (batches), its rejects, users_raw (upsert on
         login.uuid) and the outbox. XCom gets only the batch ids.
publish: drain the outbox to Kafka (acks=all, idempotent): this run's users and any an earlier failed run
         left; each row is marked only once delivered. Values are Avro (Confluent wire format) written with
         the newest schema file of the topic's subject, whose id is looked up in the Schema Registry (read
         only: Ansible registers the schemas); a row that cannot be serialized fails alone.
Every task is idempotent, so Airflow's retries are safe. The topic and the connection ids come from the
JSON Variable correnteza_pipeline, the hosts and ports from those Connections (PostgreSQL, Kafka, the
Schema Registry, the object store; all rendered by Ansible's airflow role). Nothing but cheap imports at
parse time; the tables and the bucket are made by Ansible, not here.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

DAG_ID = "user_ingestion"


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

        from producer import dag_support
        from producer.config import REAL_URL, ClientConfig
        from producer.selection import select_source
        from producer.tasks import FetchPlan, fetch_batches, run_seed

        params, run_id, dag_run = dag_support.context()
        values = dag_support.settings()
        # the archive's settings are checked before anything is fetched
        archive = dag_support.archive(values)
        choice = select_source(
            Variable.get("randomuser_mode", default="local"),
            dag_support.variable("randomuser_local_url"),
            Variable.get("randomuser_real_url", default=REAL_URL),
        )
        nats = params.get("nationalities")
        plan = FetchPlan(
            run_id=run_id,
            seed=run_seed(params.get("seed"), run_id),
            batches=int(params["batches"]),
            batch_size=int(params["batch_size"]),
            archive_day=dag_support.run_day(dag_run),
            nationalities=tuple(nats) if nats else None,
            inject_bad=int(params.get("inject_bad") or 0),
            inject_bad_field=str(params.get("inject_bad_field") or "email"),
            inject_faults=tuple(str(f) for f in params.get("inject_faults") or ()),
        )
        with closing(dag_support.postgres(values, DAG_ID)) as conn:
            return fetch_batches(conn, choice, plan, ClientConfig(base_url=choice.url), archive)

    @task
    def publish() -> int:
        """Drains the whole outbox (not only this run's batches): at-least-once across failed runs."""
        from producer import dag_support

        return dag_support.publish_outbox(dag_support.settings(), DAG_ID)

    fetch() >> publish()


user_ingestion()
