"""The `postgres_exporter` role: Prometheus's PostgreSQL exporter (peer authentication), landing figures."""

from __future__ import annotations

from tests.infra.listeners import listening_addresses, private_ip, scrape, service_listeners

testinfra_hosts = ["ansible://postgres"]

UNIT = "prometheus-postgres-exporter"
PORT = 9187


def psql(host, sql: str) -> str:
    return host.check_output(f'sudo -u postgres psql -d ingestion -tAc "{sql}"').strip()


def test_unit_running_and_enabled(host):
    service = host.service(UNIT)
    assert service.is_running
    assert service.is_enabled


def test_listens_on_the_private_ip_only(host):
    assert listening_addresses(host, PORT) == {private_ip(host)}
    assert service_listeners(host, UNIT, "prometheus") == {f"{private_ip(host)}:{PORT}"}


def test_reaches_the_server(host):
    assert [value for _, value in scrape(host, PORT)["pg_up"]] == [1.0]


def test_role_has_no_password_and_only_monitoring_rights(host):
    # Peer authentication over the socket: the role has no password to leak, and is no superuser.
    assert (
        psql(host, "SELECT rolsuper, rolpassword IS NULL FROM pg_authid WHERE rolname = 'prometheus'")
        == "f|t"
    )
    assert psql(host, "SELECT pg_has_role('prometheus', 'pg_monitor', 'MEMBER')") == "t"
    assert psql(host, "SELECT has_table_privilege('prometheus', 'users_raw', 'SELECT')") == "f"


def test_outbox_figures_match_the_table(host):
    series = scrape(host, PORT)
    pending = psql(host, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL AND parked_at IS NULL")
    parked = psql(
        host, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL AND parked_at IS NOT NULL"
    )
    assert series["correnteza_outbox_pending"][0][1] == float(pending)
    assert series["correnteza_outbox_parked"][0][1] == float(parked)
    assert series["correnteza_outbox_oldest_pending_age_seconds"][0][1] >= 0


def test_rejected_records_by_reason_match_the_table(host):
    series = scrape(host, PORT)
    expected = {
        reason: float(count)
        for reason, count in (
            line.split("|")
            for line in psql(
                host, "SELECT split_part(reason, ':', 1), count(*) FROM users_rejected GROUP BY 1"
            ).splitlines()
            if line
        )
    }
    reported = {labels["reason"]: value for labels, value in series.get("correnteza_rejected_records", [])}
    assert reported == expected
