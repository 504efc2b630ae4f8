"""Decoding of users_created values: Confluent-framed Avro, or the legacy JSON text of before the registry.

A value is
  Avro         byte 0 = 0x00 (magic), bytes 1-4 = the writer schema's registry id (big-endian), then the Avro
               binary body (at least 5 bytes in all);
  legacy JSON  a text starting with '{' (after spaces): what the producer wrote before the registry existed;
  else         not_avro.
An Avro body is decoded with ``from_avro`` and its own writer schema (looked up by id, in the driver, through
``WriterSchemas``) and turned back into JSON text (``to_json``), so both encodings go through the same
``from_json`` parse and validation (fields a newer schema adds are ignored there). Reasons given here:
  unknown_schema_id  magic 0x00 but the registry does not know the id (a 404);
  not_avro           magic 0x00 and a known id but the body does not decode with that schema (or the schema is
                     not an Avro record), or neither 0x00 nor '{'.

Spark 3.5's ``from_avro`` in PERMISSIVE mode gives, for a body it cannot decode, a record whose fields are all
null (not a null): that cannot be told from a record whose optional fields are all null. So the reader schema
is the writer schema plus a boolean field DECODED_MARKER with default true: Avro's schema resolution fills it
for every record that decodes, and a body that does not decode has it null. It is dropped before ``to_json``.

A corrupt length inside a body could make the Avro decoder allocate gigabytes (an OutOfMemoryError kills the
executor, and a replay meets the same record again): ``avro_limit_options`` gives the JVM options that bound
it (org.apache.avro.limits.*), which ``stream_users.build_session`` sets for the executors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro

from correnteza_stream.registry import Registry

LOG = logging.getLogger("correnteza.stream")

# The Kafka source's columns that decoding passes through.
KAFKA_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp")
MAGIC = b"\x00"
HEADER_BYTES = 5
UNKNOWN_SCHEMA_ID = "unknown_schema_id"
NOT_AVRO = "not_avro"
DECODED_MARKER = "_correnteza_decoded"
BASE64_PREFIX = "base64:"
AVRO_LIMIT_PROPERTIES = (
    "org.apache.avro.limits.string.maxLength",
    "org.apache.avro.limits.bytes.maxLength",
    "org.apache.avro.limits.collectionItems.maxLength",
)


def avro_limit_options(max_length: int, existing: str = "") -> str:
    """JVM options: ``existing`` plus -D<limit>=max_length for each Avro decoder limit it does not set."""
    options = existing.split()
    for name in AVRO_LIMIT_PROPERTIES:
        if not any(option.startswith(f"-D{name}=") for option in options):
            options.append(f"-D{name}={max_length}")
    return " ".join(options)


def confluent_header(schema_id: int) -> bytes:
    """The 5 bytes in front of a Confluent-framed Avro value."""
    return MAGIC + int(schema_id).to_bytes(4, "big", signed=True)


@dataclass(frozen=True)
class WriterSchema:
    """A writer schema from the registry, and the reader schema the job decodes it with."""

    schema_id: int
    writer: str  # the schema text as the registry gave it
    reader: str  # the writer schema plus DECODED_MARKER

    def options(self) -> dict[str, str]:
        return {"mode": "PERMISSIVE", "avroSchema": self.reader}


def reader_schema(writer: str) -> str | None:
    """The writer schema (JSON text) with DECODED_MARKER added; None when it is not an Avro record schema."""
    try:
        document = json.loads(writer)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("type") != "record":
        return None
    fields = document.get("fields")
    if not isinstance(fields, list) or any(
        isinstance(field, dict) and field.get("name") == DECODED_MARKER for field in fields
    ):
        return None
    marker = {"name": DECODED_MARKER, "type": "boolean", "default": True}
    return json.dumps({**document, "fields": [*fields, marker]})


# Columns of a Kafka source row.
def is_avro(value: Column) -> Column:
    """True for a Confluent-framed value (false, never null, for a null value)."""
    framed = (F.length(value) >= HEADER_BYTES) & (F.substring(value, 1, 1) == F.lit(MAGIC))
    return F.coalesce(framed, F.lit(False))


def schema_id_of(value: Column) -> Column:
    """The header's schema id (null when the value is not Confluent-framed)."""
    return F.when(is_avro(value), F.conv(F.hex(F.substring(value, 2, 4)), 16, 10).cast("long"))


def body_of(value: Column) -> Column:
    """The value without its 5-byte header."""
    return value.substr(F.lit(HEADER_BYTES + 1), F.length(value))


def is_legacy_json(value: Column) -> Column:
    """True for a text that starts with '{' (false, never null, for a null value)."""
    return ~is_avro(value) & F.coalesce(F.ltrim(value.cast("string")).startswith("{"), F.lit(False))


def _decoded_column(schema_id: int) -> str:
    return f"_avro_{schema_id}"


def _decoded_json(struct: Column) -> Column:
    """JSON text of a from_avro record, null when it did not decode."""
    return F.when(struct.getField(DECODED_MARKER), F.to_json(struct.dropFields(DECODED_MARKER)))


def schema_ids(kafka_df: DataFrame) -> list[int]:
    """The distinct schema ids in the headers of a batch (one small job)."""
    ids = kafka_df.select(schema_id_of(F.col("value")).alias("id")).where(F.col("id").isNotNull()).distinct()
    return sorted(int(row["id"]) for row in ids.collect())


def decode(kafka_df: DataFrame, writers: Mapping[int, WriterSchema | None]) -> DataFrame:
    """Kafka rows -> key, value, topic, partition, offset, timestamp, json_text, decode_error.

    ``writers`` holds every id the registry knows: its WriterSchema, or None when that schema cannot be
    decoded as a record (not_avro); an id not in it is unknown_schema_id. ``json_text`` is the text to parse
    (the decoded record as JSON, or the legacy JSON text), null when the value could not be decoded.
    """
    value = F.col("value")
    usable = {key: schema for key, schema in writers.items() if schema is not None}
    # Step 1: one column per usable id, decoded only for the rows of that id. A projection of its own, so the
    # optimizer keeps each from_avro evaluated once per row (step 2 reads each column twice).
    decoded = kafka_df.select(
        *KAFKA_COLUMNS,
        schema_id_of(value).alias("_schema_id"),
        *(
            F.when(
                schema_id_of(value) == key, from_avro(body_of(value), schema.writer, schema.options())
            ).alias(_decoded_column(key))
            for key, schema in sorted(usable.items())
        ),
    )
    schema_id = F.col("_schema_id")
    avro_ok = F.lit(None).cast("boolean")
    avro_json = F.lit(None).cast("string")
    if usable:
        columns = [F.col(_decoded_column(key)) for key in sorted(usable)]
        avro_ok = F.coalesce(*(column.getField(DECODED_MARKER) for column in columns))
        avro_json = F.coalesce(*(_decoded_json(column) for column in columns))
    avro = is_avro(value)
    error = (
        F.when(avro & ~schema_id.isin(sorted(writers)), F.lit(UNKNOWN_SCHEMA_ID))
        .when(avro & avro_ok.isNull(), F.lit(NOT_AVRO))
        .when(~avro & ~is_legacy_json(value), F.lit(NOT_AVRO))
    )
    text = F.when(avro, avro_json).when(is_legacy_json(value), value.cast("string"))
    return decoded.select(
        *KAFKA_COLUMNS,
        text.alias("json_text"),
        error.alias("decode_error"),
    )


def raw_text(json_text: Column, value: Column) -> Column:
    """What a dead letter keeps of a record: the JSON text, else 'base64:' and the value's bytes on one line
    (Spark 3.5's base64 breaks lines every 76 characters, spark.sql.chunkBase64String.enabled)."""
    encoded = F.translate(F.base64(value), "\r\n", "")
    return F.coalesce(json_text, F.concat(F.lit(BASE64_PREFIX), encoded))


def decodable_problem(spark: SparkSession, schema: WriterSchema) -> str | None:
    """None when Spark can decode with this schema (the expression ``decode`` builds is analyzed on an empty
    frame, in the driver), else the error's first line."""
    probe = spark.createDataFrame([], "value binary")
    try:
        decoded = from_avro(body_of(F.col("value")), schema.writer, schema.options())
        probe.select(_decoded_json(decoded)).schema  # noqa: B018 (analysis is what is checked)
    except Exception as error:  # any analysis failure: the schema is unusable, the stream goes on
        return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    return None


class WriterSchemas:
    """The writer schemas by id, fetched from the registry the first time an id appears.

    Ids are immutable in a registry, so a fetched schema is kept for the life of the job, also when it is not
    usable (not a record, or Spark cannot decode with it: its records are not_avro). An id the registry does
    not know (404) is not kept: it is asked again when it appears in a later batch. A registry that cannot
    answer raises RegistryError, which fails the micro-batch (the job restarts from its checkpoint): no
    record is dead-lettered because the registry was down.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.known: dict[int, WriterSchema | None] = {}

    def learn(
        self, spark: SparkSession, schema_id: int, writer: str, quiet: bool = False
    ) -> WriterSchema | None:
        """Keeps ``writer`` as the schema of ``schema_id`` (None when it is not usable) and logs it (a
        schema that is not usable is always logged)."""
        reader = reader_schema(writer)
        schema = WriterSchema(schema_id, writer, reader) if reader is not None else None
        problem = "not an Avro record schema" if schema is None else decodable_problem(spark, schema)
        if problem is not None:
            schema = None
            LOG.warning(
                "schema registry %s: schema id %d is not usable (%s): its records are %s",
                self.registry.url,
                schema_id,
                problem,
                NOT_AVRO,
            )
        elif not quiet:
            url, name = self.registry.url, _name(writer)
            LOG.info("schema registry %s: writer schema id %d fetched (%s)", url, schema_id, name)
        self.known[schema_id] = schema
        return schema

    def resolve(self, spark: SparkSession, ids: Iterable[int]) -> dict[int, WriterSchema | None]:
        """The known schemas of ``ids`` (fetching the new ones); the ids the registry does not know are left
        out."""
        ids = list(ids)
        for schema_id in ids:
            if schema_id in self.known:
                continue
            writer = self.registry.schema_by_id(schema_id)
            if writer is None:
                LOG.warning("schema registry %s: schema id %d is unknown", self.registry.url, schema_id)
                continue
            self.learn(spark, schema_id, writer)
        return {schema_id: self.known[schema_id] for schema_id in ids if schema_id in self.known}


def _name(writer: str) -> str:
    try:
        document = json.loads(writer)
        return ".".join(part for part in (document.get("namespace"), document.get("name")) if part)
    except (ValueError, AttributeError):
        return "?"
