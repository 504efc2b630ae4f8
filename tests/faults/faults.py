"""The fault suite's parts: a pipeline load (a DAG run of a few thousand users with its own seed), the faults
(power loss of a host with `docker kill`, processes killed with SIGKILL, services restarted, a faulty source),
the platform's health, and the checks every case ends with.

Every case keeps a line (users sent, landed, duplicates, dead letters, recovery time) for the terminal summary
(conftest.py), and .state/test-reports/faults.jsonl keeps them.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import correnteza_ops as ops
import testinfra
from confluent_kafka.admin import AdminClient

from tests.ansible_recap import STATE
from tests.e2e.conftest import (
    DLQ_TABLE,
    TOPIC,
    Pending,
    cassandra_rows,
    cassandra_seed_count,
    consume_range,
    partition_ends,
    source_pages,
    wait_for,
)
from tests.e2e.test_pipeline import expected_row, uid

# A load: BATCHES pages of BATCH_SIZE users (the DAG's fetch, then one publish of them all).
BATCHES = 3
BATCH_SIZE = 1000
N = BATCHES * BATCH_SIZE
# How long the platform may take to be whole again after a fault (seconds).
HEALTH_TIMEOUT = 600
RESULTS: list[FaultResult] = []


@dataclass
class FaultResult:
    case: str
    sent: int
    landed_postgres: int = 0
    landed_cassandra: int = 0
    cassandra_duplicates: int = 0
    kafka_messages: int = 0
    kafka_redeliveries: int = 0
    dead_letters: int = 0
    # seconds from the load's start to the fault; from the end of the fault until every service is healthy
    # again, and until every user of the load is in Cassandra (the pipeline caught up)
    fault_at_s: float = 0.0
    healthy_s: float = 0.0
    recovery_s: float = 0.0
    total_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.case}: sent {self.sent}, landed {self.landed_postgres} in PostgreSQL and "
            f"{self.landed_cassandra} in Cassandra, duplicates {self.cassandra_duplicates}, "
            f"Kafka messages {self.kafka_messages} ({self.kafka_redeliveries} redelivered), "
            f"dead letters {self.dead_letters}; fault at {self.fault_at_s:.0f} s; services healthy "
            f"{self.healthy_s:.0f} s and every user in Cassandra {self.recovery_s:.0f} s after it "
            "(recovery); "
            f"DAG run done in {self.total_s:.0f} s" + (f" ({'; '.join(self.notes)})" if self.notes else "")
        )


def log(message: str) -> None:
    """Progress on the terminal (pytest captures prints; the fault suite is long)."""
    print(f"[{time.strftime('%H:%M:%S')}] faults: {message}", flush=True)


# --- the hosts --------------------------------------------------------------------------------------------


def container(host: str) -> str:
    """The Docker container of an inventory host (terraform names it <project>-<host>)."""
    return f"{ops.inventory().vars['correnteza_project']}-{host}"


def docker(*args: str) -> str:
    run = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"docker {' '.join(args)}: {run.stderr.strip()}"
    return run.stdout.strip()


def power_loss(host: str) -> None:
    """Like pulling the plug: SIGKILL to the container's init, no shutdown."""
    log(f"docker kill {container(host)} (power loss of {host})")
    docker("kill", container(host))


def power_on(host: str) -> None:
    log(f"docker start {container(host)}")
    docker("start", container(host))


def on(host: str) -> Any:
    return testinfra.get_host(f"ansible://{host}", ansible_inventory=str(ops.INVENTORY))


def run_on(host: str, command: str) -> str:
    result = on(host).run(command)
    assert result.rc == 0, f"{host}: {command}: exit {result.rc}: {result.stdout}{result.stderr}"
    return result.stdout


def names_not_resolved(on_host: str) -> list[str]:
    """The inventory hosts whose name does not resolve to their address on a host (through NSS, as services
    resolve them: Docker's DNS answers each host's network alias)."""
    inventory = ops.inventory()
    peers = {h.name: h.ip for group in sorted(inventory.groups) for h in inventory.hosts(group)}
    out = on(on_host).run("getent ahostsv4 " + " ".join(sorted(peers))).stdout
    resolved = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "STREAM":
            resolved.setdefault(words[2], words[0])
    return [f"{name} ({ip})" for name, ip in sorted(peers.items()) if resolved.get(name) != ip]


# --- health -----------------------------------------------------------------------------------------------


def kafka_health() -> str | None:
    """None when every broker is registered and no partition is under-replicated; else what is wrong."""
    brokers = ops.ips("kafka")
    try:
        meta = AdminClient({"bootstrap.servers": ops.kafka_bootstrap()}).list_topics(timeout=10)
    except Exception as exc:  # any client error means: not healthy yet
        return f"metadata: {exc}"
    if len(meta.brokers) < len(brokers):
        return f"{len(meta.brokers)} of {len(brokers)} brokers registered"
    under = [
        f"{name}-{p}"
        for name, topic in meta.topics.items()
        for p, part in topic.partitions.items()
        if len(part.isrs) < len(part.replicas)
    ]
    return f"under-replicated: {', '.join(sorted(under)[:8])}" if under else None


def cassandra_health() -> str | None:
    nodes = ops.ips("cassandra")
    result = on(ops.inventory().first("cassandra").name).run("sudo nodetool status")
    if result.rc != 0:
        return f"nodetool status: exit {result.rc}"
    up = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("UN ")}
    missing = sorted(set(nodes) - up)
    return f"not UN: {', '.join(missing)}" if missing else None


def stream_health() -> str | None:
    result = on(ops.inventory().first("spark_master").name).run(
        "sudo /usr/local/bin/correnteza-stream-health"
    )
    return None if result.rc == 0 else f"stream: {result.stdout.strip() or result.stderr.strip()}"


def airflow_health() -> str | None:
    import requests

    try:
        health = requests.get(f"{ops.airflow_url()}/api/v2/monitor/health", timeout=10).json()
    except (requests.RequestException, ValueError) as exc:
        return f"airflow health: {exc}"
    bad = [k for k, v in health.items() if isinstance(v, dict) and v.get("status") != "healthy"]
    return f"airflow unhealthy: {', '.join(bad)}" if bad else None


def postgres_health() -> str | None:
    try:
        ops.psql("SELECT 1")
    except ops.OpsError as exc:
        return f"postgres: {exc}"
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "kafka": kafka_health,
    "cassandra": cassandra_health,
    "stream": stream_health,
    "airflow": airflow_health,
    "postgres": postgres_health,
}


def platform_problems() -> list[str]:
    return [problem for check in CHECKS.values() if (problem := check())]


def wait_healthy(timeout: float = HEALTH_TIMEOUT) -> float:
    """Wait until every check passes; the seconds it took."""
    started = time.monotonic()

    def whole() -> bool | Pending:
        problems = platform_problems()
        return not problems or Pending("; ".join(problems))

    wait_for("the platform to be healthy again", whole, timeout, interval=5)
    return time.monotonic() - started


# --- the load ---------------------------------------------------------------------------------------------


@dataclass
class Load:
    case: str
    seed: str
    run_id: str
    conf: dict[str, Any]
    before: dict[int, int]
    started: float
    result: FaultResult
    fault_end: float | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def start_load(airflow: Any, case: str, **conf: Any) -> Load:
    """Trigger a run of N users with its own seed (not waiting for it)."""
    seed = f"fault-{case}-{uuid.uuid4().hex[:8]}"
    run_id = f"fault-{case}-{uuid.uuid4().hex[:8]}"
    conf = {"batch_size": BATCH_SIZE, "batches": BATCHES, "seed": seed, **conf}
    before = partition_ends(ops.kafka_bootstrap(), TOPIC)
    airflow.trigger(conf, run_id)
    log(f"{case}: run {run_id} of {N} users (seed {seed}) triggered")
    return Load(case, seed, run_id, conf, before, time.monotonic(), FaultResult(case, N))


def wait_task(
    airflow: Any,
    load: Load,
    task: str,
    states: tuple[str, ...] = ("running", "success"),
    timeout: float = 600,
    interval: float = 1,
) -> None:
    """Until the run's task is in one of `states` (by default: running, or already done)."""

    def reached() -> bool | Pending:
        state = (airflow.client.task_instances(load.run_id).get(task) or {}).get("state")
        return state in states or Pending(f"{task}: {state}")

    wait_for(f"{task} of {load.run_id} to be {'/'.join(states)}", reached, timeout, interval=interval)


def wait_rows_flowing(
    postgres: Any, cassandra: Any, load: Load, at_least: int = 1, timeout: float = 600
) -> None:
    """Until the stream has written at least `at_least` of the load's users to Cassandra."""

    def flowing() -> bool | Pending:
        ids = postgres.ids_for_seed(load.seed)
        n = len(cassandra_rows(cassandra, ids)) if ids else 0
        return n >= at_least or Pending(f"{n} rows of {len(ids)} landed")

    wait_for(f"users of {load.seed} flowing into Cassandra", flowing, timeout, interval=2)


def mark_fault(load: Load) -> float:
    """The fault is over (the host is off, the process killed, the service restarted): times count from
    here."""
    load.result.fault_at_s = load.elapsed()
    load.fault_end = time.monotonic()
    return load.fault_end


def recovered(load: Load, since: float) -> None:
    """Wait until every service is healthy again; the time it took, counted from `since`."""
    wait_healthy()
    load.result.healthy_s = time.monotonic() - since
    log(f"{load.case}: services healthy {load.result.healthy_s:.0f} s after the fault")


def dead_letters_of(cassandra: Any, seed: str) -> dict[str, str]:
    """{kafka_key: reason} of the dead-letter table's records of a seed."""
    found = {}
    for row in cassandra.execute(f"SELECT kafka_key, reason, raw_value FROM {DLQ_TABLE}"):
        try:
            meta = json.loads(row.raw_value).get("_meta") or {}
        except (TypeError, ValueError):
            continue
        if meta.get("seed") == seed:
            found[row.kafka_key] = row.reason
    return found


def finish(
    airflow: Any,
    postgres: Any,
    cassandra: Any,
    load: Load,
    bad: int = 0,
    bad_reason: str | None = None,
) -> FaultResult:
    """The checks every case ends with: the run succeeded; every user of the source landed once in
    PostgreSQL, the outbox drained (nothing pending, nothing parked); every good user is in Cassandra exactly
    once with the right content; the dead letters are exactly the injected bad records."""
    result = load.result
    # what the run fetched: the source is deterministic (and the injected bad records with it)
    pages = source_pages(
        ops.source_url(),
        load.seed,
        BATCH_SIZE,
        BATCHES,
        {"bad": str(bad), "bad_field": "email"} if bad else None,
    )
    served = {uid(u): u for users in pages for u in users}
    assert len(served) == N, "the source served duplicate uuids"
    bad_ids = {i for i, u in served.items() if "email" not in u}
    assert len(bad_ids) == bad * BATCHES
    good = set(served) - bad_ids

    def arrived() -> bool | Pending:
        n = len(cassandra_rows(cassandra, good))
        return n == len(good) or Pending(f"{n} of {len(good)}")

    wait_for(f"{len(good)} users of {load.seed} in Cassandra", arrived, 900, interval=2)
    if load.fault_end is not None:
        result.recovery_s = time.monotonic() - load.fault_end
    airflow.wait(load.run_id, timeout=600)
    result.total_s = load.elapsed()

    landed = postgres.ids_for_seed(load.seed)
    result.landed_postgres = len(landed)
    assert landed == set(served), f"users_raw holds {len(landed)} users of {load.seed}, expected {N}"
    pending = postgres.rows(
        "SELECT count(*) FILTER (WHERE o.published_at IS NULL AND o.parked_at IS NULL), "
        "count(*) FILTER (WHERE o.parked_at IS NOT NULL) "
        f"FROM users_outbox o JOIN users_raw u ON u.id = o.user_id WHERE u.seed = '{load.seed}'"
    )[0]
    assert pending == ["0", "0"], f"outbox of {load.seed}: {pending[0]} pending, {pending[1]} parked"

    rows = cassandra_rows(cassandra, set(served))
    assert set(rows) == good, f"{len(set(rows) - good)} bad users reached Cassandra"
    seed_rows = cassandra_seed_count(cassandra, load.seed)
    result.landed_cassandra = len(rows)
    result.cassandra_duplicates = seed_rows - len(rows)
    assert seed_rows == len(good), f"{seed_rows} rows carry seed {load.seed}, expected {len(good)}"
    wrong = [
        i
        for i in good
        if {
            k: (str(getattr(rows[i], k)) if k == "id" else getattr(rows[i], k))
            for k in expected_row(served[i])
        }
        != expected_row(served[i])
    ]
    assert not wrong, f"{len(wrong)} rows differ from the source, e.g. {wrong[:3]}"

    def all_letters() -> dict[str, str] | Pending:
        found = dead_letters_of(cassandra, load.seed)
        return found if len(found) >= len(bad_ids) else Pending(f"{len(found)} of {len(bad_ids)}")

    letters = (
        wait_for(f"{len(bad_ids)} dead letters of {load.seed}", all_letters, 300)
        if bad_ids
        else dead_letters_of(cassandra, load.seed)
    )
    result.dead_letters = len(letters)
    assert set(letters) == bad_ids, f"dead letters {len(letters)}, expected {len(bad_ids)}"
    if bad_reason:
        assert set(letters.values()) == {bad_reason}, set(letters.values())

    messages = [
        m
        for m in consume_range(
            ops.kafka_bootstrap(), TOPIC, load.before, partition_ends(ops.kafka_bootstrap(), TOPIC)
        )
        if (m.value.get("_meta") or {}).get("seed") == load.seed
    ]
    keys = {m.key for m in messages}
    assert keys == set(served), f"{len(keys)} distinct keys of {load.seed} in {TOPIC}, expected {N}"
    result.kafka_messages, result.kafka_redeliveries = len(messages), len(messages) - len(keys)
    return result


def keep(result: FaultResult) -> None:
    """A case's figures, for the summary and .state/test-reports/faults.jsonl."""
    RESULTS.append(result)
    log(result.line())
    reports = STATE / "test-reports"
    reports.mkdir(parents=True, exist_ok=True)
    with (reports / "faults.jsonl").open("a") as out:
        out.write(json.dumps(asdict(result)) + "\n")


@contextmanager
def outbox_locked(seed: str) -> Iterator[None]:
    """Hold a row lock on a seed's outbox rows (a transaction left open on the postgres host, as the
    ingestion role): a publish of them sends them, then waits on its UPDATE that marks them published."""
    names = ops.contract().postgres
    host = ops.inventory().first("postgres")
    marker = f"correnteza-faults-{uuid.uuid4().hex[:8]}"
    sql = (
        f"SET ROLE {names.ingestion_role}; SET application_name = '{marker}'; BEGIN; "
        "SELECT count(*) FROM (SELECT 1 FROM users_outbox o JOIN users_raw u ON u.id = o.user_id "
        f"WHERE u.seed = '{seed}' FOR UPDATE OF o) AS locked; SELECT pg_sleep(900);"
    )
    command = f"sudo -u postgres psql -d {names.ingestion_db} -AtqX -c {shlex.quote(sql)}"
    holder = subprocess.Popen(
        [*ops.ssh_args(host.ip), command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for(
            "the outbox rows locked",
            lambda: backends("application_name", marker, "pg_sleep") > 0 or Pending("not yet"),
            60,
            interval=0.5,
        )
        yield
    finally:
        holder.terminate()
        holder.wait(30)


# Every session's query text is visible to the superuser only (psql on the host runs as postgres).
SUPERUSER = "postgres"


def backends(column: str, value: str, query_part: str) -> int:
    """Sessions of the ingestion database whose `column` is `value` and whose current query contains
    `query_part`, active (running or waiting)."""
    return int(
        ops.psql(
            f"SELECT count(*) FROM pg_stat_activity WHERE {column} = '{value}' AND state = 'active' "
            f"AND query LIKE '%{query_part}%'",
            role=SUPERUSER,
        )[0][0]
    )


def publish_waiting_on_a_lock() -> int:
    """Sessions blocked on a lock while running the publisher's UPDATE of users_outbox."""
    return int(
        ops.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%UPDATE users_outbox%SET published_at%'",
            role=SUPERUSER,
        )[0][0]
    )


class RollingWatch:
    """While a rolling restart runs: a producer at acks=all on a topic of its own (RF = the brokers,
    min.insync.replicas 2), and once a second the ensemble's quorum (members answering leader or follower)
    and the smallest ISR of that topic's partitions."""

    TOPIC = "correnteza-faults-rolling"

    def __init__(self, servers: str) -> None:
        from confluent_kafka import Producer
        from confluent_kafka.admin import NewTopic

        self.servers = servers
        self.admin = AdminClient({"bootstrap.servers": servers})
        brokers = len(ops.ips("kafka"))
        self.min_insync = min(2, brokers)
        topic = NewTopic(self.TOPIC, 3, brokers, config={"min.insync.replicas": str(self.min_insync)})
        for future in self.admin.create_topics([topic]).values():
            try:
                future.result(timeout=60)
            except Exception as exc:  # an earlier run's topic is fine
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
        self.producer = Producer({"bootstrap.servers": servers, "acks": "all", "enable.idempotence": True})
        self.sent = self.failed = 0
        self.min_quorum = len(ops.ips("zookeeper"))
        # the longest stretch without a leader (an election after the leader's restart), in seconds
        self.leaderless_s = 0.0
        self._leaderless_since: float | None = None
        self.min_isr = brokers
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is None:
            self.sent += 1
        else:
            self.failed += 1
            self.errors.append(str(err))

    def _quorum(self) -> tuple[int, bool]:
        """(members whose server answers, whether one of them is the leader). While a restarted leader's
        successor is elected the survivors answer "not currently serving requests": they are still the
        quorum, and the ensemble serves again once they agree."""
        members, leader = 0, False
        for ip in ops.ips("zookeeper"):
            try:
                with socket.create_connection((ip, ops.contract().ports.zookeeper), timeout=3) as conn:
                    conn.sendall(b"srvr")
                    answer = conn.recv(4096).decode(errors="replace")
            except OSError:
                continue
            if "Mode:" in answer or "not currently serving" in answer:
                members += 1
                leader = leader or "Mode: leader" in answer
        return members, leader

    def _isr(self) -> int | None:
        try:
            topic = self.admin.list_topics(self.TOPIC, timeout=5).topics[self.TOPIC]
        except Exception:  # metadata unavailable for a moment: no sample
            return None
        return min((len(p.isrs) for p in topic.partitions.values()), default=None)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            for _ in range(20):
                self.producer.produce(
                    self.TOPIC, key=str(n).encode(), value=b"x" * 100, on_delivery=self._delivered
                )
                n += 1
            self.producer.poll(0)
            members, leader = self._quorum()
            self.min_quorum = min(self.min_quorum, members)
            now = time.monotonic()
            if leader:
                self._leaderless_since = None
            else:
                self._leaderless_since = self._leaderless_since or now
                self.leaderless_s = max(self.leaderless_s, now - self._leaderless_since)
            isr = self._isr()
            if isr is not None:
                self.min_isr = min(self.min_isr, isr)
            self._stop.wait(1)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.producer.flush(180)
        self.admin.delete_topics([self.TOPIC])

    def summary(self) -> str:
        return (
            f"{self.sent} messages delivered at acks=all, {self.failed} failed {self.errors[:3]}; "
            f"fewest ZooKeeper members up {self.min_quorum}, longest without a leader "
            f"{self.leaderless_s:.1f} s; smallest ISR {self.min_isr} (min.insync.replicas "
            f"{self.min_insync})"
        )
