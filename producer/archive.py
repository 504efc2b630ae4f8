"""The bronze archive: every API answer fetch receives, as one S3 object per request, before it is landed.

Key:      <prefix>/dt=YYYY-MM-DD/run_id=<run>/batch-<page, 5 digits>.json.gz
Body:     gzip (mtime 0) of the answer as JSON, {"results": [...], "info": {...}}, each record exactly as it
          arrived but without randomuser's login secrets (password, salt, md5, sha1, sha256). Encoding is
          deterministic, so a retried fetch writes the same key with the same bytes.
Metadata: format, run id, batch id, seed, page, count (records), source, url, fetched-at and the sha256 of
          the body (the object's bytes), which replay verifies before it trusts an object.

The store is reached with boto3 (S3 API, signature v4). A write that the store refuses for a transient
reason (connection refused, timeout, 5xx, SlowDown) is retried by botocore's standard retry mode with
exponential backoff; when the attempts run out, ArchiveError names the endpoint, the bucket and the key.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from producer.validation import strip_sensitive

log = logging.getLogger(__name__)

FORMAT: Final = "randomuser-answer/1"
# botocore's standard retry mode: total attempts of one request (the first one included).
WRITE_ATTEMPTS: Final = 6
# A run id keeps these characters in a key; the others become "-" (the exact id is in the metadata).
_KEY_SAFE = re.compile(r"[^A-Za-z0-9._=-]")
_KEY_PATTERN = re.compile(
    r"/dt=(?P<day>\d{4}-\d{2}-\d{2})/run_id=(?P<run>[^/]+)/batch-(?P<page>\d{5,})\.json\.gz$"
)


class ArchiveError(RuntimeError):
    """The object store did not take (or give) an object; the message names the endpoint, bucket and key."""


class CorruptObject(ValueError):
    """An archived object that cannot be trusted (checksum, gzip or JSON); the message names its key."""


@dataclass(frozen=True)
class ArchiveConfig:
    endpoint: str
    bucket: str
    prefix: str
    region: str
    access_key: str
    secret_key: str

    def __post_init__(self) -> None:
        missing = [name for name in ("endpoint", "bucket", "prefix", "region") if not getattr(self, name)]
        missing += [name for name in ("access_key", "secret_key") if not getattr(self, name)]
        if missing:
            raise ValueError(f"archive settings lack {', '.join(missing)}")
        if not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"archive endpoint must be http(s)://host:port, got {self.endpoint!r}")
        if "/" in self.prefix.strip("/"):
            raise ValueError(f"archive prefix must be one path segment, got {self.prefix!r}")

    def __repr__(self) -> str:  # never print the keys
        return f"ArchiveConfig(endpoint={self.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    def where(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key} at {self.endpoint}"


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    sha256: str
    seconds: float


@dataclass(frozen=True)
class ArchivedAnswer:
    """One archived answer read back and verified."""

    key: str
    metadata: dict[str, str]
    results: list[Any]
    info: dict[str, Any]


def key_run_id(run_id: str) -> str:
    return _KEY_SAFE.sub("-", run_id)


def day_prefix(prefix: str, day: date) -> str:
    return f"{prefix.strip('/')}/dt={day.isoformat()}/"


def object_key(prefix: str, day: date, run_id: str, page: int) -> str:
    if page < 1:
        raise ValueError(f"page must be >= 1, got {page}")
    return f"{day_prefix(prefix, day)}run_id={key_run_id(run_id)}/batch-{page:05d}.json.gz"


def parse_key(key: str) -> tuple[date, str, int] | None:
    """(day, run id as in the key, page) of an archive key, None for any other key."""
    match = _KEY_PATTERN.search(key)
    if match is None:
        return None
    return date.fromisoformat(match["day"]), match["run"], int(match["page"])


def answer_document(results: list[Any], info: Mapping[str, Any]) -> dict[str, Any]:
    """The answer as archived: every record as it arrived, without login secrets."""
    return {"results": [strip_sensitive(record) for record in results], "info": dict(info)}


def encode_answer(document: Mapping[str, Any]) -> bytes:
    """Deterministic gzip JSON. ensure_ascii keeps even a lone surrogate (which a faulty source may send)
    as an escape, and NaN stays NaN: the answer reads back exactly as it arrived, for replay to judge."""
    text = json.dumps(document, ensure_ascii=True, separators=(",", ":"))
    return gzip.compress(text.encode("ascii"), compresslevel=6, mtime=0)


def decode_answer(key: str, body: bytes, expected_sha256: str | None) -> dict[str, Any]:
    digest = hashlib.sha256(body).hexdigest()
    if expected_sha256 is None:
        raise CorruptObject(f"{key}: no sha256 in its metadata (not written by the archive)")
    if digest != expected_sha256:
        raise CorruptObject(
            f"{key}: sha256 {digest} of {len(body)} bytes != {expected_sha256} in its metadata"
        )
    try:
        document = json.loads(gzip.decompress(body))
    except (OSError, EOFError, ValueError) as err:
        raise CorruptObject(f"{key}: not a gzip JSON answer ({err})") from err
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise CorruptObject(f"{key}: the answer has no results list")
    return document


def answer_metadata(
    *, run_id: str, batch_id: str, seed: str, page: int, count: int, source: str, url: str,
    fetched_at: datetime, sha256: str,
) -> dict[str, str]:  # fmt: skip
    """S3 user metadata (x-amz-meta-*): ASCII text only, so the url is kept only when it is ASCII."""
    meta = {
        "format": FORMAT,
        "run-id": run_id,
        "batch-id": batch_id,
        "seed": seed,
        "page": str(page),
        "count": str(count),
        "source": source,
        "fetched-at": fetched_at.isoformat(),
        "sha256": sha256,
    }
    if url.isascii() and len(url) < 1024:
        meta["url"] = url
    return meta


def s3_client(config: ArchiveConfig, attempts: int = WRITE_ATTEMPTS) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=config.endpoint,
        region_name=config.region,
        aws_access_key_id=config.access_key,
        aws_secret_access_key=config.secret_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


class Archive:
    """The bronze archive in one bucket, through one boto3 client."""

    def __init__(self, config: ArchiveConfig, client: Any = None, attempts: int = WRITE_ATTEMPTS) -> None:
        self.config = config
        self.attempts = attempts
        self.client = client if client is not None else s3_client(config, attempts)

    def _fail(self, what: str, key: str, err: Exception) -> ArchiveError:
        from botocore.exceptions import ClientError

        if isinstance(err, ClientError):
            code = err.response.get("Error", {}).get("Code", "?")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            reason = f"{code} (HTTP {status})"
        else:
            reason = f"{type(err).__name__}: {err}"
        return ArchiveError(
            f"object store: could not {what} {self.config.where(key)} "
            f"(botocore, up to {self.attempts} attempts with backoff): {reason}"
        )

    def put_answer(self, key: str, body: bytes, metadata: Mapping[str, str]) -> Stored:
        import time

        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        try:
            self.client.put_object(
                Bucket=self.config.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ContentEncoding="gzip",
                Metadata=dict(metadata),
            )
        except (BotoCoreError, ClientError) as err:
            raise self._fail("write", key, err) from err
        return Stored(key, len(body), metadata["sha256"], time.monotonic() - started)

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under prefix, through the paginated listing."""
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.config.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], int(item["Size"])
        except (BotoCoreError, ClientError) as err:
            raise self._fail("list", prefix, err) from err

    def read_answer(self, key: str) -> ArchivedAnswer:
        """An archived answer, its checksum verified; CorruptObject (naming the key) if not trusted."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            got = self.client.get_object(Bucket=self.config.bucket, Key=key)
            body = got["Body"].read()
        except (BotoCoreError, ClientError) as err:
            raise self._fail("read", key, err) from err
        metadata = {k.lower(): v for k, v in got.get("Metadata", {}).items()}
        document = decode_answer(key, body, metadata.get("sha256"))
        return ArchivedAnswer(key, metadata, document["results"], dict(document.get("info") or {}))


def select_keys(
    keys: Iterator[tuple[str, int]],
    *,
    run_id: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[str]:
    """The archive keys of a run and/or a day range (inclusive), in (day, run, page) order."""
    chosen: list[tuple[date, str, int, str]] = []
    wanted_run = key_run_id(run_id) if run_id else None
    for key, _size in keys:
        parsed = parse_key(key)
        if parsed is None:
            continue
        day, run, page = parsed
        if wanted_run is not None and run != wanted_run:
            continue
        if (date_from and day < date_from) or (date_to and day > date_to):
            continue
        chosen.append((day, run, page, key))
    return [key for *_ignored, key in sorted(chosen)]
