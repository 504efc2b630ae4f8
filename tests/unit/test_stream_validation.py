"""Validation rules of the streaming job (spark/correnteza_stream/validate.py), local-mode Spark."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pyspark.sql import SparkSession

from tests.unit.conftest_spark import (
    DELETE,
    STREAM_SETTINGS,
    VALID_USER,
    kafka_rows,
    local_spark,
    stream_config,
    user,
)

from correnteza_stream.decode import NOT_AVRO  # isort: skip
from correnteza_stream.validate import RULE_NAMES, UNPARSEABLE, parse, split, validate  # isort: skip


@pytest.fixture(scope="module")
def spark() -> SparkSession:
    return local_spark()


def reasons(spark: SparkSession, values: list[Any], keys: list[str | None] | None = None) -> list[str | None]:
    frame = validate(parse(kafka_rows(spark, values, keys)))
    return [row["reason"] for row in frame.orderBy("kafka_offset").collect()]


def test_a_valid_user_has_no_reason(spark):
    assert reasons(spark, [user()]) == [None]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"login.uuid": DELETE}, "missing_id"),
        ({"login.uuid": "  "}, "missing_id"),
        ({"login.uuid": "not-a-uuid"}, "invalid_id"),
        ({"login.uuid": "0b2c5e1a-7f3d-4c2b-9a1e-2d3f4a5b6c7"}, "invalid_id"),
        ({"name.first": DELETE}, "missing_first_name"),
        ({"name.first": ""}, "missing_first_name"),
        ({"name.last": None}, "missing_last_name"),
        ({"email": "ana.souza.example.com"}, "invalid_email"),
        ({"email": DELETE}, "invalid_email"),
        ({"email": "two@@example.com"}, "invalid_email"),
        ({"login.username": DELETE}, "missing_username"),
        ({"dob.date": "yesterday"}, "invalid_dob_date"),
        ({"dob": DELETE}, "invalid_dob_date"),
        ({"registered.date": "2015-13-45T99:00:00Z"}, "invalid_registered_date"),
        ({"gender": "other"}, "invalid_gender"),
        ({"gender": DELETE}, "invalid_gender"),
        ({"nat": "BRA"}, "invalid_nat"),
        ({"nat": "B1"}, "invalid_nat"),
        ({"nat": DELETE}, "invalid_nat"),
    ],
)
def test_each_rule_gives_its_reason(spark, changes, expected):
    assert reasons(spark, [user(changes)]) == [expected]  # the key is the record's own uuid


@pytest.mark.parametrize("raw", ['{"gender": "male"', "{", "{broken", ' {"name": }'])
def test_unparseable_json_objects_are_dead_letters(spark, raw):
    assert reasons(spark, [raw], [None]) == [UNPARSEABLE]


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"a string"', "null", "", None, b"\x01\x02\x03"])
def test_values_neither_avro_nor_a_json_object_are_not_avro(spark, raw):
    """Only Confluent-framed Avro (0x00) and, for the upgrade, legacy JSON objects ('{') are read."""
    assert reasons(spark, [raw], [None]) == [NOT_AVRO]


def test_a_type_mismatch_in_a_nested_object_is_unparseable(spark):
    assert reasons(spark, [user({"name": "Ana Souza"})]) == [UNPARSEABLE]


def test_key_must_match_the_user_id(spark):
    other = "11111111-2222-3333-4444-555555555555"
    upper = VALID_USER["login"]["uuid"].upper()
    assert reasons(spark, [user(), user()], [other, upper]) == ["key_mismatch", None]


def test_several_failures_are_joined_in_rule_order(spark):
    bad = user({"email": "nope", "gender": "x", "name.first": DELETE})
    assert reasons(spark, [bad]) == ["missing_first_name; invalid_email; invalid_gender"]


def test_reason_names_are_all_known(spark):
    bad = user({"email": "nope", "nat": "xyz", "dob.date": "?", "registered.date": "?", "login.username": ""})
    (reason,) = reasons(spark, [bad])
    assert set(reason.split("; ")) <= set(RULE_NAMES)
    assert reason == "invalid_email; missing_username; invalid_dob_date; invalid_registered_date; invalid_nat"


def test_lenient_values_that_are_still_valid(spark):
    lenient = user(
        {
            "gender": "Male",
            "nat": "br",
            "location.postcode": "AB1 2CD",
            "dob.date": "1990-06-15T08:30:00Z",
            "registered.date": "2015-03-01 10:00:00",
            "dob.age": "not a number",
        }
    )
    assert reasons(spark, [lenient]) == [None]


def test_split_partitions_valid_and_invalid(spark):
    values = [
        user(),
        "garbage",
        user({"email": "x"}),
        user({"login.uuid": "0b2c5e1a-7f3d-4c2b-9a1e-2d3f4a5b6c7e"}),
    ]
    valid, invalid = split(validate(parse(kafka_rows(spark, values))))
    assert sorted(row["kafka_offset"] for row in valid.collect()) == [100, 103]
    assert sorted((row["kafka_offset"], row["reason"]) for row in invalid.collect()) == [
        (101, NOT_AVRO),
        (102, "invalid_email"),
    ]


def test_validation_throughput(spark):
    """Not a benchmark: a floor that catches a pathological plan (e.g. a Python UDF slipping in)."""
    import time

    count = 2000
    values = [user({"login.uuid": f"00000000-0000-4000-8000-{index:012d}"}) for index in range(count)]
    values[::10] = ["garbage"] * len(values[::10])
    frame = validate(parse(kafka_rows(spark, values))).cache()
    started = time.monotonic()
    valid = frame.filter("reason IS NULL").count()
    seconds = time.monotonic() - started
    frame.unpersist()
    assert valid == count - count // 10
    print(f"validated {count} rows in {seconds:.2f} s ({count / seconds:.0f} rows/s)")


# The job's settings are validated too: a bad setting must stop the job before it touches data.


def settings_file(path, **changes) -> str:
    """A complete settings file (what the stream_job role renders) with some settings changed."""
    path.write_text("# Ansible managed\n" + json.dumps({**STREAM_SETTINGS, **changes}) + "\n")
    return str(path)


def test_settings_file_with_comments_and_cli_overrides(tmp_path):
    from correnteza_stream.config import load

    path = tmp_path / "stream.json"
    settings_file(path, kafka_bootstrap="10.0.0.1:9092", max_offsets_per_trigger="500")
    config = load(["--config", str(path), "--trigger-interval", "5 seconds", "--checkpoint-dir", "/data/x"])
    assert config.kafka_bootstrap == "10.0.0.1:9092"
    assert config.max_offsets_per_trigger == 500
    assert config.trigger_interval == "5 seconds"
    assert config.checkpoint_dir == "/data/x"
    assert config.master == ""


@pytest.mark.parametrize(
    ("argv", "setting"),
    [
        (["--checkpoint-dir", "/tmp/checkpoints"], "checkpoint_dir"),
        (["--checkpoint-dir", "relative/dir"], "checkpoint_dir"),
        (["--trigger-interval", "10s"], "trigger_interval"),
        (["--max-offsets-per-trigger", "0"], "max_offsets_per_trigger"),
    ],
)
def test_bad_settings_are_refused(tmp_path, argv, setting):
    from correnteza_stream.config import ConfigError, load

    path = tmp_path / "stream.json"
    settings_file(path)
    with pytest.raises(ConfigError, match=setting):
        load(["--config", str(path), *argv])


def test_unknown_setting_is_refused(tmp_path):
    from correnteza_stream.config import ConfigError, load

    path = tmp_path / "stream.json"
    settings_file(path, kafka_bootstrp="x")
    with pytest.raises(ConfigError, match="kafka_bootstrp"):
        load(["--config", str(path)])


def test_password_comes_from_its_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    config = stream_config(cassandra_password_file=str(secret))
    assert config.cassandra_password() == "s3cret"
    assert "s3cret" not in str(config.public())
