"""Users through the whole platform: source -> Airflow -> PostgreSQL -> Kafka -> Spark -> Cassandra.

Each test uses its own seed, so runs scheduled by the DAG itself (random seeds) never disturb its counts.
The local source is deterministic: asking it again for the same seed and pages gives what the DAG fetched.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.conftest import (
    DLQ_TABLE,
    DLQ_TOPIC,
    SECRET_LOGIN_FIELDS,
    TOPIC,
    Message,
    Pending,
    cassandra_ids,
    cassandra_rows,
    cassandra_seed_count,
    consume_range,
    partition_ends,
    source_pages,
    spark_age,
    wait_for,
)

pytestmark = pytest.mark.e2e

N_BATCHES = 3
BATCH_SIZE = 100
N = N_BATCHES * BATCH_SIZE
# The Spark job's reason for a record whose email is missing (spark/correnteza_stream/validate.py).
MISSING_EMAIL_REASON = "invalid_email"
# The producer's reason for a record without login.uuid (producer/validation.py).
MISSING_UUID_REASON = "missing login.uuid"
SECRETS_SQL = "array[" + ", ".join(f"'{f}'" for f in SECRET_LOGIN_FIELDS) + "]"


def _seed(name: str) -> str:
    return f"e2e-{name}-{uuid.uuid4().hex[:8]}"


def _ts(value: str) -> datetime:
    """randomuser's ISO timestamps ('1993-07-20T09:44:18.674Z') as Cassandra returns them (naive UTC, ms)."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def _text(value: Any) -> str | None:
    """Spark's trim (spaces only) with blank -> null, as transform._text."""
    if value is None:
        return None
    trimmed = str(value).strip(" ")
    return trimmed or None


def expected_row(user: dict[str, Any]) -> dict[str, Any]:
    """The documented transformation (spark/correnteza_stream/transform.py) of one source user."""
    loc = user["location"]
    street = _text(" ".join(p for p in (_text(loc["street"]["number"]), _text(loc["street"]["name"])) if p))
    parts = (street, _text(loc["city"]), _text(loc["state"]), _text(loc["country"]))
    return {
        "id": user["login"]["uuid"].strip(" ").lower(),
        "first_name": _text(user["name"]["first"]),
        "last_name": _text(user["name"]["last"]),
        "gender": user["gender"].strip(" ").lower(),
        "address": _text(", ".join(p for p in parts if p)),
        "post_code": _text(loc["postcode"]),
        "email": user["email"].strip(" "),
        "username": _text(user["login"]["username"]),
        "dob": _ts(user["dob"]["date"]),
        "registered_date": _ts(user["registered"]["date"]),
        "phone": _text(user["phone"]),
        "picture": _text(user["picture"]["large"]),
        "nationality": user["nat"].strip(" ").upper(),
    }


def uid(user: dict[str, Any]) -> str:
    return str(user["login"]["uuid"]).lower()


def run_dag(airflow, conf: dict[str, Any], label: str) -> str:
    run_id = f"e2e-{label}-{uuid.uuid4().hex[:8]}"
    airflow.trigger(conf, run_id)
    airflow.wait(run_id)
    return run_id


def wait_cassandra(cassandra, ids: set[str], timeout: float = 600) -> None:
    def arrived() -> bool | Pending:
        n = len(cassandra_ids(cassandra, ids))
        return n == len(ids) or Pending(f"{n} of {len(ids)}")

    wait_for(f"{len(ids)} users in Cassandra", arrived, timeout, interval=5)


def assert_batches(postgres, run_id: str, pages: int, size: int, rejected: int) -> dict[int, str]:
    """The run staged `pages` batches of `size` records, `rejected` of each refused; {page: batch_id}."""
    batches = postgres.batches(run_id)
    got = [
        (b["page"], b["requested"], b["fetched"], b["rejected"], b["landed"], b["source"]) for b in batches
    ]
    want = [
        (str(p), str(size), str(size), str(rejected), str(size - rejected), "local")
        for p in range(1, pages + 1)
    ]
    assert got == want, f"batches of run {run_id}"
    return {int(b["page"]): b["batch_id"] for b in batches}


def assert_no_secrets_in_postgres(postgres, seed: str) -> None:
    leaked = postgres.scalar(
        f"SELECT count(*) FROM users_raw WHERE seed = '{seed}' AND payload->'login' ?| {SECRETS_SQL}"
    )
    assert leaked == 0, f"{leaked} users of seed {seed} keep randomuser's login secrets in users_raw"


def messages_of_seed(messages: list[Message], seed: str) -> list[Message]:
    return [m for m in messages if (m.value.get("_meta") or {}).get("seed") == seed]


def test_n_users_arrive_exactly_and_match_the_source(airflow, postgres, cassandra, kafka_servers, source_url):
    seed = _seed("exact")
    before = partition_ends(kafka_servers, TOPIC)
    run_id = run_dag(airflow, {"batch_size": BATCH_SIZE, "batches": N_BATCHES, "seed": seed}, "exact")
    after = partition_ends(kafka_servers, TOPIC)

    pages = source_pages(source_url, seed, BATCH_SIZE, N_BATCHES)
    served = {uid(u): (page, u) for page, users in enumerate(pages, start=1) for u in users}
    assert len(served) == N, "the source served duplicate uuids"

    # PostgreSQL: every served user landed once, published, without login secrets.
    batch_of_page = assert_batches(postgres, run_id, N_BATCHES, BATCH_SIZE, rejected=0)
    landed = postgres.ids_for_seed(seed)
    assert landed == set(served), f"users_raw holds {len(landed)} users of seed {seed}, expected {N}"
    assert_no_secrets_in_postgres(postgres, seed)
    unpublished = postgres.scalar(
        "SELECT count(*) FROM users_outbox o JOIN users_raw u ON u.id = o.user_id "
        f"WHERE u.seed = '{seed}' AND o.published_at IS NULL"
    )
    assert unpublished == 0

    # Kafka: at least one message per user (at-least-once: a retried publish may send one twice), exactly N
    # distinct keys (login.uuid), sanitized, with its _meta.
    mine = messages_of_seed(consume_range(kafka_servers, TOPIC, before, after), seed)
    assert len(mine) >= N, f"{len(mine)} messages of seed {seed} in {TOPIC}, expected at least {N}"
    by_key = {m.key: m for m in mine}
    assert set(by_key) == landed, f"{len(by_key)} distinct keys of seed {seed} in {TOPIC}, expected {N}"
    for m in mine:
        page, _ = served[m.key]
        assert m.value["login"]["uuid"] == m.key
        assert not set(SECRET_LOGIN_FIELDS) & set(m.value["login"]), f"secrets published for {m.key}"
        assert isinstance(m.value["location"]["postcode"], str)
        meta = m.value["_meta"]
        assert (meta["batch_id"], meta["source"]) == (batch_of_page[page], "local")
        assert datetime.fromisoformat(meta["fetched_at"].replace("Z", "+00:00")).tzinfo is not None

    # Cassandra: every user, field by field against the source, with its Kafka coordinates.
    wait_cassandra(cassandra, landed)
    rows = cassandra_rows(cassandra, landed)
    assert set(rows) == landed
    assert cassandra_seed_count(cassandra, seed) == N
    for user_id, (page, user) in served.items():
        row, want = rows[user_id], expected_row(user)
        got = {k: (str(getattr(row, k)) if k == "id" else getattr(row, k)) for k in want}
        assert got == want, f"user {user_id}"
        message = by_key[user_id]
        assert (row.seed, row.batch_id) == (seed, batch_of_page[page])
        assert (row.kafka_partition, row.kafka_offset) == (message.partition, message.offset)
        assert row.event_time is not None and row.processed_at is not None
        assert row.age == spark_age(row.dob, row.event_time), f"user {user_id}: age {row.age}"


def test_bad_records_go_to_the_dead_letters_and_the_good_ones_arrive(
    airflow, postgres, cassandra, kafka_servers, source_url
):
    seed, k, size = _seed("dlq"), 5, 50
    dlq_before = partition_ends(kafka_servers, DLQ_TOPIC)
    run_id = run_dag(airflow, {"batch_size": size, "batches": 1, "seed": seed, "inject_bad": k}, "dlq")

    # The source removes `email` from k users chosen from the seed: ask it for the same page.
    (served,) = source_pages(source_url, seed, size, 1, {"bad": str(k), "bad_field": "email"})
    expected_bad = {uid(u) for u in served if "email" not in u}
    assert len(expected_bad) == k

    # The producer keys and lands them all (content checks are the Spark job's).
    assert_batches(postgres, run_id, 1, size, rejected=0)
    landed = postgres.ids_for_seed(seed)
    assert landed == {uid(u) for u in served}
    bad = {
        r[0]
        for r in postgres.rows(f"SELECT id FROM users_raw WHERE seed = '{seed}' AND NOT payload ? 'email'")
    }
    assert bad == expected_bad, f"expected {k} users without an email in seed {seed}, found {len(bad)}"
    good = landed - bad

    wait_cassandra(cassandra, good)
    assert cassandra_ids(cassandra, landed) == good, "a bad record reached created_users"
    assert cassandra_seed_count(cassandra, seed) == size - k

    def dead_letters() -> dict[str, Any]:
        rows = cassandra.execute(f"SELECT topic, kafka_key, reason, raw_value FROM {DLQ_TABLE}")
        return {r.kafka_key: r for r in rows if r.kafka_key in bad}

    table = wait_for(f"{k} dead letters in Cassandra", lambda: len(d := dead_letters()) == k and d, 300)
    for key, row in table.items():
        raw = json.loads(row.raw_value)
        assert (row.topic, row.reason) == (TOPIC, MISSING_EMAIL_REASON), key
        assert raw["login"]["uuid"] == key and "email" not in raw and raw["_meta"]["seed"] == seed

    def topic_letters() -> dict[str, Message]:
        messages = consume_range(
            kafka_servers, DLQ_TOPIC, dlq_before, partition_ends(kafka_servers, DLQ_TOPIC)
        )
        found = {m.key: m for m in messages if m.key in bad}
        return set(found) == bad and found

    letters = wait_for(f"{k} dead letters in {DLQ_TOPIC}", topic_letters, 120)
    for key, m in letters.items():
        assert (m.value["reason"], m.value["key"], m.value["topic"]) == (MISSING_EMAIL_REASON, key, TOPIC)
        assert json.loads(m.value["value"]) == json.loads(table[key].raw_value)


def test_unkeyable_records_are_rejected_by_the_producer(airflow, postgres, cassandra, source_url):
    seed, k, size = _seed("unkeyed"), 4, 40
    conf = {"batch_size": size, "batches": 1, "seed": seed, "inject_bad": k, "inject_bad_field": "login.uuid"}
    run_id = run_dag(airflow, conf, "unkeyed")

    (served,) = source_pages(source_url, seed, size, 1, {"bad": str(k), "bad_field": "login.uuid"})
    positions = [i for i, u in enumerate(served) if "uuid" not in u["login"]]
    keyed = {uid(u) for u in served if "uuid" in u["login"]}
    assert len(positions) == k and len(keyed) == size - k

    (batch,) = assert_batches(postgres, run_id, 1, size, rejected=k).values()
    rejected = postgres.rows(
        f"SELECT position, reason FROM users_rejected WHERE batch_id = '{batch}' ORDER BY position"
    )
    assert rejected == [[str(p), MISSING_UUID_REASON] for p in positions]
    leaked = postgres.scalar(
        f"SELECT count(*) FROM users_rejected WHERE batch_id = '{batch}' AND raw->'login' ?| {SECRETS_SQL}"
    )
    assert leaked == 0, "users_rejected keeps randomuser's login secrets"
    assert postgres.ids_for_seed(seed) == keyed

    wait_cassandra(cassandra, keyed)
    assert cassandra_seed_count(cassandra, seed) == size - k


def test_stream_restart_and_dag_rerun_neither_lose_nor_duplicate(
    airflow, postgres, cassandra, kafka_servers, stream_host
):
    seed = _seed("replay")
    conf = {"batch_size": BATCH_SIZE, "batches": N_BATCHES, "seed": seed}
    before = partition_ends(kafka_servers, TOPIC)

    # The whole first run is published while the streaming job is down ...
    assert stream_host.run("sudo systemctl stop correnteza-stream").rc == 0
    try:
        first = run_dag(airflow, conf, "replay1")
        landed = postgres.ids_for_seed(seed)
        assert len(landed) == N
        assert cassandra_ids(cassandra, landed) == set(), "users arrived while the streaming job was stopped"
    finally:
        assert stream_host.run("sudo systemctl start correnteza-stream").rc == 0

    # ... and the job, started again, resumes from its checkpoint and writes all of it.
    wait_cassandra(cassandra, landed)
    first_batches = set(assert_batches(postgres, first, N_BATCHES, BATCH_SIZE, rejected=0).values())
    assert {r.batch_id for r in cassandra_rows(cassandra, landed).values()} == first_batches

    # The same seed again: the same users, upserted everywhere; Cassandra ends with the latest version.
    second = run_dag(airflow, conf, "replay2")
    second_batches = set(assert_batches(postgres, second, N_BATCHES, BATCH_SIZE, rejected=0).values())
    assert postgres.ids_for_seed(seed) == landed
    assert {
        r[0] for r in postgres.rows(f"SELECT DISTINCT batch_id FROM users_raw WHERE seed = '{seed}'")
    } == (second_batches)

    def rewritten() -> bool | Pending:
        rows = cassandra_rows(cassandra, landed)
        latest = sum(1 for r in rows.values() if r.batch_id in second_batches)
        return (len(rows) == N and latest == N) or Pending(f"{len(rows)} rows, {latest} from the second run")

    wait_for(f"the {N} users rewritten by the second run", rewritten, 600, interval=5)
    assert cassandra_seed_count(cassandra, seed) == N

    # Kafka got each user at least once per run (at-least-once), and every user of each batch.
    mine = messages_of_seed(
        consume_range(kafka_servers, TOPIC, before, partition_ends(kafka_servers, TOPIC)), seed
    )
    keys_per_batch = {
        b: {m.key for m in mine if m.value["_meta"]["batch_id"] == b} for b in first_batches | second_batches
    }
    assert {b: len(k) for b, k in keys_per_batch.items()} == dict.fromkeys(
        first_batches | second_batches, BATCH_SIZE
    )
    per_batch = Counter(m.value["_meta"]["batch_id"] for m in mine)
    assert all(n >= BATCH_SIZE for n in per_batch.values()), per_batch
    assert stream_host.service("correnteza-stream").is_running


def test_stream_goes_on_after_a_spark_master_restart(airflow, cassandra, stream_host):
    """Restarting the Spark master (a config change, a crash) must not leave the stream's driver waiting for a
    master that forgot it: the restarted master recovers the application and the next users land."""
    assert stream_host.run("sudo systemctl restart spark-master").rc == 0
    health = "sudo /usr/local/bin/correnteza-stream-health"

    def running() -> bool | Pending:
        result = stream_host.run(health)
        return result.rc == 0 or Pending(result.stdout.strip())

    wait_for("the stream's application RUNNING on the restarted master", running, 300, interval=5)

    seed, size = _seed("master"), 50
    run_dag(airflow, {"batch_size": size, "batches": 1, "seed": seed}, "master")

    def landed() -> bool | Pending:
        n = cassandra_seed_count(cassandra, seed)
        return n == size or Pending(f"{n} of {size}")

    wait_for(f"{size} users landed after the master restart", landed, 300, interval=5)
    assert stream_host.service("correnteza-stream").is_running
