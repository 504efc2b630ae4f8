"""Faults while the pipeline flows: each case runs a load of N users (its own seed) and, while it flows, does
one thing that goes wrong in production: a host loses power, a process is killed, a service restarts, the
source misbehaves. After each: every user lands in Cassandra exactly once with the right content, the outbox
drains, the dead letters are what the injected bad input implies, the recovery time is printed, and the
platform is healthy before the next case. The last case checks that site.yml, run again after all of them,
changes nothing (the hosts came back as they were).
"""

from __future__ import annotations

import subprocess
import time

import correnteza_ops as ops
import pytest

from tests.ansible_recap import ROOT, STATE, assert_changes_nothing, run_site
from tests.faults.faults import (
    RollingWatch,
    finish,
    keep,
    log,
    mark_fault,
    names_not_resolved,
    outbox_locked,
    power_loss,
    power_on,
    publish_waiting_on_a_lock,
    recovered,
    run_on,
    start_load,
    wait_for,
    wait_rows_flowing,
    wait_task,
)

pytestmark = pytest.mark.faults

# How long a host stays off, or a service down, before it is brought back (seconds).
OUTAGE = 20
# The Spark job's reason for a record whose email is missing (spark/correnteza_stream/validate.py).
MISSING_EMAIL_REASON = "invalid_email"


def tries(airflow, load) -> dict[str, int]:
    return {k: t["try_number"] for k, t in airflow.client.task_instances(load.run_id).items()}


def a_member(group: str) -> str:
    """The member of a group the case hits: the last one (never the one the health checks ask first)."""
    return ops.inventory().hosts(group)[-1].name


def bring_back(host: str, load) -> list[str]:
    """Power the host on after OUTAGE seconds (recovery counts from then), wait until the platform is whole;
    what it (or a peer) cannot resolve by name."""
    time.sleep(OUTAGE)
    power_on(host)
    recovered(load, mark_fault(load))
    peer = ops.inventory().first("postgres").name
    return [f"on {host}: {n}" for n in names_not_resolved(host)] + [
        f"on {peer}: {n}" for n in names_not_resolved(peer) if n.startswith(f"{host} ")
    ]


def assert_came_back_as_it_was(host: str, unresolved: list[str]) -> None:
    assert not unresolved, f"{host} came back without its names: {unresolved}"


def test_kafka_broker_power_loss_during_publish(airflow, postgres, cassandra):
    broker = a_member("kafka")
    load = start_load(airflow, "broker")
    wait_task(airflow, load, "publish")
    power_loss(broker)
    unresolved = bring_back(broker, load)
    keep(finish(airflow, postgres, cassandra, load))
    assert_came_back_as_it_was(broker, unresolved)


def test_cassandra_node_power_loss_while_the_stream_writes(airflow, postgres, cassandra):
    node = a_member("cassandra")
    load = start_load(airflow, "cassandra")
    wait_rows_flowing(postgres, cassandra, load)
    power_loss(node)
    unresolved = bring_back(node, load)
    keep(finish(airflow, postgres, cassandra, load))
    assert_came_back_as_it_was(node, unresolved)


def test_stream_driver_sigkill(airflow, postgres, cassandra):
    driver = ops.inventory().first("spark_master").name
    load = start_load(airflow, "driver")
    wait_rows_flowing(postgres, cassandra, load)
    log(f"SIGKILL to the stream's driver on {driver}")
    run_on(driver, "sudo systemctl kill --signal=SIGKILL correnteza-stream")
    since = mark_fault(load)
    recovered(load, since)
    keep(finish(airflow, postgres, cassandra, load))


def test_spark_master_restart_while_the_stream_writes(airflow, postgres, cassandra):
    master = ops.inventory().first("spark_master").name
    load = start_load(airflow, "master")
    wait_rows_flowing(postgres, cassandra, load)
    log(f"restart of the Spark master on {master}")
    run_on(master, "sudo systemctl restart spark-master")
    since = mark_fault(load)
    recovered(load, since)
    keep(finish(airflow, postgres, cassandra, load))


def test_airflow_scheduler_and_task_worker_killed(airflow, postgres, cassandra):
    host = ops.inventory().first("airflow").name
    load = start_load(airflow, "scheduler")
    wait_task(airflow, load, "fetch")
    # The scheduler and, in its control group, the LocalExecutor's worker running the task.
    log(f"SIGKILL to the Airflow scheduler and its task workers on {host}")
    run_on(host, "sudo systemctl kill --signal=SIGKILL airflow-scheduler")
    since = mark_fault(load)
    recovered(load, since)
    result = finish(airflow, postgres, cassandra, load)
    result.notes.append(f"task tries {tries(airflow, load)}")
    keep(result)


def test_postgres_restart_while_publish_runs(airflow, postgres, cassandra):
    """PostgreSQL (the outbox, and Airflow's metadata) restarts while publish has sent the load's users and
    waits to mark them (a row lock held by the test keeps it there): its connection dies, the try fails,
    Airflow retries it, and the retry sends the users again (at-least-once) and marks them."""
    host = ops.inventory().first("postgres").name
    load = start_load(airflow, "postgres")
    queued = (
        "SELECT count(*) FROM users_outbox o JOIN users_raw u ON u.id = o.user_id "
        f"WHERE u.seed = '{load.seed}'"
    )
    wait_for(f"users of {load.seed} in the outbox", lambda: postgres.scalar(queued) > 0, 300, interval=0.5)
    with outbox_locked(load.seed):
        wait_for("publish waiting to mark what it sent", lambda: publish_waiting_on_a_lock() > 0, 300)
        log(f"restart of PostgreSQL on {host} while publish waits to mark what it sent")
        run_on(host, "sudo systemctl restart postgresql")
    since = mark_fault(load)
    recovered(load, since)
    result = finish(airflow, postgres, cassandra, load)
    result.notes.append(f"task tries {tries(airflow, load)}")
    keep(result)
    assert tries(airflow, load)["publish"] >= 2, "publish was not retried after PostgreSQL restarted"


def test_source_answers_429_5xx_malformed_and_truncated(airflow, postgres, cassandra):
    """Each page's first four requests fail, one of each kind, and 5 users of each page miss their email:
    the client retries through the faults, the bad records go to the dead letters with their reason."""
    faults = ["429", "5xx", "malformed", "truncated"]
    load = start_load(airflow, "source", inject_faults=faults, inject_bad=5)
    since = mark_fault(load)
    recovered(load, since)
    result = finish(airflow, postgres, cassandra, load, bad=5, bad_reason=MISSING_EMAIL_REASON)
    result.notes.append(f"each page answered {', '.join(faults)} first")
    keep(result)


def test_rolling_restart_of_zookeeper_and_kafka_keeps_quorum_and_isr():
    """Defect 5: the handlers' restart path (ansible/rolling_restart.yml includes the roles' restart.yml)
    restarts one member at a time, each healthy before the next: while it runs, a producer writing at
    acks=all never fails, ZooKeeper never loses its quorum and no partition drops below
    min.insync.replicas."""
    watch = RollingWatch(ops.kafka_bootstrap())
    watch.start()
    try:
        log("rolling restart of ZooKeeper, then Kafka (the handlers' path), while producing at acks=all")
        started = time.monotonic()
        run = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "ansible/rolling_restart.yml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        took = time.monotonic() - started
    finally:
        watch.stop()
    (STATE / "ansible-rolling-restart.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-3000:]
    restarts = run.stdout.count("changed: [")
    log(f"rolling restart: {took:.0f} s, {watch.summary()}")
    assert restarts >= len(ops.ips("zookeeper")) + len(ops.ips("kafka")), run.stdout[-3000:]
    assert watch.sent > 0 and watch.failed == 0, watch.summary()
    assert watch.min_quorum >= len(ops.ips("zookeeper")) // 2 + 1, watch.summary()
    assert watch.min_isr >= watch.min_insync, watch.summary()


def test_site_yml_after_the_faults_changes_nothing():
    """The second site.yml run of `make test` changes nothing: the deploy is idempotent, and the hosts that
    lost power and the services that were killed came back as they were."""
    log("site.yml again, after every fault case")
    assert_changes_nothing(run_site("ansible-after-faults.log"))
