"""When Kafka lost offsets the stream needed (retention expired them during a long outage), the stream stops
loudly instead of skipping them, and `make replay` refills it from PostgreSQL.

The expiry is made the way retention makes it: the topic's records before the current end are deleted
(AdminClient.delete_records moves each partition's log start), while the streaming job is stopped.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import correnteza_ops as ops
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from pipeline import move_aside_command

from tests.e2e.conftest import TOPIC, Pending, cassandra_ids, partition_ends, wait_for
from tests.e2e.test_pipeline import run_dag, wait_cassandra

pytestmark = pytest.mark.e2e

UNIT = "correnteza-stream"
N_BATCHES, BATCH_SIZE = 2, 100


def expire_everything_before_the_end(servers: str) -> dict[int, int]:
    """Delete every record of the topic before its current end offsets; the new log start offsets."""
    ends = partition_ends(servers, TOPIC)
    admin = AdminClient({"bootstrap.servers": servers})
    futures = admin.delete_records([TopicPartition(TOPIC, p, end) for p, end in ends.items()])
    return {tp.partition: future.result(timeout=60).low_watermark for tp, future in futures.items()}


def test_expired_offsets_stop_the_stream_loudly_and_make_replay_refills(
    airflow, postgres, cassandra, kafka_servers, stream_host
):
    seed = f"e2e-expired-{uuid.uuid4().hex[:8]}"
    conf = {"batch_size": BATCH_SIZE, "batches": N_BATCHES, "seed": seed}
    assert stream_host.run(f"sudo systemctl stop {UNIT}").rc == 0
    restarted = False
    try:
        run_dag(airflow, conf, "expired")
        landed = postgres.ids_for_seed(seed)
        assert len(landed) == N_BATCHES * BATCH_SIZE
        # Kafka's retention takes the run's messages before the stream has read them.
        starts = expire_everything_before_the_end(kafka_servers)
        assert starts == partition_ends(kafka_servers, TOPIC) or all(starts.values())

        assert stream_host.run(f"sudo systemctl start {UNIT}").rc == 0

        def stopped_loudly() -> bool | Pending:
            state = stream_host.run(f"systemctl is-failed {UNIT}").stdout.strip()
            return state == "failed" or Pending(state)

        wait_for(f"{UNIT} to stop on the expired offsets", stopped_loudly, 420, interval=5)
        journal = stream_host.run(f"sudo journalctl -u {UNIT} --since '-10 min' --no-pager").stdout
        assert "DATA LOSS" in journal and "make replay" in journal, journal[-3000:]
        # the line names what was lost: a partition of the topic and its offset
        assert re.search(rf"DATA LOSS: .*{TOPIC}-\d", journal), journal[-3000:]
        # it stays stopped (no restart loop) and wrote none of the lost users
        assert stream_host.run(f"systemctl is-failed {UNIT}").stdout.strip() == "failed"
        assert cassandra_ids(cassandra, landed) == set()

        replay = subprocess.run(
            ["scripts/replay.sh"],
            cwd=ops.ROOT,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        restarted = replay.returncode == 0
        assert replay.returncode == 0, replay.stdout[-3000:] + replay.stderr[-2000:]
        assert "moving the checkpoint" in replay.stdout and "pending again in users_outbox" in replay.stdout
        # the checkpoint folder is there again as the stream_job role made it (site.yml stays changed=0)
        checkpoint = ops.contract().paths["stream_checkpoint_dir"]
        made = stream_host.check_output(
            f"sudo stat -c '%F %U %G %a' {checkpoint} {checkpoint}/.."
        ).splitlines()
        assert made[0] == made[1] and made[0].endswith(" 750"), made  # as its parent: the role makes both
    finally:
        if not restarted:  # leave a stream that runs, whatever failed above
            checkpoint = ops.contract().paths["stream_checkpoint_dir"]
            aside = move_aside_command(checkpoint, f"{checkpoint}.test-{uuid.uuid4().hex[:6]}")
            stream_host.run(
                f"sudo systemctl stop {UNIT}; {aside}; sudo systemctl reset-failed {UNIT}; "
                f"sudo systemctl start {UNIT}"
            )

    wait_cassandra(cassandra, landed)
    assert stream_host.service(UNIT).is_running
    assert (
        postgres.scalar(
            "SELECT count(*) FROM users_outbox o JOIN users_raw u ON u.id = o.user_id "
            f"WHERE u.seed = '{seed}' AND o.published_at IS NULL"
        )
        == 0
    )
