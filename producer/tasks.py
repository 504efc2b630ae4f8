"""The DAG's steps as plain functions (Airflow-free, unit-testable): fetch -> publish.

fetch validates each batch and lands it in PostgreSQL in one transaction (the batches audit row, rejects,
users_raw, the outbox); publish drains the outbox to Kafka (this run's users and any left by earlier runs).
Nothing but the batch ids goes through XCom.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from producer.client import RandomUserClient
from producer.config import MAX_RESULTS, SOURCE_FAULTS, ClientConfig
from producer.landing import Batch, land_batch
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


def fetch_batches(conn: Any, choice: SourceChoice, plan: FetchPlan, client_config: ClientConfig) -> list[str]:
    """Fetch plan.batches pages (batch i is page i+1 of plan.seed), validate and land each; the batch ids."""
    client = RandomUserClient(client_config)
    extra = fault_params(plan, choice)
    ids: list[str] = []
    landed = 0
    for index in range(plan.batches):
        page = index + 1
        answer = client.get(
            results=plan.batch_size, seed=plan.seed, page=page, nat=plan.nationalities, extra=extra
        )
        checked = validate_records(answer.results)
        batch = Batch(
            batch_id=batch_id_for(plan.run_id, index),
            run_id=plan.run_id,
            seed=plan.seed,
            page=page,
            requested=plan.batch_size,
            source=choice.name,
            url=answer.url,
            fetched_at=datetime.now(UTC),
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
