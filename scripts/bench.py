"""`make bench`: figures and ratios for each hop of the running platform.

Each figure is measured over several runs (min / median / max; quote the median). Every load is bounded in
count and time and goes only to the project's private network.

  source     users/s served by the randomuser-compatible source (5,000 users per request)
  kafka      records/s of 1.2 KB from the control node to a bench topic shaped like the users topic:
             durable (acks=all, idempotent: the pipeline's settings) vs fast (acks=1), and their ratio
  cassandra  rows/s of 1.2 KB at LOCAL_QUORUM (RF 3) from the Python driver, concurrency 64
  e2e        one DAG run of N users: seconds from trigger to the last row in Cassandra, rows/s
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import correnteza_ops as ops
import pipeline  # scripts/pipeline.py: one DAG run followed to Cassandra
import requests
from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def figures(name: str, unit: str, samples: list[float]) -> float:
    med = statistics.median(samples)
    print(f"  {name:44s} {min(samples):10.0f} {med:10.0f} {max(samples):10.0f}  {unit}", flush=True)
    return med


def repeat(fn: Callable[[], float], runs: int = RUNS) -> list[float]:
    fn()  # warm-up, not counted
    return [fn() for _ in range(runs)]


def bench_source() -> float:
    url = f"{ops.source_url()}/api/1.4/"

    def once() -> float:
        t0 = time.perf_counter()
        r = requests.get(url, params={"results": 5000, "seed": uuid.uuid4().hex}, timeout=120)
        r.raise_for_status()
        return len(r.json()["results"]) / (time.perf_counter() - t0)

    return figures("source: users/s (5,000 per request)", "users/s", repeat(once))


def bench_kafka(count: int) -> tuple[float, float]:
    servers = ops.kafka_bootstrap()
    topic = "bench.correnteza"
    admin = AdminClient({"bootstrap.servers": servers})
    if topic not in admin.list_topics(timeout=20).topics:
        admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=3)])[topic].result(30)
    value = json.dumps({"pad": "x" * 1150}).encode()

    def run(conf: dict[str, object]) -> float:
        producer = Producer({"bootstrap.servers": servers, "linger.ms": 20, **conf})
        failed: list[str] = []
        t0 = time.perf_counter()
        for i in range(count):
            while True:
                try:
                    producer.produce(
                        topic, value, str(i).encode(), on_delivery=lambda e, m: e and failed.append(str(e))
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush(120)
        if failed:
            raise RuntimeError(f"{len(failed)} deliveries failed: {failed[0]}")
        return count / (time.perf_counter() - t0)

    try:
        durable = figures(
            f"kafka: {count:,} x 1.2 KB, acks=all idempotent",
            "records/s",
            repeat(lambda: run({"acks": "all", "enable.idempotence": True})),
        )
        fast = figures(f"kafka: {count:,} x 1.2 KB, acks=1", "records/s", repeat(lambda: run({"acks": "1"})))
    finally:
        admin.delete_topics([topic])[topic].result(60)
    return durable, fast


def bench_cassandra(count: int) -> float:
    """Rows written by the application role (as the stream job writes) into a table the superuser creates
    in the keyspace for the benchmark and drops after it (the application role may not change the schema)."""
    table = f"{ops.contract().cassandra.keyspace}.bench_rows"
    with ops.cassandra_session(superuser=True) as admin:
        admin.execute(f"CREATE TABLE IF NOT EXISTS {table} (id uuid PRIMARY KEY, payload text)")
        try:
            with ops.cassandra_session() as session:
                return _write_rows(session, table, count)
        finally:
            admin.execute(f"DROP TABLE IF EXISTS {table}")


def _write_rows(session: Session, table: str, count: int) -> float:
    stmt = session.prepare(f"INSERT INTO {table} (id, payload) VALUES (?, ?)")
    stmt.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    payload = "x" * 1200

    def once() -> float:
        args = [(uuid.uuid4(), payload) for _ in range(count)]
        t0 = time.perf_counter()
        results = execute_concurrent_with_args(session, stmt, args, concurrency=64, raise_on_first_error=True)
        assert all(ok for ok, _ in results)
        return count / (time.perf_counter() - t0)

    return figures(
        f"cassandra: {count:,} x 1.2 KB, LOCAL_QUORUM, RF 3", "rows/s", repeat(once, max(1, RUNS - 2))
    )


def bench_e2e(n: int) -> float:
    """One DAG run of n users in batches of up to 1,000 (a fresh seed): the run's hops and its rows/s."""
    batches = max(1, -(-n // 1000))
    result = pipeline.run(n - n % batches, batches, f"bench-{uuid.uuid4().hex[:8]}", timeout=1800)
    print(
        f"  e2e: {result.users:,} users, trigger -> last row in Cassandra {result.total_s:8.1f} s "
        f"{result.users / result.total_s:8.0f} rows/s",
        flush=True,
    )
    return result.users / result.total_s


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka-records", type=int, default=20_000)
    parser.add_argument("--cassandra-rows", type=int, default=2_000)
    parser.add_argument("--e2e-users", type=int, default=5_000)
    args = parser.parse_args()
    print(f"make bench: {RUNS} counted runs after one warm-up; columns: min, median, max")
    src = bench_source()
    durable, fast = bench_kafka(args.kafka_records)
    cass = bench_cassandra(args.cassandra_rows)
    e2e = bench_e2e(args.e2e_users)
    print("Ratios (medians):")
    print(f"  kafka durable / fast                    {durable / fast:6.2f}")
    print(f"  cassandra / kafka durable               {cass / durable:6.3f}  (the ring is the ceiling)")
    print(f"  e2e / cassandra                         {e2e / cass:6.3f}")
    print(f"  source / e2e                            {src / e2e:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
