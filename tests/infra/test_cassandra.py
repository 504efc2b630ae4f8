"""Cassandra ring: service, listeners, nodes UN, QUORUM write/read across nodes, default login refused."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import testinfra
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import DCAwareRoundRobinPolicy

from tests.infra.listeners import (
    JMX_EXPORTER_PORT,
    listening_addresses,
    private_ip,
    scrape,
    service_listeners,
)

testinfra_hosts = ["ansible://cassandra"]

CQL_PORT = 9042
TEST_KEYSPACE = "correnteza_infra_test"


def cql(host: Any, statements: str) -> str:
    """Run CQL through the host's cqlsh wrapper as root (the superuser's credentials file)."""
    return host.check_output(f"sudo cqlsh -e {quote(statements)}")


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def login(ips: list[str], user: str, password: str) -> None:
    """Open and close a session; raise on failure."""
    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(local_dc="dc1"))
    cluster = Cluster(
        ips,
        port=CQL_PORT,
        auth_provider=PlainTextAuthProvider(username=user, password=password),
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=5,
        connect_timeout=15,
    )
    try:
        cluster.connect()
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def nodes(group_hosts: Callable[[str], dict[str, dict[str, Any]]]) -> dict[str, str]:
    """Inventory name -> private IP of every node."""
    return {name: hostvars["correnteza_ip"] for name, hostvars in group_hosts("cassandra").items()}


def test_service_running_and_enabled(host):
    service = host.service("cassandra")
    assert service.is_running
    assert service.is_enabled


@pytest.mark.parametrize("port", [7000, CQL_PORT])
def test_port_listens_on_private_ip_only(host, port):
    assert listening_addresses(host, port) == {private_ip(host)}


def test_jmx_listens_on_loopback_only(host):
    assert listening_addresses(host, 7199) == {"127.0.0.1"}


def test_cassandra_process_listens_on_private_ip_or_loopback_only(host):
    listeners = service_listeners(host, "cassandra", "cassandra")
    ip = private_ip(host)
    assert {f"{ip}:7000", f"{ip}:{CQL_PORT}", "127.0.0.1:7199", f"{ip}:{JMX_EXPORTER_PORT}"} <= listeners
    assert {address.rsplit(":", 1)[0] for address in listeners} == {ip, "127.0.0.1"}


def test_jmx_exporter_sees_no_node_down(host, nodes):
    series = scrape(host, JMX_EXPORTER_PORT)
    assert [value for _, value in series["cassandra_failuredetector_downendpointcount"]] == [0.0]
    assert [value for _, value in series["cassandra_failuredetector_upendpointcount"]] == [float(len(nodes))]


def test_every_node_is_up_and_normal(host, nodes):
    out = host.check_output("sudo nodetool status")
    up_normal = set(re.findall(r"^UN\s+(\d+\.\d+\.\d+\.\d+)\s", out, re.MULTILINE))
    assert up_normal == set(nodes.values())


def test_quorum_write_on_one_node_reads_back_through_another(nodes):
    names = sorted(nodes)
    writer = testinfra.get_host(f"ansible://{names[0]}")
    reader = testinfra.get_host(f"ansible://{names[1]}")
    rf = min(3, len(nodes))
    row_id, value = uuid.uuid4(), f"written-{uuid.uuid4().hex}"
    cql(
        writer,
        f"CREATE KEYSPACE IF NOT EXISTS {TEST_KEYSPACE} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', 'dc1': {rf}}}; "
        f"CREATE TABLE IF NOT EXISTS {TEST_KEYSPACE}.kv (id uuid PRIMARY KEY, value text); "
        f"CONSISTENCY QUORUM; INSERT INTO {TEST_KEYSPACE}.kv (id, value) VALUES ({row_id}, '{value}');",
    )
    try:
        out = cql(reader, f"CONSISTENCY QUORUM; SELECT value FROM {TEST_KEYSPACE}.kv WHERE id = {row_id};")
        assert value in out
        assert "(1 rows)" in out
    finally:
        writer.run(f"sudo cqlsh -e 'DROP KEYSPACE IF EXISTS {TEST_KEYSPACE};'")


def test_default_superuser_login_is_refused(nodes):
    with pytest.raises(NoHostAvailable) as refused:
        login(list(nodes.values()), "cassandra", "cassandra")
    assert all(isinstance(err, AuthenticationFailed) for err in refused.value.errors.values())


@pytest.mark.parametrize(
    ("user", "secret_name"),
    [
        ("correnteza_admin", "cassandra_superuser_password"),
        ("correnteza", "cassandra_app_password"),
    ],
)
def test_generated_roles_log_in(nodes, secret, user, secret_name):
    login(list(nodes.values()), user, secret(secret_name))


def test_app_role_has_permissions_on_its_keyspace(host):
    out = cql(host, "LIST ALL PERMISSIONS OF correnteza;")
    granted = set(re.findall(r"<keyspace spark_streams>\s*\|\s*(\w+)", out))
    assert {"SELECT", "MODIFY"} <= granted
