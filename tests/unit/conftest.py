"""Fixtures for the producer's unit tests: the local source over real HTTP and a throwaway PostgreSQL.

Only 127.0.0.1 is ever contacted. PostgreSQL: $CORRENTEZA_TEST_PG_DSN if set, else a temporary cluster
started with Debian's postgresql-15 binaries (initdb/pg_ctl). When neither is possible the DB tests skip,
except under CI=true or CORRENTEZA_REQUIRE_PG=1, where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer.source.server import SourceServer, SourceSettings, make_server
from tests.unit.landing_sql import apply_landing_sql

PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin")]


def serve(settings: SourceSettings) -> Iterator[str]:
    server: SourceServer = make_server("127.0.0.1", 0, settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def source_url() -> Iterator[str]:
    """A local randomuser-compatible source without a rate limit."""
    yield from serve(SourceSettings(rate_limit=None, max_delay=5.0))


@pytest.fixture
def limited_source_url() -> Iterator[str]:
    """A local source that allows 1 request/s (burst 1) before answering 429."""
    yield from serve(SourceSettings(rate_limit=1.0, max_delay=5.0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("CORRENTEZA_REQUIRE_PG") == "1"


def pg_bin() -> Path | None:
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def run_pg(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed (rc {proc.returncode}): {proc.stderr.strip()[-1500:]}")


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    if os.environ.get("CORRENTEZA_TEST_PG_DSN"):
        yield os.environ["CORRENTEZA_TEST_PG_DSN"]
        return
    bindir = pg_bin()
    if bindir is None:
        message = "no PostgreSQL binaries (initdb/pg_ctl) and no CORRENTEZA_TEST_PG_DSN"
        if pg_required():
            pytest.fail(message + " (required: CI=true or CORRENTEZA_REQUIRE_PG=1)")
        pytest.skip(message)
    # not under pytest's tmp dir: that one is private to root, and the server runs as postgres
    base = Path(tempfile.mkdtemp(prefix="correnteza-test-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = free_port()
    run_pg(as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]))
    opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
    run_pg(
        as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", opts, "-w", "start"]
        )
    )
    try:
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE ingestion")
        admin.close()
        yield f"host=127.0.0.1 port={port} user=postgres dbname=ingestion"
    finally:
        run_pg(as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]))
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_conn(pg_dsn: str) -> Iterator[object]:
    """A connection to an empty `ingestion` database with the landing schema (producer/sql) applied."""
    import psycopg2

    conn = psycopg2.connect(pg_dsn)
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    conn.commit()
    apply_landing_sql(conn)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def memory_archive():
    """An Archive over an in-memory S3 client (the archive's logic; the real store is tested on the hosts)."""
    from producer.archive import Archive, ArchiveConfig
    from tests.unit.memory_s3 import MemoryS3

    config = ArchiveConfig("http://127.0.0.1:1", "correnteza-bronze", "randomuser", "us-east-1", "ak", "sk")
    return Archive(config, client=MemoryS3())
