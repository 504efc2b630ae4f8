"""PostgreSQL landing (the ingestion database): the batches audit record, users_raw, the outbox, rejects.

land_batch writes one fetched batch in ONE transaction: its audit row in batches, its rejects in
users_rejected, its users in users_raw and their outbox rows. Every write is idempotent (a batch is keyed
by its id, users by login.uuid, rejects by (batch_id, position)), so a retried fetch that lands the same
batch id again leaves the same rows.

Landing order: a batch gets a landing sequence number when it is first recorded (batches.landing_seq; a
re-landing of the same batch id keeps it). A user's row in users_raw is overwritten, and the user queued
again in the outbox, only by a batch newer than the one that wrote it; an older batch landed again (a
cleared task of an old run) inserts the users it alone has and leaves the newer ones as they are. Ties
(the same batch again) keep the existing row.

The schema is producer/sql/*.sql, applied by Ansible's landing_schema role (this module runs no DDL).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from producer.validation import Rejected, user_id

log = logging.getLogger(__name__)

UPSERT_BATCH = """
INSERT INTO batches (batch_id, run_id, seed, page, requested, fetched, rejected, source, url, fetched_at,
                     landed, landed_at)
VALUES (%(batch_id)s, %(run_id)s, %(seed)s, %(page)s, %(requested)s, %(fetched)s, %(rejected)s, %(source)s,
        %(url)s, %(fetched_at)s, %(landed)s, now())
ON CONFLICT (batch_id) DO UPDATE SET
    run_id = EXCLUDED.run_id, seed = EXCLUDED.seed, page = EXCLUDED.page, requested = EXCLUDED.requested,
    fetched = EXCLUDED.fetched, rejected = EXCLUDED.rejected, source = EXCLUDED.source, url = EXCLUDED.url,
    fetched_at = EXCLUDED.fetched_at, landed = EXCLUDED.landed, landed_at = EXCLUDED.landed_at
RETURNING landing_seq
"""

DELETE_REJECTED = "DELETE FROM users_rejected WHERE batch_id = %s"

INSERT_REJECTED = """
INSERT INTO users_rejected (batch_id, position, reason, raw) VALUES %s
ON CONFLICT (batch_id, position) DO UPDATE SET reason = EXCLUDED.reason, raw = EXCLUDED.raw,
    rejected_at = now()
"""

# Only a newer batch (a higher landing_seq) overwrites a row; RETURNING gives the ids written (inserted or
# updated), the only ones queued in the outbox.
UPSERT_USERS = """
INSERT INTO users_raw (id, payload, email, nat, first_name, last_name, gender, source, fetched_at, batch_id,
                       seed, landing_seq)
VALUES %s
ON CONFLICT (id) DO UPDATE SET
    payload = EXCLUDED.payload, email = EXCLUDED.email, nat = EXCLUDED.nat, first_name = EXCLUDED.first_name,
    last_name = EXCLUDED.last_name, gender = EXCLUDED.gender, source = EXCLUDED.source,
    fetched_at = EXCLUDED.fetched_at, batch_id = EXCLUDED.batch_id, seed = EXCLUDED.seed,
    landing_seq = EXCLUDED.landing_seq, updated_at = now()
WHERE users_raw.landing_seq IS NULL OR users_raw.landing_seq < EXCLUDED.landing_seq
RETURNING id::text
"""
USERS_TEMPLATE = "(%s::uuid, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"

# A user written by this batch is queued (again) as a new version: not published, not parked, no attempts.
# The same batch landed twice (a retry) writes nothing in users_raw, so its outbox rows stay as they are.
UPSERT_OUTBOX = """
INSERT INTO users_outbox (user_id, batch_id) VALUES %s
ON CONFLICT (user_id) DO UPDATE SET
    batch_id = EXCLUDED.batch_id, version = EXCLUDED.version, created_at = now(), published_at = NULL,
    attempts = 0, last_error = NULL, parked_at = NULL
WHERE users_outbox.batch_id IS DISTINCT FROM EXCLUDED.batch_id
"""
OUTBOX_TEMPLATE = "(%s::uuid, %s)"


@dataclass(frozen=True)
class Batch:
    batch_id: str
    run_id: str | None
    seed: str | None
    page: int
    requested: int
    source: str
    url: str | None
    fetched_at: datetime
    records: list[dict[str, Any]]
    rejected: list[Rejected]


def execute_values(
    cur: Any, sql: str, rows: Sequence[tuple[Any, ...]], template: str | None = None, fetch: bool = False
) -> list[tuple[Any, ...]]:
    """psycopg2.extras.execute_values, imported late so the module loads without psycopg2 (source host);
    with fetch, the rows the statement returned (over all pages)."""
    from psycopg2.extras import execute_values as _execute_values

    returned = _execute_values(cur, sql, rows, template=template, page_size=1000, fetch=fetch)
    return list(returned) if fetch else []


def dedupe_by_id(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per user id (the last wins): ON CONFLICT cannot touch a row twice in one statement."""
    unique: dict[str, dict[str, Any]] = {}
    for record in records:
        unique[user_id(record)] = record
    return list(unique.values())


def _text(record: dict[str, Any], *path: str) -> str | None:
    node: Any = record
    for name in path:
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    return None if node is None or isinstance(node, (dict, list)) else str(node)


def user_row(
    record: dict[str, Any],
    batch_id: str,
    seed: str | None,
    source: str,
    fetched_at: datetime,
    landing_seq: int,
) -> tuple:
    return (
        user_id(record),
        json.dumps(record, ensure_ascii=False),
        _text(record, "email"),
        _text(record, "nat"),
        _text(record, "name", "first"),
        _text(record, "name", "last"),
        _text(record, "gender"),
        source,
        fetched_at,
        batch_id,
        seed,
        landing_seq,
    )


def batch_params(batch: Batch, landed: int) -> dict[str, Any]:
    """The audit row of a batch: what was asked, fetched and rejected, and how many users it landed."""
    return {
        "batch_id": batch.batch_id,
        "run_id": batch.run_id,
        "seed": batch.seed,
        "page": batch.page,
        "requested": batch.requested,
        "fetched": len(batch.records) + len(batch.rejected),
        "rejected": len(batch.rejected),
        "source": batch.source,
        "url": batch.url,
        "fetched_at": batch.fetched_at,
        "landed": landed,
    }


def land_batch(conn: Any, batch: Batch) -> int:
    """Record a fetched batch, its rejects, its users (users_raw) and their outbox rows in one transaction.

    Landing the same batch id again replaces its audit row and rejects and keeps its users as they are; a
    user a newer batch already wrote is left alone (see the module's docstring). Returns the number of
    users the batch holds (distinct ids), the batch's `landed` in its audit row."""
    users = dedupe_by_id(batch.records)
    written = 0
    try:
        with conn.cursor() as cur:
            cur.execute(UPSERT_BATCH, batch_params(batch, len(users)))
            landing_seq = int(cur.fetchone()[0])
            cur.execute(DELETE_REJECTED, (batch.batch_id,))
            if batch.rejected:
                rows = [
                    (batch.batch_id, r.position, r.reason, json.dumps(r.raw, ensure_ascii=False))
                    for r in batch.rejected
                ]
                execute_values(cur, INSERT_REJECTED, rows)
            if users:
                written_ids = execute_values(
                    cur,
                    UPSERT_USERS,
                    [
                        user_row(u, batch.batch_id, batch.seed, batch.source, batch.fetched_at, landing_seq)
                        for u in users
                    ],
                    USERS_TEMPLATE,
                    fetch=True,
                )
                written = len(written_ids)
                if written_ids:
                    execute_values(
                        cur, UPSERT_OUTBOX, [(uid, batch.batch_id) for (uid,) in written_ids], OUTBOX_TEMPLATE
                    )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    log.info(
        "batch %s: %d users landed in users_raw and queued in users_outbox, %d rejected",
        batch.batch_id,
        written,
        len(batch.rejected),
    )
    if written < len(users):
        log.info(
            "batch %s (landing #%d): %d of its users kept as they were (landed by this batch already, or "
            "by a newer one)",
            batch.batch_id,
            landing_seq,
            len(users) - written,
        )
    return len(users)
