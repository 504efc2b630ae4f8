"""Kafka cluster: service, listener on the private IP, broker registration, ISR, an acks=all round trip."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import testinfra
from confluent_kafka import Consumer, KafkaError, Producer

from tests.infra.listeners import (
    JMX_EXPORTER_PORT,
    listening_addresses,
    private_ip,
    scrape,
    service_listeners,
)

testinfra_hosts = ["ansible://kafka"]

PORT = 9092
DECLARED_TOPICS = {"users_created": 6, "users_created.dlq": 3}
# The role's health check (kafka_health_script): the restart waits on it before the next broker.
HEALTH_SCRIPT = "/usr/local/bin/correnteza-kafka-health"


@pytest.fixture(scope="module")
def brokers(group_hosts: Callable[[str], dict[str, dict[str, Any]]]) -> dict[str, str]:
    """Inventory name -> private IP of every broker."""
    return {name: hostvars["correnteza_ip"] for name, hostvars in group_hosts("kafka").items()}


@pytest.fixture(scope="module")
def admin_host(brokers: dict[str, str]) -> Any:
    return testinfra.get_host(f"ansible://{sorted(brokers)[0]}")


@pytest.fixture(scope="module")
def bootstrap(brokers: dict[str, str]) -> str:
    return ",".join(f"{ip}:{PORT}" for ip in brokers.values())


def describe(admin_host: Any, topic: str) -> str:
    ip = private_ip(admin_host)
    return admin_host.check_output(f"kafka-topics --bootstrap-server {ip}:{PORT} --describe --topic {topic}")


def test_service_running_and_enabled(host):
    service = host.service("kafka")
    assert service.is_running
    assert service.is_enabled


def test_listener_on_private_ip_only(host):
    assert listening_addresses(host, PORT) == {private_ip(host)}


def test_broker_process_listens_nowhere_else(host):
    # The broker and the JMX exporter agent inside its JVM.
    ip = private_ip(host)
    assert service_listeners(host, "kafka", "kafka") == {f"{ip}:{PORT}", f"{ip}:{JMX_EXPORTER_PORT}"}


def test_jmx_exporter_serves_replication_and_controller_figures(host, brokers):
    series = scrape(host, JMX_EXPORTER_PORT)
    assert [value for _, value in series["kafka_server_replicamanager_underreplicatedpartitions"]] == [0.0]
    assert len(series["kafka_controller_activecontrollercount"]) == 1
    # The rules keep what the console and the alerts use: no series outside the kept families.
    kept = ("kafka_server_", "kafka_controller_", "kafka_log_", "jvm_", "process_", "jmx_")
    assert [name for name in series if not name.startswith(kept)] == []


def test_jmx_exporter_counts_the_active_controller_once_in_the_cluster(brokers):
    total = sum(
        value
        for name in brokers
        for _, value in scrape(testinfra.get_host(f"ansible://{name}"), JMX_EXPORTER_PORT)[
            "kafka_controller_activecontrollercount"
        ]
    )
    assert total == 1.0


def test_jmx_exporter_reports_the_topics_end_offsets(host):
    partitions = {
        labels["partition"]
        for labels, _ in scrape(host, JMX_EXPORTER_PORT)["kafka_log_end_offset"]
        if labels["topic"] == "users_created"
    }
    # Every broker holds a replica of every partition (RF 3 on 3 brokers).
    assert partitions == {str(p) for p in range(DECLARED_TOPICS["users_created"])}


def test_health_script_is_installed(host):
    script = host.file(HEALTH_SCRIPT)
    assert script.is_file
    assert (script.user, script.group, script.mode) == ("root", "root", 0o755)


def test_health_script_passes_now(host, brokers):
    # As the restart runs it (root): every broker registered and no under-replicated partition.
    with host.sudo():
        result = host.run(HEALTH_SCRIPT)
    assert result.rc == 0, result.stdout + result.stderr
    assert f"{len(brokers)} of {len(brokers)} brokers registered" in result.stdout, result.stdout
    assert "no under-replicated partitions" in result.stdout, result.stdout


def test_every_broker_is_in_the_cluster_metadata(admin_host, brokers):
    ip = private_ip(admin_host)
    out = admin_host.check_output(f"kafka-broker-api-versions --bootstrap-server {ip}:{PORT}")
    registered = set(re.findall(r"^(\d+\.\d+\.\d+\.\d+):\d+ \(id: (\d+) rack", out, re.MULTILINE))
    assert registered == {(broker_ip, str(i)) for i, broker_ip in enumerate(brokers.values(), start=1)}


@pytest.mark.parametrize(("topic", "partitions"), sorted(DECLARED_TOPICS.items()))
def test_declared_topic_has_rf3_and_full_isr(admin_host, topic, partitions):
    out = describe(admin_host, topic)
    assert re.search(rf"PartitionCount:\s*{partitions}\s+ReplicationFactor:\s*3\b", out)
    assert "min.insync.replicas=2" in out
    isrs = re.findall(r"Partition: \d+\s+Leader: \d+\s+Replicas: [\d,]+\s+Isr: ([\d,]+)", out)
    assert len(isrs) == partitions
    assert all(len(isr.split(",")) == 3 for isr in isrs), out


def test_round_trip_with_acks_all(admin_host, bootstrap):
    ip = private_ip(admin_host)
    topic = f"correnteza-infra-test-{uuid.uuid4().hex[:12]}"
    admin_host.check_output(
        f"kafka-topics --bootstrap-server {ip}:{PORT} --create --topic {topic} --partitions 3 "
        f"--replication-factor 3 --config min.insync.replicas=2"
    )
    try:
        isrs = re.findall(r"Isr: ([\d,]+)", describe(admin_host, topic))
        assert isrs and all(len(isr.split(",")) == 3 for isr in isrs)
        key, value = uuid.uuid4().hex.encode(), f"hello {uuid.uuid4()}".encode()
        assert produce(bootstrap, topic, key, value) is None
        assert consume_one(bootstrap, topic) == (key, value)
    finally:
        admin_host.run(f"kafka-topics --bootstrap-server {ip}:{PORT} --delete --topic {topic}")


def produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> KafkaError | None:
    """Produce one record with acks=all and idempotence; the delivery error, None on success."""
    errors: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(30) == 0
    return errors[0]


def consume_one(bootstrap: str, topic: str, timeout: float = 60) -> tuple[bytes, bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            return msg.key(), msg.value()
    finally:
        consumer.close()
    raise AssertionError(f"nothing consumed from {topic} in {timeout} s")
