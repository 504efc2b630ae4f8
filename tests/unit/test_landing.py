"""PostgreSQL landing against a throwaway PostgreSQL: one transaction per batch (audit row, rejects,
users_raw, outbox), idempotent upserts, the schema files."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

import psycopg2
import pytest

from producer.config import ClientConfig
from producer.landing import Batch, dedupe_by_id, land_batch
from producer.selection import SourceChoice
from producer.source.generator import UserGenerator
from producer.tasks import FetchPlan, batch_id_for, fault_params, fetch_batches, run_seed
from producer.validation import Rejected, validate_records
from tests.unit.landing_sql import apply_landing_sql, sql_files

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


def columns(conn: Any, table: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position",
            (table,),
        )
        names = [row[0] for row in cur.fetchall()]
    conn.commit()
    return names


def test_schema_is_idempotent(pg_conn: Any) -> None:
    apply_landing_sql(pg_conn)
    apply_landing_sql(pg_conn)
    tables = scalar(
        pg_conn,
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables "
        "WHERE table_schema = 'public'",
    )
    assert tables == "batches,users_outbox,users_raw,users_rejected"
    assert columns(pg_conn, "batches") == [
        "batch_id", "run_id", "seed", "page", "requested", "fetched", "rejected", "source", "url",
        "fetched_at", "landed", "landed_at", "landing_seq",
    ]  # fmt: skip
    assert columns(pg_conn, "users_outbox")[-2:] == ["version", "parked_at"]
    assert columns(pg_conn, "users_raw")[-1] == "landing_seq"


def test_schema_files_are_versioned_in_order() -> None:
    names = [path.name for path in sql_files()]
    assert names[:3] == [
        "001_landing.sql",
        "002_drop_batch_records.sql",
        "003_outbox_versions_and_parking.sql",
    ]
    assert names == sorted(names)


def test_003_upgrades_a_database_made_by_001_and_002(pg_dsn: str) -> None:
    """Existing rows get versions: batches numbered in landing order, users_raw from their batch, every
    outbox row its own version; nothing is parked."""
    conn = psycopg2.connect(pg_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            for path in sql_files()[:2]:
                cur.execute(path.read_text())
        conn.commit()
        old = a_batch("old", "s1", 3)
        new = a_batch("new", "s2", 2)
        with conn.cursor() as cur:
            for batch, landed_at in ((new, "2026-11-26 13:00Z"), (old, "2026-11-26 12:00Z")):
                cur.execute(
                    "INSERT INTO batches (batch_id, page, requested, fetched, source, landed, landed_at) "
                    "VALUES (%s, 1, 3, 3, 'local', 3, %s)",
                    (batch.batch_id, landed_at),
                )
                for user in batch.records:
                    cur.execute(
                        "INSERT INTO users_raw (id, payload, fetched_at, batch_id) "
                        "VALUES (%s, '{}', now(), %s)",
                        (user["login"]["uuid"], batch.batch_id),
                    )
                    cur.execute(
                        "INSERT INTO users_outbox (user_id, batch_id) VALUES (%s, %s)",
                        (user["login"]["uuid"], batch.batch_id),
                    )
        conn.commit()
        apply_landing_sql(conn)
        old_seq = scalar(conn, "SELECT landing_seq FROM batches WHERE batch_id = 'old'")
        new_seq = scalar(conn, "SELECT landing_seq FROM batches WHERE batch_id = 'new'")
        assert old_seq < new_seq
        assert scalar(conn, "SELECT count(*) FROM users_raw r JOIN batches b USING (batch_id) "
                            "WHERE r.landing_seq = b.landing_seq") == 5  # fmt: skip
        assert scalar(conn, "SELECT count(DISTINCT version) FROM users_outbox") == 5
        assert scalar(conn, "SELECT count(*) FROM users_outbox WHERE parked_at IS NOT NULL") == 0
        # a batch landed after the upgrade is newer than both
        assert land_batch(conn, a_batch("after", "s3", 1)) == 1
        assert scalar(conn, "SELECT landing_seq FROM batches WHERE batch_id = 'after'") > new_seq
    finally:
        conn.close()


def test_002_upgrades_a_database_made_by_001(pg_dsn: str) -> None:
    """An existing database (001 applied, batches.records filled by the former flow) keeps its rows."""
    conn = psycopg2.connect(pg_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            cur.execute(sql_files()[0].read_text())
            cur.execute(
                "INSERT INTO batches (batch_id, page, requested, fetched, source, records, landed) "
                "VALUES ('old', 1, 2, 2, 'local', '[{\"a\": 1}]', 2)"
            )
        conn.commit()
        assert "records" in columns(conn, "batches")
        apply_landing_sql(conn)
        assert "records" not in columns(conn, "batches")
        assert scalar(conn, "SELECT landed FROM batches WHERE batch_id = 'old'") == 2
    finally:
        conn.close()


def test_land_writes_the_audit_row_rejects_users_and_outbox(pg_conn: Any) -> None:
    assert land_batch(pg_conn, a_batch("b1", "s1", 10, bad_uuid=2)) == 8
    assert scalar(pg_conn, "SELECT fetched || '/' || rejected FROM batches WHERE batch_id = 'b1'") == "10/2"
    assert scalar(pg_conn, "SELECT count(*) FROM users_rejected WHERE reason = 'missing login.uuid'") == 2
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 8
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 8
    assert scalar(pg_conn, "SELECT landed FROM batches WHERE batch_id = 'b1'") == 8
    assert scalar(pg_conn, "SELECT landed_at IS NOT NULL FROM batches WHERE batch_id = 'b1'") is True
    audit = scalar(
        pg_conn,
        "SELECT json_build_array(run_id, seed, page, requested, source, url, fetched_at) "
        "FROM batches WHERE batch_id = 'b1'",
    )
    assert audit[:6] == ["run-1", "s1", 1, 10, "local", "http://127.0.0.1:8000/api/1.4/"]
    assert datetime.fromisoformat(audit[6]) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    row = scalar(
        pg_conn,
        "SELECT json_build_array(email, nat, first_name, last_name, payload->'name'->>'first', "
        "jsonb_typeof(payload->'location'->'postcode')) FROM users_raw LIMIT 1",
    )
    assert row[2] == row[4] and "@" in row[0] and len(row[1]) == 2
    assert row[5] == "string"


def test_a_failing_batch_leaves_nothing(pg_conn: Any) -> None:
    """One transaction: a user row the database refuses rolls back the audit row and the rejects too."""
    batch = a_batch("b1", "s1", 3, bad_uuid=1)
    broken = {**batch.records[0], "login": {**batch.records[0]["login"], "uuid": "not-a-uuid"}}
    failing = Batch(**{**batch.__dict__, "records": [*batch.records, broken]})
    with pytest.raises(psycopg2.DataError):
        land_batch(pg_conn, failing)
    for table in ("batches", "users_rejected", "users_raw", "users_outbox"):
        assert scalar(pg_conn, f"SELECT count(*) FROM {table}") == 0, table
    # the connection is usable again, and the same batch id lands once the data is good
    assert land_batch(pg_conn, batch) == 2
    assert scalar(pg_conn, "SELECT count(*) FROM users_rejected WHERE batch_id = 'b1'") == 1


def test_one_record_jsonb_cannot_hold_is_rejected_and_the_batch_lands(pg_conn: Any) -> None:
    """Defect 2: a NUL, a lone surrogate or NaN in one record rejects that record (with the field's path)
    instead of failing the batch's transaction on PostgreSQL."""
    users = UserGenerator().page("s1", 1, 10)
    users[2]["name"]["last"] = "Silva\u0000"
    users[5]["location"]["city"] = "\udc80ity"
    users[7]["location"]["coordinates"]["longitude"] = float("inf")
    users[8]["login"]["uuid"] = "\u0000"  # not a key, and its raw copy must be storable too
    checked = validate_records(users)
    batch = Batch(
        **{**a_batch("b1", "s1", 10).__dict__, "records": checked.accepted, "rejected": checked.rejected}
    )
    assert land_batch(pg_conn, batch) == 6
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 6
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox") == 6
    assert scalar(pg_conn, "SELECT fetched || '/' || rejected || '/' || landed FROM batches") == "10/4/6"
    reasons = scalar(
        pg_conn, "SELECT array_agg(position || ': ' || reason ORDER BY position) FROM users_rejected"
    )
    assert reasons == [
        "2: name.last holds U+0000 (NUL) at character 5",
        "5: location.city holds a lone surrogate U+DC80 at character 0",
        "7: location.coordinates.longitude is not a finite number (inf)",
        "8: login.uuid is not a valid UUID: '\\x00'",
    ]
    assert (
        scalar(pg_conn, "SELECT raw->'name'->>'last' FROM users_rejected WHERE position = 2") == "Silva\ufffd"
    )


def test_nothing_sensitive_is_stored(pg_conn: Any) -> None:
    land_batch(pg_conn, a_batch("b1", "s1", 20, bad_uuid=3))
    for table in ("batches", "users_raw", "users_rejected"):
        text = scalar(pg_conn, f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t")
        for secret in SECRETS:
            assert f'"{secret}"' not in text, (table, secret)


def test_landing_the_same_batch_twice_is_a_no_op(pg_conn: Any) -> None:
    land_batch(pg_conn, a_batch("b1", "s1", 10))
    with pg_conn.cursor() as cur:
        cur.execute(
            "UPDATE users_outbox SET published_at = now() WHERE user_id IN (SELECT id FROM users_raw LIMIT 4)"
        )
    pg_conn.commit()
    assert land_batch(pg_conn, a_batch("b1", "s1", 10)) == 10
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 10
    assert scalar(pg_conn, "SELECT count(*) FROM batches") == 1
    # a retried fetch of the same batch does not re-queue what was already published
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NOT NULL") == 4


def test_same_users_from_a_new_batch_are_updated_and_requeued(pg_conn: Any) -> None:
    land_batch(pg_conn, a_batch("b1", "s1", 10))
    with pg_conn.cursor() as cur:
        cur.execute("UPDATE users_outbox SET published_at = now()")
    pg_conn.commit()
    land_batch(pg_conn, a_batch("b2", "s1", 10))
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 10
    assert scalar(pg_conn, "SELECT count(DISTINCT batch_id) FROM users_raw") == 1
    assert scalar(pg_conn, "SELECT min(batch_id) FROM users_raw") == "b2"
    assert (
        scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL AND batch_id = 'b2'")
        == 10
    )


def fetched_again(batch: Batch, batch_id: str, email: str) -> Batch:
    """The same users as `batch` in another batch, each with another e-mail (a newer version)."""
    records = [{**user, "email": f"{email}.{i}@example.com"} for i, user in enumerate(batch.records)]
    return Batch(**{**batch.__dict__, "batch_id": batch_id, "records": records})


def test_an_older_batch_landed_again_never_overwrites_a_newer_one(pg_conn: Any) -> None:
    """Defect 4: re-running an old run's fetch (its batch id again) keeps the newer payloads and does not
    queue those users again; a user the old batch alone holds lands as usual."""
    old = a_batch("b-old", "s1", 4)
    first_three = Batch(**{**old.__dict__, "records": old.records[:3]})
    land_batch(pg_conn, first_three)
    land_batch(pg_conn, fetched_again(first_three, "b-new", "new"))
    with pg_conn.cursor() as cur:
        cur.execute("UPDATE users_outbox SET published_at = now()")
    pg_conn.commit()
    assert land_batch(pg_conn, old) == 4  # the audit row counts the batch's users
    newer = "SELECT count(*) FROM users_raw WHERE batch_id = 'b-new' AND email LIKE 'new.%'"
    assert scalar(pg_conn, newer) == 3
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw WHERE payload->>'email' LIKE 'new.%'") == 3
    pending = (
        "SELECT array_agg(user_id::text || ' ' || batch_id) FROM users_outbox WHERE published_at IS NULL"
    )
    only_old = old.records[3]["login"]["uuid"]
    assert scalar(pg_conn, pending) == [f"{only_old} b-old"]
    # the newer batch landed again is a tie: its rows stay as they are, nothing more is queued
    land_batch(pg_conn, fetched_again(first_three, "b-new", "other"))
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw WHERE email LIKE 'other.%'") == 0
    assert scalar(pg_conn, newer) == 3
    assert scalar(pg_conn, pending) == [f"{only_old} b-old"]


def test_a_newer_batch_overwrites_and_requeues_as_a_new_version(pg_conn: Any) -> None:
    first = a_batch("b1", "s1", 3)
    land_batch(pg_conn, first)
    versions = scalar(pg_conn, "SELECT array_agg(version ORDER BY user_id) FROM users_outbox")
    with pg_conn.cursor() as cur:
        cur.execute("UPDATE users_outbox SET published_at = now(), attempts = 5, parked_at = now()")
    pg_conn.commit()
    land_batch(pg_conn, fetched_again(first, "b2", "newer"))
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw WHERE email LIKE 'newer.%'") == 3
    assert scalar(
        pg_conn,
        "SELECT count(*) FROM users_outbox WHERE published_at IS NULL AND parked_at IS NULL "
        "AND attempts = 0 AND batch_id = 'b2'",
    ) == 3  # fmt: skip
    newer = scalar(pg_conn, "SELECT array_agg(version ORDER BY user_id) FROM users_outbox")
    assert all(n > v for n, v in zip(newer, versions, strict=True))


def test_duplicate_ids_within_a_batch(pg_conn: Any) -> None:
    batch = a_batch("dup", "s1", 3)
    twice = Batch(**{**batch.__dict__, "records": [*batch.records, batch.records[0]]})
    assert len(dedupe_by_id(twice.records)) == 3
    assert land_batch(pg_conn, twice) == 3
    assert scalar(pg_conn, "SELECT fetched || '/' || landed FROM batches WHERE batch_id = 'dup'") == "4/3"


def test_relanding_replaces_rejects(pg_conn: Any) -> None:
    land_batch(pg_conn, a_batch("b1", "s1", 10, bad_uuid=3))
    land_batch(pg_conn, a_batch("b1", "s1", 10, bad_uuid=1))
    assert scalar(pg_conn, "SELECT count(*) FROM users_rejected WHERE batch_id = 'b1'") == 1
    assert scalar(pg_conn, "SELECT rejected || '/' || landed FROM batches WHERE batch_id = 'b1'") == "1/9"


def test_a_batch_of_rejects_only_is_audited(pg_conn: Any) -> None:
    batch = a_batch("b1", "s1", 2, bad_uuid=0)
    only_bad = Batch(**{**batch.__dict__, "records": [], "rejected": [Rejected(0, "missing login", {})]})
    assert land_batch(pg_conn, only_bad) == 0
    assert scalar(pg_conn, "SELECT fetched || '/' || rejected || '/' || landed FROM batches") == "1/1/0"
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox") == 0


DAY = date(2026, 11, 26)


def test_fetch_lands_from_the_local_source(pg_conn: Any, source_url: str, caplog, memory_archive) -> None:
    plan = FetchPlan(run_id="manual__1", seed="conf", batches=2, batch_size=25, archive_day=DAY, inject_bad=2,
                     inject_bad_field="login.uuid")  # fmt: skip
    choice = SourceChoice("local", source_url, "test")
    with caplog.at_level(logging.INFO, logger="producer"):
        ids = fetch_batches(pg_conn, choice, plan, ClientConfig(base_url=source_url), memory_archive)
    assert ids == [batch_id_for("manual__1", 0), batch_id_for("manual__1", 1)]
    # no second step: the users are in users_raw and queued in the outbox as fetch returns
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 46
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 46
    assert scalar(pg_conn, "SELECT sum(landed) FROM batches WHERE run_id = 'manual__1'") == 46
    assert scalar(pg_conn, "SELECT count(*) FROM users_rejected") == 4
    assert scalar(pg_conn, "SELECT string_agg(page::text, ',' ORDER BY page) FROM batches") == "1,2"
    assert "23 users accepted, 2 rejected" in caplog.text
    assert "23 users landed in users_raw and queued in users_outbox, 2 rejected" in caplog.text
    assert "run manual__1: 2 batch(es), 46 users landed" in caplog.text
    # the same conf again (a retry, or another run with the same seed) gives the same users
    # each answer archived before it landed, one object per request
    assert sorted(k for _b, k in memory_archive.client.objects) == [
        "randomuser/dt=2026-11-26/run_id=manual__1/batch-00001.json.gz",
        "randomuser/dt=2026-11-26/run_id=manual__1/batch-00002.json.gz",
    ]
    first = dict(memory_archive.client.objects)
    again = fetch_batches(pg_conn, choice, plan, ClientConfig(base_url=source_url), memory_archive)
    assert again == ids
    # a retry writes the same keys with the same bytes
    assert {k: v[0] for k, v in memory_archive.client.objects.items()} == {k: v[0] for k, v in first.items()}
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw") == 46
    assert scalar(pg_conn, "SELECT count(*) FROM batches") == 2
    assert scalar(pg_conn, "SELECT count(*) FROM users_rejected") == 4


def test_run_seed() -> None:
    assert run_seed("fixed", "r1") == "fixed"
    assert run_seed(None, "r1") == run_seed(None, "r1") != run_seed(None, "r2")


def test_plan_limits() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        FetchPlan(run_id="r", seed="s", batches=1, archive_day=DAY, batch_size=5001)
    with pytest.raises(ValueError, match="inject_bad"):
        FetchPlan(run_id="r", seed="s", batches=1, archive_day=DAY, batch_size=5, inject_bad=6)
    with pytest.raises(ValueError, match=r"inject_faults: unknown \['boom'\]"):
        FetchPlan(
            run_id="r", seed="s", batches=1, archive_day=DAY, batch_size=5, inject_faults=("5xx", "boom")
        )


def test_fetch_goes_through_each_source_fault(pg_conn: Any, source_url: str, memory_archive) -> None:
    """inject_faults: every page's first requests answer those faults; the retries land every user once."""
    plan = FetchPlan(run_id="faulty", seed="faults", batches=2, batch_size=10, archive_day=DAY,
                     inject_faults=("429", "5xx"))  # fmt: skip
    choice = SourceChoice("local", source_url, "test")
    assert fault_params(plan, choice) == {"fault": "429,5xx", "fault_times": "2"}
    assert fault_params(plan, SourceChoice("real", "https://randomuser.me", "test")) == {}
    client = ClientConfig(base_url=source_url, backoff_base=0.01)
    assert len(fetch_batches(pg_conn, choice, plan, client, memory_archive)) == 2
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw WHERE seed = 'faults'") == 20
