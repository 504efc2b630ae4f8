"""Valid records -> rows of spark_streams.created_users; invalid records -> dead-letter rows and messages.

Pure DataFrame -> DataFrame functions over the output of ``validate.validate``.

``age`` is computed in the job from ``dob`` (whole years between dob and the Kafka record timestamp),
not copied from the API's ``dob.age``: the source's age is relative to when it was fetched and is not
checked against dob; anchoring on the record's timestamp keeps a replay's row identical.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import to_avro

from correnteza_stream.decode import confluent_header
from correnteza_stream.validate import parse_timestamp

ISO_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"

# Column order of spark_streams.created_users.
USER_COLUMNS: tuple[str, ...] = (
    "id",
    "first_name",
    "last_name",
    "gender",
    "address",
    "post_code",
    "email",
    "username",
    "dob",
    "registered_date",
    "phone",
    "picture",
    "age",
    "nationality",
    "batch_id",
    "seed",
    "kafka_partition",
    "kafka_offset",
    "event_time",
    "processed_at",
)

# Column order of spark_streams.created_users_dlq.
DLQ_COLUMNS: tuple[str, ...] = (
    "topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_key",
    "reason",
    "raw_value",
    "event_time",
    "failed_at",
)


def _text(column: Column) -> Column:
    """Trimmed text, null when blank."""
    trimmed = F.trim(column)
    return F.when(trimmed != "", trimmed)


def one_line_address(location: Column) -> Column:
    """'<street number> <street name>, <city>, <state>, <country>' skipping missing parts."""
    street = location.getField("street")
    street_line = _text(F.concat_ws(" ", _text(street.getField("number")), _text(street.getField("name"))))
    parts = [street_line, *(_text(location.getField(name)) for name in ("city", "state", "country"))]
    return _text(F.concat_ws(", ", *parts))


def age_at(dob: Column, at: Column) -> Column:
    """Whole years between dob and at (both timestamps)."""
    return F.floor(F.months_between(at, dob) / F.lit(12)).cast("int")


def to_user_rows(valid: DataFrame) -> DataFrame:
    """Valid rows of ``validate`` -> the columns of created_users (USER_COLUMNS order)."""
    user = F.col("user")
    name, login, location = user.getField("name"), user.getField("login"), user.getField("location")
    meta = user.getField("_meta")
    dob = parse_timestamp(user.getField("dob").getField("date"))
    processed_at = F.current_timestamp()
    return valid.select(
        F.lower(F.trim(login.getField("uuid"))).alias("id"),
        _text(name.getField("first")).alias("first_name"),
        _text(name.getField("last")).alias("last_name"),
        F.lower(F.trim(user.getField("gender"))).alias("gender"),
        one_line_address(location).alias("address"),
        _text(location.getField("postcode")).alias("post_code"),
        F.trim(user.getField("email")).alias("email"),
        _text(login.getField("username")).alias("username"),
        dob.alias("dob"),
        parse_timestamp(user.getField("registered").getField("date")).alias("registered_date"),
        _text(user.getField("phone")).alias("phone"),
        _text(user.getField("picture").getField("large")).alias("picture"),
        age_at(dob, F.coalesce(F.col("event_time"), processed_at)).alias("age"),
        F.upper(F.trim(user.getField("nat"))).alias("nationality"),
        meta.getField("batch_id").alias("batch_id"),
        meta.getField("seed").alias("seed"),
        F.col("kafka_partition").cast("int").alias("kafka_partition"),
        F.col("kafka_offset").cast("long").alias("kafka_offset"),
        F.col("event_time").cast("timestamp").alias("event_time"),
        processed_at.alias("processed_at"),
    )


def latest_per_id(users: DataFrame) -> DataFrame:
    """One row per id: the one with the highest (kafka_partition, kafka_offset), so a micro-batch holding
    two versions of a user writes the later one (the key is the id, so both share a partition)."""
    order = Window.partitionBy("id").orderBy(F.col("kafka_partition").desc(), F.col("kafka_offset").desc())
    return users.withColumn("_rank", F.row_number().over(order)).filter(F.col("_rank") == 1).drop("_rank")


def to_dead_letter_rows(invalid: DataFrame) -> DataFrame:
    """Invalid rows of ``validate`` -> the columns of created_users_dlq (DLQ_COLUMNS order)."""
    return invalid.select(
        F.col("topic"),
        F.col("kafka_partition").cast("int").alias("kafka_partition"),
        F.col("kafka_offset").cast("long").alias("kafka_offset"),
        F.col("kafka_key"),
        F.col("reason"),
        F.col("raw_value"),
        F.col("event_time").cast("timestamp").alias("event_time"),
        F.current_timestamp().alias("failed_at"),
    )


@dataclass(frozen=True)
class DeadLetterSchema:
    """The schema dead-letter messages are written with: the latest version of the dead-letter topic's
    subject, looked up at start."""

    schema_id: int
    schema: str


def dead_letter_document() -> Column:
    """The fields of a dead-letter message (producer/schemas/users_created.dlq-value): reason, topic, int
    partition, long offset, key, value, event_time and failed_at as ISO-8601 UTC text. reason, topic,
    partition, offset and failed_at are never null in a dead-letter row (split, the Kafka source and
    to_dead_letter_rows give them)."""
    return F.struct(
        F.col("reason").cast("string").alias("reason"),
        F.col("topic").cast("string").alias("topic"),
        F.col("kafka_partition").cast("int").alias("partition"),
        F.col("kafka_offset").cast("long").alias("offset"),
        F.col("kafka_key").cast("string").alias("key"),
        F.col("raw_value").cast("string").alias("value"),
        F.date_format("event_time", ISO_FORMAT).alias("event_time"),
        F.date_format("failed_at", ISO_FORMAT).alias("failed_at"),
    )


def to_dead_letter_messages(dead_letters: DataFrame, schema: DeadLetterSchema) -> DataFrame:
    """Dead-letter rows -> (key, value) for the dead-letter topic: the key as text, the value Avro in the
    Confluent wire format (0x00, the schema id, the Avro body)."""
    body = to_avro(dead_letter_document(), schema.schema)
    return dead_letters.select(
        F.col("kafka_key").alias("key"),
        F.concat(F.lit(confluent_header(schema.schema_id)), body).alias("value"),
    )
