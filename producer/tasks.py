"""The DAGs' steps as plain functions (Airflow-free, unit-testable): fetch -> publish, and replay.

fetch writes each answer to the bronze archive (producer.archive), then validates the batch and lands it
in PostgreSQL in one transaction (the batches audit row, rejects, users_raw, the outbox); publish drains
the outbox to Kafka (this run's users and any left by earlier runs). replay_archive reads archived answers
back and lands them through the same path. Nothing but batch ids and counts goes through XCom.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from producer.archive import (
    Archive,
    CorruptObject,
    answer_document,
    answer_metadata,
    day_prefix,
    encode_answer,
    object_key,
    select_keys,
)
from producer.client import Answer, RandomUserClient
from producer.config import MAX_RESULTS, SOURCE_FAULTS, ClientConfig
from producer.landing import Batch, dedupe_by_id, land_batch
from producer.publisher import (
    MAX_ATTEMPTS,
    KafkaProducer,
    PublishError,
    PublishResult,
    ValueEncoder,
    publish_pending,
)
from producer.selection import SourceChoice
from producer.validation import validate_records

log = logging.getLogger(__name__)

BATCH_NAMESPACE = uuid.UUID("6b1f2c3e-4d5a-4e6f-8a9b-0c1d2e3f4a5b")


@dataclass(frozen=True)
class FetchPlan:
    run_id: str
    seed: str
    batches: int
    batch_size: int
    # the archive's dt= partition: the day the run was due (the same for every retry of its tasks)
    archive_day: date
    nationalities: tuple[str, ...] | None = None
    inject_bad: int = 0
    inject_bad_field: str = "email"
    # test only: the local source answers each page's first requests with these faults, in order
    inject_faults: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_RESULTS:
            raise ValueError(f"batch_size must be within 1..{MAX_RESULTS}, got {self.batch_size}")
        if self.batches < 1:
            raise ValueError(f"batches must be >= 1, got {self.batches}")
        if self.inject_bad < 0 or self.inject_bad > self.batch_size:
            raise ValueError(
                f"inject_bad must be within 0..batch_size ({self.batch_size}), got {self.inject_bad}"
            )
        unknown = [f for f in self.inject_faults if f not in SOURCE_FAULTS]
        if unknown:
            raise ValueError(f"inject_faults: unknown {unknown} (known: {', '.join(SOURCE_FAULTS)})")


def run_seed(seed: str | None, run_id: str) -> str:
    """The given seed, else one derived from the run id: random per run, stable across task retries."""
    if seed:
        return str(seed)
    return hashlib.sha256(run_id.encode()).hexdigest()[:16]


def batch_id_for(run_id: str, index: int) -> str:
    return str(uuid.uuid5(BATCH_NAMESPACE, f"{run_id}/{index}"))


def fault_params(plan: FetchPlan, choice: SourceChoice) -> dict[str, str]:
    """bad=K and fault=a,b,... for the local source (test-only); the real API has no such parameters.
    Each page's first len(inject_faults) requests get those faults in order, then normal answers."""
    if not plan.inject_bad and not plan.inject_faults:
        return {}
    if choice.name != "local":
        log.warning(
            "inject_bad=%d and inject_faults=%s ignored: only the local source injects them",
            plan.inject_bad,
            list(plan.inject_faults),
        )
        return {}
    params: dict[str, str] = {}
    if plan.inject_bad:
        params.update(bad=str(plan.inject_bad), bad_field=plan.inject_bad_field)
    if plan.inject_faults:
        params.update(fault=",".join(plan.inject_faults), fault_times=str(len(plan.inject_faults)))
    return params


def archive_answer(
    archive: Archive, plan: FetchPlan, batch_id: str, page: int, source: str, answer: Answer,
    fetched_at: datetime,
) -> str:  # fmt: skip
    """Write one answer to the archive (ArchiveError once the store's retries run out); its key."""
    key = object_key(archive.config.prefix, plan.archive_day, plan.run_id, page)
    body = encode_answer(answer_document(answer.results, answer.info))
    metadata = answer_metadata(
        run_id=plan.run_id, batch_id=batch_id, seed=plan.seed, page=page, count=len(answer.results),
        source=source, url=answer.url, fetched_at=fetched_at, sha256=hashlib.sha256(body).hexdigest(),
    )  # fmt: skip
    stored = archive.put_answer(key, body, metadata)
    log.info("batch %s: answer archived as %s (%d bytes, %.3f s)", batch_id, archive.config.where(key),
             stored.size, stored.seconds)  # fmt: skip
    return key


def fetch_batches(
    conn: Any, choice: SourceChoice, plan: FetchPlan, client_config: ClientConfig, archive: Archive
) -> list[str]:
    """Fetch plan.batches pages (batch i is page i+1 of plan.seed); archive each answer, then validate and
    land it. No batch is landed without its archive object. The batch ids."""
    client = RandomUserClient(client_config)
    extra = fault_params(plan, choice)
    ids: list[str] = []
    landed = 0
    for index in range(plan.batches):
        page = index + 1
        answer = client.get(
            results=plan.batch_size, seed=plan.seed, page=page, nat=plan.nationalities, extra=extra
        )
        batch_id = batch_id_for(plan.run_id, index)
        fetched_at = datetime.now(UTC)
        archive_answer(archive, plan, batch_id, page, choice.name, answer, fetched_at)
        checked = validate_records(answer.results)
        batch = Batch(
            batch_id=batch_id,
            run_id=plan.run_id,
            seed=plan.seed,
            page=page,
            requested=plan.batch_size,
            source=choice.name,
            url=answer.url,
            fetched_at=fetched_at,
            records=checked.accepted,
            rejected=checked.rejected,
        )
        log.info(
            "batch %s: seed %s page %d: %d users accepted, %d rejected (%s, %.2f s, %d attempt(s))",
            batch.batch_id, plan.seed, page, len(checked.accepted), len(checked.rejected), choice.name,
            answer.seconds, answer.attempts,
        )  # fmt: skip
        for rejected in checked.rejected:
            log.warning(
                "batch %s: record %d rejected: %s", batch.batch_id, rejected.position, rejected.reason
            )
        landed += land_batch(conn, batch)
        ids.append(batch.batch_id)
    log.info("run %s: %d batch(es), %d users landed and queued for publishing", plan.run_id, len(ids), landed)
    return ids


def publish(
    conn: Any,
    producer: KafkaProducer,
    topic: str,
    encode: ValueEncoder,
    limit: int = 100_000,
    max_attempts: int = MAX_ATTEMPTS,
) -> PublishResult:
    """Drain the outbox (this run's users and any left over by earlier runs); raise if any failed.

    Parked rows are not selected, so they fail only the run that parked them; later runs succeed unless
    another row fails."""
    result = publish_pending(conn, producer, topic, encode, limit=limit, max_attempts=max_attempts)
    if result.failed:
        sample = "; ".join(f"{uid}: {err}" for uid, err in list(result.failed.items())[:3])
        parked = (
            f", {len(result.parked)} of them parked after {max_attempts} attempts (no longer sent; "
            "see make query)"
            if result.parked
            else ""
        )
        raise PublishError(
            f"{len(result.failed)} of {result.selected} messages not serialized or not confirmed by Kafka "
            f"(kept in the outbox{parked}): {sample}"
        )
    return result


@dataclass
class ReplayReport:
    """What a replay read and landed; skipped: key -> why an object was not trusted."""

    selected: int = 0
    replayed: int = 0
    users: int = 0
    rejected: int = 0
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "replayed": self.replayed,
            "users": self.users,
            "rejected": self.rejected,
            "skipped": dict(self.skipped),
        }


def archived_batch(answer: Any) -> Batch:
    """The Batch an archived answer was landed as: its original batch id (so its landing order is kept),
    run, seed, page and fetch time, re-validated like a fresh answer."""
    meta = answer.metadata
    missing = [name for name in ("batch-id", "run-id", "page", "fetched-at", "source") if not meta.get(name)]
    if missing:
        raise CorruptObject(f"{answer.key}: metadata lacks {', '.join(missing)}")
    checked = validate_records(answer.results)
    return Batch(
        batch_id=meta["batch-id"],
        run_id=meta["run-id"],
        seed=meta.get("seed"),
        page=int(meta["page"]),
        requested=int(meta.get("count") or len(answer.results)),
        source=meta["source"],
        url=meta.get("url"),
        fetched_at=datetime.fromisoformat(meta["fetched-at"]),
        records=checked.accepted,
        rejected=checked.rejected,
    )


def replay_archive(conn: Any, archive: Archive, keys: list[str], dry_run: bool = False) -> ReplayReport:
    """Land the archived answers `keys` again through land_batch (idempotent; a user a newer batch wrote
    is left alone). An object that cannot be trusted is reported by key and skipped; the rest goes on."""
    report = ReplayReport(selected=len(keys))
    for number, key in enumerate(keys, start=1):
        try:
            batch = archived_batch(archive.read_answer(key))
        except CorruptObject as err:
            report.skipped[key] = str(err)
            log.error("replay %d/%d: %s skipped: %s", number, len(keys), key, err)
            continue
        report.rejected += len(batch.rejected)
        if dry_run:
            report.users += len(dedupe_by_id(batch.records))
            log.info("replay %d/%d (dry run): %s holds %d users, %d rejects", number, len(keys), key,
                     len(batch.records), len(batch.rejected))  # fmt: skip
        else:
            report.users += land_batch(conn, batch)
            log.info("replay %d/%d: %s landed again as batch %s", number, len(keys), key, batch.batch_id)
        report.replayed += 1
    log.info("replay: %s", report.as_dict())
    return report


class ReplayIncomplete(RuntimeError):
    """Some archived answers could not be trusted and were skipped; the message names each key."""


def replay_selection(
    archive: Archive, run_id: str | None, date_from: str | None, date_to: str | None
) -> list[str]:
    """The archive keys a replay covers: one run's, or a range of days (dt=), paginated listing."""
    if not run_id and not date_from and not date_to:
        raise ValueError("replay needs run_id, or date_from and/or date_to (YYYY-MM-DD)")
    try:
        first = date.fromisoformat(date_from) if date_from else None
        last = date.fromisoformat(date_to) if date_to else None
    except ValueError as err:
        raise ValueError(f"date_from/date_to must be YYYY-MM-DD: {err}") from err
    if first and last and first > last:
        raise ValueError(f"date_from {first} is after date_to {last}")
    # one day: list only its partition; otherwise the whole prefix, filtered by key
    prefix = f"{archive.config.prefix.strip('/')}/"
    if first and first == last:
        prefix = day_prefix(archive.config.prefix, first)
    keys = select_keys(archive.keys(prefix), run_id=run_id, date_from=first, date_to=last)
    log.info("replay: %d archived answer(s) under %s (run_id %s, days %s..%s)", len(keys),
             archive.config.where(prefix), run_id, first, last)  # fmt: skip
    return keys
