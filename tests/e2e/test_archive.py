"""The bronze archive through the running platform: what a run archives, replaying it, the object store
down during a run, a corrupt object. The store is read with boto3 as its read-only identity (the test
writes only to corrupt one object and put it back, as the pipeline's identity)."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import uuid
from typing import Any

import correnteza_ops as ops
import pytest
from correnteza_ops import sql_literal

from producer.validation import validate_records
from tests.e2e.conftest import Airflow, cassandra_ids, cassandra_seed_count, wait_for

pytestmark = pytest.mark.e2e

NAMES = ops.contract().s3
# The object store's systemd unit on objectstore-1 (ansible/roles/objectstore).
STORE_UNIT = "seaweedfs"
SECRET_LOGIN_FIELDS = ("password", "salt", "md5", "sha1", "sha256")


def _label(name: str) -> str:
    return f"e2e-archive-{name}-{uuid.uuid4().hex[:8]}"


def run_keys(run_id: str) -> list[str]:
    """The run's archive objects (its run_id= folder, whatever its day), sorted."""
    safe = "".join(c if c.isalnum() or c in "._=-" else "-" for c in run_id)
    return sorted(o["Key"] for o in ops.archive_objects() if f"/run_id={safe}/" in o["Key"])


def read_object(client: Any, key: str) -> tuple[dict[str, Any], dict[str, str], bytes]:
    got = client.get_object(Bucket=NAMES.bucket, Key=key)
    body = got["Body"].read()
    return json.loads(gzip.decompress(body)), got["Metadata"], body


def landed_payloads(postgres, run_id: str) -> dict[str, dict[str, Any]]:
    rows = postgres.rows(
        "SELECT u.id, u.payload FROM users_raw u JOIN batches b ON b.batch_id = u.batch_id "
        f"WHERE b.run_id = {sql_literal(run_id)}"
    )
    return {r[0]: json.loads(r[1]) for r in rows}


def replay_client() -> ops.Airflow:
    return ops.Airflow(dag_id=ops.contract().airflow.dag_replay)


def run_replay(
    conf: dict[str, Any], expect: str = "success", timeout: float = 900
) -> tuple[ops.Airflow, str]:
    client = replay_client()
    run_id = f"replay-{uuid.uuid4().hex[:8]}"
    client.trigger_cli(run_id, conf)
    state = client.wait(run_id, timeout=timeout)
    assert state == expect, f"user_replay {run_id} ended {state}: {client.task_states(run_id)}"
    return client, run_id


def test_a_run_archives_one_object_per_batch_holding_the_landed_users(airflow: Airflow, postgres):
    seed, run_id = _label("seed"), _label("run")
    airflow.trigger({"batch_size": 150, "batches": 3, "seed": seed}, run_id)
    airflow.wait(run_id)
    keys = run_keys(run_id)
    assert [k.rsplit("/", 1)[1] for k in keys] == [f"batch-{p:05d}.json.gz" for p in (1, 2, 3)], keys
    client = ops.s3_client()
    batches = {b["page"]: b["batch_id"] for b in postgres.batches(run_id)}
    archived: dict[str, dict[str, Any]] = {}
    for page, key in enumerate(keys, start=1):
        document, meta, body = read_object(client, key)
        assert meta["sha256"] == hashlib.sha256(body).hexdigest(), key
        assert (meta["seed"], meta["page"], meta["count"]) == (seed, str(page), "150"), meta
        assert meta["run-id"] == run_id and meta["batch-id"] == batches[str(page)], meta
        for user in document["results"]:
            leaked = set(SECRET_LOGIN_FIELDS) & set(user["login"])
            assert not leaked, f"{key}: user {user['login'].get('uuid')} keeps {sorted(leaked)}"
        for user in validate_records(document["results"]).accepted:
            archived[user["login"]["uuid"]] = user
    assert key.startswith(f"{NAMES.prefix}/dt=")
    # the archive's records are exactly what landed
    assert archived == landed_payloads(postgres, run_id)
    assert len(archived) == 450


def test_replaying_a_landed_run_changes_no_row(airflow: Airflow, postgres, cassandra):
    seed, run_id = _label("seed"), _label("run")
    airflow.trigger({"batch_size": 100, "batches": 2, "seed": seed}, run_id)
    airflow.wait(run_id)
    ids = postgres.ids_for_seed(seed)
    wait_for("the run's users in Cassandra", lambda: cassandra_ids(cassandra, ids) == ids, 600, 5)
    scope = f"FROM users_raw WHERE seed = {sql_literal(seed)}"
    before = postgres.rows(f"SELECT count(*), max(updated_at)::text, max(landing_seq) {scope}")
    outbox = (
        "SELECT count(*), max(version) FROM users_outbox o JOIN users_raw u ON u.id = o.user_id "
        f"WHERE u.seed = {sql_literal(seed)}"
    )
    outbox_before = postgres.rows(outbox)
    writes_before = {str(r.id): r.writetime for r in _writetimes(cassandra, ids)}
    client, replay_run = run_replay({"run_id": run_id})
    assert postgres.rows(f"SELECT count(*), max(updated_at)::text, max(landing_seq) {scope}") == before
    assert postgres.rows(outbox) == outbox_before
    time.sleep(20)  # anything republished would reach Cassandra within a few micro-batches
    assert {str(r.id): r.writetime for r in _writetimes(cassandra, ids)} == writes_before
    assert client.task_states(replay_run)["replay"].startswith("success")


def _writetimes(cassandra, ids: set[str]) -> list[Any]:
    table = ops.contract().cassandra.users
    stmt = cassandra.prepare(f"SELECT id, writetime(email) AS writetime FROM {table} WHERE id IN ?")
    rows: list[Any] = []
    batch = sorted(ids)
    for i in range(0, len(batch), 100):
        rows.extend(cassandra.execute(stmt, [[uuid.UUID(x) for x in batch[i : i + 100]]]))
    return rows


def test_the_store_down_during_a_run_fails_fetch_clearly_and_a_retry_lands_everyone_once(
    airflow: Airflow, postgres, cassandra
):
    store = ops.inventory().first("objectstore")
    seed, run_id = _label("seed"), _label("down")
    ops.ssh(store.ip, f"sudo systemctl stop {STORE_UNIT}")
    try:
        airflow.trigger({"batch_size": 100, "batches": 2, "seed": seed}, run_id)

        def first_try_failed() -> Any:
            fetch = airflow.client.task_instances(run_id).get("fetch", {})
            return fetch.get("state") in ("up_for_retry", "failed") and fetch

        wait_for("fetch's first try to fail", first_try_failed, 600, 5)
        log = airflow.client.task_log(run_id, "fetch", 1)
        where = f"s3://{NAMES.bucket}/{NAMES.prefix}/dt="
        assert "could not write" in log and where in log and ops.s3_endpoint() in log, log[-3000:]
        assert postgres.scalar(f"SELECT count(*) FROM users_raw WHERE seed = {sql_literal(seed)}") == 0
    finally:
        ops.ssh(store.ip, f"sudo systemctl start {STORE_UNIT}")
    wait_for("the S3 API again", lambda: _s3_answers(), 120, 3)
    # Airflow retries fetch on its own; if the retries ran out while the store was down, clear it.
    if airflow.state(run_id) == "failed":
        airflow.client.clear_failed(run_id, ["fetch", "publish"])
    airflow.wait(run_id, timeout=900)
    ids = postgres.ids_for_seed(seed)
    assert len(ids) == 200
    assert postgres.scalar(f"SELECT sum(landed) FROM batches WHERE run_id = {sql_literal(run_id)}") == 200
    assert len(run_keys(run_id)) == 2
    wait_for("the run's users in Cassandra", lambda: cassandra_ids(cassandra, ids) == ids, 600, 5)
    assert cassandra_seed_count(cassandra, seed) == 200, "each user once in Cassandra"


def _s3_answers() -> bool:
    try:
        ops.s3_client().head_bucket(Bucket=NAMES.bucket)
        return True
    except Exception:
        return False


def test_a_corrupt_object_is_skipped_and_named_and_the_rest_replays(airflow: Airflow, postgres):
    seed, run_id = _label("seed"), _label("run")
    airflow.trigger({"batch_size": 50, "batches": 3, "seed": seed}, run_id)
    airflow.wait(run_id)
    keys = run_keys(run_id)
    assert len(keys) == 3
    writer = ops.s3_client(writer=True)
    got = writer.get_object(Bucket=NAMES.bucket, Key=keys[1])
    body, meta = got["Body"].read(), got["Metadata"]
    # lose 5 of the users: replay must bring back the ones whose object is sound
    lost = sorted(postgres.ids_for_seed(seed))
    postgres.rows(
        "WITH d AS (DELETE FROM users_raw WHERE seed = "
        f"{sql_literal(seed)} RETURNING 1) SELECT count(*) FROM d"
    )
    try:
        writer.put_object(Bucket=NAMES.bucket, Key=keys[1], Body=body[: len(body) // 2], Metadata=meta,
                          ContentType="application/json", ContentEncoding="gzip")  # fmt: skip
        client, replay_run = run_replay({"run_id": run_id}, expect="failed")
        states = client.task_states(replay_run)
        assert states["replay"].startswith("success") and states["publish"].startswith("success"), states
        assert states["check"].startswith("failed"), states
        log = client.task_log(replay_run, "check", client.task_instances(replay_run)["check"]["try_number"])
        assert keys[1] in log and "1 of 3 archived answers skipped" in log, log[-3000:]
        assert len(postgres.ids_for_seed(seed)) == 100, "the two sound objects landed again"
    finally:
        writer.put_object(Bucket=NAMES.bucket, Key=keys[1], Body=body, Metadata=meta,
                          ContentType="application/json", ContentEncoding="gzip")  # fmt: skip
    run_replay({"run_id": run_id})
    assert postgres.ids_for_seed(seed) == set(lost)
