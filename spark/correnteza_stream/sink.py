"""The micro-batch writer: one foreachBatch call decodes a batch, writes the valid rows and the dead letters.

Decoding needs the writer schema of every schema id in the batch: the distinct ids are collected first (one
small job over the cached batch), the new ones fetched from the registry (``decode.WriterSchemas``), then
the batch is decoded, parsed and validated in one plan. A registry that cannot answer fails the micro-batch
(the query stops, systemd restarts the job, which resumes from its checkpoint): no record becomes a dead
letter because of the registry. Dead-letter messages are Avro with the latest schema of the dead-letter
topic's subject, looked up at start (``BatchWriter.start``).

Every write is an upsert keyed by the record (created_users by id, created_users_dlq by topic/partition/
offset), so a micro-batch replayed after a failure rewrites the same rows. The dead-letter topic is
at-least-once: a replay may publish a dead letter twice (its key and offset fields identify it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from correnteza_stream.config import StreamConfig
from correnteza_stream.decode import WriterSchema, WriterSchemas, schema_ids
from correnteza_stream.registry import Registry, RegistryError, subject_of
from correnteza_stream.transform import (
    DeadLetterSchema,
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


# The columns of transform.to_dead_letter_rows, for the start-up check of the dead-letter schema.
DEAD_LETTER_ROW = (
    "topic string, kafka_partition int, kafka_offset long, kafka_key string, reason string, "
    "raw_value string, event_time timestamp, failed_at timestamp"
)


def check_dead_letter_schema(spark: SparkSession, config: StreamConfig, schema: DeadLetterSchema) -> None:
    """Serializes one made-up dead letter with ``schema`` (a small local job), so a schema that does not fit
    the dead-letter fields stops the job at start, not at its first dead letter."""
    now = datetime.now(UTC).replace(tzinfo=None)
    probe = spark.createDataFrame(
        [(config.topic, 0, 0, None, "start-up check", None, now, now)], DEAD_LETTER_ROW
    )
    try:
        to_dead_letter_messages(probe, schema).collect()
    except Exception as error:
        raise RegistryError(
            f"schema id {schema.schema_id} of {subject_of(config.dlq_topic)} does not fit the dead-letter "
            f"fields: {(str(error).strip().splitlines() or [type(error).__name__])[0][:300]}"
        ) from None


class BatchWriter:
    """Callable for DataStreamWriter.foreachBatch."""

    def __init__(self, config: StreamConfig, schemas: WriterSchemas, dead_letter: DeadLetterSchema) -> None:
        self.config = config
        self.schemas = schemas
        self.dead_letter = dead_letter

    @classmethod
    def start(cls, spark: SparkSession, config: StreamConfig, registry: Registry) -> BatchWriter:
        """The writer, after the look-ups made at start: the latest schema of the topic's subject (a known
        writer schema from the first batch on) and of the dead-letter topic's subject (dead letters are
        written with it). Raises RegistryError when the registry cannot answer or either is unusable."""
        schemas = WriterSchemas(registry)
        topic_subject, dlq_subject = subject_of(config.topic), subject_of(config.dlq_topic)
        topic_id, topic_schema = registry.latest(topic_subject)
        if schemas.learn(spark, topic_id, topic_schema, quiet=True) is None:
            raise RegistryError(
                f"schema registry {registry.url}: the latest schema of {topic_subject} (id {topic_id}) "
                "cannot be decoded"
            )
        dead_letter = DeadLetterSchema(*registry.latest(dlq_subject))
        check_dead_letter_schema(spark, config, dead_letter)
        LOG.info(
            "schema registry %s: known writer schema ids %s (%s latest: %d); dead letters: %s id %d",
            registry.url,
            sorted(schemas.known),
            topic_subject,
            topic_id,
            dlq_subject,
            dead_letter.schema_id,
        )
        return cls(config, schemas, dead_letter)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        source = batch.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            writers = self.schemas.resolve(batch.sparkSession, schema_ids(source))
            valid_count, invalid_count = self._write(source, writers)
        finally:
            source.unpersist()
        stats = BatchStats(
            batch_id, valid_count + invalid_count, valid_count, invalid_count, time.monotonic() - started
        )
        LOG.info("micro-batch %s", stats.line())

    def _write(self, source: DataFrame, writers: Mapping[int, WriterSchema | None]) -> tuple[int, int]:
        validated = validate(parse(source, writers)).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            valid_count, invalid_count = count_split(validated)
            valid, invalid = split(validated)
            if invalid_count:
                dead_letters = to_dead_letter_rows(invalid).persist(StorageLevel.MEMORY_AND_DISK)
                try:
                    write_cassandra(dead_letters, self.config, self.config.dlq_table)
                    messages = to_dead_letter_messages(dead_letters, self.dead_letter)
                    write_dead_letter_topic(messages, self.config)
                finally:
                    dead_letters.unpersist()
            if valid_count:
                write_cassandra(latest_per_id(to_user_rows(valid)), self.config, self.config.table)
        finally:
            validated.unpersist()
        return valid_count, invalid_count
