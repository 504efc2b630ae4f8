"""Users through the whole platform: source -> Airflow -> PostgreSQL -> Kafka -> Spark -> Cassandra.

Each test uses its own seed, so runs scheduled by the DAG itself (random seeds) never disturb its counts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from tests.e2e.conftest import (
    DLQ_TOPIC,
    TOPIC,
    cassandra_ids,
    cassandra_seed_count,
    consume_keys,
    end_offsets,
    wait_for,
)

pytestmark = pytest.mark.e2e

N_BATCHES = 3
BATCH_SIZE = 100
N = N_BATCHES * BATCH_SIZE


def _seed(name: str) -> str:
    return f"e2e-{name}-{uuid.uuid4().hex[:8]}"


def _ts(value: str) -> datetime:
    """randomuser's ISO timestamps ('1993-07-20T09:44:18.674Z') as Cassandra returns them (naive UTC, ms)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def expected_row(user: dict[str, Any]) -> dict[str, Any]:
    """The documented transformation (spark/correnteza_stream/transform.py) of one source user."""
    loc = user["location"]
    street = f"{loc['street']['number']} {loc['street']['name']}".strip()
    address = ", ".join(p for p in (street, loc["city"], loc["state"], loc["country"]) if str(p).strip())
    return {
        "id": user["login"]["uuid"].lower(),
        "first_name": user["name"]["first"],
        "last_name": user["name"]["last"],
        "gender": user["gender"],
        "address": address,
        "post_code": str(loc["postcode"]),
        "email": user["email"],
        "username": user["login"]["username"],
        "dob": _ts(user["dob"]["date"]),
        "registered_date": _ts(user["registered"]["date"]),
        "phone": user["phone"],
        "picture": user["picture"]["large"],
        "nationality": user["nat"],
    }


def run_dag(airflow, conf: dict[str, Any], label: str) -> str:
    run_id = f"e2e-{label}-{uuid.uuid4().hex[:8]}"
    airflow.trigger(conf, run_id)
    airflow.wait(run_id)
    return run_id


def wait_cassandra(cassandra, ids: set[str], timeout: float = 600) -> None:
    wait_for(
        f"{len(ids)} users in Cassandra",
        lambda: len(cassandra_ids(cassandra, ids)) == len(ids) or f"{len(cassandra_ids(cassandra, ids))}",
        timeout,
        interval=5,
    )


def test_n_users_arrive_exactly_and_match_the_source(airflow, postgres, cassandra, kafka_servers, source_url):
    seed = _seed("exact")
    offsets_before = end_offsets(kafka_servers, TOPIC)
    run_dag(airflow, {"batch_size": BATCH_SIZE, "batches": N_BATCHES, "seed": seed}, "exact")

    landed = postgres.ids_for_seed(seed)
    assert len(landed) == N, f"PostgreSQL users_raw holds {len(landed)} users of seed {seed}, expected {N}"
    unpublished = postgres.scalar(
        "SELECT count(*) FROM users_outbox o JOIN users_raw u ON u.id = o.user_id "
        f"WHERE u.seed = '{seed}' AND o.published_at IS NULL"
    )
    assert unpublished == 0
    assert end_offsets(kafka_servers, TOPIC) - offsets_before >= N

    wait_cassandra(cassandra, landed)
    assert cassandra_ids(cassandra, landed) == landed
    assert cassandra_seed_count(cassandra, seed) == N

    # A sample, field by field, against what the source serves for the same seed and page.
    answer = requests.get(
        f"{source_url}/api/1.4/", params={"results": BATCH_SIZE, "seed": seed, "page": 1}, timeout=60
    )
    answer.raise_for_status()
    users = answer.json()["results"]
    stmt = cassandra.prepare("SELECT * FROM created_users WHERE id = ?")
    for user in users[:: BATCH_SIZE // 5]:
        want = expected_row(user)
        row = cassandra.execute(stmt, [uuid.UUID(want["id"])]).one()
        assert row is not None, f"user {want['id']} missing in Cassandra"
        got = {k: (str(getattr(row, k)) if k == "id" else getattr(row, k)) for k in want}
        assert got == want
        assert row.seed == seed
        assert row.kafka_offset is not None and row.kafka_partition is not None
        assert row.age is not None and 0 < row.age < 130


def test_bad_records_go_to_the_dead_letters_and_the_good_ones_arrive(
    airflow, postgres, cassandra, kafka_servers
):
    seed, k, size = _seed("dlq"), 5, 50
    run_dag(airflow, {"batch_size": size, "batches": 1, "seed": seed, "inject_bad": k}, "dlq")

    landed = postgres.ids_for_seed(seed)
    assert len(landed) == size
    bad = {
        r[0]
        for r in postgres.rows(f"SELECT id FROM users_raw WHERE seed = '{seed}' AND NOT payload ? 'email'")
    }
    assert len(bad) == k, f"expected {k} users without an email in seed {seed}, found {len(bad)}"
    good = landed - bad

    wait_cassandra(cassandra, good)
    assert cassandra_ids(cassandra, landed) == good, "a bad record reached created_users"

    def dead_letters() -> dict[str, str]:
        rows = cassandra.execute("SELECT kafka_key, reason FROM created_users_dlq")
        return {r.kafka_key: r.reason for r in rows if r.kafka_key in bad}

    table = wait_for(f"{k} dead letters in Cassandra", lambda: len(d := dead_letters()) == k and d, 300)
    assert all("email" in reason for reason in table.values()), table

    topic = consume_keys(kafka_servers, DLQ_TOPIC, bad)
    assert set(topic) == bad, f"dead-letter topic holds {len(topic)} of the {k} bad records"
    assert all("email" in v["reason"] and v["value"] for v in topic.values())


def test_stream_restart_and_dag_rerun_neither_lose_nor_duplicate(airflow, postgres, cassandra, stream_host):
    seed = _seed("replay")
    conf = {"batch_size": BATCH_SIZE, "batches": N_BATCHES, "seed": seed}
    first = f"e2e-replay-{uuid.uuid4().hex[:8]}"
    airflow.trigger(conf, first)

    # Stop the streaming job while the run publishes, then start it again: it resumes from its checkpoint.
    wait_for("the first run to publish", lambda: airflow.state(first) in ("running", "success"), 300)
    assert stream_host.run("sudo systemctl stop correnteza-stream").rc == 0
    airflow.wait(first)
    assert stream_host.run("sudo systemctl start correnteza-stream").rc == 0

    # The same seed again: the same users, upserted everywhere.
    run_dag(airflow, conf, "replay2")

    landed = postgres.ids_for_seed(seed)
    assert len(landed) == N
    wait_cassandra(cassandra, landed)
    assert cassandra_ids(cassandra, landed) == landed
    assert cassandra_seed_count(cassandra, seed) == N
    assert stream_host.service("correnteza-stream").is_running
