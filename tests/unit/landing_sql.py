"""Test setup only: apply producer/sql/NNN_*.sql in order to a throwaway database, as the landing_schema
role does on the platform (the producer package itself runs no DDL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).resolve().parents[2] / "producer" / "sql"


def sql_files() -> list[Path]:
    files = sorted(SQL_DIR.glob("[0-9]*.sql"))
    assert files, f"no NNN_name.sql files in {SQL_DIR}"
    return files


def apply_landing_sql(conn: Any) -> None:
    """Every file in order, each in its own transaction (committed)."""
    for path in sql_files():
        with conn.cursor() as cur:
            cur.execute(path.read_text())
        conn.commit()
