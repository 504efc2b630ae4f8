"""`make run` and `make query`: drive and inspect the pipeline from the control node.

run   : trigger user_ingestion through Airflow's REST API (http://127.0.0.1:8080, user admin) and
        follow the run hop by hop (DAG state, records fetched, users landed, published, rows in Cassandra)
        until Cassandra holds every user of the run; then seconds and rows/s per hop (Airflow's task
        times, Cassandra's write times).
query : the count at each hop (for SEED, if set, and for all seeds) and a few rows from Cassandra.
Traffic goes only to the project's private network and 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import yaml
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, Session
from cassandra.policies import DCAwareRoundRobinPolicy
from confluent_kafka import Consumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("CORRENTEZA_STATE", ROOT / ".state"))
INVENTORY = ROOT / "ansible" / "inventory" / "hosts.yml"
AIRFLOW_API = os.environ.get("AIRFLOW_API", "http://127.0.0.1:8080")
DAG_ID = "user_ingestion"
TASKS = ("fetch", "land", "publish")
MAX_BATCH = 5000  # the API's per-request ceiling (producer.config.MAX_RESULTS)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def secret(name: str) -> str:
    return (STATE / "secrets" / name).read_text().strip()


def hosts(group: str) -> list[str]:
    inv = yaml.safe_load(INVENTORY.read_text())
    return [h["correnteza_ip"] for h in (inv["all"]["children"][group].get("hosts") or {}).values()]


def ssh(ip: str, command: str) -> str:
    key = STATE / "ssh" / "id_ed25519"
    args = ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"]
    args += ["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"deploy@{ip}", command]
    run = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"{command!r} on {ip} failed: {run.stderr.strip() or run.stdout.strip()}")
    return run.stdout


def psql(sql: str) -> list[list[str]]:
    out = ssh(hosts("postgres")[0], f"sudo -u postgres psql -d ingestion -AtX -F '|' -c {shlex.quote(sql)}")
    return [line.split("|") for line in out.splitlines() if line]


def cassandra() -> tuple[Cluster, Session]:
    cluster = Cluster(
        hosts("cassandra"),
        auth_provider=PlainTextAuthProvider("correnteza", secret("cassandra_app_password")),
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc="dc1"),
        protocol_version=5,
    )
    return cluster, cluster.connect()


def end_offsets(topic: str) -> int:
    servers = ",".join(f"{ip}:9092" for ip in hosts("kafka"))
    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"query-{uuid.uuid4()}"})
    try:
        parts = consumer.list_topics(topic, timeout=20).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] for p in parts)
    finally:
        consumer.close()


def iso(value: str | None) -> float | None:
    """An Airflow ISO-8601 date -> epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


class Airflow:
    """Airflow's REST API (v2) as admin (password: .state/secrets/airflow_admin_password)."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self._login()

    def _login(self) -> None:
        body = {"username": "admin", "password": secret("airflow_admin_password")}
        r = requests.post(f"{AIRFLOW_API}/auth/token", json=body, timeout=30)
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{AIRFLOW_API}/api/v2/dags/{DAG_ID}{path}"
        r = requests.request(method, url, headers=self.headers, timeout=30, **kwargs)
        if r.status_code == 401:
            self._login()
            r = requests.request(method, url, headers=self.headers, timeout=30, **kwargs)
        if not r.ok:
            raise RuntimeError(f"{method} {url}: HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    def paused(self) -> bool:
        return bool(self.call("GET", "")["is_paused"])

    def trigger(self, run_id: str, conf: dict[str, Any]) -> None:
        self.call("POST", "/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": conf})

    def state(self, run_id: str) -> str:
        return str(self.call("GET", f"/dagRuns/{run_id}")["state"])

    def tasks(self, run_id: str) -> dict[str, dict[str, Any]]:
        return {
            t["task_id"]: t for t in self.call("GET", f"/dagRuns/{run_id}/taskInstances")["task_instances"]
        }


# --- one run's counts -------------------------------------------------------------------------------------


def run_counts(run_id: str) -> dict[str, int]:
    """Batches staged, records fetched, rejected by the producer, users landed and published by this run."""
    batches, fetched, rejected, landed = psql(
        "SELECT count(*), coalesce(sum(fetched), 0), coalesce(sum(rejected), 0), coalesce(sum(landed), 0) "
        f"FROM batches WHERE run_id = '{run_id}'"
    )[0]
    published = psql(
        "SELECT count(o.published_at) FROM users_outbox o JOIN batches b ON b.batch_id = o.batch_id "
        f"WHERE b.run_id = '{run_id}'"
    )[0][0]
    return {
        "batches": int(batches),
        "fetched": int(fetched),
        "rejected": int(rejected),
        "landed": int(landed),
        "published": int(published),
    }


def run_users(run_id: str) -> tuple[list[str], set[str]]:
    """(ids of the users this run landed, its batch ids)."""
    rows = psql(
        "SELECT u.id, u.batch_id FROM users_raw u JOIN batches b ON b.batch_id = u.batch_id "
        f"WHERE b.run_id = '{run_id}'"
    )
    return [r[0] for r in rows], {r[1] for r in rows}


def cassandra_written(session: Session, ids: list[str], batch_ids: set[str]) -> tuple[int, float | None]:
    """(rows of these users written by this run's batches, the latest write time in epoch seconds)."""
    stmt = session.prepare(
        "SELECT id, batch_id, writetime(first_name) AS wt FROM spark_streams.created_users WHERE id IN ?"
    )
    count, latest = 0, None
    for i in range(0, len(ids), 100):
        for row in session.execute(stmt, [[uuid.UUID(x) for x in ids[i : i + 100]]]):
            if row.batch_id in batch_ids:
                count += 1
                latest = max(latest or 0.0, row.wt / 1e6)
    return count, latest


@dataclass
class RunReport:
    run_id: str
    seed: str
    users: int
    total_s: float
    hops: list[tuple[str, float, int]] = field(default_factory=list)  # (hop, seconds, rows)

    def print(self) -> None:
        log(f"run {self.run_id}: {self.users} users of seed {self.seed!r}")
        print(f"  {'hop':46s} {'seconds':>8s} {'rows':>7s} {'rows/s':>8s}")
        for name, secs, rows in self.hops:
            rate = f"{rows / secs:8.0f}" if secs > 0 and rows else f"{'-':>8s}"
            print(f"  {name:46s} {secs:8.1f} {rows:7d} {rate}")
        rate = self.users / self.total_s if self.total_s > 0 else 0.0
        print(f"  {'trigger -> last row in Cassandra':46s} {self.total_s:8.1f} {self.users:7d} {rate:8.0f}")


def report(
    run_id: str, seed: str, t0: float, tasks: dict[str, dict[str, Any]], users: int, last: float
) -> RunReport:
    start = {t: iso(tasks.get(t, {}).get("start_date")) for t in TASKS}
    end = {t: iso(tasks.get(t, {}).get("end_date")) for t in TASKS}
    hops: list[tuple[str, float, int]] = []
    if start["fetch"]:
        hops.append(("queued (trigger -> fetch starts)", start["fetch"] - t0, 0))
    labels = {
        "fetch": "fetch (source -> PostgreSQL batches)",
        "land": "land (batches -> users_raw + outbox)",
        "publish": "publish (outbox -> Kafka, acks=all)",
    }
    for t in TASKS:
        if start[t] and end[t]:
            hops.append((labels[t], end[t] - start[t], users))
    if end["publish"]:
        hops.append(("stream (publish ends -> last Cassandra write)", last - end["publish"], users))
    return RunReport(run_id, seed, users, last - t0, hops)


def run(n: int, batches: int, seed: str, timeout: int) -> RunReport:
    """Trigger one run of n users in `batches` batches and follow it until Cassandra holds them all."""
    if n < 1 or batches < 1 or n % batches or n // batches > MAX_BATCH:
        raise SystemExit(f"N={n} must be a multiple of BATCHES={batches} with N/BATCHES <= {MAX_BATCH}")
    conf = {"batch_size": n // batches, "batches": batches, "seed": seed}
    airflow = Airflow()
    if airflow.paused():
        raise SystemExit(
            f"DAG {DAG_ID} is paused: unpause it (Airflow UI, or `airflow dags unpause {DAG_ID}`)"
        )
    run_id = f"make-run-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:4]}"
    log(f"trigger {DAG_ID} run {run_id} conf {json.dumps(conf)}")
    t0 = time.time()
    airflow.trigger(run_id, conf)
    cluster, session = cassandra()
    try:
        return follow(airflow, session, run_id, seed, t0, timeout)
    finally:
        cluster.shutdown()


def follow(airflow: Airflow, session: Session, run_id: str, seed: str, t0: float, timeout: int) -> RunReport:
    state, ids, batch_ids, rows, last = "queued", [], set(), 0, None
    counts: dict[str, int] = {}
    while True:
        time.sleep(2)
        if state not in ("success", "failed"):
            state = airflow.state(run_id)
            counts = run_counts(run_id)
        if state == "success" and not ids:
            ids, batch_ids = run_users(run_id)
        if ids:
            rows, last = cassandra_written(session, ids, batch_ids)
        log(
            f"{time.time() - t0:5.0f} s  dag={state:8s} batches={counts.get('batches', 0)} "
            f"fetched={counts.get('fetched', 0)} rejected={counts.get('rejected', 0)} "
            f"landed={counts.get('landed', 0)} published={counts.get('published', 0)} "
            f"cassandra={rows}/{len(ids) or '?'}"
        )
        if state == "failed":
            tasks = {t: v["state"] for t, v in airflow.tasks(run_id).items()}
            raise SystemExit(
                f"DAG run {run_id} failed (tasks {tasks}): task logs under "
                "/opt/correnteza/airflow/logs on airflow-1, or the UI at http://127.0.0.1:8080"
            )
        if state == "success" and ids and rows == len(ids) and last is not None:
            result = report(run_id, seed, t0, airflow.tasks(run_id), len(ids), last)
            result.print()
            return result
        if time.time() - t0 > timeout:
            raise SystemExit(f"timed out after {timeout} s (dag={state}, cassandra={rows}/{len(ids)})")


# --- query ------------------------------------------------------------------------------------------------


def hop_counts(seed: str | None) -> dict[str, int]:
    literal = "'" + seed.replace("'", "''") + "'" if seed else ""
    fetched, rejected = psql(
        "SELECT coalesce(sum(fetched), 0), coalesce(sum(rejected), 0) FROM batches"
        + (f" WHERE seed = {literal}" if seed else "")
    )[0]
    landed, published = psql(
        "SELECT count(*), count(o.published_at) FROM users_raw u LEFT JOIN users_outbox o ON o.user_id = u.id"
        + (f" WHERE u.seed = {literal}" if seed else "")
    )[0]
    return {
        "fetched": int(fetched),
        "rejected": int(rejected),
        "landed": int(landed),
        "published": int(published),
    }


def cassandra_counts(session: Session, seed: str | None) -> tuple[int, int]:
    """(rows of created_users with this seed, all rows): one full scan, fine at this platform's size."""
    mine = total = 0
    for row in session.execute("SELECT seed FROM spark_streams.created_users"):
        total += 1
        mine += seed is not None and row.seed == seed
    return mine, total


def query(seed: str | None) -> int:
    """Counts at each hop for one seed (SEED, `make run`'s default included) and for all seeds."""
    everything = hop_counts(None)
    scoped = hop_counts(seed) if seed else everything
    cluster, session = cassandra()
    try:
        rows, all_rows = cassandra_counts(session, seed)
        dlq = sum(1 for _ in session.execute("SELECT kafka_offset FROM spark_streams.created_users_dlq"))
        head = f"seed {seed!r}" if seed else ""
        print(f"Counts at each hop {'':33s} {head:>18s} {'all seeds':>12s}")
        lines = (
            ("records fetched from the source (all runs)", "fetched"),
            ("rejected by the producer (users_rejected)", "rejected"),
            ("users landed in users_raw (distinct)", "landed"),
            ("users published (outbox)", "published"),
        )
        for label, key in lines:
            mine = str(scoped[key]) if seed else ""
            print(f"  {label:50s} {mine:>18s} {everything[key]:12d}")
        for topic in ("users_created", "users_created.dlq"):
            print(f"  {f'Kafka {topic} (end offsets)':50s} {'':>18s} {end_offsets(topic):12d}")
        print(f"  {'Cassandra created_users rows':50s} {str(rows) if seed else '':>18s} {all_rows:12d}")
        print(f"  {'Cassandra created_users_dlq rows':50s} {'':>18s} {dlq:12d}")
        print("A few rows from spark_streams.created_users:")
        cols = "id, first_name, last_name, email, nationality, age, seed"
        for r in session.execute(f"SELECT {cols} FROM spark_streams.created_users LIMIT 5"):
            print(
                f"  {r.id} {r.first_name} {r.last_name} <{r.email}> {r.nationality} age {r.age} seed {r.seed}"
            )
    finally:
        cluster.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="trigger one DAG run and follow it")
    r.add_argument("--n", type=int, default=int(os.environ.get("N", "1000")))
    r.add_argument("--batches", type=int, default=int(os.environ.get("BATCHES", "1")))
    r.add_argument("--seed", default=os.environ.get("SEED", "correnteza"))
    r.add_argument("--timeout", type=int, default=900)
    q = sub.add_parser("query", help="counts at each hop and a few rows")
    q.add_argument("--seed", default=os.environ.get("SEED", ""))
    args = parser.parse_args(argv)
    if not INVENTORY.exists():
        print(f"{INVENTORY} is missing: run `make up` first", file=sys.stderr)
        return 2
    if args.command == "run":
        run(args.n, args.batches, args.seed, args.timeout)
        return 0
    return query(args.seed or None)


if __name__ == "__main__":
    sys.exit(main())
