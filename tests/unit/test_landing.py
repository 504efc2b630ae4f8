"""PostgreSQL landing against a throwaway PostgreSQL: staging, idempotent upserts, outbox, rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from producer.config import ClientConfig
from producer.landing import Batch, dedupe_by_id, ensure_schema, land_batch, stage_batch
from producer.selection import SourceChoice
from producer.source.generator import UserGenerator
from producer.tasks import FetchPlan, batch_id_for, fetch_batches, land_batches, run_seed
from producer.validation import validate_records

SECRETS = ("password", "salt", "md5", "sha1", "sha256")


def scalar(conn: Any, sql: str, *args: object) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args or None)
        value = cur.fetchone()[0]
    conn.commit()
    return value


def a_batch(batch_id: str, seed: str, count: int, bad_uuid: int = 0) -> Batch:
    users = UserGenerator().page(seed, 1, count)
    for user in users[:bad_uuid]:
        del user["login"]["uuid"]
    checked = validate_records(users)
    return Batch(
        batch_id=batch_id,
        run_id="run-1",
        seed=seed,
        page=1,
        requested=count,
        source="local",
        url="http://127.0.0.1:8000/api/1.4/",
        fetched_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        records=checked.accepted,
        rejected=checked.rejected,
    )


def test_schema_is_idempotent(pg_conn: Any) -> None:
    ensure_schema(pg_conn)
    ensure_schema(pg_conn)
    tables = scalar(
        pg_conn,
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables "
        "WHERE table_schema = 'public'",
    )
    assert tables == "batches,users_outbox,users_raw,users_rejected"


def test_stage_and_land(pg_conn: Any) -> None:
    stage_batch(pg_conn, a_batch("b1", "s1", 10, bad_uuid=2))
    assert scalar(pg_conn, "SELECT fetched || '/' || rejected FROM batches WHERE batch_id = 'b1'") == "10/2"
    assert scalar(pg_conn, "SELECT count(*) FROM users_rejected WHERE reason = 'missing login.uuid'") == 2
    assert land_batch(pg_conn, "b1") == 8
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 8
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 8
    assert scalar(pg_conn, "SELECT landed FROM batches WHERE batch_id = 'b1'") == 8
    row = scalar(
        pg_conn,
        "SELECT json_build_array(email, nat, first_name, last_name, payload->'name'->>'first', "
        "jsonb_typeof(payload->'location'->'postcode')) FROM users_raw LIMIT 1",
    )
    assert row[2] == row[4] and "@" in row[0] and len(row[1]) == 2
    assert row[5] == "string"


def test_nothing_sensitive_is_stored(pg_conn: Any) -> None:
    stage_batch(pg_conn, a_batch("b1", "s1", 20, bad_uuid=3))
    land_batch(pg_conn, "b1")
    for table in ("batches", "users_raw", "users_rejected"):
        text = scalar(pg_conn, f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t")
        for secret in SECRETS:
            assert f'"{secret}"' not in text, (table, secret)


def test_land_twice_is_a_no_op(pg_conn: Any) -> None:
    stage_batch(pg_conn, a_batch("b1", "s1", 10))
    land_batch(pg_conn, "b1")
    with pg_conn.cursor() as cur:
        cur.execute(
            "UPDATE users_outbox SET published_at = now() WHERE user_id IN (SELECT id FROM users_raw LIMIT 4)"
        )
    pg_conn.commit()
    assert land_batch(pg_conn, "b1") == 10
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 10
    # a retried land of the same batch does not re-queue what was already published
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NOT NULL") == 4


def test_same_users_from_a_new_batch_are_updated_and_requeued(pg_conn: Any) -> None:
    stage_batch(pg_conn, a_batch("b1", "s1", 10))
    land_batch(pg_conn, "b1")
    with pg_conn.cursor() as cur:
        cur.execute("UPDATE users_outbox SET published_at = now()")
    pg_conn.commit()
    stage_batch(pg_conn, a_batch("b2", "s1", 10))
    land_batch(pg_conn, "b2")
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 10
    assert scalar(pg_conn, "SELECT count(DISTINCT batch_id) FROM users_raw") == 1
    assert scalar(pg_conn, "SELECT min(batch_id) FROM users_raw") == "b2"
    assert (
        scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL AND batch_id = 'b2'")
        == 10
    )


def test_duplicate_ids_within_a_batch(pg_conn: Any) -> None:
    batch = a_batch("dup", "s1", 3)
    twice = Batch(**{**batch.__dict__, "records": [*batch.records, batch.records[0]]})
    assert len(dedupe_by_id(twice.records)) == 3
    stage_batch(pg_conn, twice)
    assert land_batch(pg_conn, "dup") == 3


def test_restage_replaces_rejects(pg_conn: Any) -> None:
    stage_batch(pg_conn, a_batch("b1", "s1", 10, bad_uuid=3))
    stage_batch(pg_conn, a_batch("b1", "s1", 10, bad_uuid=1))
    assert scalar(pg_conn, "SELECT count(*) FROM users_rejected WHERE batch_id = 'b1'") == 1


def test_land_unknown_batch(pg_conn: Any) -> None:
    with pytest.raises(LookupError, match="batch nope is not staged"):
        land_batch(pg_conn, "nope")


def test_fetch_and_land_from_the_local_source(pg_conn: Any, source_url: str) -> None:
    plan = FetchPlan(run_id="manual__1", seed="conf", batches=2, batch_size=25, inject_bad=2,
                     inject_bad_field="login.uuid")  # fmt: skip
    choice = SourceChoice("local", source_url, "test")
    ids = fetch_batches(pg_conn, choice, plan, ClientConfig(base_url=source_url))
    assert ids == [batch_id_for("manual__1", 0), batch_id_for("manual__1", 1)]
    assert land_batches(pg_conn, ids) == 46
    assert scalar(pg_conn, "SELECT count(*) FROM users_rejected") == 4
    assert scalar(pg_conn, "SELECT string_agg(page::text, ',' ORDER BY page) FROM batches") == "1,2"
    # the same conf again (a retry, or another run with the same seed) gives the same users
    again = fetch_batches(pg_conn, choice, plan, ClientConfig(base_url=source_url))
    land_batches(pg_conn, again)
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 46


def test_run_seed() -> None:
    assert run_seed("fixed", "r1") == "fixed"
    assert run_seed(None, "r1") == run_seed(None, "r1") != run_seed(None, "r2")


def test_plan_limits() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        FetchPlan(run_id="r", seed="s", batches=1, batch_size=5001)
    with pytest.raises(ValueError, match="inject_bad"):
        FetchPlan(run_id="r", seed="s", batches=1, batch_size=5, inject_bad=6)
