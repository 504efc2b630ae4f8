"""user_replay: archived randomuser answers (the bronze archive in S3) -> PostgreSQL -> Kafka, on demand.

select : list the archive (paginated) for one run (run_id) or a range of days (date_from..date_to, the
         objects' dt= partitions, inclusive); at least one of them must be given.
replay : read each answer with the archive's read-only identity, verify its sha256, validate it like a
         fresh answer and land it through the same path as fetch (land_batch under its original batch id,
         so a replayed batch keeps its landing order: users a newer fetch replaced stay as they are, and a
         run that already landed changes nothing). An object that cannot be trusted (checksum, gzip, JSON)
         is logged by key and skipped; the rest goes on. dry_run reads and checks without landing.
publish: drain the outbox to Kafka (what the replay queued, if anything).
check  : fails the run, after the rest is landed and published, if any object was skipped, naming each.

Trigger: airflow dags trigger user_replay -c '{"run_id": "manual__..."}' (or make archive-replay).
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task

DAG_ID = "user_replay"


@dag(
    dag_id=DAG_ID,
    description="bronze archive (S3) -> PostgreSQL users_raw + outbox -> Kafka, on demand",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    tags=["correnteza", "replay"],
    params={
        "run_id": Param(None, type=["null", "string"], description="replay this ingestion run's answers"),
        "date_from": Param(None, type=["null", "string"], format="date", description="first day (dt=)"),
        "date_to": Param(None, type=["null", "string"], format="date", description="last day (dt=)"),
        "dry_run": Param(False, type="boolean", description="read and verify only; land nothing"),
    },
)
def user_replay() -> None:
    @task
    def select() -> list[str]:
        from producer import dag_support
        from producer.tasks import replay_selection

        params, _run_id, _dag_run = dag_support.context()
        archive = dag_support.archive(dag_support.settings(), "conn_s3_reader")
        return replay_selection(archive, params.get("run_id"), params.get("date_from"), params.get("date_to"))

    @task
    def replay(keys: list[str]) -> dict[str, Any]:
        from producer import dag_support
        from producer.tasks import replay_archive

        params, _run_id, _dag_run = dag_support.context()
        values = dag_support.settings()
        archive = dag_support.archive(values, "conn_s3_reader")
        with closing(dag_support.postgres(values, DAG_ID)) as conn:
            report = replay_archive(conn, archive, keys, dry_run=bool(params.get("dry_run")))
        return report.as_dict()

    @task
    def publish(report: dict[str, Any]) -> int:
        from producer import dag_support

        params, _run_id, _dag_run = dag_support.context()
        if params.get("dry_run"):
            return 0
        return dag_support.publish_outbox(dag_support.settings(), DAG_ID)

    # a skipped object stays skipped: retrying the check would only delay the failure
    @task(retries=0)
    def check(report: dict[str, Any], published: int) -> dict[str, Any]:
        from producer.tasks import ReplayIncomplete

        if report["skipped"]:
            listed = "; ".join(f"{key}: {why}" for key, why in report["skipped"].items())
            raise ReplayIncomplete(
                f"{len(report['skipped'])} of {report['selected']} archived answers skipped (the other "
                f"{report['replayed']} replayed, {published} messages published): {listed}"
            )
        return {**report, "published": published}

    report = replay(select())
    check(report, publish(report))


user_replay()
