"""The `monitor` role: Prometheus scrapes every exporter of the platform, evaluates the alert rules and sends
what fires to Alertmanager; both on the monitor host's private address."""

from __future__ import annotations

import time

import correnteza_ops as ops
import pytest

from tests.infra.listeners import listening_addresses, private_ip, service_listeners

testinfra_hosts = ["ansible://monitor"]

UNITS = {"prometheus": "prometheus", "prometheus-alertmanager": "alertmanager"}
# Jobs Prometheus scrapes, and the inventory groups whose hosts are each job's targets.
JOBS = {
    "node": ["all"],
    "zookeeper": ["zookeeper"],
    "kafka": ["kafka"],
    "cassandra": ["cassandra"],
    "spark_master": ["spark_master"],
    "spark_worker": ["spark_worker"],
    "stream_driver": ["spark_master"],
    "postgres": ["postgres"],
    "prometheus": ["monitor"],
    "alertmanager": ["monitor"],
}
ALERTS = {
    "HostDown", "ClusterMemberDown", "StreamDriverDown", "ScrapeTargetDown", "ZooKeeperNoLeader",
    "KafkaUnderReplicatedPartitions", "KafkaOfflinePartitions", "KafkaNoActiveController",
    "CassandraNodeNotUp", "OutboxBacklogOld", "OutboxRowsParked", "DeadLettersAppearing",
    "LandingRejectsAppearing", "StreamNotProgressing", "HostMemoryNearLimit",
}  # fmt: skip


def expected_targets() -> set[tuple[str, str]]:
    inventory = ops.inventory()
    every_host = {name for group in inventory.groups for name in inventory.host_vars(group)}
    return {
        (job, name)
        for job, groups in JOBS.items()
        for group in groups
        for name in (every_host if group == "all" else inventory.host_vars(group))
    }


def scraped_targets() -> dict[tuple[str, str], str]:
    active = ops.prometheus_api("targets", state="active")["activeTargets"]
    return {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in active}


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_running_and_enabled(host, unit):
    service = host.service(unit)
    assert service.is_running
    assert service.is_enabled


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_listens_on_the_private_ip_only(host, unit):
    port = getattr(ops.contract().ports, UNITS[unit])
    assert listening_addresses(host, port) == {private_ip(host)}
    if unit == "prometheus":
        # Debian's unit runs it in its own user namespace (PrivateUsers=yes): ss cannot name its sockets'
        # process from outside, so only the addresses are checked.
        return
    assert service_listeners(host, unit, "prometheus") == {f"{private_ip(host)}:{port}"}


def test_data_on_the_data_volume_with_the_retention(host):
    flags = ops.prometheus_api("status/flags")
    assert flags["storage.tsdb.path"].startswith("/data/")
    assert host.check_output(f"findmnt -n -o TARGET -T {flags['storage.tsdb.path']}") == "/data"
    # Prometheus prints the size in its base-2 units.
    retention = (flags["storage.tsdb.retention.time"], flags["storage.tsdb.retention.size"])
    assert retention == ("15d", "2GiB")


def test_every_exporter_of_the_inventory_is_a_target_and_up():
    want = expected_targets()
    # Up to a minute for targets that a deploy has just restarted (one scrape interval is 15 s).
    deadline = time.monotonic() + 60
    while True:
        got = scraped_targets()
        if (set(got) == want and set(got.values()) == {"up"}) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert set(got) == want
    assert {target: health for target, health in got.items() if health != "up"} == {}


def test_the_alert_rules_are_loaded_and_healthy():
    groups = ops.prometheus_api("rules", type="alert")["groups"]
    rules = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    assert set(rules) == ALERTS
    assert {name for name, health in rules.items() if health != "ok"} == set()


def test_alertmanager_receives_from_prometheus():
    active = ops.prometheus_api("alertmanagers")["activeAlertmanagers"]
    assert [am["url"] for am in active] == [f"{ops.alertmanager_url()}/api/v2/alerts"]


def test_no_critical_alert_fires_on_the_healthy_platform():
    firing = ops.prometheus_query('ALERTS{alertstate="firing", severity="critical"}')
    assert [labels for labels, _ in firing] == []


def test_the_jmx_rules_keep_only_the_series_they_name():
    # Every JVM exports the series its rules name, the agent's own jvm_/process_ figures, nothing else.
    per_job = ops.prometheus_query(
        'count by (job) ({job=~"zookeeper|kafka|cassandra|spark_master|spark_worker|stream_driver",'
        '__name__!~"(jvm|process|jmx)_.+|up|scrape_.+"})'
    )
    prefixes = {
        "zookeeper": "zookeeper_", "kafka": "kafka_", "cassandra": "cassandra_",
        "spark_master": "spark_master_", "spark_worker": "spark_worker_", "stream_driver": "spark_stream_",
    }  # fmt: skip
    assert {labels["job"] for labels, _ in per_job} == set(prefixes)
    for job, prefix in prefixes.items():
        stray = ops.prometheus_query(
            f'count by (__name__) ({{job="{job}", __name__!~"{prefix}.+|(jvm|process|jmx)_.+|up|scrape_.+"}})'
        )
        assert [labels["__name__"] for labels, _ in stray] == [], job


def test_host_memory_figures_cover_every_host():
    limits = {
        labels["instance"]: value
        for labels, value in ops.prometheus_query("correnteza_host_memory_limit_bytes")
    }
    inventory = ops.inventory()
    want = {
        name: hostvars["correnteza_memory_mb"] * 1024 * 1024
        for group in inventory.groups
        for name, hostvars in inventory.host_vars(group).items()
    }
    assert limits == want
