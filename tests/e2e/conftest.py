"""End-to-end fixtures: drive the running platform the way an operator would.

- trigger DAG runs with `airflow dags trigger` on the Airflow host (over SSH);
- follow them through Airflow's REST API (published on the control node's 127.0.0.1);
- count rows in PostgreSQL (psql on the postgres host), Kafka offsets and Cassandra rows
  (from the control node, over the project's private network only).
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import testinfra
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, Session
from cassandra.policies import DCAwareRoundRobinPolicy
from confluent_kafka import Consumer, TopicPartition

AIRFLOW_API = "http://127.0.0.1:8080"
DAG_ID = "user_ingestion"
TOPIC = "users_created"
DLQ_TOPIC = "users_created.dlq"
KEYSPACE = "spark_streams"


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 3.0) -> Any:
    """Poll check() until it returns a truthy value; fail naming `what` and the last value after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")


class Airflow:
    """`airflow` on the Airflow host for triggering; the REST API for following runs."""

    def __init__(self, password: str) -> None:
        self.host = testinfra.get_host("ansible://airflow-1")
        token = requests.post(
            f"{AIRFLOW_API}/auth/token", json={"username": "admin", "password": password}, timeout=30
        )
        token.raise_for_status()
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def trigger(self, conf: dict[str, Any], run_id: str) -> str:
        conf_arg = shlex.quote(json.dumps(conf))
        cmd = f"sudo /usr/local/bin/airflow dags trigger {DAG_ID} --run-id {run_id} --conf {conf_arg}"
        out = self.host.run(cmd)
        assert out.rc == 0, f"airflow dags trigger failed: {out.stdout}\n{out.stderr}"
        return run_id

    def state(self, run_id: str) -> str:
        r = requests.get(
            f"{AIRFLOW_API}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", headers=self.headers, timeout=30
        )
        r.raise_for_status()
        return str(r.json()["state"])

    def wait(self, run_id: str, timeout: float = 600) -> None:
        final = wait_for(
            f"DAG run {run_id} to finish",
            lambda: (s := self.state(run_id)) in ("success", "failed") and s,
            timeout,
            interval=5,
        )
        assert final == "success", f"DAG run {run_id} ended {final}"


class Postgres:
    """psql on the postgres host, database ingestion."""

    def __init__(self) -> None:
        self.host = testinfra.get_host("ansible://postgres-1")

    def rows(self, sql: str) -> list[list[str]]:
        out = self.host.check_output(f"sudo -u postgres psql -d ingestion -AtX -F '|' -c {shlex.quote(sql)}")
        return [line.split("|") for line in out.splitlines() if line]

    def scalar(self, sql: str) -> int:
        return int(self.rows(sql)[0][0])

    def ids_for_seed(self, seed: str) -> set[str]:
        return {r[0] for r in self.rows(f"SELECT id FROM users_raw WHERE seed = '{seed}'")}


@pytest.fixture(scope="session")
def airflow(secret: Callable[[str], str]) -> Airflow:
    return Airflow(secret("airflow_admin_password"))


@pytest.fixture(scope="session")
def postgres() -> Postgres:
    return Postgres()


@pytest.fixture(scope="session")
def cassandra(
    group_hosts: Callable[[str], dict[str, Any]], secret: Callable[[str], str]
) -> Iterator[Session]:
    ips = [h["correnteza_ip"] for h in group_hosts("cassandra").values()]
    cluster = Cluster(
        ips,
        port=9042,
        auth_provider=PlainTextAuthProvider("correnteza", secret("cassandra_app_password")),
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc="dc1"),
        protocol_version=5,
    )
    session = cluster.connect(KEYSPACE)
    yield session
    cluster.shutdown()


@pytest.fixture(scope="session")
def kafka_servers(group_hosts: Callable[[str], dict[str, Any]]) -> str:
    return ",".join(f"{h['correnteza_ip']}:9092" for h in group_hosts("kafka").values())


@pytest.fixture(scope="session")
def source_url(group_hosts: Callable[[str], dict[str, Any]]) -> str:
    return f"http://{next(iter(group_hosts('source').values()))['correnteza_ip']}:8000"


@pytest.fixture(scope="session")
def stream_host() -> Any:
    return testinfra.get_host("ansible://spark-master-1")


def cassandra_ids(session: Session, ids: set[str]) -> set[str]:
    """The subset of ids that have a row in created_users."""
    found: set[str] = set()
    stmt = session.prepare("SELECT id FROM created_users WHERE id IN ?")
    batch = sorted(ids)
    for i in range(0, len(batch), 100):
        rows = session.execute(stmt, [[uuid.UUID(x) for x in batch[i : i + 100]]])
        found |= {str(r.id) for r in rows}
    return found


def cassandra_seed_count(session: Session, seed: str) -> int:
    """Rows in created_users carrying this seed (a full scan: fine for test-sized tables)."""
    rows = session.execute("SELECT seed FROM created_users")
    return sum(1 for r in rows if r.seed == seed)


def end_offsets(servers: str, topic: str) -> int:
    """Sum of the topic's end offsets over its partitions."""
    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"e2e-{uuid.uuid4()}"})
    try:
        meta = consumer.list_topics(topic, timeout=20)
        total = 0
        for p in meta.topics[topic].partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)
            total += high
        return total
    finally:
        consumer.close()


def consume_keys(servers: str, topic: str, keys: set[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    """Read the topic from the beginning and return the JSON values of the wanted keys (last one wins)."""
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"e2e-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    found: dict[str, dict[str, Any]] = {}
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and set(found) != keys:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            key = (msg.key() or b"").decode()
            if key in keys:
                found[key] = json.loads(msg.value())
    finally:
        consumer.close()
    return found
