"""`make run` and `make query`: drive and inspect the pipeline from the control node.

run   : `airflow dags trigger user_ingestion` on the Airflow host (over SSH), then follow the run hop by hop
        (DAG state, rows landed, published, Kafka end offsets, Cassandra rows) until Cassandra holds them all.
query : the count at each hop (fetched, landed, published, Kafka end offsets, Cassandra rows, dead letters)
        and a few rows from Cassandra.
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
from pathlib import Path

import yaml
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, Session
from cassandra.policies import DCAwareRoundRobinPolicy
from confluent_kafka import Consumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("CORRENTEZA_STATE", ROOT / ".state"))
INVENTORY = ROOT / "ansible" / "inventory" / "hosts.yml"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


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
    password = (STATE / "secrets" / "cassandra_app_password").read_text().strip()
    cluster = Cluster(
        hosts("cassandra"),
        auth_provider=PlainTextAuthProvider("correnteza", password),
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc="dc1"),
        protocol_version=5,
    )
    return cluster, cluster.connect("spark_streams")


def end_offsets(topic: str) -> int:
    servers = ",".join(f"{ip}:9092" for ip in hosts("kafka"))
    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"query-{uuid.uuid4()}"})
    try:
        parts = consumer.list_topics(topic, timeout=20).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] for p in parts)
    finally:
        consumer.close()


def seed_counts(session: Session, seed: str | None) -> int:
    rows = session.execute("SELECT seed FROM created_users")
    return sum(1 for r in rows if seed is None or r.seed == seed)


def dag_state(run_id: str) -> str:
    out = ssh(hosts("airflow")[0], "sudo /usr/local/bin/airflow dags list-runs user_ingestion -o json")
    for run in json.loads(out[out.index("[") :]):
        if run.get("run_id") == run_id:
            return str(run.get("state"))
    return "queued"


def hop_counts(seed: str | None) -> dict[str, int]:
    where = f"WHERE u.seed = '{seed}'" if seed else ""
    fetched = psql(
        "SELECT coalesce(sum(fetched), 0), coalesce(sum(rejected), 0) FROM batches"
        + (f" WHERE seed = '{seed}'" if seed else "")
    )[0]
    landed, published = psql(
        "SELECT count(*), count(o.published_at) FROM users_raw u "
        f"LEFT JOIN users_outbox o ON o.user_id = u.id {where}"
    )[0]
    return {
        "fetched": int(fetched[0]),
        "rejected_by_producer": int(fetched[1]),
        "landed": int(landed),
        "published": int(published),
    }


def run(args: argparse.Namespace) -> int:
    n, batches, seed = args.n, args.batches, args.seed
    size = max(1, n // batches)
    conf = {"batch_size": size, "batches": batches, "seed": seed}
    run_id = f"make-run-{time.strftime('%Y%m%dT%H%M%S')}"
    log(f"trigger: airflow dags trigger user_ingestion --run-id {run_id} --conf '{json.dumps(conf)}'")
    t0 = time.monotonic()
    ssh(
        hosts("airflow")[0],
        f"sudo /usr/local/bin/airflow dags trigger user_ingestion --run-id {run_id} "
        f"--conf {shlex.quote(json.dumps(conf))}",
    )
    cluster, session = cassandra()
    want = size * batches
    try:
        state = "queued"
        while True:
            time.sleep(5)
            if state not in ("success", "failed"):
                state = dag_state(run_id)
            c = hop_counts(seed)
            rows = seed_counts(session, seed)
            log(
                f"{time.monotonic() - t0:5.0f} s  dag={state:8s} fetched={c['fetched']} landed={c['landed']} "
                f"published={c['published']} cassandra={rows}/{want}"
            )
            if state == "failed":
                log("the DAG run failed: see the Airflow UI (http://127.0.0.1:8080) or the task logs")
                return 1
            if state == "success" and rows >= want:
                secs = time.monotonic() - t0
                log(f"done: {rows} users of seed {seed!r} in Cassandra, {secs:.0f} s after the trigger")
                return 0
            if time.monotonic() - t0 > args.timeout:
                log(f"timed out after {args.timeout} s")
                return 1
    finally:
        cluster.shutdown()


def query(args: argparse.Namespace) -> int:
    seed = args.seed or None
    c = hop_counts(seed)
    cluster, session = cassandra()
    try:
        rows = seed_counts(session, seed)
        dlq = sum(1 for _ in session.execute("SELECT kafka_offset FROM created_users_dlq"))
        scope = f"seed {seed!r}" if seed else "all seeds"
        print(f"Counts at each hop ({scope}):")
        print(f"  fetched from the source      {c['fetched']}")
        print(f"  rejected by the producer     {c['rejected_by_producer']}")
        print(f"  landed in users_raw          {c['landed']}")
        print(f"  published (outbox)           {c['published']}")
        print(f"  Kafka users_created offsets  {end_offsets('users_created')} (all seeds)")
        print(f"  Kafka users_created.dlq      {end_offsets('users_created.dlq')} (all seeds)")
        print(f"  Cassandra created_users      {rows}")
        print(f"  Cassandra created_users_dlq  {dlq} (all seeds)")
        print("A few rows from spark_streams.created_users:")
        cols = "id, first_name, last_name, email, nationality, age, seed"
        for r in session.execute(f"SELECT {cols} FROM created_users LIMIT 5"):
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
    return run(args) if args.command == "run" else query(args)


if __name__ == "__main__":
    sys.exit(main())
