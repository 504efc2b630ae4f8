"""A local-mode SparkSession for the streaming job's unit tests, builders of Kafka-like rows (legacy JSON
text or Confluent-framed Avro, built with fastavro from the repository's schemas) and a fake registry.

Imported by tests/unit/test_stream_*.py (not a conftest proper: other unit tests must not pay for a JVM).
The session needs the spark-avro jar of the stream's connector jars: scripts/test.sh fetches them
(scripts/fetch-jars.sh spark-connectors) into ${CORRENTEZA_CACHE}/jars/spark-connectors.
"""

from __future__ import annotations

import copy
import io
import json
import os
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
import pytest
from pyspark.sql import DataFrame, SparkSession

ROOT = Path(__file__).resolve().parents[2]
SPARK_DIR = ROOT / "spark"
if str(SPARK_DIR) not in sys.path:
    sys.path.insert(0, str(SPARK_DIR))

SCHEMAS_DIR = ROOT / "producer" / "schemas"
KAFKA_SCHEMA = "key string, value binary, topic string, partition int, offset long, timestamp timestamp"
EVENT_TIME = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)

VALID_USER: dict[str, Any] = {
    "gender": "female",
    "name": {"title": "Ms", "first": "Ana", "last": "Souza"},
    "location": {
        "street": {"number": 4821, "name": "Rua das Flores"},
        "city": "Recife",
        "state": "Pernambuco",
        "country": "Brazil",
        "postcode": 50030,
        "coordinates": {"latitude": "-8.05", "longitude": "-34.9"},
        "timezone": {"offset": "-3:00", "description": "Brasilia"},
    },
    "email": "ana.souza@example.com",
    "login": {"uuid": "0B2C5E1A-7F3D-4C2B-9A1E-2D3F4A5B6C7D", "username": "bluefish42"},
    "dob": {"date": "1990-06-15T08:30:00.000Z", "age": 36},
    "registered": {"date": "2015-03-01T10:00:00.000Z", "age": 11},
    "phone": "(81) 5555-1234",
    "cell": "(81) 95555-1234",
    "id": {"name": "CPF", "value": "123.456.789-00"},
    "picture": {
        "large": "https://randomuser.me/api/portraits/women/1.jpg",
        "medium": "https://randomuser.me/api/portraits/med/women/1.jpg",
        "thumbnail": "https://randomuser.me/api/portraits/thumb/women/1.jpg",
    },
    "nat": "BR",
    "_meta": {"batch_id": "batch-7", "fetched_at": "2026-11-26T11:59:00Z", "source": "local", "seed": "s1"},
}


# A complete settings file of the job (test data; the platform's comes from the stream_job role).
STREAM_SETTINGS: dict[str, Any] = {
    "kafka_bootstrap": "127.0.0.1:9092",
    "topic": "users_created",
    "dlq_topic": "users_created.dlq",
    "cassandra_hosts": "127.0.0.1",
    "cassandra_port": 9042,
    "cassandra_local_dc": "dc1",
    "cassandra_username": "correnteza",
    "cassandra_password_file": "/etc/correnteza/cassandra_app_password",
    "cassandra_consistency": "LOCAL_QUORUM",
    "keyspace": "spark_streams",
    "table": "created_users",
    "dlq_table": "created_users_dlq",
    "checkpoint_dir": "/data/spark/checkpoints/users_created",
    "trigger_interval": "10 seconds",
    "max_offsets_per_trigger": 20000,
    "starting_offsets": "earliest",
    "fail_on_data_loss": True,
    "master": "",
    "app_name": "correnteza-stream-users",
    "shuffle_partitions": 4,
    "registry_url": "https://127.0.0.1:8443/apis/ccompat/v7",
    "registry_username": "schema-reader",
    "registry_password_file": "/etc/correnteza/registry_reader_password",
    "registry_ca_file": "/etc/ssl/correnteza/ca.crt",
    "avro_max_length": 8388608,
}


def stream_config(**changes: Any) -> Any:
    """A StreamConfig from STREAM_SETTINGS with some settings changed."""
    from correnteza_stream.config import from_mapping

    return from_mapping({**STREAM_SETTINGS, **changes})


def connector_jars_dir() -> Path:
    """Where scripts/fetch-jars.sh puts the stream's connector jars (scripts/lib.sh's CACHE)."""
    cache_dir = os.environ.get("CORRENTEZA_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "correnteza"
    )
    return Path(cache_dir) / "jars" / "spark-connectors"


def spark_avro_jar() -> Path:
    """The spark-avro jar (from_avro, to_avro); the tests fail, never skip, without it."""
    folder = connector_jars_dir()
    found = sorted(folder.glob("spark-avro_*.jar"))
    if not found:
        pytest.fail(
            f"no spark-avro_*.jar in {folder}: run scripts/fetch-jars.sh spark-connectors "
            "(scripts/test.sh does it before the unit tests)",
            pytrace=False,
        )
    return found[-1]


@cache
def local_spark() -> SparkSession:
    """One session per test process: local[1], no UI, one shuffle partition, UTC, spark-avro, and the Avro
    decoder limits the job gives its executors (here the driver is the executor)."""
    from correnteza_stream.decode import avro_limit_options

    return (
        SparkSession.builder.master("local[1]")
        .appName("correnteza-stream-unit")
        .config("spark.jars", str(spark_avro_jar()))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "512m")
        .config("spark.driver.extraJavaOptions", avro_limit_options(STREAM_SETTINGS["avro_max_length"]))
        .getOrCreate()
    )


DELETE = object()


def user(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of VALID_USER with dotted keys ('name.first') set to new values (DELETE removes the key)."""
    doc = copy.deepcopy(VALID_USER)
    for dotted, value in (changes or {}).items():
        *parents, leaf = dotted.split(".")
        node = doc
        for part in parents:
            node = node[part]
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return doc


def _uuid_of(value: Any) -> str | None:
    login = value.get("login") if isinstance(value, dict) else None
    return login.get("uuid") if isinstance(login, dict) else None


def _value_bytes(value: Any) -> bytearray | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = json.dumps(value)
    if isinstance(value, str):
        value = value.encode("utf-8")
    return bytearray(value)


class Avro(bytes):
    """A Confluent-framed Avro value, carrying the record it encodes (kafka_rows takes its key from it)."""

    record: dict[str, Any]


def kafka_rows(
    spark: SparkSession, values: list[Any], keys: list[str | None] | None = None, partition: int = 3
) -> DataFrame:
    """Kafka-source-like rows (value binary): dicts are JSON-encoded (legacy JSON), strings UTF-8, bytes kept
    as they are; offsets 100, 101, ..."""
    rows = []
    for index, value in enumerate(values):
        record = value.record if isinstance(value, Avro) else value
        key = keys[index] if keys is not None else _uuid_of(record)
        rows.append((key, _value_bytes(value), "users_created", partition, 100 + index, EVENT_TIME))
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


# Avro: the contract's schemas, Confluent framing, a fake registry.


def schema_file(subject: str, version: int = 1) -> str:
    return (SCHEMAS_DIR / subject / f"v{version}.avsc").read_text(encoding="utf-8")


USER_V1 = schema_file("users_created-value")
DLQ_V1 = schema_file("users_created.dlq-value")


def evolved(schema: str, field: dict[str, Any]) -> str:
    """``schema`` with one more field (e.g. optional with a default: a BACKWARD-compatible version)."""
    document = json.loads(schema)
    return json.dumps({**document, "fields": [*document["fields"], field]})


USER_V2 = evolved(USER_V1, {"name": "middle_name", "type": ["null", "string"], "default": None})


def as_avro_record(doc: dict[str, Any]) -> dict[str, Any]:
    """A user document in the types of the Avro schema (postcode as text), as the producer sends it."""
    record = copy.deepcopy(doc)
    location = record.get("location")
    if isinstance(location, dict) and location.get("postcode") is not None:
        location["postcode"] = str(location["postcode"])
    return record


def confluent(schema_id: int, schema: str, record: dict[str, Any]) -> Avro:
    """0x00, the 4-byte schema id, then ``record`` in Avro binary (fastavro, as the producer's serializer)."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(json.loads(schema)), record)
    value = Avro(b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue())
    value.record = record
    return value


def avro_user(changes: dict[str, Any] | None = None, schema_id: int = 1, schema: str = USER_V1) -> Avro:
    """``user(changes)`` as the producer publishes it: Avro with the schema registered under schema_id."""
    return confluent(schema_id, schema, as_avro_record(user(changes)))


def read_confluent(value: bytes, schema: str) -> tuple[int, dict[str, Any]]:
    """(schema id, record) of a Confluent-framed Avro value (fastavro)."""
    assert value[:1] == b"\x00", value[:8]
    record = fastavro.schemaless_reader(io.BytesIO(value[5:]), fastavro.parse_schema(json.loads(schema)))
    return int.from_bytes(value[1:5], "big"), record


class FakeRegistry:
    """A registry in memory: schemas by id, subjects' latest (id, schema), ids that fail like a registry
    that cannot answer; records every id asked for."""

    url = "https://registry.test/apis/ccompat/v7"

    def __init__(
        self,
        schemas: dict[int, str] | None = None,
        subjects: dict[str, int] | None = None,
        failing: set[int] | None = None,
    ) -> None:
        self.schemas = {1: USER_V1, 2: DLQ_V1} if schemas is None else schemas
        self.subjects = (
            {"users_created-value": 1, "users_created.dlq-value": 2} if subjects is None else subjects
        )
        self.failing = failing or set()
        self.asked: list[int] = []

    def schema_by_id(self, schema_id: int) -> str | None:
        from correnteza_stream.registry import RegistryError

        self.asked.append(schema_id)
        if schema_id in self.failing:
            raise RegistryError(
                f"schema registry GET {self.url}/schemas/ids/{schema_id}: HTTP 503 Unavailable"
            )
        return self.schemas.get(schema_id)

    def latest(self, subject: str) -> tuple[int, str]:
        from correnteza_stream.registry import RegistryError

        if subject not in self.subjects:
            raise RegistryError(f"subject {subject!r} is not registered")
        schema_id = self.subjects[subject]
        return schema_id, self.schemas[schema_id]
