-- Correnteza landing schema in the ingestion database (idempotent: safe to apply again).
-- Applied by Ansible's landing_schema role, with the files of producer/sql in order, each once; the DAG
-- runs no DDL.
--
-- Flow: fetch lands each batch in one transaction: its audit row in batches, what cannot be keyed in
-- users_rejected, the sanitized users in users_raw and one users_outbox row per user; publish sends the
-- queued users to Kafka and sets users_outbox.published_at only after the broker confirmed the delivery.
-- randomuser's login.password/salt/md5/sha1/sha256 are removed before anything reaches these tables.
-- batches.records (the staged users of the former fetch -> land flow) is dropped by 002.

CREATE TABLE IF NOT EXISTS batches (
    batch_id    text PRIMARY KEY,
    run_id      text,
    seed        text,
    page        integer NOT NULL,
    requested   integer NOT NULL,
    fetched     integer NOT NULL,
    rejected    integer NOT NULL DEFAULT 0,
    source      text NOT NULL CHECK (source IN ('local', 'real')),
    url         text,
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    records     jsonb NOT NULL DEFAULT '[]'::jsonb,
    landed      integer,
    landed_at   timestamptz
);

CREATE TABLE IF NOT EXISTS users_raw (
    id          uuid PRIMARY KEY,
    payload     jsonb NOT NULL,
    email       text,
    nat         text,
    first_name  text,
    last_name   text,
    gender      text,
    source      text,
    fetched_at  timestamptz NOT NULL,
    batch_id    text NOT NULL,
    seed        text,
    landed_at   timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS users_raw_batch_id_idx ON users_raw (batch_id);

-- One row per user to publish. A user landed again by another batch is queued again (published_at NULL);
-- the same batch landed twice (a task retry) leaves the row as it is.
CREATE TABLE IF NOT EXISTS users_outbox (
    user_id       uuid PRIMARY KEY REFERENCES users_raw (id) ON DELETE CASCADE,
    batch_id      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text
);
CREATE INDEX IF NOT EXISTS users_outbox_pending_idx ON users_outbox (created_at) WHERE published_at IS NULL;

CREATE TABLE IF NOT EXISTS users_rejected (
    id           bigserial PRIMARY KEY,
    batch_id     text NOT NULL,
    position     integer NOT NULL,
    reason       text NOT NULL,
    raw          jsonb,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (batch_id, position)
);
