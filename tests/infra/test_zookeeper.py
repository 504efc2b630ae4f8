"""ZooKeeper ensemble: service, listeners on the private IP, one leader, replication of a znode."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import testinfra

from tests.infra.listeners import (
    JMX_EXPORTER_PORT,
    listening_addresses,
    private_ip,
    scrape,
    service_listeners,
)

testinfra_hosts = ["ansible://zookeeper"]

CLIENT_PORT = 2181
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def mode(host: Any) -> str:
    """'leader' or 'follower' from the srvr four-letter word (asked up to 5 times: on a busy host the
    answer is sometimes empty)."""
    out = ""
    for _ in range(5):
        out = host.check_output(f"echo srvr | nc -w 3 {private_ip(host)} {CLIENT_PORT}")
        match = re.search(r"^Mode:\s*(\w+)", out, re.MULTILINE)
        if match:
            return match.group(1)
        time.sleep(1)
    raise AssertionError(f"no Mode in srvr answer: {out!r}")


@pytest.fixture(scope="module")
def members(group_hosts: Callable[[str], dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Every ensemble member's testinfra host, by inventory name."""
    return {name: testinfra.get_host(f"ansible://{name}") for name in group_hosts("zookeeper")}


def test_service_running_and_enabled(host):
    service = host.service("zookeeper")
    assert service.is_running
    assert service.is_enabled


@pytest.mark.parametrize("port", [CLIENT_PORT, 3888])
def test_port_listens_on_private_ip_only(host, port):
    assert listening_addresses(host, port) == {private_ip(host)}


def test_quorum_port_only_on_leader_and_private_ip(host):
    expected = {private_ip(host)} if mode(host) == "leader" else set()
    assert listening_addresses(host, 2888) == expected


def test_server_process_listens_nowhere_else(host):
    ip = private_ip(host)
    allowed = {f"{ip}:{CLIENT_PORT}", f"{ip}:3888", f"{ip}:2888", f"{ip}:{JMX_EXPORTER_PORT}"}
    listeners = service_listeners(host, "zookeeper", "zookeeper")
    assert {f"{ip}:{CLIENT_PORT}", f"{ip}:3888", f"{ip}:{JMX_EXPORTER_PORT}"} <= listeners <= allowed


def test_jmx_exporter_reports_the_members_role(host, members):
    series = scrape(host, JMX_EXPORTER_PORT)
    roles = {labels["role"].lower() for labels, _ in series["zookeeper_numaliveconnections"]}
    assert roles == {mode(host)}
    assert [value for _, value in series["zookeeper_quorum_size"]] == [float(len(members))]


def test_exactly_one_leader(members):
    modes = sorted(mode(member) for member in members.values())
    assert modes == ["follower"] * (len(modes) - 1) + ["leader"]


def test_znode_written_on_one_member_reads_back_on_every_other(members):
    names = sorted(members)
    writer = members[names[0]]
    path = f"/correnteza-infra-test-{uuid.uuid4().hex[:12]}"
    value = uuid.uuid4().hex
    created = writer.run(f"{ZKCLI} -server {private_ip(writer)}:{CLIENT_PORT} create {path} {value}")
    assert f"Created {path}" in created.stdout + created.stderr
    try:
        for name in names[1:]:
            reader = members[name]
            out = reader.check_output(f"{ZKCLI} -server {private_ip(reader)}:{CLIENT_PORT} get {path}")
            assert value in out.splitlines(), f"{name} did not read {path}"
    finally:
        writer.run(f"{ZKCLI} -server {private_ip(writer)}:{CLIENT_PORT} delete {path}")
