"""The bronze archive's logic: keys, deterministic bodies without secrets, checksums, selection, what fetch
does when the store is down and what replay lands (against a throwaway PostgreSQL). The store itself is
the in-memory client of tests/unit/memory_s3.py here, and the real SeaweedFS in tests/infra and tests/e2e;
one test talks to a real (closed) TCP port to see botocore's retries end in a clear error."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
from datetime import UTC, date, datetime
from typing import Any

import pytest

from producer.archive import (
    Archive,
    ArchiveConfig,
    ArchiveError,
    CorruptObject,
    answer_document,
    answer_metadata,
    decode_answer,
    encode_answer,
    object_key,
    parse_key,
    select_keys,
)
from producer.config import ClientConfig
from producer.selection import SourceChoice
from producer.settings import PIPELINE_KEYS, SettingsError, s3_settings
from producer.source.generator import UserGenerator
from producer.tasks import FetchPlan, fetch_batches, replay_archive, replay_selection
from tests.unit.memory_s3 import MemoryS3
from tests.unit.test_landing import scalar

DAY = date(2026, 12, 2)
SECRETS = ("password", "salt", "md5", "sha1", "sha256")


def test_object_key_layout_and_parse() -> None:
    key = object_key("randomuser", DAY, "manual__2026-12-02T18:00:00+00:00", 7)
    assert key == "randomuser/dt=2026-12-02/run_id=manual__2026-12-02T18-00-00-00-00/batch-00007.json.gz"
    assert parse_key(key) == (DAY, "manual__2026-12-02T18-00-00-00-00", 7)
    assert parse_key("randomuser/README") is None
    with pytest.raises(ValueError, match="page must be >= 1"):
        object_key("randomuser", DAY, "r", 0)


def test_the_archived_answer_has_no_login_secrets_and_the_same_bytes_each_time() -> None:
    users = UserGenerator().page("archive", 1, 5)
    assert all(name in users[0]["login"] for name in SECRETS)
    document = answer_document(users, {"seed": "archive", "page": 1, "results": 5})
    body = encode_answer(document)
    assert body == encode_answer(answer_document(users, {"seed": "archive", "page": 1, "results": 5}))
    stored = json.loads(gzip.decompress(body))
    for user in stored["results"]:
        assert not set(SECRETS) & set(user["login"]), user["login"]
    # exactly as it arrived otherwise
    for original, kept in zip(users, stored["results"], strict=True):
        original = {**original, "login": {k: v for k, v in original["login"].items() if k not in SECRETS}}
        assert kept == json.loads(json.dumps(original))
    assert all(name in users[0]["login"] for name in SECRETS), "the caller's records are not modified"


def test_nan_and_a_lone_surrogate_read_back_as_they_arrived() -> None:
    """Replay validates what arrived: a record fetch rejected is rejected again, for the same reason."""
    odd = [{"login": {"uuid": "5d0c57a5-0b33-4b53-93b1-000000000001"}, "x": float("nan"), "name": "\ud800"}]
    body = encode_answer(answer_document(odd, {}))
    back = decode_answer("k", body, hashlib.sha256(body).hexdigest())["results"][0]
    assert back["name"] == "\ud800" and back["x"] != back["x"]


def test_a_checksum_mismatch_or_a_truncated_object_is_named_by_key() -> None:
    body = encode_answer(answer_document([], {}))
    with pytest.raises(CorruptObject, match=r"^randomuser/k: sha256 [0-9a-f]{64} of \d+ bytes != 00"):
        decode_answer("randomuser/k", body, "00")
    truncated = body[: len(body) // 2]
    with pytest.raises(CorruptObject, match=r"^randomuser/k: not a gzip JSON answer"):
        decode_answer("randomuser/k", truncated, hashlib.sha256(truncated).hexdigest())
    with pytest.raises(CorruptObject, match="no sha256 in its metadata"):
        decode_answer("randomuser/k", body, None)
    other = gzip.compress(b'{"error": "x"}', mtime=0)
    with pytest.raises(CorruptObject, match="no results list"):
        decode_answer("randomuser/k", other, hashlib.sha256(other).hexdigest())


def test_config_checks_and_never_shows_its_keys() -> None:
    with pytest.raises(ValueError, match="archive settings lack bucket, secret_key"):
        ArchiveConfig("http://10.77.0.154:8333", "", "randomuser", "us-east-1", "ak", "")
    with pytest.raises(ValueError, match="endpoint must be http"):
        ArchiveConfig("10.77.0.154:8333", "b", "randomuser", "us-east-1", "ak", "sk")
    config = ArchiveConfig("http://10.77.0.154:8333", "b", "randomuser", "us-east-1", "AKEY", "SKEY")
    assert "AKEY" not in repr(config) and "SKEY" not in repr(config)


def test_s3_settings_from_the_connection() -> None:
    assert {"conn_s3", "conn_s3_reader", "s3_bucket", "s3_prefix"} <= set(PIPELINE_KEYS)
    extra = {"endpoint_url": "http://10.77.0.154:8333", "region_name": "us-east-1"}
    config = s3_settings("correnteza_s3", "ak", "sk", extra, "correnteza-bronze", "randomuser")
    assert (config.endpoint, config.bucket, config.prefix, config.region) == (
        "http://10.77.0.154:8333", "correnteza-bronze", "randomuser", "us-east-1",
    )  # fmt: skip
    with pytest.raises(
        SettingsError, match=r"^Airflow connection correnteza_s3 has no password, extra.region_name$"
    ):
        s3_settings("correnteza_s3", "ak", "", {"endpoint_url": "http://h:1"}, "b", "p")
    with pytest.raises(SettingsError, match=r"extra\.endpoint_url must be http"):
        s3_settings("correnteza_s3", "ak", "sk", {**extra, "endpoint_url": "ftp://h"}, "b", "p")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_store_that_does_not_answer_fails_naming_endpoint_bucket_and_key() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    archive = Archive(
        ArchiveConfig(endpoint, "correnteza-bronze", "randomuser", "us-east-1", "a", "s"), attempts=2
    )
    key = object_key("randomuser", DAY, "r", 1)
    with pytest.raises(ArchiveError) as caught:
        archive.put_answer(key, b"x", {"sha256": "00"})
    message = str(caught.value)
    assert f"could not write s3://correnteza-bronze/{key} at {endpoint}" in message
    assert "up to 2 attempts" in message and "EndpointConnectionError" in message


def test_selection_by_run_and_by_days_across_listing_pages(memory_archive) -> None:
    for day, run, pages in ((date(2026, 12, 1), "a", 3), (DAY, "b", 2), (date(2026, 12, 3), "a", 1)):
        for page in range(1, pages + 1):
            memory_archive.put_answer(object_key("randomuser", day, run, page), b"{}", {"sha256": "0"})
    memory_archive.client.put_object(
        Bucket="correnteza-bronze", Key="randomuser/notes.txt", Body=b"", Metadata={}
    )
    keys = select_keys(memory_archive.keys("randomuser/"), run_id="a")
    assert [parse_key(k)[0::2] for k in keys] == [
        (date(2026, 12, 1), 1), (date(2026, 12, 1), 2), (date(2026, 12, 1), 3), (date(2026, 12, 3), 1),
    ]  # fmt: skip
    assert memory_archive.client.pages == 4, "the listing is paginated (2 keys per page here)"
    assert len(replay_selection(memory_archive, None, "2026-12-02", "2026-12-03")) == 3
    assert len(replay_selection(memory_archive, None, "2026-12-02", "2026-12-02")) == 2
    with pytest.raises(ValueError, match="replay needs run_id, or date_from"):
        replay_selection(memory_archive, None, None, None)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        replay_selection(memory_archive, None, "02/12/2026", None)
    with pytest.raises(ValueError, match="date_from 2026-12-03 is after date_to 2026-12-01"):
        replay_selection(memory_archive, None, "2026-12-03", "2026-12-01")


def a_plan(run_id: str, seed: str, batches: int = 2) -> FetchPlan:
    return FetchPlan(run_id=run_id, seed=seed, batches=batches, batch_size=20, archive_day=DAY)


def test_no_batch_lands_without_its_archive_object_and_a_retry_completes(pg_conn, source_url, memory_archive):
    choice = SourceChoice("local", source_url, "test")
    plan = a_plan("down__1", "store-down")

    class SecondPutFails(MemoryS3):
        def put_object(self, **kw):
            self.puts += 1
            if self.puts == 2:
                from botocore.exceptions import EndpointConnectionError

                raise EndpointConnectionError(endpoint_url="http://10.77.0.154:8333")
            self.objects[(kw["Bucket"], kw["Key"])] = (bytes(kw["Body"]), dict(kw["Metadata"]))
            return {}

    archive = Archive(memory_archive.config, client=SecondPutFails())
    with pytest.raises(
        ArchiveError, match=r"could not write s3://correnteza-bronze/randomuser/dt=2026-12-02/"
    ):
        fetch_batches(pg_conn, choice, plan, ClientConfig(base_url=source_url), archive)
    # page 1 archived and landed; page 2 neither
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw WHERE seed = 'store-down'") == 20
    assert scalar(pg_conn, "SELECT count(*) FROM batches WHERE run_id = 'down__1'") == 1
    # the task's retry: every user landed once, every answer archived
    fetch_batches(pg_conn, choice, plan, ClientConfig(base_url=source_url), archive)
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw WHERE seed = 'store-down'") == 40
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox o JOIN batches b USING (batch_id) "
                           "WHERE b.run_id = 'down__1'") == 40  # fmt: skip
    assert len(archive.client.objects) == 2


def test_replay_lands_nothing_new_for_a_landed_run_and_skips_a_corrupt_object(
    pg_conn, source_url, memory_archive
):
    choice = SourceChoice("local", source_url, "test")
    plan = a_plan("replay__1", "replay-seed", batches=3)
    fetch_batches(pg_conn, choice, plan, ClientConfig(base_url=source_url), memory_archive)
    keys = replay_selection(memory_archive, "replay__1", None, None)
    assert len(keys) == 3
    with pg_conn.cursor() as cur:
        cur.execute("UPDATE users_outbox SET published_at = now()")
    pg_conn.commit()
    before = scalar(pg_conn, "SELECT max(updated_at)::text FROM users_raw")
    # corrupt the second object: same metadata, a byte flipped
    bucket = memory_archive.config.bucket
    body, meta = memory_archive.client.objects[(bucket, keys[1])]
    memory_archive.client.objects[(bucket, keys[1])] = (body[:-1] + bytes([body[-1] ^ 1]), meta)
    report = replay_archive(pg_conn, memory_archive, keys)
    assert report.selected == 3 and report.replayed == 2 and report.users == 40
    assert list(report.skipped) == [keys[1]] and "sha256" in report.skipped[keys[1]]
    # nothing queued again, nothing rewritten
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 0
    assert scalar(pg_conn, "SELECT max(updated_at)::text FROM users_raw") == before
    dry = replay_archive(pg_conn, memory_archive, [keys[0]], dry_run=True)
    assert (dry.replayed, dry.users) == (1, 20)


def test_replay_rebuilds_lost_rows_and_leaves_newer_ones(pg_conn, source_url, memory_archive):
    """users_raw lost rows (a bug, a bad delete): replay lands them again and queues them; a user that a
    newer fetch replaced keeps the newer version."""
    choice = SourceChoice("local", source_url, "test")
    old = a_plan("old__1", "rebuild", batches=1)
    fetch_batches(pg_conn, choice, old, ClientConfig(base_url=source_url), memory_archive)
    newer = FetchPlan(run_id="new__1", seed="rebuild", batches=1, batch_size=20, archive_day=DAY)
    fetch_batches(pg_conn, choice, newer, ClientConfig(base_url=source_url), memory_archive)
    ids = [r[0] for r in _rows(pg_conn, "SELECT id::text FROM users_raw WHERE seed = 'rebuild' ORDER BY id")]
    assert len(ids) == 20
    with pg_conn.cursor() as cur:
        cur.execute("UPDATE users_outbox SET published_at = now()")
        cur.execute("DELETE FROM users_outbox WHERE user_id = ANY(%s::uuid[])", (ids[:5],))
        cur.execute("DELETE FROM users_raw WHERE id = ANY(%s::uuid[])", (ids[:5],))
    pg_conn.commit()
    report = replay_archive(pg_conn, memory_archive, replay_selection(memory_archive, "old__1", None, None))
    assert report.replayed == 1 and not report.skipped
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw WHERE seed = 'rebuild'") == 20
    # the 5 lost users came back (from the old batch, the only copy replayed) and were queued again
    assert scalar(pg_conn, "SELECT count(*) FROM users_outbox WHERE published_at IS NULL") == 5
    # the other 15 still carry the newer run's batch
    new_batch = scalar(pg_conn, "SELECT batch_id FROM batches WHERE run_id = 'new__1'")
    assert scalar(pg_conn, "SELECT count(*) FROM users_raw WHERE batch_id = %s", new_batch) == 15


def _rows(conn: Any, sql: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.commit()
    return rows


def test_metadata_is_ascii_and_names_the_batch() -> None:
    meta = answer_metadata(
        run_id="r", batch_id="b", seed="s", page=1, count=3, source="local", url="http://h/api/?nat=é",
        fetched_at=datetime(2026, 12, 2, tzinfo=UTC), sha256="ab",
    )  # fmt: skip
    assert meta["sha256"] == "ab" and meta["count"] == "3" and meta["seed"] == "s" and meta["page"] == "1"
    assert "url" not in meta, "a non-ASCII url is not sent as a header"
    assert all(v.isascii() for v in meta.values())
