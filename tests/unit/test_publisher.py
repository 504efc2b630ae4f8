"""The outbox publisher: rows are marked published only after Kafka confirmed them (fake producer)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg2
import pytest

from producer.landing import Batch, land_batch
from producer.publisher import (
    Pending,
    PublishError,
    message_value,
    producer_config,
    publish_pending,
)
from producer.source.generator import UserGenerator
from producer.tasks import publish
from producer.validation import validate_records


class FakeMessage:
    def __init__(self, key: bytes, value: bytes) -> None:
        self._key, self._value = key, value

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


class FakeProducer:
    """Queues messages; flush() reports each delivery (an error for keys in `fail`, none for `lost`)."""

    def __init__(
        self,
        fail: set[str] = frozenset(),
        lost: set[str] = frozenset(),
        before_flush: Callable[[], None] | None = None,
        buffer_full_once: bool = False,
    ) -> None:
        self.fail, self.lost, self.before_flush = fail, lost, before_flush
        self.queued: list[tuple[str, bytes, bytes, Any]] = []
        self.buffer_full_once = buffer_full_once
        self.flushed = False

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        if self.buffer_full_once:
            self.buffer_full_once = False
            raise BufferError("queue full")
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
            callback("KafkaError{code=MSG_TIMED_OUT}" if uid in self.fail else None, FakeMessage(key, value))
        return remaining


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


def test_only_confirmed_rows_are_marked_after_flush(pg_conn: Any, pg_dsn: str) -> None:
    ids = landed(pg_conn, 10)
    fail, lost = set(ids[:2]), {ids[2]}
    observer = psycopg2.connect(pg_dsn)

    def nothing_marked_yet() -> None:
        with observer.cursor() as cur:
            cur.execute("SELECT count(*) FROM users_outbox WHERE published_at IS NOT NULL OR attempts > 0")
            assert cur.fetchone()[0] == 0
        observer.rollback()

    producer = FakeProducer(fail=fail, lost=lost, before_flush=nothing_marked_yet)
    result = publish_pending(pg_conn, producer, "users_created", flush_timeout=1.0)
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


def test_next_run_sends_only_unpublished(pg_conn: Any) -> None:
    ids = landed(pg_conn, 6)
    publish_pending(pg_conn, FakeProducer(fail={ids[0]}), "users_created")
    retry = FakeProducer()
    result = publish_pending(pg_conn, retry, "users_created")
    assert [key.decode() for _t, key, _v, _c in retry.queued] == [ids[0]]
    assert result.delivered == [ids[0]]
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 0
    empty = FakeProducer()
    assert publish_pending(pg_conn, empty, "users_created").selected == 0
    assert empty.queued == []


def test_publish_drains_the_whole_outbox(pg_conn: Any, caplog) -> None:
    """Rows an earlier (failed) run left are sent with this run's: publish takes no batch ids."""
    earlier = landed(pg_conn, 3, batch_id="b-old", run_id="run-old", page=1)
    current = landed(pg_conn, 2, batch_id="b-new", run_id="run-new", page=2)
    producer = FakeProducer()
    with caplog.at_level(logging.INFO, logger="producer"):
        result = publish(pg_conn, producer, "users_created")
    assert "published 5 of 5 pending users to users_created (0 failed)" in caplog.text
    assert sorted(result.delivered) == sorted(earlier + current)
    assert {json.loads(v)["_meta"]["batch_id"] for _t, _k, v, _c in producer.queued} == {"b-old", "b-new"}
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 0


def test_messages_keyed_by_id_with_meta(pg_conn: Any) -> None:
    ids = landed(pg_conn, 3)
    producer = FakeProducer()
    publish_pending(pg_conn, producer, "users_created")
    assert {t for t, _k, _v, _c in producer.queued} == {"users_created"}
    for _topic, key, value, _cb in producer.queued:
        body = json.loads(value)
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


def test_buffer_full_is_retried(pg_conn: Any) -> None:
    landed(pg_conn, 2)
    producer = FakeProducer(buffer_full_once=True)
    assert len(publish_pending(pg_conn, producer, "users_created").delivered) == 2


def test_publish_task_raises_when_some_fail(pg_conn: Any) -> None:
    ids = landed(pg_conn, 4)
    with pytest.raises(PublishError, match=r"1 of 4 messages not confirmed by Kafka \(kept in the outbox\)"):
        publish(pg_conn, FakeProducer(fail={ids[3]}), "users_created")
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
    )
    body = json.loads(message_value(item).decode("utf-8"))
    assert body["name"]["first"] == "Zoë"
    assert body["_meta"] == {
        "batch_id": "b9",
        "fetched_at": "2026-01-02T03:04:05.678Z",
        "source": "real",
        "seed": None,
    }
