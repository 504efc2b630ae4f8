"""`make run` and `make query`: drive and inspect the pipeline from the control node.

run   : trigger the ingestion DAG through Airflow's REST API (the api-server on the airflow host, as the
        contract's admin user) and follow the run hop by hop (DAG state, records fetched, users landed,
        published, rows in Cassandra) until Cassandra holds every user of the run; then seconds and rows/s per
        hop (Airflow's task times, Cassandra's write times).
query : the count at each hop (for SEED, if set, and for all seeds) and a few rows from Cassandra.
replay: refill the stream from PostgreSQL after Kafka lost offsets the stream needed (its retention expired
        them during a long outage; the job stops with DATA LOSS in its journal): stop the job, move its
        checkpoint aside (kept), start it again, re-queue every user (REPLAY_SEED=...: one seed's) in the
        outbox; the DAG's next run publishes them, and the job writes them (upserts: nothing doubles).
Names and ports come from the contract and the inventory (scripts/correnteza_ops.py).
Traffic goes only to the project's private network.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import correnteza_ops as ops
from cassandra.cluster import Session
from correnteza_ops import psql, sql_literal

# The DAG's tasks, in order: fetch validates and lands each batch (users_raw + outbox), publish sends it.
TASKS = ("fetch", "publish")
MAX_BATCH = 5000  # the API's per-request ceiling (producer.config.MAX_RESULTS)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def iso(value: str | None) -> float | None:
    """An Airflow ISO-8601 date -> epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


# --- one run's counts -------------------------------------------------------------------------------------


def run_counts(run_id: str) -> dict[str, int]:
    """Batches requested, records fetched, rejected by the producer, users landed and published by a run."""
    batches, fetched, rejected, landed = psql(
        "SELECT count(*), coalesce(sum(fetched), 0), coalesce(sum(rejected), 0), coalesce(sum(landed), 0) "
        f"FROM batches WHERE run_id = {sql_literal(run_id)}"
    )[0]
    published = psql(
        "SELECT count(o.published_at) FROM users_outbox o JOIN batches b ON b.batch_id = o.batch_id "
        f"WHERE b.run_id = {sql_literal(run_id)}"
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
        f"WHERE b.run_id = {sql_literal(run_id)}"
    )
    return [r[0] for r in rows], {r[1] for r in rows}


def cassandra_written(session: Session, ids: list[str], batch_ids: set[str]) -> tuple[int, float | None]:
    """(rows of these users written by this run's batches, the latest write time in epoch seconds)."""
    table = ops.contract().cassandra.users
    stmt = session.prepare(f"SELECT id, batch_id, writetime(first_name) AS wt FROM {table} WHERE id IN ?")
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


# What each task does, for the report (keys: TASKS).
TASK_LABELS = {
    "fetch": "fetch (source -> users_raw + outbox)",
    "publish": "publish (outbox -> Kafka, acks=all)",
}


def report(
    run_id: str, seed: str, t0: float, tasks: dict[str, dict[str, Any]], users: int, last: float
) -> RunReport:
    start = {t: iso(tasks.get(t, {}).get("start_date")) for t in TASKS}
    end = {t: iso(tasks.get(t, {}).get("end_date")) for t in TASKS}
    first, final = TASKS[0], TASKS[-1]
    hops: list[tuple[str, float, int]] = []
    if start[first]:
        hops.append((f"queued (trigger -> {first} starts)", start[first] - t0, 0))
    for t in TASKS:
        if start[t] and end[t]:
            hops.append((TASK_LABELS.get(t, t), end[t] - start[t], users))
    if end[final]:
        hops.append((f"stream ({final} ends -> last Cassandra write)", last - end[final], users))
    return RunReport(run_id, seed, users, last - t0, hops)


def run(n: int, batches: int, seed: str, timeout: int) -> RunReport:
    """Trigger one run of n users in `batches` batches and follow it until Cassandra holds them all."""
    if n < 1 or batches < 1 or n % batches or n // batches > MAX_BATCH:
        raise SystemExit(f"N={n} must be a multiple of BATCHES={batches} with N/BATCHES <= {MAX_BATCH}")
    conf = {"batch_size": n // batches, "batches": batches, "seed": seed}
    airflow = ops.Airflow()
    if airflow.paused():
        dag = airflow.dag_id
        raise SystemExit(f"DAG {dag} is paused: unpause it (Airflow UI, or `airflow dags unpause {dag}`)")
    run_id = f"make-run-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:4]}"
    log(f"trigger {airflow.dag_id} run {run_id} conf {json.dumps(conf)}")
    t0 = time.time()
    airflow.trigger(run_id, conf)
    with ops.cassandra_session() as session:
        return follow(airflow, session, run_id, seed, t0, timeout)


def follow(
    airflow: ops.Airflow, session: Session, run_id: str, seed: str, t0: float, timeout: int
) -> RunReport:
    state, ids, batch_ids, rows, last = "queued", [], set(), 0, None
    counts: dict[str, int] = {}
    while True:
        time.sleep(2)
        if state not in ops.FINAL_STATES:
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
            tasks = {t: v["state"] for t, v in airflow.task_instances(run_id).items()}
            raise SystemExit(f"DAG run {run_id} failed (tasks {tasks}): {airflow.logs_hint()}")
        if state == "success" and ids and rows == len(ids) and last is not None:
            result = report(run_id, seed, t0, airflow.task_instances(run_id), len(ids), last)
            result.print()
            return result
        if time.time() - t0 > timeout:
            raise SystemExit(f"timed out after {timeout} s (dag={state}, cassandra={rows}/{len(ids)})")


# --- query ------------------------------------------------------------------------------------------------


def hop_counts(seed: str | None) -> dict[str, int]:
    literal = sql_literal(seed) if seed else ""
    fetched, rejected = psql(
        "SELECT coalesce(sum(fetched), 0), coalesce(sum(rejected), 0) FROM batches"
        + (f" WHERE seed = {literal}" if seed else "")
    )[0]
    landed, published, parked = psql(
        "SELECT count(*), count(o.published_at), count(o.parked_at) "
        "FROM users_raw u LEFT JOIN users_outbox o ON o.user_id = u.id"
        + (f" WHERE u.seed = {literal}" if seed else "")
    )[0]
    return {
        "fetched": int(fetched),
        "rejected": int(rejected),
        "landed": int(landed),
        "published": int(published),
        "parked": int(parked),
    }


def parked_reasons(limit: int = 10) -> list[tuple[int, int, str]]:
    """(rows, most attempts, reason) of the parked outbox rows, the commonest reasons first."""
    # one line per reason: psql prints rows as lines, so whitespace (newlines) in a reason becomes a space
    rows = psql(
        "SELECT count(*), max(attempts), regexp_replace(coalesce(last_error, ''), '\\s+', ' ', 'g') "
        "FROM users_outbox WHERE parked_at IS NOT NULL "
        f"GROUP BY last_error ORDER BY count(*) DESC, last_error LIMIT {int(limit)}"
    )
    return [(int(count), int(attempts), reason) for count, attempts, reason in rows]


def print_parked(total: int) -> None:
    """The parked rows' reasons: messages the serializer or Kafka refused until the attempts cap."""
    if not total:
        return
    print(f"Parked outbox rows ({total}: refused at every attempt, no longer sent):")
    for count, attempts, reason in parked_reasons():
        print(f"  {count:8d} x (attempts {attempts}) {reason[:200]}")
    print(
        "  to send one again: UPDATE users_outbox SET parked_at = NULL, attempts = 0 WHERE user_id = '<id>'"
    )


def print_archive() -> None:
    """The bronze archive: objects and bytes per day (dt= partition), as its read-only identity lists it."""
    names = ops.contract().s3
    usage = ops.archive_usage()
    total_objects = sum(n for n, _ in usage.values())
    total_bytes = sum(b for _, b in usage.values())
    print(f"Archive s3://{names.bucket}/{names.prefix}/ at {ops.s3_endpoint()}: "
          f"{total_objects} objects, {total_bytes / 1e6:.1f} MB")  # fmt: skip
    for day, (count, size) in usage.items():
        print(f"  dt={day:12s} {count:8d} objects {size / 1e6:10.1f} MB")


def archive_replay(run_id: str | None, date_from: str | None, date_to: str | None, dry_run: bool,
                   timeout: int) -> int:  # fmt: skip
    """Trigger user_replay (airflow dags trigger on the Airflow host) and follow it to its end."""
    if not (run_id or date_from or date_to):
        raise ops.OpsError("archive-replay needs RUN_ID=<run id>, or DATE_FROM and/or DATE_TO (YYYY-MM-DD)")
    airflow = ops.Airflow(dag_id=ops.contract().airflow.dag_replay)
    conf = {"run_id": run_id, "date_from": date_from, "date_to": date_to, "dry_run": dry_run}
    replay_run = f"replay__{time.strftime('%Y%m%dT%H%M%S')}"
    log(f"archive-replay: triggering {airflow.dag_id} run {replay_run} with {conf}")
    airflow.trigger_cli(replay_run, conf)
    state = airflow.wait(replay_run, timeout=timeout)
    log(f"archive-replay: {replay_run} ended {state}; tasks: {airflow.task_states(replay_run)}")
    if state != "success":
        log(f"archive-replay: see the check task's log ({airflow.logs_hint()})")
        return 1
    return 0


def cassandra_counts(session: Session, seed: str | None) -> tuple[int, int]:
    """(rows of the users table with this seed, all rows): one full scan, fine at this platform's size."""
    mine = total = 0
    for row in session.execute(f"SELECT seed FROM {ops.contract().cassandra.users}"):
        total += 1
        mine += seed is not None and row.seed == seed
    return mine, total


def query(seed: str | None) -> int:
    """Counts at each hop for one seed (SEED, `make run`'s default included) and for all seeds."""
    names = ops.contract()
    users, dlq_table = names.cassandra.users, names.cassandra.dlq
    everything = hop_counts(None)
    scoped = hop_counts(seed) if seed else everything
    with ops.cassandra_session() as session:
        rows, all_rows = cassandra_counts(session, seed)
        dlq = sum(1 for _ in session.execute(f"SELECT kafka_offset FROM {dlq_table}"))
        head = f"seed {seed!r}" if seed else ""
        print(f"Counts at each hop {'':33s} {head:>18s} {'all seeds':>12s}")
        lines = (
            ("records fetched from the source (all runs)", "fetched"),
            ("rejected by the producer (users_rejected)", "rejected"),
            ("users landed in users_raw (distinct)", "landed"),
            ("users published (outbox)", "published"),
            ("users parked (outbox: refused max_attempts times)", "parked"),
        )
        for label, key in lines:
            mine = str(scoped[key]) if seed else ""
            print(f"  {label:50s} {mine:>18s} {everything[key]:12d}")
        for topic in (names.kafka.topic_users, names.kafka.topic_dlq):
            print(f"  {f'Kafka {topic} (end offsets)':50s} {'':>18s} {ops.end_offsets(topic):12d}")
        mine = str(rows) if seed else ""
        print(f"  {f'Cassandra {names.cassandra.table_users} rows':50s} {mine:>18s} {all_rows:12d}")
        print(f"  {f'Cassandra {names.cassandra.table_dlq} rows':50s} {'':>18s} {dlq:12d}")
        print_parked(everything["parked"])
        print_archive()
        print(f"A few rows from {users}:")
        cols = "id, first_name, last_name, email, nationality, age, seed"
        for r in session.execute(f"SELECT {cols} FROM {users} LIMIT 5"):
            print(
                f"  {r.id} {r.first_name} {r.last_name} <{r.email}> {r.nationality} age {r.age} seed {r.seed}"
            )
    return 0


# --- replay -----------------------------------------------------------------------------------------------

STREAM_UNIT = "correnteza-stream"
STREAM_HEALTH = "/usr/local/bin/correnteza-stream-health"


def requeue(seed: str | None) -> int:
    """Every user (of a seed) pending again in the outbox, under a new version; how many."""
    scope = f" AND u.seed = {sql_literal(seed)}" if seed else ""
    return int(
        psql(
            "WITH q AS (UPDATE users_outbox o SET published_at = NULL, parked_at = NULL, attempts = 0, "
            "last_error = NULL, version = nextval('users_outbox_version_seq') "
            f"FROM users_raw u WHERE u.id = o.user_id{scope} RETURNING 1) SELECT count(*) FROM q"
        )[0][0]
    )


def pending(seed: str | None) -> int:
    scope = f" AND u.seed = {sql_literal(seed)}" if seed else ""
    return int(
        psql(
            "SELECT count(*) FROM users_outbox o JOIN users_raw u ON u.id = o.user_id "
            f"WHERE o.published_at IS NULL AND o.parked_at IS NULL{scope}"
        )[0][0]
    )


def wait_until(what: str, check: Any, timeout: float, interval: float = 5) -> None:
    """Poll check() -> (done, progress text) until done; log the progress; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        done, progress = check()
        log(f"replay: {what}: {progress}")
        if done:
            return
        if time.monotonic() > deadline:
            raise ops.OpsError(f"replay: {what}: not done after {timeout:.0f} s ({progress})")
        time.sleep(interval)


def move_aside_command(folder: str, aside: str) -> str:
    """Shell: rename `folder` to `aside` and make it again, empty, with the same owner, group and mode (the
    stream_job role's), so the next site.yml finds it as it made it."""
    src, dst = shlex.quote(folder), shlex.quote(aside)
    return (
        f'if sudo test -e {src}; then sudo mv {src} {dst} && sudo install -d -o "$(sudo stat -c %U {dst})" '
        f'-g "$(sudo stat -c %G {dst})" -m "$(sudo stat -c %a {dst})" {src}; fi'
    )


def replay(seed: str | None, timeout: int) -> int:
    master = ops.inventory().first("spark_master")
    checkpoint = ops.contract().paths["stream_checkpoint_dir"]
    aside = f"{checkpoint}.before-replay-{time.strftime('%Y%m%dT%H%M%S')}"
    started = time.time()
    log(f"replay 1/5: stopping {STREAM_UNIT} on {master.name}")
    ops.ssh(master.ip, f"sudo systemctl stop {STREAM_UNIT}")
    log(f"replay 2/5: moving the checkpoint {checkpoint} aside to {aside} on {master.name} (kept)")
    ops.ssh(master.ip, move_aside_command(checkpoint, aside))
    log(f"replay 3/5: starting {STREAM_UNIT} (it reads the topic from its earliest offset)")
    ops.ssh(master.ip, f"sudo systemctl reset-failed {STREAM_UNIT}; sudo systemctl start {STREAM_UNIT}")

    def running() -> tuple[bool, str]:
        out = ops.ssh_run(master.ip, f"sudo {STREAM_HEALTH} {int(started * 1000)}")
        return out.returncode == 0, out.stdout.strip() or out.stderr.strip()

    wait_until("the stream's application", running, 300)
    queued = requeue(seed)
    log(f"replay 4/5: {queued} users {f'of seed {seed} ' if seed else ''}pending again in users_outbox")
    airflow = ops.Airflow()
    if airflow.paused():
        log(f"replay: DAG {airflow.dag_id} is paused: unpause it (or trigger a run) to publish them")
    log(f"replay 5/5: the next run of {airflow.dag_id} publishes them (it drains the whole outbox)")
    wait_until("users left to publish", lambda: ((n := pending(seed)) == 0, f"{n} pending"), timeout)
    log(f"replay: done in {time.time() - started:.0f} s; `make query` shows the counts at each hop")
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
    p = sub.add_parser("replay", help="refill the stream from PostgreSQL (after expired Kafka offsets)")
    p.add_argument("--seed", default=os.environ.get("REPLAY_SEED", ""), help="only this seed's users")
    p.add_argument("--timeout", type=int, default=900)
    a = sub.add_parser("archive-replay", help="land archived answers again (user_replay DAG)")
    a.add_argument("--run-id", default=os.environ.get("RUN_ID", ""))
    a.add_argument("--date-from", default=os.environ.get("DATE_FROM", ""))
    a.add_argument("--date-to", default=os.environ.get("DATE_TO", ""))
    a.add_argument("--dry-run", action="store_true", default=os.environ.get("DRY_RUN", "") in ("1", "true"))
    a.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args(argv)
    try:
        ops.inventory(), ops.contract()
    except ops.OpsError as e:
        print(e, file=sys.stderr)
        return 2
    if args.command == "run":
        run(args.n, args.batches, args.seed, args.timeout)
        return 0
    if args.command == "archive-replay":
        try:
            return archive_replay(args.run_id or None, args.date_from or None, args.date_to or None,
                                  args.dry_run, args.timeout)  # fmt: skip
        except ops.OpsError as e:
            print(e, file=sys.stderr)
            return 1
    if args.command == "replay":
        try:
            return replay(args.seed or None, args.timeout)
        except ops.OpsError as e:
            print(e, file=sys.stderr)
            return 1
    return query(args.seed or None)


if __name__ == "__main__":
    sys.exit(main())
