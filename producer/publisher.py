"""Outbox publisher: unpublished users -> the Kafka users topic (key = user id, acks=all, idempotent).

The topic and the brokers are the caller's (the DAG reads them from what Ansible renders in Airflow).
The whole outbox is drained each time: rows left by an earlier failed run are sent too.

The value is Avro in the Confluent wire format, written with the newest schema file of the topic's
subject and the id the Schema Registry gives it (producer.avro); the key stays the user id as text. A row
that cannot be serialized (or that produce() refuses, e.g. too large) fails alone: it stays in the outbox
with its reason and the other rows are sent.

A row's published_at is set only after the broker confirmed that message (per-message delivery callback,
after flush), and only for the version of the row that was read and sent (users_outbox.version): a newer
version of the user queued meanwhile stays pending. A crash between delivery and the mark re-sends the
message on the next run (at-least-once; the Cassandra upsert on id makes it harmless) but never loses it.

Every try counts in the row's attempts and a failure leaves its reason in last_error. A row whose message
was refused (its data could not be serialized, or Kafka refused it: too large, invalid record, ...) once
it has been tried max_attempts times is parked (parked_at): it is no longer selected, so it never fails
every run, and it keeps its reason and attempts for `make query`. A failure that is Kafka's or the
registry's and not the message's (no delivery report in time, timeouts, brokers down, not enough
replicas, the registry unreachable) never parks a row: an outage must not park the outbox, it fails each
run until the service is back.
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

from confluent_kafka import KafkaError, KafkaException

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

# A row is tried at most this many times when its message is refused (a default; publish_pending's argument).
MAX_ATTEMPTS = 5

# Kafka's failures that say nothing about the message itself: they never park a row.
TRANSIENT_ERRORS: frozenset[int] = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._QUEUE_FULL,
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
        KafkaError._FATAL,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.REPLICA_NOT_AVAILABLE,
    }
)

SELECT_PENDING = """
SELECT r.id::text, r.payload, r.batch_id, r.fetched_at, r.source, r.seed, o.version
FROM users_outbox o JOIN users_raw r ON r.id = o.user_id
WHERE o.published_at IS NULL AND o.parked_at IS NULL
ORDER BY o.created_at, o.user_id
LIMIT %(limit)s
"""
# Both marks match the version that was read and sent, never a newer one queued meanwhile.
MARK_PUBLISHED = """
UPDATE users_outbox AS o SET published_at = now(), attempts = o.attempts + 1, last_error = NULL
FROM (VALUES %s) AS v(user_id, version)
WHERE o.user_id = v.user_id::uuid AND o.version = v.version AND o.published_at IS NULL
"""
MARK_FAILED = """
UPDATE users_outbox AS o SET attempts = o.attempts + 1, last_error = v.error,
    parked_at = CASE WHEN v.refused AND o.attempts + 1 >= v.max_attempts THEN now() END
FROM (VALUES %s) AS v(user_id, version, error, refused, max_attempts)
WHERE o.user_id = v.user_id::uuid AND o.version = v.version AND o.published_at IS NULL
RETURNING o.user_id::text, o.parked_at IS NOT NULL
"""
FAILED_TEMPLATE = "(%s, %s::bigint, %s, %s::boolean, %s::integer)"


class KafkaProducer(Protocol):
    """The part of confluent_kafka.Producer the publisher uses (tests pass a fake)."""

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...


class PublishError(RuntimeError):
    """Some messages were not confirmed; they stay unpublished in the outbox (pending or parked)."""


@dataclass(frozen=True)
class Pending:
    user_id: str
    payload: dict[str, Any]
    batch_id: str
    fetched_at: datetime
    source: str
    seed: str | None
    version: int  # users_outbox.version: the queued version of the user this message carries


@dataclass(frozen=True)
class Failure:
    """Why one message was not published; refused: the message's own fault (it may park the row)."""

    reason: str
    refused: bool

    def __str__(self) -> str:
        return self.reason


# user id -> None (confirmed by Kafka) or why it was not published
Outcomes = dict[str, Failure | None]


@dataclass
class PublishResult:
    selected: int = 0
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    parked: list[str] = field(default_factory=list)  # failed and parked by this run


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
            uid,
            payload if isinstance(payload, dict) else json.loads(payload),
            batch,
            fetched,
            source,
            seed,
            int(version),
        )
        for uid, payload, batch, fetched, source, seed, version in rows
    ]


def kafka_failure(stage: str, err: Any) -> Failure:
    """A Kafka error (a KafkaError, or what wraps one) as a Failure: refused unless it is transient."""
    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        err = err.args[0]
    code = err.code() if isinstance(err, KafkaError) else None
    return Failure(f"{stage}{err}", refused=code not in TRANSIENT_ERRORS)


def registry_unavailable(err: BaseException) -> bool:
    """Whether a serializer's failure is the Schema Registry's (unreachable, or answering an error), not the
    row's data (the AvroSerializer asks the registry on its first message)."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    try:  # the registry client's HTTP transport (httpx2, else httpx), as confluent-kafka picks it
        from confluent_kafka.schema_registry.common._httpx_compat import httpx
    except ImportError:
        return isinstance(err, SchemaRegistryError)
    return isinstance(err, (SchemaRegistryError, httpx.TransportError))


def serialize_failure(err: Exception) -> Failure:
    """A serializer's failure as a Failure: refused (the row's data) unless the registry was the cause."""
    return Failure(f"serialize: {type(err).__name__}: {err}", refused=not registry_unavailable(err))


def _on_delivery(outcomes: Outcomes, uid: str, err: Any, _msg: Any) -> None:
    outcomes[uid] = None if err is None else kafka_failure("", err)


def send(
    producer: KafkaProducer,
    topic: str,
    item: Pending,
    outcomes: Outcomes,
    encode: ValueEncoder,
) -> None:
    """Queue one message; when librdkafka's queue is full, serve callbacks and try again.

    A row that cannot be encoded, or that produce() refuses, gets its reason in outcomes at once (it is
    never queued); the other rows are not affected.
    """
    try:
        value = encode(item, topic)
    except Exception as err:  # any failure of this row's data must not stop the others
        outcomes[item.user_id] = serialize_failure(err)
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
            outcomes[item.user_id] = kafka_failure("produce: ", err)
            log.warning("user %s not published: %s", item.user_id, outcomes[item.user_id])
            return
    producer.poll(0)


def record_outcomes(
    conn: Any,
    items: Sequence[Pending],
    outcomes: Mapping[str, Failure | None],
    max_attempts: int = MAX_ATTEMPTS,
) -> list[str]:
    """Mark the sent versions published or failed (parking refused ones at max_attempts); the parked ids."""
    from psycopg2.extras import execute_values

    delivered = [
        (i.user_id, i.version) for i in items if i.user_id in outcomes and outcomes[i.user_id] is None
    ]
    failed = [
        (i.user_id, i.version, failure.reason[:500], failure.refused, max_attempts)
        for i in items
        if (failure := outcomes.get(i.user_id)) is not None
    ]
    parked: list[str] = []
    with conn.cursor() as cur:
        if delivered:
            execute_values(cur, MARK_PUBLISHED, delivered, template="(%s, %s::bigint)", page_size=1000)
        if failed:
            rows = execute_values(
                cur, MARK_FAILED, failed, template=FAILED_TEMPLATE, page_size=1000, fetch=True
            )
            parked = [uid for uid, is_parked in rows if is_parked]
    conn.commit()
    return parked


def publish_pending(
    conn: Any,
    producer: KafkaProducer,
    topic: str,
    encode: ValueEncoder,
    limit: int = 100_000,
    flush_timeout: float = 120.0,
    max_attempts: int = MAX_ATTEMPTS,
) -> PublishResult:
    """Send unpublished, unparked outbox rows; mark only the confirmed ones, after flush. Failures stay
    pending, except refused ones tried max_attempts times, which are parked."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    items = select_pending(conn, limit)
    conn.commit()  # do not hold the read transaction open while Kafka works
    outcomes: Outcomes = {}
    for item in items:
        send(producer, topic, item, outcomes, encode)
    remaining = producer.flush(flush_timeout)
    for item in items:
        if item.user_id not in outcomes:
            outcomes[item.user_id] = Failure(
                f"no delivery report within {flush_timeout:g} s ({remaining} still queued)", refused=False
            )
    result = PublishResult(selected=len(items))
    for item in items:
        failure = outcomes[item.user_id]
        if failure is None:
            result.delivered.append(item.user_id)
        else:
            result.failed[item.user_id] = failure.reason
    result.parked = record_outcomes(conn, items, outcomes, max_attempts)
    log.info(
        "published %d of %d pending users to %s (%d failed)",
        len(result.delivered),
        len(items),
        topic,
        len(result.failed),
    )
    for uid in result.parked:
        log.warning(
            "user %s parked after %d attempts (not sent again): %s", uid, max_attempts, result.failed[uid]
        )
    return result
