"""Avro values of users_created in the stream (spark/correnteza_stream/decode.py): Confluent framing, writer
schemas by id from a (fake) registry, legacy JSON next to Avro, the reasons of what cannot be decoded, and
dead-letter messages in Avro. The Avro bytes are built with fastavro, like the producer's serializer."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from pyspark.sql import Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro

from tests.unit.conftest_spark import (
    DLQ_V1,
    USER_V1,
    USER_V2,
    FakeRegistry,
    avro_user,
    confluent,
    kafka_rows,
    local_spark,
    read_confluent,
    stream_config,
    user,
)

from correnteza_stream import sink  # isort: skip
from correnteza_stream.decode import (  # isort: skip
    DECODED_MARKER,
    NOT_AVRO,
    UNKNOWN_SCHEMA_ID,
    WriterSchemas,
    avro_limit_options,
    confluent_header,
    reader_schema,
    schema_ids,
)
from correnteza_stream.registry import RegistryError  # isort: skip
from correnteza_stream.transform import to_user_rows  # isort: skip
from correnteza_stream.validate import RULE_NAMES, parse, split, validate  # isort: skip

# Variants of the valid user, each with the reasons it must get (the same in JSON and in Avro).
VARIANTS: list[tuple[dict, str | None]] = [
    ({}, None),
    ({"email": "nope"}, "invalid_email"),
    ({"name.first": None}, "missing_first_name"),
    ({"login.uuid": "not-a-uuid"}, "invalid_id"),
    ({"dob.date": "yesterday", "nat": "BRA"}, "invalid_dob_date; invalid_nat"),
    ({"gender": "other", "login.username": ""}, "missing_username; invalid_gender"),
    ({"dob": None, "registered": None}, "invalid_dob_date; invalid_registered_date"),
]


def zigzag(number: int) -> bytes:
    """An Avro long (zigzag varint)."""
    value, out = (number << 1) ^ (number >> 63), bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@pytest.fixture(scope="module")
def spark() -> SparkSession:
    return local_spark()


def validated(
    spark: SparkSession, values: list, registry: FakeRegistry | None = None, keys=None
) -> list[Row]:
    """validate(parse()) of Kafka rows, the writer schemas resolved like the BatchWriter does."""
    batch = kafka_rows(spark, values, keys)
    schemas = WriterSchemas(registry or FakeRegistry())
    writers = schemas.resolve(spark, schema_ids(batch))
    return validate(parse(batch, writers)).orderBy("kafka_offset").collect()


def user_row(row: Row) -> dict:
    return {name: value for name, value in row.asDict().items() if name != "processed_at"}


def test_avro_records_validate_like_their_json_equivalents(spark):
    json_rows = validated(spark, [user(changes) for changes, _ in VARIANTS])
    avro_rows = validated(spark, [avro_user(changes) for changes, _ in VARIANTS])
    assert [row["reason"] for row in avro_rows] == [reason for _, reason in VARIANTS]
    assert [row["reason"] for row in json_rows] == [reason for _, reason in VARIANTS]


def test_an_avro_user_lands_as_the_same_row_as_its_json(spark):
    rows = []
    for value in (user(), avro_user()):
        batch = kafka_rows(spark, [value])
        writers = WriterSchemas(FakeRegistry()).resolve(spark, schema_ids(batch))
        valid, invalid = split(validate(parse(batch, writers)))
        assert invalid.count() == 0
        (row,) = to_user_rows(valid).collect()
        rows.append(user_row(row))
    assert rows[0] == rows[1]
    assert rows[1]["post_code"] == "50030"
    assert rows[1]["address"] == "4821 Rua das Flores, Recife, Pernambuco, Brazil"


def test_the_raw_value_of_an_avro_dead_letter_is_its_json_text(spark):
    (row,) = validated(spark, [avro_user({"email": "nope"})])
    assert row["reason"] == "invalid_email"
    document = json.loads(row["raw_value"])
    assert document["email"] == "nope"
    assert document["login"]["uuid"] == "0B2C5E1A-7F3D-4C2B-9A1E-2D3F4A5B6C7D"
    assert document["location"]["street"]["number"] == 4821
    assert DECODED_MARKER not in document


def test_an_evolved_schema_is_fetched_by_its_id_and_its_records_land(spark, caplog):
    registry = FakeRegistry(schemas={1: USER_V1, 2: DLQ_V1, 3: USER_V2})
    v2 = confluent(3, USER_V2, {**avro_user().record, "middle_name": "Maria"})
    with caplog.at_level(logging.INFO, logger="correnteza.stream"):
        rows = validated(spark, [avro_user(), v2, avro_user({"email": "x"}, 3, USER_V2)], registry)
    assert [row["reason"] for row in rows] == [None, None, "invalid_email"]
    assert sorted(set(registry.asked)) == [1, 3]
    assert "writer schema id 3 fetched (io.correnteza.users_created.User)" in caplog.text
    assert json.loads(rows[1]["raw_value"])["middle_name"] == "Maria"
    assert rows[1]["user"]["name"]["first"] == "Ana"


def test_an_unknown_schema_id_is_a_dead_letter_with_the_bytes(spark):
    value = avro_user(schema_id=99)
    (row,) = validated(spark, [value])
    assert row["reason"] == UNKNOWN_SCHEMA_ID
    assert row["raw_value"] == "base64:" + base64.b64encode(value).decode()


def test_an_unknown_id_is_asked_again_but_a_known_one_is_kept(spark):
    registry = FakeRegistry()
    schemas = WriterSchemas(registry)
    for _ in range(2):
        assert schemas.resolve(spark, [1, 99]) == {1: schemas.known[1]}
    assert registry.asked == [1, 99, 99]


@pytest.mark.parametrize(
    "body",
    [
        b"\xff" * 20,  # a varint that never ends
        b"\x02\x02",  # truncated: gender's union says string, then the string is cut
        b"\x07",  # a union branch that does not exist
        b"",  # header only
        b"\x02" + zigzag(10**9) + b"abc",  # a string of 10^9 bytes: refused by the limit, not allocated
        b"\x02" + zigzag(2**31 - 16) + b"abc",
    ],
)
def test_garbage_after_a_valid_header_is_not_avro(spark, body):
    value = confluent_header(1) + body
    (row,) = validated(spark, [value], keys=[None])
    assert row["reason"] == NOT_AVRO
    assert row["raw_value"] == "base64:" + base64.b64encode(value).decode()
    assert spark.range(3).count() == 3  # the session survived


def test_a_record_whose_fields_are_all_null_still_decodes(spark):
    """PERMISSIVE from_avro gives an all-null record for garbage: the marker tells the two apart."""
    optional_only = json.dumps(
        {
            "type": "record",
            "name": "User",
            "namespace": "io.correnteza.users_created",
            "fields": [{"name": "email", "type": ["null", "string"], "default": None}],
        }
    )
    registry = FakeRegistry(schemas={1: USER_V1, 2: DLQ_V1, 5: optional_only})
    (row,) = validated(spark, [confluent(5, optional_only, {})], registry, keys=[None])
    assert row["raw_value"] == "{}"
    assert row["reason"].startswith("missing_id; ")


@pytest.mark.parametrize(
    "schema",
    [
        '"string"',
        '{"type": "object", "properties": {}}',  # a JSON Schema
        "syntax = 'proto3';",
        '{"type": "record"}',
        '{"type": "record", "name": "U", "fields": [{"name": "a", "type": "no.such.Type"}]}',
        '{"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}',
    ],
)
def test_a_schema_that_is_not_an_avro_record_makes_its_records_not_avro(spark, schema, caplog):
    registry = FakeRegistry(schemas={1: USER_V1, 2: DLQ_V1, 6: schema})
    with caplog.at_level(logging.WARNING, logger="correnteza.stream"):
        rows = validated(spark, [avro_user(), confluent_header(6) + b"\x00", avro_user()], registry)
    assert [row["reason"] for row in rows] == [None, NOT_AVRO, None]
    assert "schema id 6 is not usable" in caplog.text


def test_legacy_json_and_avro_in_one_batch(spark):
    values = [user(), avro_user(), "{broken", avro_user({"nat": "X"}), user({"email": "x"}), b"\x00\x01"]
    rows = validated(spark, values, keys=[None, None, None, None, None, None])
    reasons = [row["reason"] for row in rows]
    assert reasons == [None, None, "unparseable_json", "invalid_nat", "invalid_email", NOT_AVRO]
    assert rows[2]["raw_value"] == "{broken"
    assert rows[5]["raw_value"] == "base64:AAE="


def test_schema_ids_reads_the_big_endian_header(spark):
    values = [confluent_header(70000) + b"\x00", avro_user(), avro_user(), user(), b"\x00\x00"]
    assert schema_ids(kafka_rows(spark, values, keys=[None] * 5)) == [1, 70000]


def test_decoding_reasons_come_first_in_rule_order():
    assert RULE_NAMES[:3] == (UNKNOWN_SCHEMA_ID, NOT_AVRO, "unparseable_json")


def test_reader_schema_adds_the_marker_with_a_default():
    reader = json.loads(reader_schema(USER_V1))
    assert reader["fields"][-1] == {"name": DECODED_MARKER, "type": "boolean", "default": True}
    assert [f["name"] for f in reader["fields"][:-1]] == [f["name"] for f in json.loads(USER_V1)["fields"]]
    assert reader_schema('"string"') is None
    assert reader_schema("not json") is None


def test_avro_limit_options_keep_the_given_ones():
    options = avro_limit_options(1024, "-Dx=1 -Dorg.apache.avro.limits.string.maxLength=7")
    assert options.split() == [
        "-Dx=1",
        "-Dorg.apache.avro.limits.string.maxLength=7",
        "-Dorg.apache.avro.limits.bytes.maxLength=1024",
        "-Dorg.apache.avro.limits.collectionItems.maxLength=1024",
    ]


# The micro-batch writer with Avro input.


@pytest.fixture
def written(monkeypatch) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}

    def fake_cassandra(frame, config, table):
        out[table] = frame.collect()

    def fake_topic(messages, config):
        out[config.dlq_topic] = messages.collect()

    monkeypatch.setattr(sink, "write_cassandra", fake_cassandra)
    monkeypatch.setattr(sink, "write_dead_letter_topic", fake_topic)
    return out


def test_batch_writer_lands_avro_and_writes_avro_dead_letters(spark, written, caplog):
    registry = FakeRegistry(
        schemas={1: USER_V1, 3: USER_V2, 12: DLQ_V1},
        subjects={"users_created-value": 1, "users_created.dlq-value": 12},
    )
    v2 = confluent(3, USER_V2, {**avro_user({"login.uuid": "00000000-0000-4000-8000-000000000002"}).record})
    values = [avro_user(), v2, avro_user({"email": "bad"}), avro_user(schema_id=40), user({"gender": "x"})]
    with caplog.at_level(logging.INFO, logger="correnteza.stream"):
        writer = sink.BatchWriter.start(spark, stream_config(), registry)
        writer(kafka_rows(spark, values), 3)
    assert f"schema registry {registry.url}: known writer schema ids [1]" in caplog.text
    assert "dead letters: users_created.dlq-value id 12" in caplog.text
    assert sorted(row["kafka_offset"] for row in written["created_users"]) == [100, 101]
    dlq_rows = {row["kafka_offset"]: row for row in written["created_users_dlq"]}
    assert {offset: row["reason"] for offset, row in dlq_rows.items()} == {
        102: "invalid_email",
        103: UNKNOWN_SCHEMA_ID,
        104: "invalid_gender",
    }
    messages = written["users_created.dlq"]
    assert all(bytes(m["value"][:5]) == b"\x00\x00\x00\x00\x0c" for m in messages)
    decoded = {}
    for message in messages:
        schema_id, document = read_confluent(bytes(message["value"]), DLQ_V1)
        assert schema_id == 12
        decoded[document["offset"]] = document
    assert {offset: d["reason"] for offset, d in decoded.items()} == {
        offset: row["reason"] for offset, row in dlq_rows.items()
    }
    assert decoded[102]["key"] == "0B2C5E1A-7F3D-4C2B-9A1E-2D3F4A5B6C7D"
    assert json.loads(decoded[102]["value"])["email"] == "bad"
    assert decoded[103]["value"].startswith("base64:")
    assert (decoded[104]["topic"], decoded[104]["partition"]) == ("users_created", 3)
    assert decoded[104]["event_time"] == "2026-11-26T12:00:00.000Z"


def test_dead_letter_messages_decode_with_from_avro_too(spark, written):
    writer = sink.BatchWriter.start(spark, stream_config(), FakeRegistry())
    writer(kafka_rows(spark, ["nope"], keys=["k"]), 0)
    (message,) = written["users_created.dlq"]
    frame = spark.createDataFrame([(message["value"],)], "value binary")
    body = F.col("value").substr(F.lit(6), F.length("value"))
    (row,) = frame.select(from_avro(body, DLQ_V1).alias("d")).select("d.*").collect()
    assert (row["reason"], row["key"], row["offset"], row["value"]) == (NOT_AVRO, "k", 100, "base64:bm9wZQ==")


def test_a_registry_that_cannot_answer_fails_the_batch_and_writes_nothing(spark, written):
    registry = FakeRegistry(failing={4})
    writer = sink.BatchWriter.start(spark, stream_config(), registry)
    with pytest.raises(RegistryError, match="HTTP 503"):
        writer(kafka_rows(spark, [avro_user(), avro_user(schema_id=4)]), 1)
    assert written == {}
    assert 4 not in writer.schemas.known


def test_start_needs_both_subjects_and_a_fitting_dead_letter_schema(spark):
    with pytest.raises(RegistryError, match=r"users_created\.dlq-value"):
        sink.BatchWriter.start(spark, stream_config(), FakeRegistry(subjects={"users_created-value": 1}))
    with pytest.raises(RegistryError, match="users_created-value"):
        sink.BatchWriter.start(spark, stream_config(), FakeRegistry(subjects={"users_created.dlq-value": 2}))
    wrong = json.dumps(
        {"type": "record", "name": "DeadLetter", "fields": [{"name": "reason", "type": "int"}]}
    )
    registry = FakeRegistry(schemas={1: USER_V1, 2: wrong})
    with pytest.raises(RegistryError, match=r"schema id 2 of users_created\.dlq-value does not fit"):
        sink.BatchWriter.start(spark, stream_config(), registry)


def test_the_job_gives_its_executors_the_avro_limits_after_spark_submit_options(spark):
    """build_session's executor options: what spark-submit set (a JVM system property) plus the limits."""
    import stream_users

    system = spark.sparkContext._jvm.java.lang.System
    before = system.getProperty(stream_users.EXECUTOR_JAVA_OPTIONS)
    system.setProperty(stream_users.EXECUTOR_JAVA_OPTIONS, "-Dfrom.spark.submit=1")
    try:
        options = stream_users.executor_java_options(stream_config(avro_max_length=4096)).split()
    finally:
        if before is None:
            system.clearProperty(stream_users.EXECUTOR_JAVA_OPTIONS)
        else:
            system.setProperty(stream_users.EXECUTOR_JAVA_OPTIONS, before)
    assert options[0] == "-Dfrom.spark.submit=1"
    assert "-Dorg.apache.avro.limits.string.maxLength=4096" in options
    assert "-Dorg.apache.avro.limits.collectionItems.maxLength=4096" in options
