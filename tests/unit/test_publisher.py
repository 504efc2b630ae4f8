"""The outbox publisher: rows are marked published only after Kafka confirmed them (fake producer).

Values are Avro written with the schema file of users_created-value, looked up in confluent-kafka's mock
registry (where the tests register it, as Ansible does in the real one).
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import logging
import shutil
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import psycopg2
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.common._httpx_compat import httpx
from confluent_kafka.schema_registry.error import SchemaRegistryError

from producer.avro import SCHEMAS_DIR, latest_schema_file, make_value_serializer, read_schema, registry_client
from producer.landing import Batch, land_batch
from producer.publisher import (
    MAX_ATTEMPTS,
    Pending,
    PublishError,
    ValueEncoder,
    avro_encoder,
    message_value,
    producer_config,
    publish_pending,
    registry_encoder,
    send,
)
from producer.source.generator import UserGenerator
from producer.tasks import publish
from producer.validation import validate_records

TOPIC = "users_created"
SUBJECT = "users_created-value"
REGISTRY = {"url": "mock://registry"}
SCHEMA_TEXT, SCHEMA = read_schema(latest_schema_file(SUBJECT))


class FakeMessage:
    def __init__(self, key: bytes, value: bytes) -> None:
        self._key, self._value = key, value

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


class FakeProducer:
    """Queues messages; flush() reports each delivery: a timeout for keys in `fail`, the broker refusing
    keys in `refuse`, no report for `lost`; produce() itself refuses keys in `too_large`."""

    def __init__(
        self,
        fail: set[str] = frozenset(),
        lost: set[str] = frozenset(),
        before_flush: Callable[[], None] | None = None,
        buffer_full_once: bool = False,
        too_large: set[str] = frozenset(),
        refuse: set[str] = frozenset(),
    ) -> None:
        self.fail, self.lost, self.before_flush, self.too_large = fail, lost, before_flush, too_large
        self.refuse = refuse
        self.queued: list[tuple[str, bytes, bytes, Any]] = []
        self.buffer_full_once = buffer_full_once
        self.flushed = False

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        if self.buffer_full_once:
            self.buffer_full_once = False
            raise BufferError("queue full")
        if key.decode() in self.too_large:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.queued.append((topic, key, value, on_delivery))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        if self.before_flush:
            self.before_flush()
        self.flushed = True
        remaining = 0
        for _topic, key, value, callback in self.queued:
            uid = key.decode()
            if uid in self.lost:
                remaining += 1
                continue
            callback(self.delivery_error(uid), FakeMessage(key, value))
        return remaining

    def delivery_error(self, uid: str) -> KafkaError | None:
        if uid in self.fail:
            return KafkaError(KafkaError._MSG_TIMED_OUT)
        if uid in self.refuse:
            return KafkaError(KafkaError.INVALID_RECORD)
        return None

    def keys(self) -> list[str]:
        return [key.decode() for _t, key, _v, _c in self.queued]


def mock_registry(*texts: str) -> tuple[Any, list[int]]:
    """A mock registry holding `texts` as successive versions of the subject; their ids."""
    client = registry_client(REGISTRY)
    return client, [client.register_schema(SUBJECT, Schema(text.strip(), "AVRO")) for text in texts]


@pytest.fixture
def encode() -> ValueEncoder:
    """What the DAG builds: the newest schema file of users_created-value, found in the registry."""
    client, _ids = mock_registry(SCHEMA_TEXT)
    return registry_encoder(REGISTRY, TOPIC, client=client)


def decode(value: bytes, schema: dict[str, Any] = SCHEMA) -> Any:
    assert value[0] == 0, "not the Confluent wire format"
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), fastavro.parse_schema(schema))


def scalar(conn: Any, sql: str) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql)
        value = cur.fetchone()[0]
    conn.commit()
    return value


def landed(conn: Any, count: int, batch_id: str = "b1", run_id: str = "run", page: int = 1) -> list[str]:
    users = validate_records(UserGenerator().page("pub", page, count)).accepted
    when = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    land_batch(conn, Batch(batch_id, run_id, "pub", page, count, "local", None, when, users, []))
    return [u["login"]["uuid"] for u in users]


def test_only_confirmed_rows_are_marked_after_flush(pg_conn: Any, pg_dsn: str, encode: ValueEncoder) -> None:
    ids = landed(pg_conn, 10)
    fail, lost = set(ids[:2]), {ids[2]}
    observer = psycopg2.connect(pg_dsn)

    def nothing_marked_yet() -> None:
        with observer.cursor() as cur:
            cur.execute("SELECT count(*) FROM users_outbox WHERE published_at IS NOT NULL OR attempts > 0")
            assert cur.fetchone()[0] == 0
        observer.rollback()

    producer = FakeProducer(fail=fail, lost=lost, before_flush=nothing_marked_yet)
    result = publish_pending(pg_conn, producer, TOPIC, encode, flush_timeout=1.0)
    observer.close()
    assert producer.flushed
    assert result.selected == 10
    assert sorted(result.delivered) == sorted(set(ids) - fail - lost)
    assert set(result.failed) == fail | lost
    assert "MSG_TIMED_OUT" in result.failed[ids[0]]
    assert "no delivery report" in result.failed[ids[2]]
    published = scalar(
        pg_conn, "SELECT array_agg(user_id::text) FROM users_outbox WHERE published_at IS NOT NULL"
    )
    assert sorted(published) == sorted(result.delivered)
    assert (
        scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL AND attempts = 1") == 3
    )
    assert "MSG_TIMED_OUT" in scalar(
        pg_conn, f"SELECT last_error FROM users_outbox WHERE user_id = '{ids[0]}'"
    )


def test_next_run_sends_only_unpublished(pg_conn: Any, encode: ValueEncoder) -> None:
    ids = landed(pg_conn, 6)
    publish_pending(pg_conn, FakeProducer(fail={ids[0]}), TOPIC, encode)
    retry = FakeProducer()
    result = publish_pending(pg_conn, retry, TOPIC, encode)
    assert [key.decode() for _t, key, _v, _c in retry.queued] == [ids[0]]
    assert result.delivered == [ids[0]]
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 0
    empty = FakeProducer()
    assert publish_pending(pg_conn, empty, TOPIC, encode).selected == 0
    assert empty.queued == []


def test_publish_drains_the_whole_outbox(pg_conn: Any, caplog, encode: ValueEncoder) -> None:
    """Rows an earlier (failed) run left are sent with this run's: publish takes no batch ids."""
    earlier = landed(pg_conn, 3, batch_id="b-old", run_id="run-old", page=1)
    current = landed(pg_conn, 2, batch_id="b-new", run_id="run-new", page=2)
    producer = FakeProducer()
    with caplog.at_level(logging.INFO, logger="producer"):
        result = publish(pg_conn, producer, TOPIC, encode)
    assert "published 5 of 5 pending users to users_created (0 failed)" in caplog.text
    assert sorted(result.delivered) == sorted(earlier + current)
    assert {decode(v)["_meta"]["batch_id"] for _t, _k, v, _c in producer.queued} == {"b-old", "b-new"}
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 0


def test_messages_keyed_by_id_with_meta(pg_conn: Any, encode: ValueEncoder) -> None:
    ids = landed(pg_conn, 3)
    producer = FakeProducer()
    publish_pending(pg_conn, producer, TOPIC, encode)
    assert {t for t, _k, _v, _c in producer.queued} == {"users_created"}
    for _topic, key, value, _cb in producer.queued:
        body = decode(value)
        assert key.decode() == body["login"]["uuid"]
        assert body["_meta"] == {
            "batch_id": "b1",
            "fetched_at": "2026-11-26T12:00:00.000Z",
            "source": "local",
            "seed": "pub",
        }
        assert set(body["login"]) == {"uuid", "username"}
        assert isinstance(body["location"]["postcode"], str)
    assert sorted(k.decode() for _t, k, _v, _c in producer.queued) == sorted(ids)


def test_buffer_full_is_retried(pg_conn: Any, encode: ValueEncoder) -> None:
    landed(pg_conn, 2)
    producer = FakeProducer(buffer_full_once=True)
    assert len(publish_pending(pg_conn, producer, TOPIC, encode).delivered) == 2


def test_publish_task_raises_when_some_fail(pg_conn: Any, encode: ValueEncoder) -> None:
    ids = landed(pg_conn, 4)
    with pytest.raises(
        PublishError, match=r"1 of 4 messages not serialized or not confirmed by Kafka \(kept in the outbox\)"
    ):
        publish(pg_conn, FakeProducer(fail={ids[3]}), TOPIC, encode)
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NOT NULL") == 3


def test_config_enforces_guarantees() -> None:
    config = producer_config("10.77.0.26:9092", {"acks": "1", "enable.idempotence": False, "linger.ms": 5})
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["linger.ms"] == 5
    assert config["bootstrap.servers"] == "10.77.0.26:9092"
    with pytest.raises(ValueError, match=r"bootstrap\.servers is empty"):
        producer_config("")


def test_real_confluent_producer_accepts_config() -> None:
    from producer.publisher import make_producer

    producer = make_producer(producer_config("127.0.0.1:1"))
    assert producer.flush(0) == 0


def test_message_value_utc() -> None:
    item = Pending(
        "0b6f6b0e-2f3c-4a57-9a53-2d1a3b4c5d6e",
        {"login": {"uuid": "0b6f6b0e-2f3c-4a57-9a53-2d1a3b4c5d6e"}, "name": {"first": "Zoë"}},
        "b9",
        datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "real",
        None,
        1,
    )
    body = message_value(item, SCHEMA)
    assert body["name"] == {"title": None, "first": "Zoë", "last": None}
    assert body["_meta"] == {
        "batch_id": "b9",
        "fetched_at": "2026-01-02T03:04:05.678Z",
        "source": "real",
        "seed": None,
    }
    client, _ids = mock_registry(SCHEMA_TEXT)
    serialize = make_value_serializer(REGISTRY, SUBJECT, SCHEMA_TEXT, client=client)
    assert decode(avro_encoder(SCHEMA, serialize)(item, TOPIC))["name"]["first"] == "Zoë"


def pending(uid: str, payload: dict[str, Any]) -> Pending:
    return Pending(uid, payload, "b1", datetime(2026, 11, 26, 12, 0, tzinfo=UTC), "local", "pub", 1)


def test_a_row_that_cannot_be_serialized_fails_alone_in_send(encode: ValueEncoder) -> None:
    users = validate_records(UserGenerator().page("send", 1, 3)).accepted
    items = [pending(u["login"]["uuid"], u) for u in users]
    broken = dataclasses.replace(items[1], payload={**items[1].payload, "login": "not a record"})
    producer = FakeProducer()
    outcomes: dict[str, str | None] = {}
    for item in (items[0], broken, items[2]):
        send(producer, TOPIC, item, outcomes, encode)
    assert [k.decode() for _t, k, _v, _c in producer.queued] == [items[0].user_id, items[2].user_id]
    assert outcomes == {broken.user_id: outcomes[broken.user_id]}
    assert str(outcomes[broken.user_id]).startswith("serialize: ")
    assert "login" in str(outcomes[broken.user_id])
    producer.flush(1.0)
    assert outcomes[items[0].user_id] is None and outcomes[items[2].user_id] is None


def test_a_row_that_cannot_be_serialized_stays_in_the_outbox(pg_conn: Any, encode: ValueEncoder) -> None:
    ids = landed(pg_conn, 5)
    with pg_conn.cursor() as cur:
        cur.execute(
            "UPDATE users_raw SET payload = jsonb_set(payload, '{login}', '\"broken\"') WHERE id = %s",
            (ids[2],),
        )
    pg_conn.commit()
    producer = FakeProducer()
    with pytest.raises(PublishError, match=rf"1 of 5 messages .* {ids[2]}: serialize: "):
        publish(pg_conn, producer, TOPIC, encode)
    assert sorted(k.decode() for _t, k, _v, _c in producer.queued) == sorted(set(ids) - {ids[2]})
    assert scalar(
        pg_conn, "SELECT array_agg(user_id::text) FROM users_outbox WHERE published_at IS NULL"
    ) == [ids[2]]
    assert scalar(pg_conn, f"SELECT last_error FROM users_outbox WHERE user_id = '{ids[2]}'").startswith(
        "serialize: "
    )


def test_a_message_produce_refuses_fails_alone(pg_conn: Any, encode: ValueEncoder) -> None:
    ids = landed(pg_conn, 4)
    producer = FakeProducer(too_large={ids[0]})
    result = publish_pending(pg_conn, producer, TOPIC, encode)
    assert sorted(result.delivered) == sorted(ids[1:])
    assert set(result.failed) == {ids[0]}
    assert result.failed[ids[0]].startswith("produce: ")
    assert "MSG_SIZE_TOO_LARGE" in result.failed[ids[0]]
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 1


def test_registry_encoder_writes_with_the_newest_schema_file(tmp_path: Path) -> None:
    """A v2 file (a new optional field) is what the producer writes with, under v2's id."""
    directory = tmp_path / SUBJECT
    directory.mkdir()
    shutil.copy(SCHEMAS_DIR / SUBJECT / "v1.avsc", directory / "v1.avsc")
    v2 = json.loads(SCHEMA_TEXT)
    v2["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    (directory / "v2.avsc").write_text(json.dumps(v2, indent=2) + "\n")
    client, (id1, id2) = mock_registry(SCHEMA_TEXT, (directory / "v2.avsc").read_text())
    assert id1 != id2
    user = validate_records(UserGenerator().page("v2", 1, 1)).accepted[0]
    value = registry_encoder(REGISTRY, TOPIC, schemas_dir=tmp_path, client=client)(
        pending(user["login"]["uuid"], {**user, "note": 7}), TOPIC
    )
    assert struct.unpack(">I", value[1:5])[0] == id2
    assert decode(value, v2)["note"] == "7"
    assert decode(value, v2)["login"]["uuid"] == user["login"]["uuid"]


def test_the_real_producer_refusing_a_large_message_fails_that_row_only(encode: ValueEncoder) -> None:
    """librdkafka refuses a value over message.max.bytes in produce() itself (no broker needed)."""
    from producer.publisher import make_producer

    users = validate_records(UserGenerator().page("large", 1, 2)).accepted
    small, large = (pending(u["login"]["uuid"], u) for u in users)
    large = dataclasses.replace(large, payload={**large.payload, "email": "x" * 5000})
    producer = make_producer(producer_config("127.0.0.1:1", {"message.max.bytes": 2000}))
    outcomes: dict[str, str | None] = {}
    for item in (large, small):
        send(producer, TOPIC, item, outcomes, encode)
    assert list(outcomes) == [large.user_id]
    assert str(outcomes[large.user_id]).startswith("produce: ")
    assert "MSG_SIZE_TOO_LARGE" in str(outcomes[large.user_id])
    assert len(producer) == 1  # the small one is queued
    producer.purge()


# --- the attempts cap (defect 1), versions (defect 3) ------------------------------------------------------


def outbox_row(conn: Any, uid: str) -> tuple[Any, ...]:
    """(published, parked, attempts, last_error, batch_id) of one outbox row."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT published_at IS NOT NULL, parked_at IS NOT NULL, attempts, last_error, batch_id "
            "FROM users_outbox WHERE user_id = %s",
            (uid,),
        )
        row = cur.fetchone()
    conn.commit()
    return row


def break_serialization(conn: Any, uid: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE users_raw SET payload = jsonb_set(payload, '{login}', '\"broken\"') WHERE id = %s", (uid,)
        )
    conn.commit()


def test_the_default_attempts_cap() -> None:
    assert MAX_ATTEMPTS == 5
    with pytest.raises(ValueError, match="max_attempts must be >= 1, got 0"):
        publish_pending(None, FakeProducer(), TOPIC, lambda item, topic: b"", max_attempts=0)


@pytest.mark.parametrize("refusal", ["produce", "delivery", "serialize"])
def test_a_row_refused_max_attempts_times_is_parked(pg_conn: Any, encode: ValueEncoder, refusal: str) -> None:
    """Defect 1: the row fails the runs that try it, is parked at the cap with its reason and attempts,
    and then no run selects it again (they succeed); the confirmed rows are sent once, never again."""
    ids = landed(pg_conn, 4)
    bad = ids[1]
    if refusal == "serialize":
        break_serialization(pg_conn, bad)
    refused = {"produce": {"too_large": {bad}}, "delivery": {"refuse": {bad}}, "serialize": {}}[refusal]
    sent: list[str] = []
    for run in (1, 2, 3):
        producer = FakeProducer(**refused)
        with pytest.raises(PublishError) as err:
            publish(pg_conn, producer, TOPIC, encode, max_attempts=3)
        sent += producer.keys()
        assert ("parked after 3 attempts" in str(err.value)) == (run == 3), str(err.value)
        assert outbox_row(pg_conn, bad)[:3] == (False, run == 3, run)
    published, parked, attempts, reason, _batch = outbox_row(pg_conn, bad)
    assert (published, parked, attempts) == (False, True, 3)
    expected = {"produce": "produce: ", "delivery": "", "serialize": "serialize: "}[refusal]
    assert reason.startswith(expected)
    assert {"produce": "MSG_SIZE_TOO_LARGE", "delivery": "INVALID_RECORD", "serialize": "login"}[
        refusal
    ] in reason
    # parked: the next runs neither select nor send it, and do not fail
    for _ in range(2):
        later = FakeProducer(**refused)
        result = publish(pg_conn, later, TOPIC, encode, max_attempts=3)
        assert (result.selected, later.queued, result.failed) == (0, [], {})
    assert outbox_row(pg_conn, bad)[:3] == (False, True, 3)
    # every other row was confirmed by the first run and never sent again
    others = [uid for uid in ids if uid != bad]
    assert sorted(uid for uid in sent if uid != bad) == sorted(others)
    assert all(outbox_row(pg_conn, uid)[:3] == (True, False, 1) for uid in others)


def test_a_parked_user_landed_again_by_a_newer_batch_is_queued_again(
    pg_conn: Any, encode: ValueEncoder
) -> None:
    ids = landed(pg_conn, 2)
    with pytest.raises(PublishError, match="1 of them parked after 1 attempts"):
        publish(pg_conn, FakeProducer(too_large={ids[0]}), TOPIC, encode, max_attempts=1)
    assert outbox_row(pg_conn, ids[0])[:3] == (False, True, 1)
    landed(pg_conn, 2, batch_id="b2", run_id="run-2")
    assert outbox_row(pg_conn, ids[0]) == (False, False, 0, None, "b2")
    producer = FakeProducer()
    assert sorted(publish(pg_conn, producer, TOPIC, encode).delivered) == sorted(ids)


def test_failures_that_are_kafkas_never_park(pg_conn: Any, encode: ValueEncoder) -> None:
    """Timeouts and missing delivery reports (an outage) count attempts and fail the run, but never park:
    once Kafka answers again, the rows are sent."""
    ids = landed(pg_conn, 3)
    timed_out, lost = ids[0], ids[1]
    for run in range(1, 5):
        with pytest.raises(PublishError, match=r"2 of \d messages .*\(kept in the outbox\): "):
            publish(pg_conn, FakeProducer(fail={timed_out}, lost={lost}), TOPIC, encode, max_attempts=2)
        assert outbox_row(pg_conn, timed_out)[:3] == (False, False, run)
        assert outbox_row(pg_conn, lost)[:3] == (False, False, run)
    assert "MSG_TIMED_OUT" in outbox_row(pg_conn, timed_out)[3]
    assert "no delivery report" in outbox_row(pg_conn, lost)[3]
    producer = FakeProducer()
    result = publish(pg_conn, producer, TOPIC, encode, max_attempts=2)
    assert sorted(producer.keys()) == sorted([timed_out, lost])
    assert result.failed == {} and outbox_row(pg_conn, lost)[:3] == (True, False, 5)


def test_a_version_queued_while_the_older_is_sent_stays_pending(
    pg_conn: Any, pg_dsn: str, encode: ValueEncoder
) -> None:
    """Defect 3: the mark matches the version sent; the newer version landed meanwhile is sent next run,
    and an older version's failure does not count against the newer one."""
    ids = landed(pg_conn, 4)
    other = psycopg2.connect(pg_dsn)
    try:

        def newer_version_lands() -> None:
            users = validate_records(UserGenerator().page("pub", 1, 2)).accepted
            when = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
            land_batch(other, Batch("b2", "run-2", "pub", 1, 2, "local", None, when, users, []))

        producer = FakeProducer(fail={ids[1]}, before_flush=newer_version_lands)
        result = publish_pending(pg_conn, producer, TOPIC, encode)
    finally:
        other.close()
    assert sorted(result.delivered) == sorted([ids[0], ids[2], ids[3]])
    # ids[0] was sent as b1 and confirmed, but b2's version is what the outbox holds now: not published
    assert outbox_row(pg_conn, ids[0]) == (False, False, 0, None, "b2")
    assert outbox_row(pg_conn, ids[1]) == (False, False, 0, None, "b2")
    assert outbox_row(pg_conn, ids[2])[:3] == (True, False, 1)
    nxt = FakeProducer()
    assert sorted(publish_pending(pg_conn, nxt, TOPIC, encode).delivered) == sorted(ids[:2])
    assert {decode(v)["_meta"]["batch_id"] for _t, _k, v, _c in nxt.queued} == {"b2"}
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 0


def test_make_query_lists_the_parked_rows(pg_conn: Any, encode: ValueEncoder, monkeypatch, capsys) -> None:
    """scripts/pipeline.py's query part, its SQL run against the landing schema instead of over SSH."""
    scripts = str(Path(__file__).resolve().parents[2] / "scripts")
    monkeypatch.syspath_prepend(scripts)
    pipeline = importlib.import_module("pipeline")

    def local_psql(sql: str) -> list[list[str]]:
        with pg_conn.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
        pg_conn.commit()
        return [["" if v is None else str(v) for v in row] for row in rows]

    monkeypatch.setattr(pipeline, "psql", local_psql)
    ids = landed(pg_conn, 5)
    break_serialization(pg_conn, ids[4])
    for _ in range(2):
        with pytest.raises(PublishError):
            publish(pg_conn, FakeProducer(too_large=set(ids[:2])), TOPIC, encode, max_attempts=2)
    assert pipeline.hop_counts(None) == {
        "fetched": 5,
        "rejected": 0,
        "landed": 5,
        "published": 2,
        "parked": 3,
    }
    assert pipeline.hop_counts("pub")["parked"] == 3
    pipeline.print_parked(3)
    out = capsys.readouterr().out
    assert "Parked outbox rows (3: refused at every attempt, no longer sent):" in out
    assert "       2 x (attempts 2) produce: KafkaError{code=MSG_SIZE_TOO_LARGE" in out
    assert "       1 x (attempts 2) serialize: " in out
    pipeline.print_parked(0)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "error",
    [SchemaRegistryError(503, 50301, "unavailable"), httpx.ConnectError("connection refused")],
    ids=["registry-error", "registry-unreachable"],
)
def test_a_registry_outage_never_parks(pg_conn: Any, encode: ValueEncoder, error: Exception) -> None:
    ids = landed(pg_conn, 2)

    def registry_down(item: Pending, topic: str) -> bytes:
        raise error

    for run in (1, 2, 3):
        with pytest.raises(PublishError, match=r"2 of 2 messages .* serialize: "):
            publish(pg_conn, FakeProducer(), TOPIC, registry_down, max_attempts=1)
        assert outbox_row(pg_conn, ids[0])[:3] == (False, False, run)
    assert sorted(publish(pg_conn, FakeProducer(), TOPIC, encode, max_attempts=1).delivered) == sorted(ids)
