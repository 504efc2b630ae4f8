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


# Prometheus's JMX exporter agent in each service JVM (contract: correnteza_port_jmx_exporter).
JMX_EXPORTER_PORT = 7071


def scrape(host: Any, port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The exposition a Prometheus exporter on host's private address serves, fetched on that host:
    metric name -> [(labels, value)] (comments skipped)."""
    text = host.check_output(f"curl -sf http://{private_ip(host)}:{port}/metrics")
    series: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels = dict(
            pair.split("=", 1) for pair in rest.rstrip("}").replace('"', "").split(",") if "=" in pair
        )
        series.setdefault(name, []).append((labels, float(value)))
    return series
