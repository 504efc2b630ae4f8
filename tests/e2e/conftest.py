"""End-to-end fixtures: drive the running platform the way an operator would, through the operations client
(scripts/correnteza_ops.py: the inventory, the contract's names and ports, the secrets).

- trigger DAG runs with `airflow dags trigger` on the Airflow host (over SSH), then follow them and read their
  task instances through Airflow's REST API (the api-server on the airflow host's address);
- count rows in PostgreSQL (psql on the postgres host over SSH, in the ingestion database as its role), read
  Kafka and Cassandra from the control node, over the project's private network only;
- ask the local randomuser-compatible source what it serves for a seed (it is deterministic).
"""

from __future__ import annotations

import calendar
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import correnteza_ops as ops
import pytest
import requests
import testinfra
from cassandra.cluster import Session
from confluent_kafka import TopicPartition
from correnteza_ops import sql_literal

CONTRACT = ops.contract()
TOPIC = CONTRACT.kafka.topic_users
DLQ_TOPIC = CONTRACT.kafka.topic_dlq
USERS_TABLE = CONTRACT.cassandra.users
DLQ_TABLE = CONTRACT.cassandra.dlq
# randomuser's login secrets: never stored nor published (the contract).
SECRET_LOGIN_FIELDS = ("password", "salt", "md5", "sha1", "sha256")


class Pending(str):
    """What a wait_for check returns while it is not done yet: a description of the progress so far."""


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 3.0) -> Any:
    """Poll check() until it returns a truthy value that is not Pending; fail naming `what` and the last
    value after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last and not isinstance(last, Pending):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")


class Airflow:
    """The ingestion DAG for the tests: runs triggered on the Airflow host, followed through the REST API."""

    def __init__(self, client: ops.Airflow) -> None:
        self.client = client

    def trigger(self, conf: dict[str, Any], run_id: str) -> str:
        """`airflow dags trigger` on the Airflow host (over SSH), as an operator would."""
        return self.client.trigger_cli(run_id, conf)

    def state(self, run_id: str) -> str:
        return self.client.state(run_id)

    def task_states(self, run_id: str) -> dict[str, str]:
        return self.client.task_states(run_id)

    def wait(self, run_id: str, timeout: float = 600) -> None:
        final = wait_for(
            f"DAG run {run_id} to finish",
            lambda: (s := self.state(run_id)) in ops.FINAL_STATES and s,
            timeout,
            interval=5,
        )
        assert final == "success", (
            f"DAG run {run_id} ended {final}; tasks: {self.task_states(run_id)} ({self.client.logs_hint()})"
        )


class Postgres:
    """psql on the postgres host, in the ingestion database as the ingestion role."""

    def rows(self, sql: str) -> list[list[str]]:
        return ops.psql(sql)

    def scalar(self, sql: str) -> int:
        return int(self.rows(sql)[0][0])

    def ids_for_seed(self, seed: str) -> set[str]:
        return {r[0] for r in self.rows(f"SELECT id FROM users_raw WHERE seed = {sql_literal(seed)}")}

    def batches(self, run_id: str) -> list[dict[str, str]]:
        """The run's batches in page order: page, batch_id, requested, fetched, rejected, landed, source."""
        cols = ("page", "batch_id", "requested", "fetched", "rejected", "landed", "source")
        sql = f"SELECT {', '.join(cols)} FROM batches WHERE run_id = {sql_literal(run_id)} ORDER BY page"
        return [dict(zip(cols, r, strict=True)) for r in self.rows(sql)]


@pytest.fixture(scope="session")
def airflow() -> Airflow:
    client = ops.Airflow()
    dag = client.dag_id
    assert not client.paused(), (
        f"DAG {dag} is paused: triggered runs would stay queued "
        f"(on {ops.inventory().first('airflow').name}: sudo {ops.AIRFLOW_CLI} dags unpause {dag})"
    )
    return Airflow(client)


@pytest.fixture(scope="session")
def postgres() -> Postgres:
    return Postgres()


@pytest.fixture(scope="session")
def cassandra() -> Iterator[Session]:
    with ops.cassandra_session() as session:
        yield session


@pytest.fixture(scope="session")
def kafka_servers() -> str:
    return ops.kafka_bootstrap()


@pytest.fixture(scope="session")
def source_url() -> str:
    return ops.source_url()


@pytest.fixture(scope="session")
def stream_host() -> Any:
    """The host of the streaming job's driver (the Spark master host), through testinfra."""
    name = ops.inventory().first("spark_master").name
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=str(ops.INVENTORY))


# --- the source -------------------------------------------------------------------------------------------


def source_pages(
    source_url: str, seed: str, size: int, pages: int, extra: dict[str, str] | None = None
) -> list[list[dict[str, Any]]]:
    """What the local source serves for pages 1..pages of seed (as the DAG asks: results, seed, page)."""
    answers = []
    for page in range(1, pages + 1):
        params = {"results": str(size), "seed": seed, "page": str(page), "format": "json", **(extra or {})}
        r = requests.get(f"{source_url}/api/1.4/", params=params, timeout=60)
        r.raise_for_status()
        answers.append(r.json()["results"])
    return answers


# --- Cassandra --------------------------------------------------------------------------------------------


def cassandra_rows(session: Session, ids: set[str]) -> dict[str, Any]:
    """The users table's rows of these ids, by id (text)."""
    found: dict[str, Any] = {}
    stmt = session.prepare(f"SELECT * FROM {USERS_TABLE} WHERE id IN ?")
    batch = sorted(ids)
    for i in range(0, len(batch), 100):
        for row in session.execute(stmt, [[uuid.UUID(x) for x in batch[i : i + 100]]]):
            found[str(row.id)] = row
    return found


def cassandra_ids(session: Session, ids: set[str]) -> set[str]:
    """The subset of ids that have a row in the users table."""
    return set(cassandra_rows(session, ids))


def cassandra_seed_count(session: Session, seed: str) -> int:
    """Rows in the users table carrying this seed (a full scan: fine for test-sized tables)."""
    rows = session.execute(f"SELECT seed FROM {USERS_TABLE}")
    return sum(1 for r in rows if r.seed == seed)


def spark_age(dob: datetime, at: datetime) -> int:
    """floor(months_between(at, dob) / 12) as Spark computes it (UTC session, roundOff=true)."""
    month_diff = (at.year * 12 + at.month) - (dob.year * 12 + dob.month)
    last_day = calendar.monthrange(at.year, at.month)[1] == at.day
    last_day_dob = calendar.monthrange(dob.year, dob.month)[1] == dob.day
    if at.day == dob.day or (last_day and last_day_dob):
        months = float(month_diff)
    else:

        def seconds(t: datetime) -> int:
            return t.hour * 3600 + t.minute * 60 + t.second

        diff = month_diff + ((at.day - dob.day) * 86400 + seconds(at) - seconds(dob)) / (31 * 86400)
        months = math.floor(diff * 1e8 + 0.5) / 1e8
    return math.floor(months / 12)


# --- Kafka ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: str
    value: dict[str, Any]
    raw: bytes = b""


def partition_ends(servers: str, topic: str) -> dict[int, int]:
    """{partition: end offset} of the topic now."""
    return ops.partition_ends(topic, servers)


def end_offsets(servers: str, topic: str) -> int:
    """Sum of the topic's end offsets over its partitions."""
    return ops.end_offsets(topic, servers)


def consume_range(
    servers: str, topic: str, start: dict[int, int], end: dict[int, int], timeout: float = 120
) -> list[Message]:
    """Every message between the start and end offsets of each partition (values decoded: Avro through the
    registry, or JSON for messages older than it)."""
    todo = {p: (start.get(p, 0), e) for p, e in end.items() if e > start.get(p, 0)}
    messages: list[Message] = []
    if not todo:
        return messages
    consumer = ops.kafka_consumer(servers)
    try:
        consumer.assign([TopicPartition(topic, p, s) for p, (s, _) in todo.items()])
        left = set(todo)
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            p, off = msg.partition(), msg.offset()
            if off < todo[p][1]:
                key = (msg.key() or b"").decode()
                messages.append(Message(p, off, key, ops.decode_value(msg.value(), topic), msg.value()))
            if off >= todo[p][1] - 1:
                left.discard(p)
        assert not left, f"{topic}: partitions {sorted(left)} not read to their end within {timeout:.0f} s"
    finally:
        consumer.close()
    return messages
