"""A local-mode SparkSession for the streaming job's unit tests, and builders of Kafka-like rows.

Imported by tests/unit/test_stream_*.py (not a conftest proper: other unit tests must not pay for a JVM).
"""

from __future__ import annotations

import copy
import json
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

SPARK_DIR = Path(__file__).resolve().parents[2] / "spark"
if str(SPARK_DIR) not in sys.path:
    sys.path.insert(0, str(SPARK_DIR))

KAFKA_SCHEMA = "key string, value string, topic string, partition int, offset long, timestamp timestamp"
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
    "master": "",
    "app_name": "correnteza-stream-users",
    "shuffle_partitions": 4,
}


def stream_config(**changes: Any) -> Any:
    """A StreamConfig from STREAM_SETTINGS with some settings changed."""
    from correnteza_stream.config import from_mapping

    return from_mapping({**STREAM_SETTINGS, **changes})


@cache
def local_spark() -> SparkSession:
    """One session per test process: local[1], no UI, one shuffle partition, UTC."""
    return (
        SparkSession.builder.master("local[1]")
        .appName("correnteza-stream-unit")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "512m")
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


def kafka_rows(
    spark: SparkSession, values: list[Any], keys: list[str | None] | None = None, partition: int = 3
) -> DataFrame:
    """Kafka-source-like rows: dicts are JSON-encoded, strings kept raw; offsets 100, 101, ..."""
    rows = []
    for index, value in enumerate(values):
        text = json.dumps(value) if isinstance(value, dict) else value
        key = keys[index] if keys is not None else _uuid_of(value)
        rows.append((key, text, "users_created", partition, 100 + index, EVENT_TIME))
    return spark.createDataFrame(rows, KAFKA_SCHEMA)
