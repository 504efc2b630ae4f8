"""The `node_exporter` role: Prometheus's node exporter on every host, with its memory cgroup figures."""

from __future__ import annotations

import pytest

from tests.infra.listeners import listening_addresses, private_ip, scrape, service_listeners

testinfra_hosts = ["ansible://all"]

UNIT = "prometheus-node-exporter"
PORT = 9100
MIB = 1024 * 1024


@pytest.mark.parametrize("unit", [UNIT, "correnteza-cgroup-memory.timer"])
def test_unit_running_and_enabled(host, unit):
    service = host.service(unit)
    assert service.is_running
    assert service.is_enabled


def test_listens_on_the_private_ip_only(host):
    assert listening_addresses(host, PORT) == {private_ip(host)}
    assert service_listeners(host, UNIT, "prometheus") == {f"{private_ip(host)}:{PORT}"}


def test_memory_limit_is_the_hosts_container_limit(host):
    # Terraform gives each host correnteza_memory_mb (its container's limit); the exporter reports that,
    # not the machine's memory that /proc/meminfo shows in a container.
    series = scrape(host, PORT)
    limit = series["correnteza_host_memory_limit_bytes"][0][1]
    assert limit == host.ansible.get_variables()["correnteza_memory_mb"] * MIB
    usage = series["correnteza_host_memory_usage_bytes"][0][1]
    working_set = series["correnteza_host_memory_working_set_bytes"][0][1]
    assert 0 < working_set <= usage <= limit


def test_machine_collectors_that_read_nothing_here_are_off(host):
    series = scrape(host, PORT)
    assert not [
        name for name in series if name.startswith(("node_hwmon_", "node_thermal_zone_", "node_rapl_"))
    ]
    assert series["node_load1"]
    assert [labels for labels, _ in series["node_filesystem_avail_bytes"] if labels["mountpoint"] == "/data"]
