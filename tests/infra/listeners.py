"""Helpers shared by the testinfra suites: a host's private address and who listens where."""

from __future__ import annotations

from typing import Any


def private_ip(host: Any) -> str:
    return host.ansible.get_variables()["correnteza_ip"]


def listening_addresses(host: Any, port: int) -> set[str]:
    """Local addresses with a TCP listener on port (IPv4 and IPv6)."""
    out = host.check_output(f"ss -Hltn 'sport = :{port}'")
    return {line.split()[3].rsplit(":", 1)[0].strip("[]") for line in out.splitlines() if line.strip()}


def service_listeners(host: Any, unit: str, user: str) -> set[str]:
    """host:port of every TCP listener of the unit's main process (ss run as the service's user, which may
    read its own process's sockets; root may not in these containers, which lack CAP_SYS_PTRACE)."""
    pid = host.check_output(f"systemctl show -p MainPID --value {unit}").strip()
    out = host.check_output(f"sudo -u {user} ss -Hltnp")
    return {line.split()[3] for line in out.splitlines() if f"pid={pid}," in line}
