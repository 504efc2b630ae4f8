"""End-to-end fixtures: drive the running platform the way an operator would.

- trigger and follow DAG runs through Airflow's REST API (published on the control node's 127.0.0.1:8080);
- count rows in PostgreSQL (psql on the postgres host over SSH), read Kafka and Cassandra from the control
  node, over the project's private network only;
- ask the local randomuser-compatible source what it serves for a seed (it is deterministic).
"""

from __future__ import annotations

import calendar
import json
import math
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
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
    """Airflow's REST API (v2) as the admin user: trigger runs, follow them, explain failures."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.headers: dict[str, str] = {}
        self._login()

    def _login(self) -> None:
        token = requests.post(
            f"{AIRFLOW_API}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
        )
        token.raise_for_status()
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{AIRFLOW_API}/api/v2/dags/{DAG_ID}{path}"
        r = requests.request(method, url, headers=self.headers, timeout=30, **kwargs)
        if r.status_code == 401:  # the token expired: log in again once
            self._login()
            r = requests.request(method, url, headers=self.headers, timeout=30, **kwargs)
        assert r.ok, f"{method} {url}: HTTP {r.status_code}: {r.text[:500]}"
        return r.json()

    def paused(self) -> bool:
        return bool(self._call("GET", "")["is_paused"])

    def trigger(self, conf: dict[str, Any], run_id: str) -> str:
        """`airflow dags trigger` on the Airflow host, as an operator would."""
        host = testinfra.get_host("ansible://airflow-1")
        conf_arg = shlex.quote(json.dumps(conf))
        cmd = f"sudo /usr/local/bin/airflow dags trigger {DAG_ID} --run-id {run_id} --conf {conf_arg}"
        out = host.run(cmd)
        assert out.rc == 0, f"airflow dags trigger failed: {out.stdout[-2000:]}\n{out.stderr[-2000:]}"
        return run_id

    def state(self, run_id: str) -> str:
        return str(self._call("GET", f"/dagRuns/{run_id}")["state"])

    def task_states(self, run_id: str) -> dict[str, str]:
        tasks = self._call("GET", f"/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {t["task_id"]: f"{t['state']} (try {t['try_number']})" for t in tasks}

    def wait(self, run_id: str, timeout: float = 600) -> None:
        final = wait_for(
            f"DAG run {run_id} to finish",
            lambda: (s := self.state(run_id)) in ("success", "failed") and s,
            timeout,
            interval=5,
        )
        assert final == "success", (
            f"DAG run {run_id} ended {final}; tasks: {self.task_states(run_id)} "
            f"(logs: /opt/correnteza/airflow/logs on airflow-1)"
        )


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

    def batches(self, run_id: str) -> list[dict[str, str]]:
        """The run's batches in page order: page, batch_id, requested, fetched, rejected, landed, source."""
        cols = ("page", "batch_id", "requested", "fetched", "rejected", "landed", "source")
        sql = f"SELECT {', '.join(cols)} FROM batches WHERE run_id = '{run_id}' ORDER BY page"
        return [dict(zip(cols, r, strict=True)) for r in self.rows(sql)]


@pytest.fixture(scope="session")
def airflow(secret: Callable[[str], str]) -> Airflow:
    client = Airflow(secret("airflow_admin_password"))
    assert not client.paused(), (
        f"DAG {DAG_ID} is paused: triggered runs would stay queued "
        f"(on airflow-1: sudo /usr/local/bin/airflow dags unpause {DAG_ID})"
    )
    return client


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
    session = cluster.connect()
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
    """The created_users rows of these ids, by id (text)."""
    found: dict[str, Any] = {}
    stmt = session.prepare(f"SELECT * FROM {KEYSPACE}.created_users WHERE id IN ?")
    batch = sorted(ids)
    for i in range(0, len(batch), 100):
        for row in session.execute(stmt, [[uuid.UUID(x) for x in batch[i : i + 100]]]):
            found[str(row.id)] = row
    return found


def cassandra_ids(session: Session, ids: set[str]) -> set[str]:
    """The subset of ids that have a row in created_users."""
    return set(cassandra_rows(session, ids))


def cassandra_seed_count(session: Session, seed: str) -> int:
    """Rows in created_users carrying this seed (a full scan: fine for test-sized tables)."""
    rows = session.execute(f"SELECT seed FROM {KEYSPACE}.created_users")
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


def _consumer(servers: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"e2e-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def partition_ends(servers: str, topic: str) -> dict[int, int]:
    """{partition: end offset} of the topic now."""
    consumer = _consumer(servers)
    try:
        meta = consumer.list_topics(topic, timeout=20)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1]
            for p in meta.topics[topic].partitions
        }
    finally:
        consumer.close()


def end_offsets(servers: str, topic: str) -> int:
    """Sum of the topic's end offsets over its partitions."""
    return sum(partition_ends(servers, topic).values())


def consume_range(
    servers: str, topic: str, start: dict[int, int], end: dict[int, int], timeout: float = 120
) -> list[Message]:
    """Every message between the start and end offsets of each partition (values parsed as JSON)."""
    todo = {p: (start.get(p, 0), e) for p, e in end.items() if e > start.get(p, 0)}
    messages: list[Message] = []
    if not todo:
        return messages
    consumer = _consumer(servers)
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
                messages.append(Message(p, off, key, json.loads(msg.value())))
            if off >= todo[p][1] - 1:
                left.discard(p)
        assert not left, f"{topic}: partitions {sorted(left)} not read to their end within {timeout:.0f} s"
    finally:
        consumer.close()
    return messages
