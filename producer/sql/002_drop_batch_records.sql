-- fetch now writes users_raw and the outbox in the same transaction as the batch's audit row, so
-- batches no longer stages the records (idempotent: a no-op once the column is gone).
ALTER TABLE batches DROP COLUMN IF EXISTS records;
