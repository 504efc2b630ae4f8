-- 003: versions for the outbox and the landing, and parking of rows that cannot be published
-- (idempotent: safe to apply again; applied once by the landing_schema role like 001 and 002).
--
-- 1. Landing order. Each batch gets a landing sequence number when it is first recorded
--    (batches.landing_seq, never changed by a re-landing of the same batch id), and every users_raw row
--    keeps the number of the batch that wrote it. A batch only overwrites (and re-queues) a user whose row
--    came from an older batch: re-landing an old batch (a cleared task of an old run) leaves newer payloads
--    and their outbox rows alone. Ties (the same batch landed again, a retry) keep the existing row.
-- 2. Outbox versions. users_outbox.version is new each time a user is queued; publish marks a row
--    published (or failed) only for the version it read and sent, so a newer version queued while an
--    older one was being sent stays pending.
-- 3. Parking. A row the serializer or Kafka refused max_attempts times gets parked_at: it keeps attempts
--    and last_error and is no longer selected (`make query` lists them). A newer version of the user
--    queues it again; to retry one by hand:
--      UPDATE users_outbox SET parked_at = NULL, attempts = 0 WHERE user_id = '<uuid>';

CREATE SEQUENCE IF NOT EXISTS batch_landing_seq AS bigint;
ALTER TABLE batches ADD COLUMN IF NOT EXISTS landing_seq bigint;
-- batches landed before this file: numbered in the order they were landed
UPDATE batches AS b SET landing_seq = n.seq
FROM (
    SELECT o.batch_id, nextval('batch_landing_seq') AS seq
    FROM (
        SELECT batch_id FROM batches WHERE landing_seq IS NULL
        ORDER BY landed_at NULLS FIRST, fetched_at, batch_id
    ) AS o
) AS n
WHERE b.batch_id = n.batch_id;
ALTER TABLE batches ALTER COLUMN landing_seq SET DEFAULT nextval('batch_landing_seq');
ALTER TABLE batches ALTER COLUMN landing_seq SET NOT NULL;
ALTER SEQUENCE batch_landing_seq OWNED BY batches.landing_seq;

-- NULL: landed before this file by a batch no longer in batches (any batch may overwrite it)
ALTER TABLE users_raw ADD COLUMN IF NOT EXISTS landing_seq bigint;
UPDATE users_raw AS r SET landing_seq = b.landing_seq
FROM batches AS b
WHERE b.batch_id = r.batch_id AND r.landing_seq IS NULL;

CREATE SEQUENCE IF NOT EXISTS users_outbox_version_seq AS bigint;
ALTER TABLE users_outbox
    ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT nextval('users_outbox_version_seq');
ALTER SEQUENCE users_outbox_version_seq OWNED BY users_outbox.version;
ALTER TABLE users_outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz;

-- what publish selects: unpublished and not parked, oldest first
CREATE INDEX IF NOT EXISTS users_outbox_ready_idx ON users_outbox (created_at, user_id)
    WHERE published_at IS NULL AND parked_at IS NULL;
DROP INDEX IF EXISTS users_outbox_pending_idx;
CREATE INDEX IF NOT EXISTS users_outbox_parked_idx ON users_outbox (parked_at) WHERE parked_at IS NOT NULL;
