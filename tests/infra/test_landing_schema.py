"""The landing_schema role: the landing DDL files applied once each, recorded with their checksums."""

from __future__ import annotations

from pathlib import Path

testinfra_hosts = ["ansible://postgres"]

ROOT = Path(__file__).resolve().parents[2]
SQL_FILES = sorted(path.name for path in (ROOT / "producer" / "sql").glob("[0-9]*.sql"))


def test_landing_ddl_files_are_recorded(host):
    out = host.check_output(
        "sudo -u postgres psql -X -A -t -d ingestion -c "
        "'SELECT filename FROM landing_schema_files ORDER BY 1'"
    )
    assert out.split() == SQL_FILES
    owner = host.check_output(
        "sudo -u postgres psql -X -A -t -d ingestion -c "
        "\"SELECT tableowner FROM pg_tables WHERE tablename = 'landing_schema_files'\""
    )
    assert owner == "ingestion"
