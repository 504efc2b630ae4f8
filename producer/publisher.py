"""Outbox publisher: unpublished users -> the Kafka users topic (key = user id, acks=all, idempotent).

The topic and the brokers are the caller's (the DAG reads them from what Ansible renders in Airflow).
The whole outbox is drained each time: rows left by an earlier failed run are sent too.

The value is Avro in the Confluent wire format, written with the newest schema file of the topic's
subject and the id the Schema Registry gives it (producer.avro); the key stays the user id as text. A row
that cannot be serialized (or that produce() refuses, e.g. too large) fails alone: it stays in the outbox
with its reason and the other rows are sent.

A row's published_at is set only after the broker confirmed that message (per-message delivery callback,
after flush). A crash between delivery and the mark re-sends the message on the next run (at-least-once;
the Cassandra upsert on id makes it harmless) but never loses it.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import KafkaException

from producer.avro import (
    SCHEMAS_DIR,
    ValueSerializer,
    latest_schema_file,
    make_value_serializer,
    read_schema,
    to_avro_record,
    value_subject,
)

log = logging.getLogger(__name__)

# Delivery guarantees the contract requires; overrides cannot weaken them.
REQUIRED_CONFIG: dict[str, Any] = {"enable.idempotence": True, "acks": "all"}
DEFAULT_CONFIG: dict[str, Any] = {
    "linger.ms": 20,
    "compression.type": "lz4",
    "message.timeout.ms": 120_000,
    "client.id": "correnteza-producer",
}

SELECT_PENDING = """
SELECT r.id::text, r.payload, r.batch_id, r.fetched_at, r.source, r.seed
FROM users_outbox o JOIN users_raw r ON r.id = o.user_id
WHERE o.published_at IS NULL
ORDER BY o.created_at, o.user_id
LIMIT %(limit)s
"""
MARK_PUBLISHED = """
UPDATE users_outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL
WHERE user_id = ANY(%s::uuid[]) AND published_at IS NULL
"""
MARK_FAILED = """
UPDATE users_outbox AS o SET attempts = o.attempts + 1, last_error = v.error
FROM (VALUES %s) AS v(user_id, error) WHERE o.user_id = v.user_id::uuid
"""


class KafkaProducer(Protocol):
    """The part of confluent_kafka.Producer the publisher uses (tests pass a fake)."""

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...


class PublishError(RuntimeError):
    """Some messages were not confirmed; they stay unpublished in the outbox for the next attempt."""


@dataclass(frozen=True)
class Pending:
    user_id: str
    payload: dict[str, Any]
    batch_id: str
    fetched_at: datetime
    source: str
    seed: str | None


@dataclass
class PublishResult:
    selected: int = 0
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def producer_config(bootstrap_servers: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka settings: defaults, then overrides, then the required guarantees (idempotence, acks=all)."""
    if not bootstrap_servers:
        raise ValueError("bootstrap.servers is empty: set it in the Kafka connection's extra")
    return {**DEFAULT_CONFIG, **(overrides or {}), "bootstrap.servers": bootstrap_servers, **REQUIRED_CONFIG}


def make_producer(config: Mapping[str, Any]) -> KafkaProducer:
    from confluent_kafka import Producer

    return Producer(dict(config))


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_meta(item: Pending) -> dict[str, Any]:
    """The contract's _meta: where and when the user was fetched."""
    return {
        "batch_id": item.batch_id,
        "fetched_at": iso_utc(item.fetched_at),
        "source": item.source,
        "seed": item.seed,
    }


def message_value(item: Pending, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's value as a record of `schema`: the sanitized user plus _meta."""
    return to_avro_record(item.payload, message_meta(item), schema)


# (row, topic) -> the message value's bytes
ValueEncoder = Callable[[Pending, str], bytes]


def avro_encoder(schema: Mapping[str, Any], serialize: ValueSerializer) -> ValueEncoder:
    """An encoder writing message_value(row, schema) with `serialize` (make_value_serializer)."""

    def encode(item: Pending, topic: str) -> bytes:
        return serialize(message_value(item, schema), topic)

    return encode


def registry_encoder(
    registry_conf: Mapping[str, Any],
    topic: str,
    schemas_dir: Path = SCHEMAS_DIR,
    client: Any = None,
) -> ValueEncoder:
    """The encoder of `topic`'s values: its subject's newest schema file, looked up in the registry."""
    subject = value_subject(topic)
    path = latest_schema_file(subject, schemas_dir)
    text, schema = read_schema(path)
    log.info("values of %s: schema %s (subject %s)", topic, path.name, subject)
    return avro_encoder(schema, make_value_serializer(registry_conf, subject, text, client=client))


def select_pending(conn: Any, limit: int) -> list[Pending]:
    """The oldest unpublished outbox rows (any batch, any run), at most `limit`."""
    with conn.cursor() as cur:
        cur.execute(SELECT_PENDING, {"limit": limit})
        rows = cur.fetchall()
    return [
        Pending(
            uid, payload if isinstance(payload, dict) else json.loads(payload), batch, fetched, source, seed
        )
        for uid, payload, batch, fetched, source, seed in rows
    ]


def _on_delivery(outcomes: dict[str, str | None], uid: str, err: Any, _msg: Any) -> None:
    outcomes[uid] = None if err is None else str(err)


def send(
    producer: KafkaProducer,
    topic: str,
    item: Pending,
    outcomes: dict[str, str | None],
    encode: ValueEncoder,
) -> None:
    """Queue one message; when librdkafka's queue is full, serve callbacks and try again.

    A row that cannot be encoded, or that produce() refuses, gets its reason in outcomes at once (it is
    never queued); the other rows are not affected.
    """
    try:
        value = encode(item, topic)
    except Exception as err:  # any failure of this row's data must not stop the others
        outcomes[item.user_id] = f"serialize: {type(err).__name__}: {err}"
        log.warning("user %s not published: %s", item.user_id, outcomes[item.user_id])
        return
    callback = functools.partial(_on_delivery, outcomes, item.user_id)
    while True:
        try:
            producer.produce(topic, value=value, key=item.user_id.encode(), on_delivery=callback)
            break
        except BufferError:
            producer.poll(1.0)
        except KafkaException as err:
            outcomes[item.user_id] = f"produce: {err}"
            log.warning("user %s not published: %s", item.user_id, outcomes[item.user_id])
            return
    producer.poll(0)


def record_outcomes(conn: Any, delivered: Sequence[str], failed: Mapping[str, str]) -> None:
    from psycopg2.extras import execute_values

    with conn.cursor() as cur:
        if delivered:
            cur.execute(MARK_PUBLISHED, (list(delivered),))
        if failed:
            execute_values(cur, MARK_FAILED, [(uid, err[:500]) for uid, err in failed.items()])
    conn.commit()


def publish_pending(
    conn: Any,
    producer: KafkaProducer,
    topic: str,
    encode: ValueEncoder,
    limit: int = 100_000,
    flush_timeout: float = 120.0,
) -> PublishResult:
    """Send unpublished outbox rows; mark only the confirmed ones, after flush. Failures stay pending."""
    items = select_pending(conn, limit)
    conn.commit()  # do not hold the read transaction open while Kafka works
    outcomes: dict[str, str | None] = {}
    for item in items:
        send(producer, topic, item, outcomes, encode)
    remaining = producer.flush(flush_timeout)
    result = PublishResult(selected=len(items))
    for item in items:
        if item.user_id not in outcomes:
            result.failed[item.user_id] = (
                f"no delivery report within {flush_timeout:g} s ({remaining} still queued)"
            )
        elif outcomes[item.user_id] is None:
            result.delivered.append(item.user_id)
        else:
            result.failed[item.user_id] = str(outcomes[item.user_id])
    record_outcomes(conn, result.delivered, result.failed)
    log.info(
        "published %d of %d pending users to %s (%d failed)",
        len(result.delivered),
        len(items),
        topic,
        len(result.failed),
    )
    return result
