"""The schema registry in the data path: Avro values with the registered id, a compatible evolution
registered while the stream runs (both versions land), an incompatible one refused while the topic keeps
flowing, a registry restart that keeps every schema and id, and the values the stream must still read
(JSON written before the registry) or dead-letter (an unknown id, bytes that are not Avro)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import correnteza_ops as ops
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from producer.avro import to_avro_record
from producer.validation import sanitize
from tests.e2e.conftest import (
    DLQ_TABLE,
    TOPIC,
    cassandra_rows,
    cassandra_seed_count,
    consume_range,
    partition_ends,
    source_pages,
    wait_for,
)
from tests.e2e.test_pipeline import expected_row, run_dag, uid, wait_cassandra

pytestmark = pytest.mark.e2e

SUBJECT = f"{TOPIC}-value"
DLQ_SUBJECT = f"{ops.contract().kafka.topic_dlq}-value"
# The compatible evolution the test registers: v1 plus an optional field with a default (same text every
# run, so a second run finds the same version and id).
EVOLVED_FIELD = {
    "name": "e2e_note",
    "type": ["null", "string"],
    "default": None,
    "doc": "added by tests/e2e/test_schemas.py",
}


def _seed(name: str) -> str:
    return f"e2e-{name}-{uuid.uuid4().hex[:8]}"


def registry(method: str, path: str, writer: bool = False, body: Any = None) -> Any:
    return ops.registry_request(method, path, writer=writer, data=None if body is None else json.dumps(body))


def versions_with_ids(subject: str) -> dict[int, int]:
    """{version: schema id} of a subject."""
    versions = registry("GET", f"/subjects/{subject}/versions").json()
    return {v: registry("GET", f"/subjects/{subject}/versions/{v}").json()["id"] for v in versions}


def id_of(subject: str, schema: str) -> int:
    found = registry("POST", f"/subjects/{subject}", body={"schema": schema, "schemaType": "AVRO"})
    assert found.status_code == 200, f"{subject}: schema not registered: {found.text}"
    return int(found.json()["id"])


def schema_v1() -> str:
    return ops.schema_file(SUBJECT, 1).read_text().strip()


def evolved_schema() -> str:
    schema = json.loads(ops.schema_file(SUBJECT).read_text())
    schema["fields"].append(EVOLVED_FIELD)
    return json.dumps(schema, indent=2)


def meta_of(seed: str) -> dict[str, Any]:
    fetched = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"batch_id": f"batch-{seed}", "fetched_at": fetched, "source": "local", "seed": seed}


def produce(values: list[tuple[str, bytes]]) -> None:
    """Write (key, value) pairs to the users topic as the producer would (acks=all), every one confirmed."""
    failures: list[str] = []
    producer = Producer(
        {"bootstrap.servers": ops.kafka_bootstrap(), "acks": "all", "enable.idempotence": True}
    )
    for key, value in values:
        producer.produce(
            TOPIC,
            key=key.encode(),
            value=value,
            on_delivery=lambda err, _m: err and failures.append(str(err)),
        )
    assert producer.flush(60) == 0, "messages still queued after 60 s"
    assert not failures, failures


def dead_letters(cassandra, keys: set[str]) -> dict[str, Any]:
    rows = cassandra.execute(f"SELECT kafka_key, reason, raw_value FROM {DLQ_TABLE}")
    return {r.kafka_key: r for r in rows if r.kafka_key in keys}


def test_published_values_are_avro_with_the_registered_id(airflow, kafka_servers, cassandra):
    seed, size = _seed("avro"), 20
    before = partition_ends(kafka_servers, TOPIC)
    run_dag(airflow, {"batch_size": size, "batches": 1, "seed": seed}, "avro")
    messages = [
        m
        for m in consume_range(kafka_servers, TOPIC, before, partition_ends(kafka_servers, TOPIC))
        if m.value["_meta"]["seed"] == seed
    ]
    assert len(messages) >= size and len({m.key for m in messages}) == size
    current = id_of(SUBJECT, ops.schema_file(SUBJECT).read_text().strip())
    for m in messages:
        assert ops.schema_id_of(m.raw) == current, f"{m.key}: not Avro with schema id {current}"
        assert m.value["login"]["uuid"] == m.key
        assert isinstance(m.value["location"]["postcode"], str)
    wait_cassandra(cassandra, {m.key for m in messages})


def test_evolved_schema_registered_while_the_stream_runs_lands_both_versions(
    airflow, cassandra, kafka_servers, source_url
):
    v1_id = id_of(SUBJECT, ops.schema_file(SUBJECT).read_text().strip())
    evolved = evolved_schema()
    answer = registry("POST", f"/subjects/{SUBJECT}/versions", writer=True, body={"schema": evolved})
    assert answer.status_code == 200, f"the compatible evolution was refused: {answer.text}"
    v2_id = int(answer.json()["id"])
    assert v2_id != v1_id
    assert v2_id in versions_with_ids(SUBJECT).values()

    # Users written with the evolved schema, straight to the topic (auto-registration off: looked up).
    seed2, size = _seed("v2"), 30
    (users,) = source_pages(source_url, seed2, size, 1)
    serializer = AvroSerializer(
        SchemaRegistryClient(ops.registry_client_conf()),
        evolved,
        conf={"auto.register.schemas": False, "use.latest.version": False},
    )
    schema = json.loads(evolved)
    context = SerializationContext(TOPIC, MessageField.VALUE)
    values = []
    for user in users:
        record = {**to_avro_record(sanitize(user), meta_of(seed2), schema), "e2e_note": "written with v2"}
        values.append((uid(user), serializer(record, context)))
    assert {ops.schema_id_of(v) for _, v in values} == {v2_id}
    before = partition_ends(kafka_servers, TOPIC)
    produce(values)

    # And users from the DAG, whose producer still writes v1.
    seed1 = _seed("v1")
    run_dag(airflow, {"batch_size": size, "batches": 1, "seed": seed1}, "v1")
    (users1,) = source_pages(source_url, seed1, size, 1)

    written = consume_range(kafka_servers, TOPIC, before, partition_ends(kafka_servers, TOPIC))
    ids_by_seed = {seed2: set(), seed1: set()}
    for m in written:
        if m.value["_meta"]["seed"] in ids_by_seed:
            ids_by_seed[m.value["_meta"]["seed"]].add(ops.schema_id_of(m.raw))
    assert ids_by_seed == {seed2: {v2_id}, seed1: {v1_id}}

    both = {uid(u): u for u in users + users1}
    wait_cassandra(cassandra, set(both))
    rows = cassandra_rows(cassandra, set(both))
    for user_id, user in both.items():
        row, want = rows[user_id], expected_row(user)
        got = {k: (str(getattr(row, k)) if k == "id" else getattr(row, k)) for k in want}
        assert got == want, f"user {user_id}"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("a new field without a default", "e2e_required"),
        ("location.postcode from string to int", "postcode"),
    ],
)
def test_incompatible_change_is_refused_and_the_topic_keeps_flowing(airflow, cassandra, change, field):
    schema = json.loads(schema_v1())
    if field == "e2e_required":
        schema["fields"].append({"name": "e2e_required", "type": "string"})
    else:
        location = next(f for f in schema["fields"] if f["name"] == "location")
        record = next(t for t in location["type"] if isinstance(t, dict))
        postcode = next(f for f in record["fields"] if f["name"] == "postcode")
        postcode["type"] = ["null", "int"]
    before = versions_with_ids(SUBJECT)
    answer = registry(
        "POST", f"/subjects/{SUBJECT}/versions", writer=True, body={"schema": json.dumps(schema)}
    )
    assert answer.status_code == 409, f"{change} was accepted: {answer.text}"
    assert "ncompatible" in answer.json()["message"]
    assert versions_with_ids(SUBJECT) == before

    seed, size = _seed("flowing"), 20
    run_dag(airflow, {"batch_size": size, "batches": 1, "seed": seed}, "flowing")
    counted = lambda: cassandra_seed_count(cassandra, seed) == size  # noqa: E731
    wait_for(f"{size} users of seed {seed} in Cassandra", counted, 300, interval=5)


def test_registry_restart_keeps_every_schema_and_id():
    subjects = sorted(registry("GET", "/subjects").json())
    assert {SUBJECT, DLQ_SUBJECT} <= set(subjects)
    before = {s: versions_with_ids(s) for s in subjects}
    texts = {
        i: registry("GET", f"/schemas/ids/{i}").json()["schema"] for v in before.values() for i in v.values()
    }

    ops.ssh(ops.inventory().first("registry").ip, "sudo systemctl restart apicurio-registry")
    time.sleep(2)
    wait_for("the registry to answer again", lambda: registry("GET", "/subjects").status_code == 200, 180)

    assert sorted(registry("GET", "/subjects").json()) == subjects
    assert {s: versions_with_ids(s) for s in subjects} == before
    assert {i: registry("GET", f"/schemas/ids/{i}").json()["schema"] for i in texts} == texts


def test_legacy_json_lands_and_undecodable_values_are_dead_lettered(cassandra, source_url):
    seed = _seed("legacy")
    (users,) = source_pages(source_url, seed, 10, 1)
    # Values as the producer wrote them before the registry: the sanitized user plus _meta, as JSON.
    legacy = [(uid(u), json.dumps({**sanitize(u), "_meta": meta_of(seed)}).encode()) for u in users]
    v1_id = id_of(SUBJECT, ops.schema_file(SUBJECT).read_text().strip())
    unknown, not_avro, neither = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    broken = [
        (unknown, b"\x00" + (2**31 - 7).to_bytes(4, "big") + b"\x02\x08male"),
        (not_avro, b"\x00" + v1_id.to_bytes(4, "big") + b"\xff\xff\xff"),
        (neither, b"\x07 not a framed value"),
    ]
    produce(legacy + broken)

    wait_cassandra(cassandra, {uid(u) for u in users})
    rows = cassandra_rows(cassandra, {uid(u) for u in users})
    for user in users:
        want = expected_row(user)
        got = {
            k: (str(getattr(rows[uid(user)], k)) if k == "id" else getattr(rows[uid(user)], k)) for k in want
        }
        assert got == want, f"legacy user {uid(user)}"

    keys = {unknown, not_avro, neither}
    letters = wait_for("3 dead letters", lambda: len(d := dead_letters(cassandra, keys)) == 3 and d, 300)
    assert {k: r.reason for k, r in letters.items()} == {
        unknown: "unknown_schema_id",
        not_avro: "not_avro",
        neither: "not_avro",
    }
    assert letters[neither].raw_value.startswith("base64:")
