"""The micro-batch writer: one foreachBatch call writes the valid rows and the dead letters.

Every write is an upsert keyed by the record (created_users by id, created_users_dlq by topic/partition/
offset), so a micro-batch replayed after a failure rewrites the same rows. The dead-letter topic is
at-least-once: a replay may publish a dead letter twice (its key and offset fields identify it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from correnteza_stream.config import StreamConfig
from correnteza_stream.transform import (
    latest_per_id,
    to_dead_letter_messages,
    to_dead_letter_rows,
    to_user_rows,
)
from correnteza_stream.validate import parse, split, validate

LOG = logging.getLogger("correnteza.stream")
CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"


@dataclass(frozen=True)
class BatchStats:
    """What one micro-batch did."""

    batch_id: int
    rows_in: int
    valid: int
    invalid: int
    seconds: float

    def line(self) -> str:
        rate = self.rows_in / self.seconds if self.seconds > 0 else 0.0
        return (
            f"batch_id={self.batch_id} rows_in={self.rows_in} valid={self.valid} invalid={self.invalid} "
            f"duration_s={self.seconds:.3f} rows_per_s={rate:.0f}"
        )


def count_split(validated: DataFrame) -> tuple[int, int]:
    """(valid, invalid) counts in one pass."""
    counts = {
        row["ok"]: row["count"]
        for row in validated.groupBy(F.col("reason").isNull().alias("ok")).count().collect()
    }
    return counts.get(True, 0), counts.get(False, 0)


def write_cassandra(frame: DataFrame, config: StreamConfig, table: str) -> None:
    (
        frame.write.format(CASSANDRA_FORMAT)
        .options(keyspace=config.keyspace, table=table)
        .mode("append")
        .save()
    )


def write_dead_letter_topic(messages: DataFrame, config: StreamConfig) -> None:
    (
        messages.write.format("kafka")
        .option("kafka.bootstrap.servers", config.kafka_bootstrap)
        .option("kafka.acks", "all")
        .option("kafka.enable.idempotence", "true")
        .option("topic", config.dlq_topic)
        .save()
    )


class BatchWriter:
    """Callable for DataStreamWriter.foreachBatch."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        validated = validate(parse(batch)).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            valid_count, invalid_count = count_split(validated)
            valid, invalid = split(validated)
            if invalid_count:
                dead_letters = to_dead_letter_rows(invalid).persist(StorageLevel.MEMORY_AND_DISK)
                try:
                    write_cassandra(dead_letters, self.config, self.config.dlq_table)
                    write_dead_letter_topic(to_dead_letter_messages(dead_letters), self.config)
                finally:
                    dead_letters.unpersist()
            if valid_count:
                write_cassandra(latest_per_id(to_user_rows(valid)), self.config, self.config.table)
        finally:
            validated.unpersist()
        stats = BatchStats(
            batch_id, valid_count + invalid_count, valid_count, invalid_count, time.monotonic() - started
        )
        LOG.info("micro-batch %s", stats.line())
