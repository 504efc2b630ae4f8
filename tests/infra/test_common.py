"""The `common` role and the hosts themselves: systemd, names, addresses, the network between hosts."""

from __future__ import annotations

from typing import Any

import pytest

testinfra_hosts = ["ansible://all"]


def test_systemd_is_pid1_and_running(host):
    assert host.check_output("ps -o comm= -p 1") == "systemd"
    # "degraded" would mean a failed unit somewhere on the host.
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.check_output("systemctl --failed --no-legend")


def test_hostname_is_the_inventory_name(host):
    assert host.check_output("hostname") == host.backend.get_hostname()


def inventory_peers(inventory: dict[str, Any]) -> dict[str, str]:
    """Inventory name -> private IP of every host (a co-located host once)."""
    return {
        name: hv["correnteza_ip"]
        for group in inventory["all"]["children"].values()
        for name, hv in (group.get("hosts") or {}).items()
    }


def test_etc_hosts_is_dockers_own(host):
    # Peers are found through Docker's DNS (each host's name is its alias on the project network,
    # terraform/main.tf): nothing rewrites /etc/hosts, so a restarted host comes back as it was.
    content = host.file("/etc/hosts").content_string
    assert "Ansible managed" not in content, content
    assert host.backend.get_hostname() in content.split(), content


def test_every_peer_resolves_to_its_ip(host, inventory):
    peers = inventory_peers(inventory)
    # One lookup of every name through the resolver (NSS), as services would do it.
    out = host.check_output("getent ahostsv4 " + " ".join(sorted(peers)) + " | awk '$2 == \"STREAM\"'")
    resolved = {}
    for line in out.splitlines():
        ip, _, name = line.split()[:3]
        resolved.setdefault(name, ip)
    assert resolved == peers


@pytest.mark.parametrize("service", ["ssh"])
def test_base_services(host, service):
    svc = host.service(service)
    assert svc.is_running
    assert svc.is_enabled


def test_base_packages(host):
    wanted = ["python3", "python3-venv", "openjdk-17-jre-headless", "rsync", "sudo", "curl"]
    out = host.check_output("dpkg-query -W -f '${Package} ${db:Status-Status}\\n' " + " ".join(wanted))
    installed = {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}
    assert installed == set(wanted)


def test_time_zone(host):
    assert host.file("/etc/timezone").content_string.strip() == "Etc/UTC"


def test_data_volume_is_mounted(host):
    assert host.mount_point("/data").exists


def test_deploy_user_has_passwordless_sudo(host):
    assert host.run("sudo -n true").rc == 0
    assert host.user("deploy").exists


def test_password_logins_are_off(host):
    out = host.check_output("sudo sshd -T | grep -E '^(passwordauthentication|permitrootlogin) '")
    assert "passwordauthentication no" in out
    assert "permitrootlogin no" in out
