"""Alerts for real: a broker stopped on its host fires ClusterMemberDown (and the partitions it led run
under-replicated) in Alertmanager, naming the host; started again, both resolve."""

from __future__ import annotations

import correnteza_ops as ops
import pytest

from tests.e2e.conftest import wait_for
from tests.faults.faults import log, run_on

pytestmark = pytest.mark.faults

# Firing takes the scrape (15 s), the rule's `for` (30 s; 1 min for under-replication) and the evaluation
# (15 s); resolving one scrape and one evaluation. These bound the waits only.
FIRE_TIMEOUT = 300
RESOLVE_TIMEOUT = 300


def alerts_about(broker: str) -> dict[str, dict]:
    """Active alerts in Alertmanager that concern the broker: its own, and the cluster's replication."""
    found = {}
    for alert in ops.active_alerts():
        labels = alert["labels"]
        if labels.get("alertname") == "ClusterMemberDown" and labels.get("instance") == broker:
            found["ClusterMemberDown"] = alert
        if labels.get("alertname") == "KafkaUnderReplicatedPartitions":
            found["KafkaUnderReplicatedPartitions"] = alert
    return found


def test_a_stopped_broker_fires_alerts_that_resolve_when_it_is_back():
    broker = ops.inventory().hosts("kafka")[-1].name
    assert alerts_about(broker) == {}, "alerts already active before the fault"
    log(f"alerts: stopping kafka on {broker}")
    run_on(broker, "sudo systemctl stop kafka")
    try:
        fired = wait_for(
            f"ClusterMemberDown for {broker} and KafkaUnderReplicatedPartitions in Alertmanager",
            lambda: (found := alerts_about(broker)) and len(found) == 2 and found,
            timeout=FIRE_TIMEOUT,
            interval=5,
        )
    finally:
        log(f"alerts: starting kafka on {broker}")
        run_on(broker, "sudo systemctl start kafka")
    member = fired["ClusterMemberDown"]
    assert member["labels"]["job"] == "kafka"
    assert member["labels"]["severity"] == "critical"
    assert broker in member["annotations"]["summary"]
    assert [r["name"] for r in member["receivers"]] == ["console"]
    wait_for(
        f"the alerts about {broker} to resolve",
        lambda: alerts_about(broker) == {},
        timeout=RESOLVE_TIMEOUT,
        interval=5,
    )
    log(f"alerts: fired and resolved for {broker}")
