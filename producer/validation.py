"""Per-record validation at the producer: what cannot be keyed or landed is rejected with a reason.

The producer only checks what it needs (an object with a valid login.uuid, the key); content checks
(names, e-mail, dates, gender, nat) belong to the Spark job (the contract's "Validation split").
Sanitizing removes randomuser's login.password/salt/md5/sha1/sha256 and turns location.postcode into a
string, before anything is stored.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from producer.config import SENSITIVE_LOGIN_FIELDS


@dataclass(frozen=True)
class Rejected:
    """A record the producer cannot key or land: its position in the answer, why, and the (sanitized) raw."""

    position: int
    reason: str
    raw: Any


@dataclass(frozen=True)
class Validated:
    accepted: list[dict[str, Any]]
    rejected: list[Rejected]


def strip_sensitive(record: Any) -> Any:
    """A deep copy of record without login's secrets (anything else is left as is)."""
    clean = copy.deepcopy(record)
    if isinstance(clean, dict) and isinstance(clean.get("login"), dict):
        for name in SENSITIVE_LOGIN_FIELDS:
            clean["login"].pop(name, None)
    return clean


def _postcode_to_str(record: dict[str, Any]) -> None:
    location = record.get("location")
    if isinstance(location, dict) and "postcode" in location:
        value = location["postcode"]
        if value is None:
            return
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        location["postcode"] = str(value)


def key_problem(record: Any) -> str | None:
    """Why record cannot be keyed, or None when login.uuid is a valid UUID."""
    if not isinstance(record, dict):
        return f"not a JSON object (got {type(record).__name__})"
    login = record.get("login")
    if not isinstance(login, dict):
        return "missing login object"
    if "uuid" not in login:
        return "missing login.uuid"
    value = login["uuid"]
    if not isinstance(value, str):
        return f"login.uuid is not a string (got {type(value).__name__})"
    try:
        uuid.UUID(value)
    except ValueError:
        return f"login.uuid is not a valid UUID: {value[:64]!r}"
    return None


def sanitize(record: dict[str, Any]) -> dict[str, Any]:
    """The record as stored and published: secrets dropped, postcode a string, uuid canonical."""
    clean = strip_sensitive(record)
    _postcode_to_str(clean)
    clean["login"]["uuid"] = str(uuid.UUID(clean["login"]["uuid"]))
    return clean


def validate_records(records: Iterable[Any]) -> Validated:
    """Split an API answer's results into sanitized accepted users and rejected records with reasons."""
    accepted: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for position, record in enumerate(records):
        problem = key_problem(record)
        if problem is None:
            accepted.append(sanitize(record))
        else:
            rejected.append(Rejected(position=position, reason=problem, raw=strip_sensitive(record)))
    return Validated(accepted=accepted, rejected=rejected)


def user_id(record: dict[str, Any]) -> str:
    """The key of a sanitized record."""
    return str(record["login"]["uuid"])
