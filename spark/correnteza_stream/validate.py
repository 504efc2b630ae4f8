"""Parse and validate users_created records: pure DataFrame -> DataFrame functions.

``parse`` takes the Kafka source's columns (key, value, topic, partition, offset, timestamp), decodes the
value (``decode``: Confluent-framed Avro with the writer schemas given, or legacy JSON text) and returns one
row per record with the record's text kept next to the parsed struct. ``validate`` adds a ``reason``
column: null for a valid record, else a decoding reason (unknown_schema_id, not_avro, unparseable_json:
alone) or every failed rule's name joined by "; " (in RULE_NAMES order).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from correnteza_stream.decode import NOT_AVRO, UNKNOWN_SCHEMA_ID, WriterSchema, decode, raw_text
from correnteza_stream.schema import CORRUPT_COLUMN, PARSE_SCHEMA

REASON_SEPARATOR = "; "
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
NAT_PATTERN = r"^[A-Za-z]{2}$"
GENDER_PATTERN = r"^(male|female)$"
UNPARSEABLE = "unparseable_json"


def parse(kafka_df: DataFrame, writers: Mapping[int, WriterSchema | None] | None = None) -> DataFrame:
    """Kafka rows -> kafka_key, raw_value, topic, kafka_partition, kafka_offset, event_time, decode_error,
    user. ``writers``: the writer schemas of the batch's schema ids (``decode.WriterSchemas.resolve``);
    without them every Avro value is unknown_schema_id. raw_value is the record's JSON text (decoded Avro or
    legacy JSON), else 'base64:' and its bytes."""
    decoded = decode(kafka_df, writers or {})
    text = F.col("json_text")
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
    return decoded.select(
        F.col("key").cast("string").alias("kafka_key"),
        raw_text(text, F.col("value")).alias("raw_value"),
        F.col("topic").cast("string").alias("topic"),
        F.col("partition").cast("int").alias("kafka_partition"),
        F.col("offset").cast("long").alias("kafka_offset"),
        F.col("timestamp").cast("timestamp").alias("event_time"),
        F.col("decode_error"),
        F.from_json(text, PARSE_SCHEMA, options).alias("user"),
    )


def parse_timestamp(text: Column) -> Column:
    """An ISO-8601 text -> timestamp, or null when it does not parse (never raises, even under ANSI)."""
    return F.try_to_timestamp(F.trim(text))


def _blank(text: Column) -> Column:
    return text.isNull() | (F.trim(text) == "")


def _no_match(text: Column, pattern: str) -> Column:
    return text.isNull() | ~F.trim(text).rlike(pattern)


def is_unparseable(user: Column, raw: Column) -> Column:
    """Not a JSON object: no value, a parse failure, or a JSON value that is not an object."""
    return (
        raw.isNull()
        | user.isNull()
        | user.getField(CORRUPT_COLUMN).isNotNull()
        | ~F.ltrim(raw).startswith("{")
    )


def _key_mismatch(user: Column, key: Column) -> Column:
    uuid = user.getField("login").getField("uuid")
    return key.isNotNull() & uuid.isNotNull() & (F.lower(F.trim(key)) != F.lower(F.trim(uuid)))


def _rules(user: Column, key: Column) -> list[tuple[str, Column]]:
    """(reason, column that is true when the record breaks the rule); evaluated on a parsed object."""
    login, name = user.getField("login"), user.getField("name")
    uuid = login.getField("uuid")
    return [
        ("missing_id", _blank(uuid)),
        ("invalid_id", ~_blank(uuid) & _no_match(uuid, UUID_PATTERN)),
        ("key_mismatch", _key_mismatch(user, key)),
        ("missing_first_name", _blank(name.getField("first"))),
        ("missing_last_name", _blank(name.getField("last"))),
        ("invalid_email", _no_match(user.getField("email"), EMAIL_PATTERN)),
        ("missing_username", _blank(login.getField("username"))),
        ("invalid_dob_date", parse_timestamp(user.getField("dob").getField("date")).isNull()),
        ("invalid_registered_date", parse_timestamp(user.getField("registered").getField("date")).isNull()),
        ("invalid_gender", _no_match(F.lower(user.getField("gender")), GENDER_PATTERN)),
        ("invalid_nat", _no_match(user.getField("nat"), NAT_PATTERN)),
    ]


# Every reason the job can give, in the order they appear in a combined reason.
RULE_NAMES: tuple[str, ...] = (
    UNKNOWN_SCHEMA_ID,
    NOT_AVRO,
    UNPARSEABLE,
    "missing_id",
    "invalid_id",
    "key_mismatch",
    "missing_first_name",
    "missing_last_name",
    "invalid_email",
    "missing_username",
    "invalid_dob_date",
    "invalid_registered_date",
    "invalid_gender",
    "invalid_nat",
)


def reason_column(user: Column, raw: Column, key: Column, decode_error: Column | None = None) -> Column:
    """Null for a valid record; else the decoding reason (alone), or the failed rules' names joined by
    REASON_SEPARATOR."""
    failed = [F.when(broken, F.lit(name)) for name, broken in _rules(user, key)]
    content = F.concat_ws(REASON_SEPARATOR, *failed)
    decoding = F.lit(None).cast("string") if decode_error is None else decode_error
    return (
        F.when(decoding.isNotNull(), decoding)
        .when(is_unparseable(user, raw), F.lit(UNPARSEABLE))
        .when(content != "", content)
        .otherwise(F.lit(None).cast("string"))
    )


def validate(parsed: DataFrame) -> DataFrame:
    """Adds ``reason`` (string, null when the record is valid) to the output of ``parse``."""
    reason = reason_column(F.col("user"), F.col("raw_value"), F.col("kafka_key"), F.col("decode_error"))
    return parsed.withColumn("reason", reason)


def split(validated: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(valid, invalid) halves of the output of ``validate``."""
    return validated.filter(F.col("reason").isNull()), validated.filter(F.col("reason").isNotNull())
